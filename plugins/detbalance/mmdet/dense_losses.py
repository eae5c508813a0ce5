"""Losses of ``detbalance.losses.DENSE_LOSSES`` registered for MMDetection's dense heads (RetinaNet, FCOS, ATSS).

Use one as the ``loss_cls`` of a dense head, best a DB dense head (:mod:`.dense_heads`)::

    custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
    model = dict(bbox_head=dict(type='DBRetinaHead', loss_cls=dict(
        _delete_=True, type='DBEqualizedFocalLoss', num_classes=1203, use_sigmoid=True,
        gamma=2.0, scale=8.0, alpha=0.25, loss_weight=1.0)))

=========================  ==============================  ============================================
registered name            core loss                       statistics argument
=========================  ==============================  ============================================
``DBEqualizedFocalLoss``   ``EqualizedFocalLoss``          none (gradient statistics are running state)
``DBFocalLoss``            ``FocalLoss``                   ``class_weight`` (K, or a weights file): per-class
                                                           alphas ``alpha_from_weights(class_weight, alpha)``
=========================  ==============================  ============================================

Arguments are generated from :data:`detbalance.losses.LOSS_TABLE` as for the box-head losses
(:class:`~detbalance.mmdet._loss_base.DBLossBase`): the core loss's (same names and defaults), the statistics
argument, and ``use_sigmoid``, ``loss_weight``. MMDetection's dense heads size their classifier from the config's
``use_sigmoid`` (K sigmoid channels when True) and score detections with the loss's ``get_activation``
(``custom_cls_channels``), which here gives the K sigmoid scores. ``use_sigmoid`` must therefore be True; anything
else fails when the model is built. A box (RoI) head asks its loss for the classifier width through
``get_cls_channels``: these losses refuse there, naming the loss and the head, as ``DETBALANCE.LOSS`` does in
Detectron2's ``BalancedROIHeads``. The head passes ``label_weights`` (0 for ignored anchors) and ``avg_factor``
(its number of foreground anchors or points), which the core loss takes as ``sample_weight`` and ``normalizer``.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmdet.registry import MODELS
from torch import Tensor, nn

from detbalance.losses import LOSS_TABLE, FocalLoss, alpha_from_weights, check_box_head_loss

from ._loss_base import DBLossBase

__all__ = ["DBEqualizedFocalLoss", "DBFocalLoss", "DBDenseLossBase"]


class DBDenseLossBase(DBLossBase):
    """:class:`DBLossBase` for dense heads: ``use_sigmoid`` must be True, ``get_activation`` gives the K sigmoid
    scores a dense head ranks, and box heads are refused (``get_cls_channels``)."""

    def _setup(self, core: nn.Module, *, use_sigmoid: bool = True, loss_weight: float = 1.0) -> None:
        """Hold ``core``.

        Args:
            use_sigmoid: must be True (the dense head reads it from the config to give its classifier K sigmoid
                channels).
            loss_weight: multiplier of the returned loss, as in every MMDetection loss.
        """
        if use_sigmoid is not True:
            raise ValueError(
                f"{type(self).__name__}: use_sigmoid must be True (dense heads read it to give the classifier K "
                f"sigmoid channels), got {use_sigmoid!r}"
            )
        super()._setup(core, loss_weight=loss_weight)
        self.use_sigmoid = True

    def get_cls_channels(self, num_classes: int) -> int:
        """Asked by box (RoI) heads only: refused, naming the loss and the head."""
        check_box_head_loss(type(self.core).__name__, "BBoxHead", f"loss_cls {type(self).__name__} (core loss)")
        return super().get_cls_channels(num_classes)  # pragma: no cover - check_box_head_loss raised

    def init_weights(self) -> None:
        """Nothing: a dense head initialises its own classifier (MMDetection's ``bias_prob``)."""

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """The K per-class sigmoid scores [R, K] a dense head ranks (no background column)."""
        return self.core.predict_scores(cls_score)[:, : self.num_classes]


@MODELS.register_module()
class DBEqualizedFocalLoss(DBDenseLossBase):
    """Equalized Focal Loss (``detbalance.losses.EqualizedFocalLoss``; paper: gamma 2, scale 8, alpha 0.25);
    gradient statistics are running state."""

    spec = LOSS_TABLE["EqualizedFocalLoss"]


@MODELS.register_module()
class DBFocalLoss(DBDenseLossBase):
    """Sigmoid focal loss with per-class alphas (``detbalance.losses.FocalLoss``).

    ``class_weight``: None (one ``alpha`` for every class, MMDetection's ``FocalLoss``), K class weights, or the
    path of a weights file (its class weights); class j then gets ``alpha_from_weights(class_weight, alpha)[j]``.
    """

    spec = LOSS_TABLE["FocalLoss"]

    @classmethod
    def _core_from_values(cls, num_classes: int, values: Sequence[float] | None, settings: dict) -> nn.Module:
        """``FocalLoss`` with the base ``alpha`` for every class, or the per-class alphas of ``values``."""
        alpha = settings.pop("alpha")
        alphas = alpha if values is None else alpha_from_weights(values, alpha).tolist()
        return FocalLoss(num_classes, alphas, **settings)
