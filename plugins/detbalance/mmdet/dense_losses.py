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
"""
from __future__ import annotations

from typing import Optional

from mmdet.registry import MODELS
from torch import Tensor

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
                f"sigmoid channels), got {use_sigmoid!r}")
        super().__init__(core_loss, loss_weight)
        self.use_sigmoid = True

    def get_cls_channels(self, num_classes: int) -> int:
        """Asked by box (RoI) heads only: refused, naming the loss and the head."""
        core.check_box_head_loss(type(self.core).__name__, "BBoxHead", f"loss_cls {type(self).__name__} (core loss)")
        return super().get_cls_channels(num_classes)  # pragma: no cover - check_box_head_loss raised

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """The K per-class sigmoid scores [R, K] a dense head ranks (no background column)."""
        return self.core.predict_scores(cls_score)[:, :self.num_classes]


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

    def __init__(self, num_classes: int, *, use_sigmoid: bool = True, gamma: float = 2.0, scale: float = 8.0,
                 alpha: Optional[float] = 0.25, reduction: str = "mean", loss_weight: float = 1.0):
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

    def __init__(self, num_classes: int, class_weight: Optional[StatsArg] = None, *, alpha: float = 0.25,
                 gamma: float = 2.0, use_sigmoid: bool = True, reduction: str = "mean", loss_weight: float = 1.0):
        if is_weights_path(class_weight):
            module = core.FocalLoss.from_stats(num_classes, self.load_weights_file(class_weight, num_classes),
                                               alpha=alpha, gamma=gamma, reduction=reduction)
        else:
            alphas = alpha
            if class_weight is not None:
                check_length(type(self).__name__, "class_weight", class_weight, num_classes, num_classes)
                alphas = core.alpha_from_weights(class_weight, alpha).tolist()
            module = core.FocalLoss(num_classes, alphas, gamma=gamma, reduction=reduction)
        super().__init__(module, loss_weight, use_sigmoid)
