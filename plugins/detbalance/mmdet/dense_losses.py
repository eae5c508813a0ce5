"""Losses of ``detbalance.losses.DENSE_LOSSES`` registered for MMDetection's dense heads (RetinaNet, FCOS, ATSS).

Use one as the ``loss_cls`` of ``RetinaHead``, ``FCOSHead`` or ``ATSSHead``::

    custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
    model = dict(bbox_head=dict(loss_cls=dict(
        _delete_=True, type='DBEqualizedFocalLoss', num_classes=1203, use_sigmoid=True,
        gamma=2.0, scale=8.0, alpha=0.25, loss_weight=1.0)))

=========================  ==============================  ============================================
registered name            core loss                       statistics argument
=========================  ==============================  ============================================
``DBEqualizedFocalLoss``   ``EqualizedFocalLoss``          none (gradient statistics are running state)
``DBFocalLoss``            ``FocalLoss``                   ``class_weight`` (K, or a weights file): per-class
                                                           alphas ``alpha_from_weights(class_weight, alpha)``
=========================  ==============================  ============================================

MMDetection's dense heads size their classifier from the config's ``use_sigmoid`` (K sigmoid channels when
True) and score detections with the loss's ``get_activation`` (``custom_cls_channels``), which here gives the K
sigmoid scores. ``use_sigmoid`` must therefore be True; anything else fails when the model is built. A box
(RoI) head asks its loss for the classifier width through ``get_cls_channels``: these losses refuse there,
naming the loss and the head, as ``DETBALANCE.LOSS`` does in Detectron2's ``BalancedROIHeads``. The head passes
``label_weights`` (0 for ignored anchors) and ``avg_factor`` (its number of foreground anchors or points), which
the core loss takes as ``sample_weight`` and ``normalizer``.

The other way round, MMDetection's dense heads never ask their loss anything when they are built, so this
module watches them (one process-wide torch module-registration hook, as :mod:`._loss_base`): when a dense head
(``BaseDenseHead``: RetinaNet, FCOS, ATSS, ...) registers a detbalance ``loss_cls`` that cannot serve it (softmax
cross-entropy, EQLv2, Seesaw: not K sigmoid logits per anchor, :func:`detbalance.losses.check_dense_head_loss`),
building the model fails, naming the loss and the head; a K-column loss of the box-head table (class-balanced
focal, EQL, Federated), which takes no ``use_sigmoid``, gets a head of K sigmoid channels and is asked for K class
scores (``serves_dense_head``). And dense heads apply no per-box annotation weights
(:mod:`.box_weights_data`): when a single-stage detector registers its dense ``bbox_head``, a forward pre-hook
on its ``data_preprocessor`` makes a training batch whose boxes carry weights other than 1 raise, naming the
head, instead of training it as if every weight were 1.
"""

from __future__ import annotations

from functools import partial

from mmdet.models.dense_heads.base_dense_head import BaseDenseHead
from mmdet.registry import MODELS
from torch import Tensor, nn
from torch.nn.modules.module import register_module_module_registration_hook

from detbalance import losses as core

from ._loss_base import MMDetLossAdapter, StatsArg, check_length, is_weights_path

__all__ = ["DBEqualizedFocalLoss", "DBFocalLoss", "MMDetDenseLossAdapter"]


class MMDetDenseLossAdapter(MMDetLossAdapter):
    """:class:`MMDetLossAdapter` for dense heads: ``use_sigmoid`` must be True, ``get_activation`` gives the K
    sigmoid scores a dense head ranks, and box heads are refused (``get_cls_channels``)."""

    def __init__(self, core_loss, loss_weight: float, use_sigmoid: bool):
        if use_sigmoid is not True:
            raise ValueError(
                f"{type(self).__name__}: use_sigmoid must be True (dense heads read it to give the classifier K "
                f"sigmoid channels), got {use_sigmoid!r}"
            )
        super().__init__(core_loss, loss_weight)
        self.use_sigmoid = True

    def get_cls_channels(self, num_classes: int) -> int:
        """Asked by box (RoI) heads only: refused, naming the loss and the head."""
        core.check_box_head_loss(type(self.core).__name__, "BBoxHead", f"loss_cls {type(self).__name__} (core loss)")
        return super().get_cls_channels(num_classes)  # pragma: no cover - check_box_head_loss raised

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """The K per-class sigmoid scores [R, K] a dense head ranks (no background column)."""
        return self.core.predict_scores(cls_score)[:, : self.num_classes]


