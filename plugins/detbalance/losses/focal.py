"""Sigmoid focal loss with a per-class alpha (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017),
the classification loss of one-stage detectors (RetinaNet, FCOS, ATSS); its kernel
(:func:`~detbalance.losses._rowwise.focal_kernel`) computes the gradient in closed form during the forward pass,
so that a dense head's ``[anchors, K]`` logits cost one more ``[anchors, K]`` tensor, not the intermediates of
autograd.

Dense heads score every anchor (or point) of every feature level: ``R`` is then the number of anchors, most of
them background, and 'mean' divides by the number of foreground rows (at least 1), the normalisation of
RetinaNet; detectors pass their own count as ``normalizer`` (detectron2's moving average, MMDetection's
``avg_factor``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

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
    reduce_rows,
)
from ._rowwise import check_alpha, focal_kernel, positive_count, row_loss, sigmoid_scores

LAYOUT = "[R, K]"
Alpha = float | Statistic | None


def alpha_from_weights(weights: Statistic, alpha: float = 0.25) -> Tensor:
    r"""Per-class alpha whose odds are the base odds scaled by the class weight:
    :math:`\alpha_j / (1 - \alpha_j) = w_j\, \alpha / (1 - \alpha)`, i.e. :math:`\alpha_j = \alpha w_j / (\alpha w_j +
    1 - \alpha)`.

    A class of weight 1 keeps ``alpha``; a heavier class weighs its positives more and its negatives less, and
    every :math:`\alpha_j` stays in ``[0, 1]``. Returns float64 ``[K]``.

    Example:
        >>> [round(a, 4) for a in alpha_from_weights([1.0, 3.0], alpha=0.25).tolist()]
        [0.25, 0.5]
    """
    alpha = check_number(alpha, "alpha", low=0.0, high=1.0)
    w = as_statistic(weights, "weights", length=None, like=torch.empty(0, dtype=torch.float64))
    return alpha * w / (alpha * w + (1.0 - alpha))


def focal_loss(
    logits: Tensor,
    labels: Tensor,
    *,
    alpha: Alpha = 0.25,
    gamma: float = 2.0,
    sample_weight: Tensor | None = None,
    ignore_index: int = -1,
    reduction: str = "mean",
    normalizer: Normalizer | None = None,
) -> Tensor:
    r"""Sigmoid focal loss over the K foreground logits, with one alpha per class.

    Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017:

    .. math::

        \ell_i = s_i \sum_{j=0}^{K-1} -\alpha^t_{ij} (1 - p^t_{ij})^{\gamma} \log p^t_{ij},\qquad
        \alpha^t_{ij} = \begin{cases} \alpha_j & j = y_i \\ 1 - \alpha_j & j \ne y_i \end{cases}

    with :math:`p^t_{ij}` = :math:`\sigma(x_{ij})` for the label's own column and :math:`1 - \sigma(x_{ij})`
    elsewhere (a background row has an all-zero target). With one ``alpha`` for every class this is
    detectron2's ``sigmoid_focal_loss`` and MMDetection's ``FocalLoss``; :func:`alpha_from_weights` turns class
    weights into per-class alphas. 'mean' divides by the number of non-ignored foreground rows (at least 1),
    unless ``normalizer`` is given.

    Args:
        logits: ``[R, K]`` foreground logits (no background column).
        labels: ``[R]`` int64 in ``[0, K]`` (K = background) or ``ignore_index``.
        alpha: a number in ``[0, 1]``, ``[K]`` numbers in ``[0, 1]``, or None (no alpha weighting).
        gamma: focusing exponent, >= 0.
        sample_weight, ignore_index, reduction, normalizer: see :func:`weighted_cross_entropy`.

    Returns:
        ``[R]`` for 'none', else a scalar; float32 (float64 for float64 logits).

    Example:
        >>> import torch
        >>> logits = torch.randn(6, 3, requires_grad=True)
        >>> loss = focal_loss(logits, torch.tensor([0, 2, 3, 3, 3, 1]), alpha=[0.25, 0.5, 0.75])
        >>> loss.backward()
    """
    batch = check_batch(
        logits,
        labels,
        extra_columns=0,
        layout=LAYOUT,
        sample_weight=sample_weight,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
    )
    alphas = check_alpha(alpha, batch.num_classes, batch.x)
    return _loss(batch, alpha=alphas, gamma=check_number(gamma, "gamma", low=0.0))


def _loss(batch: Batch, *, alpha: Tensor | None, gamma: float) -> Tensor:
    """:func:`focal_loss` of a checked batch given per-class ``alpha[K]`` (:func:`check_alpha`) or None."""
    alpha = None if alpha is None else alpha.to(batch.x)
    per_row, _ = row_loss(batch.x, partial(focal_kernel, labels=batch.classes, gamma=gamma, alpha=alpha))
    return reduce_rows(per_row, batch, denominator=positive_count(batch))


class FocalLoss(ClassificationLoss):
    """Module form of :func:`focal_loss`; scores at test time with :func:`sigmoid_scores`.

    Args:
        num_classes: K (the classifier outputs K logits).
        alpha: a number, ``[K]`` per-class alphas in ``[0, 1]``, or None; see :func:`focal_loss`.
        gamma: focusing exponent.
        reduction, ignore_index: defaults for :meth:`forward`.

    Example:
        >>> import torch
        >>> loss_fn = FocalLoss(3, alpha=[0.25, 0.4, 0.6])
        >>> loss = loss_fn(torch.randn(5, 3), torch.tensor([0, 2, 3, 3, 1]))
        >>> loss_fn.num_logits
        3
    """

    alpha: Tensor | None

    def __init__(
        self,
        num_classes: int,
        alpha: Alpha = 0.25,
        *,
        gamma: float = 2.0,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> None:
        super().__init__(num_classes, reduction=reduction, ignore_index=ignore_index)
        alphas = check_alpha(alpha, num_classes, torch.empty(0))
        self.register_buffer("alpha", alphas, persistent=False)
        self.gamma = check_number(gamma, "gamma", low=0.0)

    @classmethod
    def from_stats(
        cls,
        num_classes: int,
        stats: Any,
        *,
        alpha: float = 0.25,
        gamma: float = 2.0,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> FocalLoss:
        """Build from a WeightsFile: per-class alphas :func:`alpha_from_weights` of its class weights."""
        class_stats(stats, num_classes)
        if not hasattr(stats, "weights"):
            raise ValueError(f"per-class alphas need a WeightsFile (with .weights), got {type(stats).__name__}")
        weights = list(stats.weights)
        if len(weights) != num_classes:
            raise ValueError(f"the weights file holds {len(weights)} class weights but num_classes={num_classes}")
        return cls(
            num_classes,
            alpha_from_weights(weights, alpha).tolist(),
            gamma=gamma,
            reduction=reduction,
            ignore_index=ignore_index,
        )

    def forward(
        self,
        logits: Tensor,
        labels: Tensor,
        sample_weight: Tensor | None = None,
        normalizer: Normalizer | None = None,
        reduction_override: str | None = None,
    ) -> Tensor:
        self._check_columns(logits)
        batch = check_batch(
            logits,
            labels,
            extra_columns=0,
            layout=LAYOUT,
            sample_weight=sample_weight,
            ignore_index=self.ignore_index,
            reduction=self._reduction(reduction_override),
            normalizer=normalizer,
        )
        return _loss(batch, alpha=self.alpha, gamma=self.gamma)

    def predict_scores(self, logits: Tensor) -> Tensor:
        return sigmoid_scores(logits)

    def extra_repr(self) -> str:
        alpha = None if self.alpha is None else [round(a, 4) for a in self.alpha.tolist()]
        return f"{super().extra_repr()}, alpha={alpha}, gamma={self.gamma}"


__all__ = ["focal_loss", "alpha_from_weights", "FocalLoss"]
