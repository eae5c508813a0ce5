"""``BalancedFCOS``: detectron2's FCOS whose classification loss is a detbalance dense-head loss.

detectron2 builds FCOS from LazyConfig only (``model_zoo`` ``COCO-Detection/fcos_R_50_FPN_1x.py``); so does this
class: set ``model._target_ = BalancedFCOS`` and ``model.cls_loss`` (e.g. ``L(build_dense_classification_loss)(
name="EqualizedFocalLoss", num_classes=...)``), see ``configs/detectron2/heads/lazy_fcos_R_50_FPN_1x_lvis_efl.py``.
The loss must be one of :func:`detbalance.losses.dense_head_losses` (K sigmoid logits per point); any other fails
when the model is built, naming the loss and the head. Everything else is detectron2's FCOS: point labels, GIoU
box loss, centerness, test-time scoring; the classification loss is divided by detectron2's moving count of
foreground points, exactly where FCOS divides its focal loss. Per-box annotation weights (``gt_weights``) are
applied by the box heads only; a batch carrying weights other than 1 raises instead of being trained unweighted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from detectron2.modeling.box_regression import _dense_box_regression_loss
from detectron2.modeling.meta_arch.fcos import FCOS
from detectron2.structures import Boxes
from detectron2.utils.events import get_event_storage
from torch import nn

from ..losses import check_dense_head_loss
from .retinanet import refuse_box_weights

__all__ = ["BalancedFCOS", "group_norm_32"]


def group_norm_32(channels: int) -> nn.GroupNorm:
    """The FCOS head's normalisation, ``GroupNorm(32, channels)`` (detectron2's ``norm="GN"``).

    Give it as ``model.head.norm``: detectron2 v0.6's ``RetinaNetHead`` probes a string norm with a single
    channel, which ``GroupNorm(32, 1)`` refuses on current torch (detectron2 main probes with 32); a callable is
    not probed that way. For that probe alone it builds ``GroupNorm(1, 1)``.
    """
    return nn.GroupNorm(32 if channels >= 32 else 1, channels)


class BalancedFCOS(FCOS):
    """FCOS whose ``loss_fcos_cls`` is ``cls_loss(logits[R, K], labels[R], normalizer=foreground points)``.

    Args:
        cls_loss: a loss of :func:`detbalance.losses.dense_head_losses` built for ``num_classes``.
        others: as detectron2's ``FCOS``, without ``focal_loss_alpha``/``focal_loss_gamma``.
    """

    def __init__(
        self,
        *,
        cls_loss: nn.Module,
        backbone,
        head,
        head_in_features: list[str] | None = None,
        box2box_transform=None,
        num_classes,
        center_sampling_radius: float = 1.5,
        test_score_thresh=0.2,
        test_topk_candidates=1000,
        test_nms_thresh=0.6,
        max_detections_per_image=100,
        pixel_mean,
        pixel_std,
    ):
        check_dense_head_loss(cls_loss, type(self).__name__)
        if cls_loss.num_classes != num_classes:
            raise ValueError(
                f"cls_loss {type(cls_loss).__name__} was built for num_classes={cls_loss.num_classes}, "
                f"expected {num_classes} (the model's num_classes)"
            )
        super().__init__(
            backbone=backbone,
            head=head,
            head_in_features=head_in_features,
            box2box_transform=box2box_transform,
            num_classes=num_classes,
            center_sampling_radius=center_sampling_radius,
            test_score_thresh=test_score_thresh,
            test_topk_candidates=test_topk_candidates,
            test_nms_thresh=test_nms_thresh,
            max_detections_per_image=max_detections_per_image,
            pixel_mean=pixel_mean,
            pixel_std=pixel_std,
        )
        self.cls_loss = cls_loss

    def forward_training(self, images, features, predictions, gt_instances):
        refuse_box_weights(gt_instances, type(self).__name__)
        return super().forward_training(images, features, predictions, gt_instances)

    def losses(self, anchors, pred_logits, gt_labels, pred_anchor_deltas, gt_boxes, pred_centerness):
        """FCOS's three losses; classification by ``cls_loss``. ``gt_boxes`` are per image ``Boxes`` (v0.6) or
        tensors (later detectron2): both are accepted."""
        num_images = len(gt_labels)
        gt_labels = torch.stack(gt_labels)  # [N, R], K = background
        foreground = (gt_labels >= 0) & (gt_labels != self.num_classes)
        num_foreground = int(foreground.sum().item())
        get_event_storage().put_scalar("num_pos_anchors", num_foreground / num_images)
        normalizer = self._ema_update("loss_normalizer", max(num_foreground, 1), 300)  # FCOS's own

        logits = torch.cat(pred_logits, dim=1).reshape(-1, self.num_classes)
        loss_cls = self.cls_loss(logits, gt_labels.reshape(-1), normalizer=normalizer)
        box_tensors = [b.tensor if isinstance(b, Boxes) else b for b in gt_boxes]
        loss_box_reg = _dense_box_regression_loss(
            anchors, self.box2box_transform, pred_anchor_deltas, box_tensors, foreground, box_reg_loss_type="giou"
        )
        ctrness_targets = self.compute_ctrness_targets(anchors, gt_boxes)  # [N, R]
        pred_centerness = torch.cat(pred_centerness, dim=1).squeeze(dim=2)  # [N, R]
        ctrness_loss = F.binary_cross_entropy_with_logits(
            pred_centerness[foreground], ctrness_targets[foreground], reduction="sum"
        )
        return {
            "loss_fcos_cls": loss_cls,
            "loss_fcos_loc": loss_box_reg / normalizer,
            "loss_fcos_ctr": ctrness_loss / normalizer,
        }
