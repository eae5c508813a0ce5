"""Equalized Focal Loss (Li et al., "Equalized Focal Loss for Dense Long-Tailed Object Detection", CVPR 2022).

A sigmoid focal loss whose focusing exponent and weight depend on the class: classes whose accumulated positive
gradient is small next to their negative gradient (rare classes) get a larger exponent, which down-weights their
easy negatives, and a matching weight, which keeps their hard positives' loss. The statistics are those of EQLv2
(:mod:`detbalance.losses.eqlv2`), gathered from the gradient of this loss.
"""

from __future__ import annotations

from functools import partial
from typing import Any, cast

import torch
from torch import Tensor

from ._base import (
    Batch,
    ClassificationLoss,
    Normalizer,
    Statistic,
    as_statistic,
    check_batch,
    check_number,
    class_stats,
    mean_divisor,
    reduce_rows,
)
from ._rowwise import (
    accumulate_gradient_ratio,
    check_alpha,
    collecting_view,
    focal_kernel,
    positive_count,
    row_loss,
    sigmoid_scores,
)

LAYOUT = "[R, K]"


def efl_focusing(pos_neg: Tensor, *, gamma: float = 2.0, scale: float = 8.0) -> tuple[Tensor, Tensor]:
    r"""Per-class ``(gamma_j[K], weight_j[K])`` from the gradient ratios :math:`g_j` = ``pos_neg[j]``.

    :math:`\gamma_j = \gamma_b + s\,(1 - \min(g_j, 1))` and :math:`w_j = \gamma_j / \gamma_b`: a class whose
    positive gradient matches its negative one (:math:`g_j \ge 1`) keeps the plain focal loss.
    """
    focusing = gamma + scale * (1.0 - pos_neg.clamp(min=0.0, max=1.0))
    return focusing, focusing / gamma


def _check_settings(gamma: float, scale: float) -> tuple[float, float]:
    return check_number(gamma, "gamma", low=0.0, low_open=True), check_number(scale, "scale", low=0.0)


