"""``BalancedCascadeROIHeads``: detectron2's ``CascadeROIHeads`` with a detbalance loss in every stage.

Select it with ``MODEL.ROI_HEADS.NAME: "BalancedCascadeROIHeads"`` (registered in ``ROI_HEADS_REGISTRY`` when
``detbalance.detectron2`` is imported). detectron2's own cascade builds plain ``FastRCNNOutputLayers`` (softmax
cross-entropy) for each stage and relabels the boxes of stages 2 and 3 from the ground truth without its
``gt_weights``. Here:

- every stage's predictor is a :class:`~detbalance.detectron2.fast_rcnn.BalancedFastRCNNOutputLayers` built from
  ``cfg.DETBALANCE`` with that stage's ``MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS``; each stage owns its loss
  module, so stateful losses (EQLv2, Seesaw) keep one state per stage (``box_predictor.<k>.cls_loss.*`` in the
  checkpoint);
- stage 1 labels its proposals with ``StandardROIHeads.label_and_sample_proposals``, which copies ``gt_weights``;
  stages 2 and 3 match the previous stage's boxes again and take ``gt_weights`` of the box each one matched, so
  a box of weight 0 gives no classification gradient in any stage.

Box heads, regression, inference (scores averaged over the stages, each stage scoring with its loss's
activation) and the mask head are detectron2's.
"""

from __future__ import annotations

import torch
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.roi_heads import ROI_HEADS_REGISTRY, CascadeROIHeads
from detectron2.structures import pairwise_iou

from ..losses import check_box_head_loss
from .fast_rcnn import BalancedFastRCNNOutputLayers

__all__ = ["BalancedCascadeROIHeads"]


@ROI_HEADS_REGISTRY.register()
class BalancedCascadeROIHeads(CascadeROIHeads):
    """``CascadeROIHeads`` whose stage predictors are built from ``cfg.DETBALANCE`` and whose later stages keep
    per-box weights."""

    @classmethod
    def _init_box_head(cls, cfg, input_shape):
        if "DETBALANCE" in cfg:
            check_box_head_loss(cfg.DETBALANCE.LOSS, cls.__name__, "DETBALANCE.LOSS")
        ret = super()._init_box_head(cfg, input_shape)
        stage_weights = cfg.MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS
        ret["box_predictors"] = [
            BalancedFastRCNNOutputLayers(
                cfg, box_head.output_shape, box2box_transform=Box2BoxTransform(weights=weights)
            )
            for box_head, weights in zip(ret["box_heads"], stage_weights)
        ]
        return ret

    @torch.no_grad()
    def _match_and_label_boxes(self, proposals, stage, targets):
        """detectron2's relabelling of a later stage's boxes, plus each box's matched ``gt_weights``."""
        proposals = super()._match_and_label_boxes(proposals, stage, targets)
        for proposals_per_image, targets_per_image in zip(proposals, targets):
            if not targets_per_image.has("gt_weights"):
                continue
            if len(targets_per_image) == 0:  # all background: the weight is never read
                proposals_per_image.gt_weights = torch.ones(
                    len(proposals_per_image), device=proposals_per_image.gt_classes.device
                )
                continue
            quality = pairwise_iou(targets_per_image.gt_boxes, proposals_per_image.proposal_boxes)
            matched_idxs, _ = self.proposal_matchers[stage](quality)  # the same matching as the parent's
            proposals_per_image.gt_weights = targets_per_image.gt_weights[matched_idxs]
        return proposals
