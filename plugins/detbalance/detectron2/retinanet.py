"""``BalancedRetinaNet``: detectron2's RetinaNet whose classification loss is a detbalance sigmoid-family loss.

Select it with ``MODEL.META_ARCHITECTURE: "BalancedRetinaNet"`` (registered in ``META_ARCH_REGISTRY`` when
``detbalance.detectron2`` is imported) and the loss with ``DETBALANCE.LOSS``: a loss of
``detbalance.losses.DENSE_LOSSES`` (``EqualizedFocalLoss``, ``FocalLoss``) or a K-column sigmoid loss of
``detbalance.losses.LOSSES`` (:func:`detbalance.losses.dense_head_losses`). Any other loss (softmax
cross-entropy, Seesaw) fails when the model is built, naming the loss and the head.

Everything else is detectron2's RetinaNet: head (its prior-probability bias initialisation included), anchors,
matching, box regression, sigmoid scores at test time. The classification loss is summed over the non-ignored
anchors and divided by detectron2's normaliser, a moving average of the number of foreground anchors, exactly
where detectron2 divides its focal loss (``MODEL.RETINANET.FOCAL_LOSS_ALPHA``/``GAMMA`` are not read: the loss's
own hyper-parameters are in the ``DETBALANCE`` node). Per-box annotation weights (``gt_weights``) are applied by
the box heads only; a batch carrying weights other than 1 raises instead of being trained unweighted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from detectron2.config import configurable
from detectron2.layers import cat
from detectron2.modeling import META_ARCH_REGISTRY, RetinaNet
from detectron2.modeling.box_regression import _dense_box_regression_loss
from detectron2.utils.events import get_event_storage
from torch import Tensor, nn

from ..losses import DENSE_LOSSES, LOSSES, check_dense_head_loss, dense_head_losses
from ..losses import dense_head_checks as checks
from .cascade import BalancedCascadeROIHeads
from .config import DENSE_HYPER_PARAMETER_KEYS, HYPER_PARAMETER_KEYS
from .loss_builder import build_classification_loss, build_loss_from_source
from .roi_heads import BalancedROIHeads

__all__ = ["BalancedRetinaNet", "build_dense_classification_loss", "dense_loss_cls", "refuse_box_weights"]

HEAD = "BalancedRetinaNet"
#: Where its class count is set.
CLASSES_KEY = "MODEL.RETINANET.NUM_CLASSES"
#: The heads that apply per-box weights.
BOX_HEADS = (BalancedROIHeads.__name__, BalancedCascadeROIHeads.__name__)


def refuse_box_weights(gt_instances, head: str) -> None:
    """Raise ``ValueError`` naming ``head`` when a training image's boxes carry per-box weights (``gt_weights``,
    :mod:`detbalance.detectron2.mapper`) other than 1: dense heads do not apply them, and training as if every
    weight were 1 would ignore them silently (:func:`detbalance.losses.dense_head_checks.refuse_box_weights`)."""
    weights = (instances.gt_weights if instances.has("gt_weights") else None for instances in gt_instances)
    checks.refuse_box_weights(weights, head, "gt_weights", BOX_HEADS)


def dense_loss_cls(model, pred_logits, gt_labels, initial_normalizer: float) -> tuple[Tensor, float, Tensor]:
    """Foreground mask ``[N, R]``, normaliser and ``loss_cls`` of a dense detectron2 model (RetinaNet, FCOS) whose
    classification loss is ``model.cls_loss``: summed over the non-ignored anchors and divided by detectron2's
    moving count of foreground anchors (which starts at ``initial_normalizer``), exactly where detectron2
    divides its focal loss.

    Args:
        pred_logits: per level ``[N, Hi*Wi*A, K]``.
        gt_labels: per image ``[R]`` in ``[-1, K]`` (-1 ignored, K background).
    """
    num_images = len(gt_labels)
    labels = torch.stack(gt_labels)  # [N, R]
    foreground = (labels >= 0) & (labels != model.num_classes)
    num_foreground = int(foreground.sum().item())
    get_event_storage().put_scalar("num_pos_anchors", num_foreground / num_images)
    normalizer = model._ema_update("loss_normalizer", max(num_foreground, 1), initial_normalizer)
    logits = cat(pred_logits, dim=1).reshape(-1, model.num_classes)
    return foreground, normalizer, model.cls_loss(logits, labels.reshape(-1), normalizer=normalizer)


def build_dense_classification_loss(
    name: str,
    num_classes: int,
    *,
    weights_file: str | None = None,
    dataset_names: Sequence[str] = (),
    hyper_params: Mapping[str, float] | None = None,
    head: str = HEAD,
    num_classes_key: str = "num_classes",
) -> nn.Module:
    """The classification loss of a dense head: a loss of :func:`detbalance.losses.dense_head_losses`.

    ``EqualizedFocalLoss`` learns its statistics while training (a weights file, when given, only checks K);
    ``FocalLoss`` takes per-class alphas from a weights file's class weights when one is given, else one alpha;
    the sigmoid losses of ``LOSSES`` are built as for a box head
    (:func:`~detbalance.detectron2.loss_builder.build_classification_loss`). A weights file that is not here
    builds the loss for inference only, as for a box head.

    Args:
        num_classes_key: the setting of the head's class count, named when a weights file describes another
            number of classes (``BalancedRetinaNet``: ``MODEL.RETINANET.NUM_CLASSES``; LazyConfig: the argument).

    Raises:
        ValueError: ``name`` is no loss, or a loss that cannot serve a dense head (message names it and ``head``).
    """
    hyper_params = dict(hyper_params or {})
    allowed = dense_head_losses()
    if name not in allowed:
        if name in LOSSES:
            check_dense_head_loss(LOSSES[name], head)
        raise ValueError(f"DETBALANCE.LOSS is {name!r}, expected one of {sorted(allowed)} for {head}")
    if name not in DENSE_LOSSES:
        return build_classification_loss(
            name,
            num_classes,
            weights_file=weights_file,
            dataset_names=dataset_names,
            hyper_params=hyper_params,
            num_classes_key=num_classes_key,
        )
    if not weights_file:
        return DENSE_LOSSES[name](num_classes, **hyper_params)
    return build_loss_from_source(
        DENSE_LOSSES[name], num_classes, hyper_params, weights_file=weights_file, num_classes_key=num_classes_key
    )


@META_ARCH_REGISTRY.register()
class BalancedRetinaNet(RetinaNet):
    """RetinaNet whose ``loss_cls`` is ``cls_loss(logits[R, K], labels[R], normalizer=foreground anchors)``.

    Args:
        cls_loss: a loss of :func:`detbalance.losses.dense_head_losses` built for ``num_classes``.
        others: as detectron2's ``RetinaNet``, without ``focal_loss_alpha``/``focal_loss_gamma``.
    """

    @configurable
    def __init__(
        self,
        *,
        cls_loss: nn.Module,
        backbone,
        head,
        head_in_features,
        anchor_generator,
        box2box_transform,
        anchor_matcher,
        num_classes,
        smooth_l1_beta=0.0,
        box_reg_loss_type="smooth_l1",
        test_score_thresh=0.05,
        test_topk_candidates=1000,
        test_nms_thresh=0.5,
        max_detections_per_image=100,
        pixel_mean,
        pixel_std,
        vis_period=0,
        input_format="BGR",
    ):
        checks.check_dense_head(cls_loss, HEAD, num_classes, CLASSES_KEY)
        super().__init__(
            backbone=backbone,
            head=head,
            head_in_features=head_in_features,
            anchor_generator=anchor_generator,
            box2box_transform=box2box_transform,
            anchor_matcher=anchor_matcher,
            num_classes=num_classes,
            smooth_l1_beta=smooth_l1_beta,
            box_reg_loss_type=box_reg_loss_type,
            test_score_thresh=test_score_thresh,
            test_topk_candidates=test_topk_candidates,
            test_nms_thresh=test_nms_thresh,
            max_detections_per_image=max_detections_per_image,
            pixel_mean=pixel_mean,
            pixel_std=pixel_std,
            vis_period=vis_period,
            input_format=input_format,
        )
        self.cls_loss = cls_loss

    @classmethod
    def from_config(cls, cfg):
        if "DETBALANCE" not in cfg:
            raise ValueError(
                "config has no DETBALANCE node, expected one: call detbalance.detectron2.add_detbalance_config(cfg) "
                "(or load it with detbalance.detectron2.get_config)"
            )
        node = cfg.DETBALANCE
        if node.get("CLS_PRIOR_PROB", None) is not None:
            raise ValueError(
                f"DETBALANCE.CLS_PRIOR_PROB is {node.CLS_PRIOR_PROB}, expected None with {HEAD}: its "
                "head initialises the class bias from MODEL.RETINANET.PRIOR_PROB"
            )
        ret = super().from_config(cfg)
        del ret["focal_loss_alpha"], ret["focal_loss_gamma"]  # replaced by the loss's own hyper-parameters
        keys = {**HYPER_PARAMETER_KEYS, **DENSE_HYPER_PARAMETER_KEYS}
        hyper_params = {}
        if node.LOSS in keys:
            sub_node, names = keys[node.LOSS]
            hyper_params = {argument: node[sub_node][key] for key, argument in names.items()}
        ret["cls_loss"] = build_dense_classification_loss(
            node.LOSS,
            cfg.MODEL.RETINANET.NUM_CLASSES,
            weights_file=node.WEIGHTS_FILE or None,
            dataset_names=tuple(cfg.DATASETS.TRAIN),
            hyper_params=hyper_params,
            num_classes_key=CLASSES_KEY,
        )
        return ret

    def forward_training(self, images, features, predictions, gt_instances):
        refuse_box_weights(gt_instances, HEAD)
        return super().forward_training(images, features, predictions, gt_instances)

    def losses(self, anchors, pred_logits, gt_labels, pred_anchor_deltas, gt_boxes):
        """
        Args:
            anchors: per level ``Boxes``; pred_logits: per level ``[N, Hi*Wi*A, K]``; gt_labels: per image
                ``[R]`` in ``[-1, K]`` (-1 ignored, K background); pred_anchor_deltas, gt_boxes: as detectron2's.

        Returns:
            dict with ``loss_cls`` and ``loss_box_reg``, both divided by the foreground-anchor normaliser.
        """
        foreground, normalizer, loss_cls = dense_loss_cls(self, pred_logits, gt_labels, 100)  # detectron2's own
        loss_box_reg = _dense_box_regression_loss(
            anchors,
            self.box2box_transform,
            pred_anchor_deltas,
            gt_boxes,
            foreground,
            box_reg_loss_type=self.box_reg_loss_type,
            smooth_l1_beta=self.smooth_l1_beta,
        )
        return {"loss_cls": loss_cls, "loss_box_reg": loss_box_reg / normalizer}
