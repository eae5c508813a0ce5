"""Class-weighted softmax cross-entropy with an explicit background slot."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ._base import (
    Batch,
    ClassificationLoss,
    Normalizer,
    Statistic,
    as_statistic,
    check_batch,
    check_logits,
    class_stats,
    reduce_rows,
)

LAYOUT = "[R, K + 1]"
#: Denominators of 'mean': the number of non-ignored proposals with a sample weight > 0 (every loss's default,
#: MMDetection's ``avg_factor``), or the sum of their weights :math:`\sum_i s_i w_{y_i}` (``F.cross_entropy``).
DENOMINATORS = ("proposals", "weights")


def check_denominator(denominator: str, normalizer: Normalizer | None = None) -> str:
    """``denominator`` after checking it is one of :data:`DENOMINATORS` and that a ``normalizer`` replaces the
    'proposals' count only."""
    if denominator not in DENOMINATORS:
        raise ValueError(f"denominator must be one of {DENOMINATORS}, got {denominator!r}")
    if denominator == "weights" and normalizer is not None:
        raise ValueError(
            f"normalizer={normalizer!r} replaces the 'proposals' count, expected None with "
            "denominator='weights' (which divides by the summed weights)"
        )
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
    check_denominator(denominator, normalizer)
    batch = check_batch(
        logits,
        labels,
        extra_columns=1,
        layout=LAYOUT,
        sample_weight=sample_weight,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
    )
    weight = None
    if class_weight is not None:
        weight = as_statistic(class_weight, "class_weight", length=batch.num_classes + 1, like=batch.x)
    return _loss(batch, class_weight=weight, denominator=denominator)


def _loss(batch: Batch, *, class_weight: Tensor | None, denominator: str) -> Tensor:
    """:func:`weighted_cross_entropy` of a checked batch, ``[K + 1]`` class weights (or None) and denominator."""
    # ignored rows are computed too (then weighted 0), so that a NaN logit there still reaches the loss
    per_row = F.cross_entropy(batch.x, batch.classes, reduction="none")
    by_label = None if class_weight is None else class_weight.to(batch.x)[batch.classes]
    if by_label is not None:
        per_row = per_row * by_label
    count = None
    if denominator == "weights":
        count = batch.row_weight.sum() if by_label is None else (batch.row_weight * by_label).sum()
    return reduce_rows(per_row, batch, denominator=count)


def softmax_scores(logits: Tensor) -> Tensor:
    """Softmax over ``logits[R, K + 1]`` (background last) -> ``scores[R, K + 1]``.

    Example:
        >>> import torch
        >>> softmax_scores(torch.zeros(1, 4)).tolist()
        [[0.25, 0.25, 0.25, 0.25]]
    """
    return torch.softmax(check_logits(logits, extra_columns=1, layout=LAYOUT)[0], dim=1)


def weights_with_background(weights_file: Any, num_classes: int) -> list[float]:
    """``weights[K] + [background_weight]`` from a WeightsFile (after checking its statistics match K)."""
    class_stats(weights_file, num_classes)
    if not hasattr(weights_file, "weights") or not hasattr(weights_file, "background_weight"):
        raise ValueError(
            f"class weights need a WeightsFile (with .weights and .background_weight), got "
            f"{type(weights_file).__name__}"
        )
    weights = [float(w) for w in weights_file.weights]
    if len(weights) != num_classes:
        raise ValueError(f"the weights file holds {len(weights)} class weights but num_classes={num_classes}")
    return weights + [float(weights_file.background_weight)]


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
        weight = None if class_weight is None else as_statistic(class_weight, "class_weight", length=num_classes + 1)
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
        check_denominator(self.denominator, normalizer)
        batch = check_batch(
            logits,
            labels,
            extra_columns=1,
            layout=LAYOUT,
            sample_weight=sample_weight,
            ignore_index=self.ignore_index,
            reduction=self._reduction(reduction_override),
            normalizer=normalizer,
        )
        return _loss(batch, class_weight=self.class_weight, denominator=self.denominator)

    def predict_scores(self, logits: Tensor) -> Tensor:
        return softmax_scores(logits)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, denominator={self.denominator!r}"


__all__ = ["weighted_cross_entropy", "softmax_scores", "WeightedCrossEntropyLoss"]