@MODELS.register_module()
class DBEqualizedFocalLoss(MMDetDenseLossAdapter):
    """Equalized Focal Loss (``detbalance.losses.EqualizedFocalLoss``); gradient statistics are running state.

    Args:
        num_classes: K, the dense head's ``num_classes``.
        use_sigmoid: must be True (the dense head reads it from the config).
        gamma, scale, alpha: the core loss's hyper-parameters (paper: 2, 8, 0.25).
        reduction, loss_weight: as in every MMDetection loss.
    """

    stats_arg = None

    def __init__(
        self,
        num_classes: int,
        *,
        use_sigmoid: bool = True,
        gamma: float = 2.0,
        scale: float = 8.0,
        alpha: float | None = 0.25,
        reduction: str = "mean",
        loss_weight: float = 1.0,
    ):
        module = core.EqualizedFocalLoss(num_classes, gamma=gamma, scale=scale, alpha=alpha, reduction=reduction)
        super().__init__(module, loss_weight, use_sigmoid)


@MODELS.register_module()
class DBFocalLoss(MMDetDenseLossAdapter):
    """Sigmoid focal loss with per-class alphas (``detbalance.losses.FocalLoss``).

    Args:
        num_classes: K, the dense head's ``num_classes``.
        class_weight: None (one ``alpha`` for every class, MMDetection's ``FocalLoss``), K class weights, or the
            path of a weights file (its class weights); class j then gets
            ``alpha_from_weights(class_weight, alpha)[j]``.
        alpha: the base alpha in ``[0, 1]``.
        gamma: focusing exponent.
        use_sigmoid: must be True (the dense head reads it from the config).
        reduction, loss_weight: as in every MMDetection loss.
    """

    stats_arg = "class_weight"

    def __init__(
        self,
        num_classes: int,
        class_weight: StatsArg | None = None,
        *,
        alpha: float = 0.25,
        gamma: float = 2.0,
        use_sigmoid: bool = True,
        reduction: str = "mean",
        loss_weight: float = 1.0,
    ):
        if is_weights_path(class_weight):
            module = core.FocalLoss.from_stats(
                num_classes,
                self.load_weights_file(class_weight, num_classes),
                alpha=alpha,
                gamma=gamma,
                reduction=reduction,
            )
        else:
            alphas = alpha
            if class_weight is not None:
                check_length(type(self).__name__, "class_weight", class_weight, num_classes, num_classes)
                alphas = core.alpha_from_weights(class_weight, alpha).tolist()
            module = core.FocalLoss(num_classes, alphas, gamma=gamma, reduction=reduction)
        super().__init__(module, loss_weight, use_sigmoid)


def _refuse_box_weights(head: str, module: nn.Module, args: tuple, kwargs: dict) -> None:
    """Forward pre-hook of a single-stage detector's ``data_preprocessor``: a training batch whose boxes carry
    per-box weights (``gt_instances.weights``, :mod:`detbalance.mmdet.box_weights_data`) other than 1 raises,
    naming the dense head, instead of being trained unweighted."""
    data = args[0] if args else kwargs.get("data")
    training = args[1] if len(args) > 1 else kwargs.get("training", False)
    if not training or not isinstance(data, dict):
        return
    for sample in data.get("data_samples") or ():
        gt = getattr(sample, "gt_instances", None)
        if gt is not None and "weights" in gt and bool((gt.weights != 1).any()):
            raise ValueError(
                f"the dense head {head} got per-box weights (gt_instances.weights) other than 1, expected none: "
                f"dense heads train every anchor of a box alike and do not apply per-box weights; only the box "
                f"heads (DBStandardRoIHead, DBCascadeRoIHead) do. Use DBPackDetInputs only with those, or give "
                f"every box weight 1"
            )


def _check_head(parent: nn.Module, name: str, module: nn.Module) -> None:
    """Module-registration hook (process-wide, as the one of :mod:`._loss_base`): when a dense head registers a
    detbalance ``loss_cls``, refuse a loss that cannot serve it (softmax cross-entropy, EQLv2's objectness column,
    Seesaw's two extra columns), naming the loss and the head, and give the head K sigmoid channels for the
    others (the K-column box losses take no ``use_sigmoid``); when a single-stage detector registers its dense
    ``bbox_head``, watch its training batches for per-box weights (:func:`_refuse_box_weights`)."""
    if name == "loss_cls" and isinstance(parent, BaseDenseHead) and isinstance(module, MMDetLossAdapter):
        core.check_dense_head_loss(module.core, f"{type(parent).__name__} (loss_cls {type(module).__name__})")
        # K sigmoid channels, whatever the config's use_sigmoid (the head builds its layers after its loss)
        parent.use_sigmoid_cls, parent.cls_out_channels = True, parent.num_classes
        module.serves_dense_head = True
    elif (
        name == "bbox_head"
        and isinstance(module, BaseDenseHead)
        and isinstance(getattr(parent, "data_preprocessor", None), nn.Module)
    ):
        parent.data_preprocessor.register_forward_pre_hook(
            partial(_refuse_box_weights, type(module).__name__), with_kwargs=True
        )


register_module_module_registration_hook(_check_head)
