"""``BalancedROIHeads``: detectron2's ``StandardROIHeads`` with :class:`BalancedFastRCNNOutputLayers`.

Select it with ``MODEL.ROI_HEADS.NAME: "BalancedROIHeads"`` (registered in ``ROI_HEADS_REGISTRY`` when
``detbalance.detectron2`` is imported). Everything else (proposal sampling, box head, mask/keypoint heads) is
``StandardROIHeads``; its ``label_and_sample_proposals`` copies each target's ``gt_weights`` to the proposals.
"""

from __future__ import annotations

from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, StandardROIHeads

from ..losses import check_box_head_loss
from .fast_rcnn import BalancedFastRCNNOutputLayers

__all__ = ["BalancedROIHeads"]


@ROI_HEADS_REGISTRY.register()
class BalancedROIHeads(StandardROIHeads):
    """``StandardROIHeads`` whose box predictor is built from ``cfg.DETBALANCE``."""

    @classmethod
    def from_config(cls, cfg, input_shape):
        if "DETBALANCE" in cfg:
            check_box_head_loss(cfg.DETBALANCE.LOSS, cls.__name__, "DETBALANCE.LOSS")  # a dense-head loss
        ret = super().from_config(cfg, input_shape)
        ret["box_predictor"] = BalancedFastRCNNOutputLayers(cfg, ret["box_head"].output_shape)
        return ret