def _loss(
    batch: Batch,
    *,
    pos_neg: Tensor,
    gamma: float,
    scale: float,
    alpha: Tensor | None,
    with_statistics: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """``(loss, statistics)`` of :func:`equalized_focal_loss` for a checked batch, ``[K]`` ratios and per-class
    ``alpha`` (or None); the ``[2, K]`` step statistics (None unless ``with_statistics``) are divided by what
    'mean' divides by."""
    focusing, factor = efl_focusing(pos_neg.to(batch.x), gamma=gamma, scale=scale)
    row_weight = batch.row_weight.detach() if with_statistics else None
    alpha = None if alpha is None else alpha.to(batch.x)
    kernel = partial(
        focal_kernel, labels=batch.classes, gamma=focusing, alpha=alpha, factor=factor, row_weight=row_weight
    )
    per_row, statistics = row_loss(batch.x, kernel)
    denominator = positive_count(batch)
    loss = reduce_rows(per_row, batch, denominator=denominator)
    if statistics is not None and batch.reduction == "mean":
        # the reference reads the gradient of the normalised loss: a step's statistics are divided by what 'mean'
        # divides by (the per-step number of positives, or the given normalizer), so a step with few positives
        # weighs more in the accumulated ratio; loss weights and gradient scaling stay out (constant factors)
        statistics = statistics / mean_divisor(batch, denominator)
    return loss, statistics


def _check_batch(
    logits: Tensor,
    labels: Tensor,
    *,
    sample_weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    normalizer: Normalizer | None,
) -> Batch:
    return check_batch(
        logits,
        labels,
        extra_columns=0,
        layout=LAYOUT,
        sample_weight=sample_weight,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
    )


def equalized_focal_loss(
    logits: Tensor,
    labels: Tensor,
    pos_neg: Statistic,
    *,
    gamma: float = 2.0,
    scale: float = 8.0,
    alpha: float | None = 0.25,
    sample_weight: Tensor | None = None,
    ignore_index: int = -1,
    reduction: str = "mean",
    normalizer: Normalizer | None = None,
) -> Tensor:
    r"""Sigmoid focal loss with a class-specific focusing exponent and weight.

    Li et al., "Equalized Focal Loss for Dense Long-Tailed Object Detection", CVPR 2022:

    .. math::

        \ell_i = s_i \sum_{j=0}^{K-1} -\alpha^t_{ij}\, \frac{\gamma_j}{\gamma_b}\,
        (1 - p^t_{ij})^{\gamma_j} \log p^t_{ij},\qquad \gamma_j = \gamma_b + s\,(1 - g_j)

    where :math:`g_j \in [0, 1]` (``pos_neg``, clamped to 1) is the accumulated positive/negative gradient ratio
    of class j (:class:`EqualizedFocalLoss` keeps and updates it), :math:`p^t`, :math:`\alpha^t` as in
    :func:`~detbalance.losses.focal.focal_loss`. With every :math:`g_j = 1` (or ``scale = 0``) it is the focal
    loss. 'mean' divides by the number of non-ignored foreground rows (at least 1) unless ``normalizer`` is given.

    Args:
        logits: ``[R, K]`` foreground logits.
        labels: ``[R]`` int64 in ``[0, K]`` (K = background) or ``ignore_index``.
        pos_neg: ``[K]`` gradient ratios :math:`g_j` (>= 0; values above 1 count as 1).
        gamma: :math:`\gamma_b`, the focusing exponent of the frequent classes, > 0.
        scale: :math:`s`, how much the exponent grows for rare classes, >= 0.
        alpha: the focal alpha in ``[0, 1]``, or None for none.
        sample_weight, ignore_index, reduction, normalizer: see :func:`weighted_cross_entropy`.

    Returns:
        ``[R]`` for 'none', else a scalar; float32 (float64 for float64 logits).

    Example:
        >>> import torch
        >>> logits = torch.randn(6, 3, requires_grad=True)
        >>> loss = equalized_focal_loss(logits, torch.tensor([0, 2, 3, 3, 3, 1]), torch.tensor([1.0, 0.5, 0.0]))
        >>> loss.backward()
    """
    batch = _check_batch(
        logits,
        labels,
        sample_weight=sample_weight,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
    )
    ratio = as_statistic(pos_neg, "pos_neg", length=batch.num_classes, like=batch.x)
    gamma, scale = _check_settings(gamma, scale)
    alphas = check_alpha(alpha, batch.num_classes, batch.x)
    return _loss(batch, pos_neg=ratio, gamma=gamma, scale=scale, alpha=alphas)[0]


@torch.no_grad()
def equalized_focal_gradient_statistics(
    logits: Tensor,
    labels: Tensor,
    pos_neg: Statistic,
    *,
    gamma: float = 2.0,
    scale: float = 8.0,
    alpha: float | None = 0.25,
    sample_weight: Tensor | None = None,
    ignore_index: int = -1,
) -> tuple[Tensor, Tensor]:
    r"""One step's ``(pos_grad[K], neg_grad[K])``: gradient magnitudes of the summed loss w.r.t. the logits.

    .. math::

        \mathrm{pos}^{grad}_j = \sum_i y_{ij} \Big|\frac{\partial \ell_i}{\partial x_{ij}}\Big|,\qquad
        \mathrm{neg}^{grad}_j = \sum_i (1 - y_{ij}) \Big|\frac{\partial \ell_i}{\partial x_{ij}}\Big|

    for :math:`\ell_i` of :func:`equalized_focal_loss` with ``reduction='sum'`` (sample weights included).
    :class:`EqualizedFocalLoss` accumulates these divided by each step's 'mean' normaliser (the number of positives
    or the given ``normalizer``), as the reference code reads the gradient of the normalised loss.
    """
    batch = _check_batch(
        logits, labels, sample_weight=sample_weight, ignore_index=ignore_index, reduction="sum", normalizer=None
    )
    ratio = as_statistic(pos_neg, "pos_neg", length=batch.num_classes, like=batch.x)
    gamma, scale = _check_settings(gamma, scale)
    alphas = check_alpha(alpha, batch.num_classes, batch.x)
    statistics = _loss(batch, pos_neg=ratio, gamma=gamma, scale=scale, alpha=alphas, with_statistics=True)[1]
    return cast(Tensor, statistics)[0], cast(Tensor, statistics)[1]


class EqualizedFocalLoss(ClassificationLoss):
    r"""Module form of :func:`equalized_focal_loss` that owns the gradient statistics; test-time scores are sigmoid.

    Buffers (in ``state_dict``): ``pos_grad[K]``, ``neg_grad[K]`` (accumulated
    :func:`equalized_focal_gradient_statistics`, each step's divided by the normaliser its 'mean' divides by, as
    the reference reads the gradient of the normalised loss; a 'sum' step's are not divided) and ``pos_neg[K] = min(pos_grad / (neg_grad + 1e-10), 1)``,
    initially 1 (every class starts with the plain focal loss, as the reference code).

    As :class:`~detbalance.losses.EQLv2Loss`: a step's statistics are computed during ``forward`` and added when
    the gradient reaches the logits (summed over ranks when ``torch.distributed`` is initialized); a forward pass
    that is not back-propagated leaves the state unchanged, and so does a step without any non-ignored row on any
    rank.

    Args:
        num_classes: K (the classifier outputs K logits).
        gamma, scale, alpha: see :func:`equalized_focal_loss` (paper defaults for LVIS: 2, 8, 0.25).
        reduction, ignore_index: defaults for :meth:`forward`.

    Example:
        >>> import torch
        >>> loss_fn = EqualizedFocalLoss(3)
        >>> logits = torch.randn(5, 3, requires_grad=True)
        >>> loss_fn(logits, torch.tensor([0, 2, 3, 3, 1])).backward()
        >>> bool((loss_fn.neg_grad > 0).all())
        True
    """

    state_buffers = ("pos_grad", "neg_grad", "pos_neg")
    pos_grad: Tensor
    neg_grad: Tensor
    pos_neg: Tensor

    def __init__(
        self,
        num_classes: int,
        *,
        gamma: float = 2.0,
        scale: float = 8.0,
        alpha: float | None = 0.25,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> None:
        super().__init__(num_classes, reduction=reduction, ignore_index=ignore_index)
        self.gamma, self.scale = _check_settings(gamma, scale)
        self.alpha = None if alpha is None else check_number(alpha, "alpha", low=0.0, high=1.0)
        self.register_buffer("pos_grad", torch.zeros(num_classes))
        self.register_buffer("neg_grad", torch.zeros(num_classes))
        self.register_buffer("pos_neg", torch.ones(num_classes))

    @classmethod
    def from_stats(
        cls,
        num_classes: int,
        stats: Any,
        *,
        gamma: float = 2.0,
        scale: float = 8.0,
        alpha: float | None = 0.25,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> EqualizedFocalLoss:
        """Build for the classes of ``stats`` (checked against K); the loss learns its statistics while training."""
        class_stats(stats, num_classes)
        return cls(num_classes, gamma=gamma, scale=scale, alpha=alpha, reduction=reduction, ignore_index=ignore_index)

    def forward(
        self,
        logits: Tensor,
        labels: Tensor,
        sample_weight: Tensor | None = None,
        normalizer: Normalizer | None = None,
        reduction_override: str | None = None,
    ) -> Tensor:
        self._check_columns(logits)
        logits, collect = collecting_view(logits)
        batch = _check_batch(
            logits,
            labels,
            sample_weight=sample_weight,
            ignore_index=self.ignore_index,
            reduction=self._reduction(reduction_override),
            normalizer=normalizer,
        )
        alpha = None if self.alpha is None else batch.x.new_full((self.num_classes,), self.alpha)
        loss, statistics = _loss(
            batch, pos_neg=self.pos_neg, gamma=self.gamma, scale=self.scale, alpha=alpha, with_statistics=collect
        )
        if statistics is not None:
            logits.register_hook(partial(self._collect, statistics))
        return loss

    def _collect(self, step: Tensor, grad: Tensor) -> None:
        accumulate_gradient_ratio(
            step, pos_grad=self.pos_grad, neg_grad=self.neg_grad, pos_neg=self.pos_neg, max_ratio=1.0
        )

    def predict_scores(self, logits: Tensor) -> Tensor:
        return sigmoid_scores(logits)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gamma={self.gamma}, scale={self.scale}, alpha={self.alpha}"


__all__ = ["efl_focusing", "equalized_focal_loss", "equalized_focal_gradient_statistics", "EqualizedFocalLoss"]
