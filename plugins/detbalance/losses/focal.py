"""Sigmoid focal loss with a per-class alpha (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017),
the classification loss of one-stage detectors (RetinaNet, FCOS, ATSS), and the row-block kernel with per-class
alpha, exponent and factor that Equalized Focal Loss (:mod:`detbalance.losses.efl`) shares: like the kernels of
:mod:`detbalance.losses._rowwise` it computes the gradient in closed form during the forward pass, so that a
dense head's ``[anchors, K]`` logits cost one more ``[anchors, K]`` tensor, not the intermediates of autograd.

Dense heads score every anchor (or point) of every feature level: ``R`` is then the number of anchors, most of
them background, and 'mean' divides by the number of foreground rows (at least 1), the normalisation of
RetinaNet; detectors pass their own count as ``normalizer`` (detectron2's moving average, MMDetection's
``avg_factor``).
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from ._base import ClassificationLoss, class_stats
from ._rowwise import RowLoss, foreground, row_blocks
from ._validate import (
    Normalizer,
    Statistic,
    as_statistic,
    check_finite_loss,
    check_labels,
    check_logits,
    check_number,
    check_reduction,
    check_sample_weight,
    reduce_loss,
)
from .activations import sigmoid_scores

Alpha = float | Statistic | None


def _negative_term(x: Tensor, gamma: Tensor) -> tuple[Tensor, Tensor]:
    """``f(x) = sigmoid(x)^gamma * softplus(x)`` (focal loss of a negative element) and ``f'(x) = sigmoid(x)^gamma
    (gamma (1 - sigmoid(x)) softplus(x) + sigmoid(x))``; ``gamma`` broadcasts over ``x``."""
    softplus, prob = F.softplus(x), torch.sigmoid(x)
    power = torch.exp(-gamma * F.softplus(-x))  # sigmoid(x)^gamma, also for gamma = 0 and saturated x
    return power * softplus, power * (gamma * (1.0 - prob) * softplus + prob)


def classwise_focal_kernel(
    x: Tensor,
    fg_rows: Tensor,
    fg_labels: Tensor,
    alpha: Tensor | None,
    gamma: Tensor,
    factor: Tensor | None,
    row_weight: Tensor | None,
    *,
    need_grad: bool,
):
    r"""Focal loss with per-class alpha, exponent and factor, summed per row, for :class:`~._rowwise.RowLoss`.

    :math:`\sum_j c_j \alpha^t_{ij} (1 - p^t_{ij})^{\gamma_j} (-\log p^t_{ij})`: a negative element contributes
    :math:`c_j (1 - \alpha_j) f_j(x)` with :math:`f_j(x) = \sigma(x)^{\gamma_j} \mathrm{softplus}(x)`, the target
    element of a foreground row :math:`c_j \alpha_j f_j(-x)` (``alpha``/``factor`` None: 1). With ``row_weight[R]``
    the extra is ``[2, K]``: :math:`\sum_i r_i |\partial \ell_{ij} / \partial x_{ij}|` over the positive (row 0)
    and negative (row 1) elements.
    """
    neg_weight = None if alpha is None else 1.0 - alpha
    if factor is not None:
        neg_weight = factor if neg_weight is None else neg_weight * factor
    per_row = x.new_empty(x.shape[0])
    grad = torch.empty_like(x) if need_grad else None
    neg_sum = None if row_weight is None else x.new_zeros(x.shape[1])
    for rows in row_blocks(x):
        value, slope = _negative_term(x[rows], gamma)
        if neg_weight is not None:
            value, slope = value * neg_weight, slope * neg_weight
        torch.sum(value, dim=1, out=per_row[rows])
        if grad is not None:
            grad[rows] = slope
        if neg_sum is not None and row_weight is not None:
            neg_sum += row_weight[rows] @ slope
    # the target element of each foreground row: its negative term out, its positive term in
    x_t, gamma_t = x[fg_rows, fg_labels], gamma[fg_labels]
    neg_t = torch.ones_like(x_t) if neg_weight is None else neg_weight[fg_labels]
    pos_t = torch.ones_like(x_t) if alpha is None else alpha[fg_labels]
    if factor is not None:
        pos_t = pos_t * factor[fg_labels]
    value_neg, slope_neg = _negative_term(x_t, gamma_t)
    value_pos, slope_pos = _negative_term(-x_t, gamma_t)  # d/dx of f(-x) is -f'(-x)
    per_row.index_add_(0, fg_rows, pos_t * value_pos - neg_t * value_neg)
    if grad is not None:
        grad.index_put_((fg_rows, fg_labels), -pos_t * slope_pos)
    stats = None
    if neg_sum is not None and row_weight is not None:
        r_t = row_weight[fg_rows]
        pos_sum = torch.zeros_like(neg_sum).index_add_(0, fg_labels, r_t * pos_t * slope_pos)
        neg_sum -= torch.zeros_like(neg_sum).index_add_(0, fg_labels, r_t * neg_t * slope_neg)
        stats = torch.stack([pos_sum, neg_sum.clamp_min_(0.0)])  # the subtraction can leave -1 ulp
    return per_row, grad, stats


def check_alpha(alpha: Alpha, num_classes: int, like: Tensor) -> Tensor | None:
    """``alpha`` as a ``[K]`` tensor in ``[0, 1]`` (a number is used for every class); None stays None."""
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        return like.new_full((num_classes,), check_number(alpha, "alpha", low=0.0, high=1.0))
    values = as_statistic(cast(Statistic, alpha), "alpha", num_classes, like)
    if bool((values > 1).any()):
        position = int((values > 1).nonzero()[0, 0])
        raise ValueError(f"alpha must lie in [0, 1] for every class, got {values[position].item()} at index {position}")
    return values


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
    w = as_statistic(weights, "weights", None, torch.empty(0, dtype=torch.float64))
    return alpha * w / (alpha * w + (1.0 - alpha))


def dense_denominator(fg_rows: Tensor, like: Tensor) -> Tensor:
    """Default 'mean' denominator of the dense losses: the number of foreground rows, at least 1."""
    return like.new_tensor(float(max(int(fg_rows.numel()), 1)))


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
    x, num_classes = check_logits(logits, 0, "[R, K]")
    return _focal_loss(
        x, labels, check_alpha(alpha, num_classes, x), gamma, sample_weight, ignore_index, reduction, normalizer
    )


def _focal_loss(
    logits: Tensor,
    labels: Tensor,
    alphas: Tensor | None,
    gamma: float,
    sample_weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    normalizer: Normalizer | None,
) -> Tensor:
    """:func:`focal_loss` given validated per-class ``alphas[K]`` (:func:`check_alpha`) or None."""
    x, num_classes = check_logits(logits, 0, "[R, K]")
    valid = check_labels(labels, x.shape[0], num_classes, ignore_index)
    check_reduction(reduction)
    gamma = check_number(gamma, "gamma", low=0.0)
    alphas = None if alphas is None else alphas.to(dtype=x.dtype, device=x.device)
    weight = check_sample_weight(sample_weight, x.shape[0], x)
    fg_rows, fg_labels = foreground(labels, valid, num_classes)
    per_row, _ = RowLoss.apply(
        x, classwise_focal_kernel, fg_rows, fg_labels, alphas, x.new_full((num_classes,), gamma), None, None
    )
    row_weight = valid.to(x.dtype) if weight is None else valid.to(x.dtype) * weight
    loss = reduce_loss(per_row * row_weight, reduction, normalizer, dense_denominator(fg_rows, x), x)
    return check_finite_loss(loss, x)


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
        return _focal_loss(
            logits,
            labels,
            self.alpha,
            self.gamma,
            sample_weight,
            self.ignore_index,
            self._reduction(reduction_override),
            normalizer,
        )

    def predict_scores(self, logits: Tensor) -> Tensor:
        return sigmoid_scores(logits)

    def extra_repr(self) -> str:
        alpha = None if self.alpha is None else [round(a, 4) for a in self.alpha.tolist()]
        return f"{super().extra_repr()}, alpha={alpha}, gamma={self.gamma}"


__all__ = ["focal_loss", "alpha_from_weights", "FocalLoss"]
