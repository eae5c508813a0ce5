"""``DBStandardRoIHead``: ``StandardRoIHead`` whose box classifier starts from its detbalance loss and whose
classification loss honours per-box annotation weights; :class:`DBRoIHeadMixin`, what it shares with
``DBCascadeRoIHead`` (:mod:`.cascade_roi_head`).

- Classifier: right after building its bbox head(s), the head hands each ``fc_cls`` to its detbalance loss, which
  starts the bias at the loss's ``initial_bias()`` (each sigmoid loss's reference prior; 0 for softmax losses)
  and sets it again after the head's ``init_cfg`` (:meth:`detbalance.mmdet._loss_base.DBLossBase.attach_classifier`).
- Per-box weights: ``BBoxHead`` gives every sampled proposal a label weight (positives ``pos_weight``, negatives 1)
  and its classification loss multiplies each proposal's term by it and averages over the proposals with a
  weight > 0. This head multiplies the label weight of every positive proposal by the ``gt_instances.weights``
  entry of the ground-truth box it was matched to (``SamplingResult.pos_assigned_gt_inds``); negatives keep
  theirs. A box of weight 0 therefore drops out of the classification loss (its positives are not counted in the
  average either), a box of weight 2 counts twice. Box regression and the mask branch are unchanged. Images whose
  ``gt_instances`` have no ``weights`` field train exactly as with ``StandardRoIHead``. The weights come from the
  annotations through ``DBCocoDataset`` -> ``DBLoadAnnotations`` -> ``DBPackDetInputs``
  (see ``detbalance.mmdet.box_weights_data``).
- A batch without any proposal (images with neither RPN proposals nor ground truth) still calls ``loss_cls``,
  with the empty scores, where ``BBoxHead.loss`` skips it: the stateful losses (EQLv2, Seesaw) sum their
  statistics over ranks in every training call, so in distributed training a rank that skipped the call would
  leave the others waiting in that sum (and DDP would miss the classifier's gradients).

One pattern in both heads: ``loss`` keeps the batch's box weights for the parent's ``loss``, whose ``bbox_loss``
(every stage's in a cascade) computes the loss with :meth:`DBRoIHeadMixin.weighted_loss_and_target` in place of
``BBoxHead.loss_and_target``. Config::

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
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ._loss_base import DBLossBase

__all__ = ["DBStandardRoIHead", "DBRoIHeadMixin", "proposal_box_weights"]


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


class DBRoIHeadMixin:
    """What the DB RoI heads add to the MMDetection RoI head they extend (module docstring)."""

    #: The weights of the boxes of the batch in training (one entry per image, None: the image has none), kept
    #: by :meth:`loss` for the ``bbox_loss`` calls of the parent's ``loss``.
    _batch_gt_weights: list[Tensor | None] | None = None

    def init_bbox_head(self, bbox_roi_extractor: ConfigDict, bbox_head: ConfigDict) -> None:
        super().init_bbox_head(bbox_roi_extractor, bbox_head)
        heads = self.bbox_head if isinstance(self.bbox_head, nn.ModuleList) else [self.bbox_head]
        for head in heads:
            if isinstance(head.loss_cls, DBLossBase):
                head.loss_cls.attach_classifier(getattr(head, "fc_cls", None))

    def loss(
        self, x: tuple[Tensor], rpn_results_list: list[InstanceData], batch_data_samples: list[DetDataSample]
    ) -> dict:
        if len(rpn_results_list) != len(batch_data_samples):
            raise ValueError(f"got {len(rpn_results_list)} proposal lists for {len(batch_data_samples)} images")
        self._batch_gt_weights = [_gt_weights(gt) for gt in unpack_gt_instances(batch_data_samples)[0]]
        try:
            return super().loss(x, rpn_results_list, batch_data_samples)
        finally:
            self._batch_gt_weights = None

    def weighted_loss_and_target(
        self,
        bbox_head: nn.Module,
        bbox_results: dict,
        rois: Tensor,
        sampling_results: list[SamplingResult],
        train_cfg: ConfigDict,
    ) -> dict:
        """``bbox_head.loss_and_target``, with the label weights of positives scaled by their boxes' weights when
        the batch has any (``bbox_targets`` keeps the unscaled ones, as the parent's), and ``loss_cls`` also for a
        batch without proposals."""
        cls_score, bbox_pred = bbox_results["cls_score"], bbox_results["bbox_pred"]
        gt_weights = self._batch_gt_weights
        if gt_weights is None or all(w is None for w in gt_weights):
            result = bbox_head.loss_and_target(cls_score, bbox_pred, rois, sampling_results, train_cfg)
        else:
            targets = bbox_head.get_targets(sampling_results, train_cfg, concat=True)
            labels, label_weights, bbox_targets, bbox_weights = targets
            label_weights = label_weights * proposal_box_weights(sampling_results, gt_weights, label_weights)
            loss_bbox = bbox_head.loss(cls_score, bbox_pred, rois, labels, label_weights, bbox_targets, bbox_weights)
            result = dict(loss_bbox=loss_bbox, bbox_targets=targets)
        if cls_score is not None and cls_score.numel() == 0 and "loss_cls" not in result["loss_bbox"]:
            loss_cls = bbox_head.loss_cls(
                cls_score, cls_score.new_zeros(0, dtype=torch.long), cls_score.new_zeros(0), avg_factor=1.0
            )
            result["loss_bbox"].update(loss_cls if isinstance(loss_cls, dict) else {"loss_cls": loss_cls})
        return result


@MODELS.register_module()
class DBStandardRoIHead(DBRoIHeadMixin, StandardRoIHead):
    """``StandardRoIHead`` starting its classifier from its loss and multiplying positive proposals'
    classification weights by their box's weight."""

    def bbox_loss(self, x: tuple[Tensor], sampling_results: list[SamplingResult]) -> dict:
        """``StandardRoIHead.bbox_loss`` through :meth:`weighted_loss_and_target`."""
        rois = bbox2roi([res.priors for res in sampling_results])
        bbox_results = self._bbox_forward(x, rois)
        result = self.weighted_loss_and_target(self.bbox_head, bbox_results, rois, sampling_results, self.train_cfg)
        bbox_results.update(loss_bbox=result["loss_bbox"])
        return bbox_results
