"""``DBCascadeRoIHead``: ``CascadeRoIHead`` whose every stage honours per-box annotation weights.

Cascade R-CNN assigns and samples proposals again in every stage (stage 2 and 3 from the refined boxes of the
stage before). In each stage this head multiplies the label weight of every positive proposal by the
``gt_instances.weights`` entry of the ground-truth box that stage matched it to, exactly as
:class:`~detbalance.mmdet.roi_head.DBStandardRoIHead` does for a single stage, so a box of weight 0 gives no
classification gradient in any stage. Give each stage's ``bbox_head`` a detbalance ``loss_cls``: each stage
builds its own loss module, so stateful losses keep one state per stage. Regression, box refinement between the
stages and the mask branch are ``CascadeRoIHead``'s. Config::

    model = dict(roi_head=dict(type='DBCascadeRoIHead'))
"""

from __future__ import annotations

from mmdet.models.roi_heads import CascadeRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi
from mmengine.structures import InstanceData
from torch import Tensor

from .roi_head import _gt_weights, _loss_cls_on_empty_batch, proposal_box_weights

__all__ = ["DBCascadeRoIHead"]


@MODELS.register_module()
class DBCascadeRoIHead(CascadeRoIHead):
    """``CascadeRoIHead`` multiplying, in every stage, positive proposals' classification weights by the weight
    of the box they matched."""

    def loss(
        self, x: tuple[Tensor], rpn_results_list: list[InstanceData], batch_data_samples: list[DetDataSample]
    ) -> dict:
        batch_gt_instances = unpack_gt_instances(batch_data_samples)[0]
        # The weights of this batch's boxes, read by bbox_loss of every stage during the parent's loss.
        self._batch_gt_weights = [_gt_weights(gt) for gt in batch_gt_instances]
        try:
            return super().loss(x, rpn_results_list, batch_data_samples)
        finally:
            self._batch_gt_weights = None

    def bbox_loss(self, stage: int, x: tuple[Tensor], sampling_results: list[SamplingResult]) -> dict:
        """``CascadeRoIHead.bbox_loss`` with the label weights of positives scaled by their boxes' weights."""
        gt_weights: list | None = getattr(self, "_batch_gt_weights", None)
        if gt_weights is None or all(w is None for w in gt_weights):
            bbox_results = super().bbox_loss(stage, x, sampling_results)
            _loss_cls_on_empty_batch(self.bbox_head[stage], bbox_results)
            return bbox_results
        bbox_head = self.bbox_head[stage]
        rois = bbox2roi([res.priors for res in sampling_results])
        bbox_results = self._bbox_forward(stage, x, rois)
        bbox_results.update(rois=rois)
        targets = bbox_head.get_targets(sampling_results, self.train_cfg[stage], concat=True)
        labels, label_weights, bbox_targets, bbox_weights = targets
        label_weights = label_weights * proposal_box_weights(sampling_results, gt_weights, label_weights)
        loss_bbox = bbox_head.loss(
            bbox_results["cls_score"],
            bbox_results["bbox_pred"],
            rois,
            labels,
            label_weights,
            bbox_targets,
            bbox_weights,
        )
        bbox_results.update(loss_bbox=loss_bbox, bbox_targets=targets)
        _loss_cls_on_empty_batch(bbox_head, bbox_results)
        return bbox_results
