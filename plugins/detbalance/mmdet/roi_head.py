"""``DBStandardRoIHead``: ``StandardRoIHead`` whose classification loss honours per-box annotation weights.

``BBoxHead`` gives every sampled proposal a label weight (positives ``pos_weight``, negatives 1) and its
classification loss multiplies each proposal's term by it and averages over the proposals with a weight > 0.
This head multiplies the label weight of every positive proposal by the ``gt_instances.weights`` entry of the
ground-truth box it was matched to (``SamplingResult.pos_assigned_gt_inds``); negatives keep theirs. A box of
weight 0 therefore drops out of the classification loss (its positives are not counted in the average either),
a box of weight 2 counts twice. Box regression and the mask branch are unchanged. Images whose
``gt_instances`` have no ``weights`` field train exactly as with ``StandardRoIHead``.

The weights come from the annotations through ``DBCocoDataset`` -> ``DBLoadAnnotations`` -> ``DBPackDetInputs``
(see ``detbalance.mmdet.box_weights_data``).

A batch without any proposal (images with neither RPN proposals nor ground truth) still calls ``loss_cls``,
with the empty scores, where ``BBoxHead.loss`` skips it: the stateful losses (EQLv2, Seesaw) sum their
statistics over ranks in every training call, so in distributed training a rank that skipped the call would
leave the others waiting in that sum (and DDP would miss the classifier's gradients). Use this head for
distributed training with those losses. Config::

    model = dict(roi_head=dict(type='DBStandardRoIHead'))
"""

from __future__ import annotations

import torch
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox2roi
from mmengine.structures import InstanceData
from torch import Tensor

__all__ = ["DBStandardRoIHead", "proposal_box_weights"]


def proposal_box_weights(
    sampling_results: list[SamplingResult], gt_weights: list[Tensor | None], like: Tensor
) -> Tensor:
    """Per-proposal factor [R] in ``BBoxHead.get_targets`` order: each image's positives then its negatives.

    A positive gets the weight of its matched ground-truth box (1 where the image has no weights), a negative 1.
    """
    factors = []
    for result, weights in zip(sampling_results, gt_weights):
        num_pos, num_neg = len(result.pos_priors), len(result.neg_priors)
        if weights is None:
            factors.append(like.new_ones(num_pos))
        else:
            factors.append(weights.to(like)[result.pos_assigned_gt_inds])
        factors.append(like.new_ones(num_neg))
    return torch.cat(factors)


def _gt_weights(gt_instances: InstanceData) -> Tensor | None:
    if "weights" not in gt_instances:
        return None
    weights = gt_instances.weights
    if weights.shape != (len(gt_instances),):
        raise ValueError(
            f"gt_instances.weights has shape {tuple(weights.shape)}; expected ({len(gt_instances)},),"
            f" one weight per ground-truth box"
        )
    return weights


def _loss_cls_on_empty_batch(bbox_head, bbox_results: dict) -> None:
    """Add ``loss_cls`` of the empty scores when ``BBoxHead.loss`` skipped it (no proposal in the batch)."""
    cls_score = bbox_results["cls_score"]
    losses = bbox_results["loss_bbox"]
    if cls_score is None or cls_score.numel() > 0 or "loss_cls" in losses:
        return
    loss_cls = bbox_head.loss_cls(
        cls_score, cls_score.new_zeros(0, dtype=torch.long), cls_score.new_zeros(0), avg_factor=1.0
    )
    losses.update(loss_cls if isinstance(loss_cls, dict) else {"loss_cls": loss_cls})


@MODELS.register_module()
class DBStandardRoIHead(StandardRoIHead):
    """``StandardRoIHead`` multiplying positive proposals' classification weights by their box's weight."""

    def loss(
        self, x: tuple[Tensor], rpn_results_list: list[InstanceData], batch_data_samples: list[DetDataSample]
    ) -> dict:
        if len(rpn_results_list) != len(batch_data_samples):
            raise ValueError(f"got {len(rpn_results_list)} proposal lists for {len(batch_data_samples)} images")
        batch_gt_instances, batch_gt_instances_ignore, _ = unpack_gt_instances(batch_data_samples)
        sampling_results = []
        for i, rpn_results in enumerate(rpn_results_list):
            rpn_results.priors = rpn_results.pop("bboxes")
            assign_result = self.bbox_assigner.assign(rpn_results, batch_gt_instances[i], batch_gt_instances_ignore[i])
            sampling_results.append(
                self.bbox_sampler.sample(
                    assign_result, rpn_results, batch_gt_instances[i], feats=[level[i][None] for level in x]
                )
            )

        losses = {}
        if self.with_bbox:
            gt_weights = [_gt_weights(gt) for gt in batch_gt_instances]
            bbox_results = self.bbox_loss(x, sampling_results, gt_weights)
            losses.update(bbox_results["loss_bbox"])
        if self.with_mask:
            mask_results = self.mask_loss(x, sampling_results, bbox_results["bbox_feats"], batch_gt_instances)
            losses.update(mask_results["loss_mask"])
        return losses

    def bbox_loss(
        self, x: tuple[Tensor], sampling_results: list[SamplingResult], gt_weights: list[Tensor | None] | None = None
    ) -> dict:
        """``StandardRoIHead.bbox_loss`` with the label weights of positives scaled by ``gt_weights``, and
        ``loss_cls`` also for a batch without proposals."""
        if gt_weights is None or all(w is None for w in gt_weights):
            bbox_results = super().bbox_loss(x, sampling_results)
            _loss_cls_on_empty_batch(self.bbox_head, bbox_results)
            return bbox_results
        rois = bbox2roi([res.priors for res in sampling_results])
        bbox_results = self._bbox_forward(x, rois)
        labels, label_weights, bbox_targets, bbox_weights = self.bbox_head.get_targets(sampling_results, self.train_cfg)
        label_weights = label_weights * proposal_box_weights(sampling_results, gt_weights, label_weights)
        loss_bbox = self.bbox_head.loss(
            bbox_results["cls_score"],
            bbox_results["bbox_pred"],
            rois,
            labels,
            label_weights,
            bbox_targets,
            bbox_weights,
        )
        bbox_results.update(loss_bbox=loss_bbox)
        _loss_cls_on_empty_batch(self.bbox_head, bbox_results)
        return bbox_results
