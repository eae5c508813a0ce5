"""Class-weighted softmax cross-entropy with an explicit background slot."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from ._base import ClassificationLoss, weights_with_background
from ._validate import (
    Normalizer,
    Statistic,
    as_statistic,
    check_finite_loss,
    check_labels_kept,
    check_logits,
    check_reduction,
    check_sample_weight,
    kept_count,
    normalizer_tensor,
    reduce_loss,
)
from .activations import softmax_scores

#: Denominators of 'mean': the number of non-ignored proposals with a sample weight > 0 (every loss's default,
#: MMDetection's ``avg_factor``), or the sum of their weights :math:`\sum_i s_i w_{y_i}` (``F.cross_entropy``).
DENOMINATORS = ("proposals", "weights")


def check_denominator(denominator: str) -> str:
    if denominator not in DENOMINATORS:
        raise ValueError(f"denominator must be one of {DENOMINATORS}, got {denominator!r}")
    return denominator


def weighted_cross_entropy(
    logits: Tensor,
    labels: Tensor,
    class_weight: Statistic | None = None,
    *,
    sample_weight: Tensor | None = None,
    ignore_index: int = -1,
    reduction: str = "mean",
    normalizer: Normalizer | None = None,
    denominator: str = "proposals",
) -> Tensor:
    r"""Softmax cross-entropy over K foreground classes and background, each class weighted.

    .. math::

        \ell_i = - s_i \, w_{y_i} \log \frac{\exp x_{i, y_i}}{\sum_{c=0}^{K} \exp x_{i, c}}

    where :math:`w` is ``class_weight`` (all ones when None) and :math:`s_i` the ``sample_weight``.
    'mean' divides :math:`\sum_i \ell_i` by

    * ``denominator='proposals'`` (default): the number of non-ignored proposals with :math:`s_i > 0`, as every
      other loss here. This equals MMDetection's ``CrossEntropyLoss(class_weight=w)`` called with that count
      as ``avg_factor`` (what its bbox heads pass); without ``avg_factor`` MMDetection divides by all R rows,
      which is the same only when no proposal is ignored or has weight 0.
    * ``denominator='weights'``: :math:`\sum_i s_i w_{y_i}` over the non-ignored proposals, which equals
      ``F.cross_entropy(logits, labels, weight=class_weight, ignore_index=ignore_index)`` when no sample weight
      is given.

    ``normalizer`` (MMDetection's ``avg_factor``) replaces the 'proposals' count; it cannot be combined with
    ``denominator='weights'``.

    Args:
        logits: ``[R, K + 1]`` class logits, background last.
        labels: ``[R]`` int64 in ``[0, K]`` (K = background) or ``ignore_index``.
        class_weight: ``[K + 1]`` non-negative weights (background last) or None.
        sample_weight: ``[R]`` non-negative per-proposal weights or None.
        ignore_index: label value of proposals left out (loss 0, no gradient).
        reduction: 'none' (``[R]``), 'mean' or 'sum'.
        normalizer: denominator of 'mean' (number or 0-dim tensor) replacing the default count.
        denominator: 'proposals' or 'weights', see above.

    Returns:
        The loss: ``[R]`` for 'none', else a scalar; float32 (float64 for float64 logits).

    Example:
        >>> import torch
        >>> logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        >>> labels = torch.tensor([0, 2])
        >>> loss = weighted_cross_entropy(logits, labels, [1.0, 3.0, 0.5], denominator="weights")
        >>> bool(torch.isclose(loss, torch.nn.functional.cross_entropy(
        ...     logits, labels, weight=torch.tensor([1.0, 3.0, 0.5]))))
        True
    """
    x, num_classes = check_logits(logits, 1, "[R, K + 1]")
    weight = None if class_weight is None else as_statistic(class_weight, "class_weight", num_classes + 1, x)
    return _weighted_cross_entropy(x, labels, weight, sample_weight, ignore_index, reduction, normalizer, denominator)


def _weighted_cross_entropy(
    logits: Tensor,
    labels: Tensor,
    class_weight: Tensor | None,
    sample_weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    normalizer: Normalizer | None,
    denominator: str,
) -> Tensor:
    """:func:`weighted_cross_entropy` with ``class_weight`` already validated (a ``[K + 1]`` tensor or None)."""
    x, num_classes = check_logits(logits, 1, "[R, K + 1]")
    all_kept = check_labels_kept(labels, x.shape[0], num_classes, ignore_index)
    check_reduction(reduction)
    check_denominator(denominator)
    if denominator == "weights" and normalizer is not None:
        raise ValueError(
            f"normalizer={normalizer!r} replaces the 'proposals' count, expected None with "
            "denominator='weights' (which divides by the summed weights)"
        )
    weight = check_sample_weight(sample_weight, x.shape[0], x)
    class_weight = None if class_weight is None else class_weight.to(dtype=x.dtype, device=x.device)
    if all_kept and weight is None and denominator == "proposals":
        # every row is kept and counts once: torch's class-weighted sum is the same loss in one fused operation
        if reduction == "none":
            return check_finite_loss(F.cross_entropy(x, labels, weight=class_weight, reduction="none"), x)
        if reduction == "mean":  # divided through the weights: no division node in the graph
            divisor = x.shape[0] if normalizer is None else normalizer_tensor(normalizer, x)
            class_weight = (x.new_ones(num_classes + 1) if class_weight is None else class_weight) / divisor
        return check_finite_loss(F.cross_entropy(x, labels, weight=class_weight, reduction="sum"), x)
    valid = labels != ignore_index
    safe_labels = labels.masked_fill(~valid, 0)
    row_weight = valid.to(x.dtype)
    if class_weight is not None:
        row_weight = row_weight * class_weight[safe_labels]
    if weight is not None:
        row_weight = row_weight * weight
    # ignored rows are computed too (then weighted 0), so that a NaN logit there still reaches the loss
    nll = F.cross_entropy(x, safe_labels, reduction="none")
    count = row_weight.sum() if denominator == "weights" else kept_count(valid, weight)
    loss = reduce_loss(nll * row_weight, reduction, normalizer, count, x)
    return check_finite_loss(loss, x)


class WeightedCrossEntropyLoss(ClassificationLoss):
    """Module form of :func:`weighted_cross_entropy`; scores at test time with :func:`softmax_scores`.

    Args:
        num_classes: K, the number of foreground classes (the classifier outputs K + 1 logits).
        class_weight: ``[K + 1]`` weights, background last, or None for unweighted cross-entropy.
        denominator: of 'mean': 'proposals' (count, the default) or 'weights' (as ``F.cross_entropy``); see
            :func:`weighted_cross_entropy`.
        reduction: default reduction, 'mean', 'sum' or 'none'.
        ignore_index: label value of proposals left out.

    Example:
        >>> import torch
        >>> loss_fn = WeightedCrossEntropyLoss(2, [1.0, 3.0, 0.5])
        >>> loss_fn.num_logits
        3
        >>> loss = loss_fn(torch.zeros(4, 3, requires_grad=True), torch.tensor([0, 1, 2, -1]))
        >>> loss.backward()
    """

    extra_columns = 1
    layout = "[R, K + 1]"
    class_weight: Tensor | None

    def __init__(
        self,
        num_classes: int,
        class_weight: Statistic | None = None,
        *,
        denominator: str = "proposals",
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> None:
        super().__init__(num_classes, reduction=reduction, ignore_index=ignore_index)
        self.denominator = check_denominator(denominator)
        weight = None if class_weight is None else as_statistic(class_weight, "class_weight", num_classes + 1)
        self.register_buffer("class_weight", weight, persistent=False)

    @classmethod
    def from_stats(
        cls,
        num_classes: int,
        stats: Any,
        *,
        denominator: str = "proposals",
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> WeightedCrossEntropyLoss:
        """Build from a WeightsFile: its K class weights followed by its ``background_weight``."""
        return cls(
            num_classes,
            weights_with_background(stats, num_classes),
            denominator=denominator,
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
        return _weighted_cross_entropy(
            logits,
            labels,
            self.class_weight,
            sample_weight,
            self.ignore_index,
            self._reduction(reduction_override),
            normalizer,
            self.denominator,
        )

    def predict_scores(self, logits: Tensor) -> Tensor:
        return softmax_scores(logits)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, denominator={self.denominator!r}"


__all__ = ["weighted_cross_entropy", "WeightedCrossEntropyLoss"]
