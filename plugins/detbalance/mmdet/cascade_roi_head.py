"""``DBCascadeRoIHead``: ``CascadeRoIHead`` whose every stage starts its classifier from its detbalance loss and
honours per-box annotation weights.

Cascade R-CNN assigns and samples proposals again in every stage (stage 2 and 3 from the refined boxes of the
stage before). In each stage this head multiplies the label weight of every positive proposal by the
``gt_instances.weights`` entry of the ground-truth box that stage matched it to, exactly as
:class:`~detbalance.mmdet.roi_head.DBStandardRoIHead` does for a single stage (the same
:class:`~detbalance.mmdet.roi_head.DBRoIHeadMixin`), so a box of weight 0 gives no classification gradient in any
stage. Give each stage's ``bbox_head`` a detbalance ``loss_cls``: each stage builds its own loss module, so
stateful losses keep one state per stage. Regression, box refinement between the stages and the mask branch are
``CascadeRoIHead``'s. Config::

    model = dict(roi_head=dict(type='DBCascadeRoIHead'))
"""

from __future__ import annotations

from mmdet.models.roi_heads import CascadeRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from torch import Tensor

from .roi_head import DBRoIHeadMixin

__all__ = ["DBCascadeRoIHead"]


@MODELS.register_module()
class DBCascadeRoIHead(DBRoIHeadMixin, CascadeRoIHead):
    """``CascadeRoIHead`` starting every stage's classifier from its loss and multiplying, in every stage, positive
    proposals' classification weights by the weight of the box they matched."""

    def bbox_loss(self, stage: int, x: tuple[Tensor], sampling_results: list[SamplingResult]) -> dict:
        """``CascadeRoIHead.bbox_loss`` through :meth:`weighted_loss_and_target`."""
        rois = bbox2roi([res.priors for res in sampling_results])
        bbox_results = self._bbox_forward(stage, x, rois)
        bbox_results.update(rois=rois)
        head, train_cfg = self.bbox_head[stage], self.train_cfg[stage]
        bbox_results.update(self.weighted_loss_and_target(head, bbox_results, rois, sampling_results, train_cfg))
        return bbox_results
