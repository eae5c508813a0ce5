"""Equalization loss (Tan et al., "Equalization Loss for Long-Tailed Object Recognition", CVPR 2020)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ._base import (
    Batch,
    ClassificationLoss,
    Normalizer,
    Statistic,
    as_statistic,
    check_batch,
    check_number,
    check_prior_prob,
    class_stats,
    value_checks_enabled,
)
from ._rowwise import ColumnWeights, sigmoid_bce, sigmoid_scores

LAYOUT = "[R, K]"


def equalization_loss(
    logits: Tensor,
    labels: Tensor,
    class_freq: Statistic,
    *,
    lambda_: float = 1.76e-3,
    sample_weight: Tensor | None = None,
    ignore_index: int = -1,
    reduction: str = "mean",
    normalizer: Normalizer | None = None,
) -> Tensor:
    r"""Sigmoid equalization loss: rare classes are spared the negative gradients of foreground proposals.

    Tan et al., "Equalization Loss for Long-Tailed Object Recognition", CVPR 2020, as defined by the official
    eql.detectron2 code:

    .. math::

        \ell_i = s_i \sum_{j=0}^{K-1} w_{ij}\,\mathrm{BCE}(x_{ij}, y_{ij}),\qquad
        w_{ij} = 1 - E(i)\, T_\lambda(f_j)\, (1 - y_{ij})

    :math:`y_{ij}` is the one-hot target (all zeros for a background proposal), :math:`E(i) = 1` for a
    foreground proposal and 0 for a background one (background proposals keep suppressing every class), and
    :math:`T_\lambda(f) = 1` when the class's image frequency :math:`f_j < \lambda`. 'mean' divides by the number
    of non-ignored proposals with a sample weight > 0, unless ``normalizer`` is given.

    Args:
        logits: ``[R, K]`` foreground logits.
        labels: ``[R]`` int64 in ``[0, K]`` (K = background) or ``ignore_index``.
        class_freq: ``[K]`` fraction of training images containing each class, :math:`f_j` in ``[0, 1]``.
        lambda_: frequency threshold below which a class is "rare" (1.76e-3 on LVIS v0.5 in the paper).
        sample_weight, ignore_index, reduction, normalizer: see :func:`weighted_cross_entropy`.

    Returns:
        ``[R]`` for 'none', else a scalar; float32 (float64 for float64 logits).

    Example:
        >>> import torch
        >>> logits = torch.zeros(2, 2, requires_grad=True)
        >>> # class 1 is rare: the foreground proposal of class 0 does not push it down, background does
        >>> loss = equalization_loss(logits, torch.tensor([0, 2]), [0.5, 0.001], lambda_=0.01, reduction="none")
        >>> [round(v, 4) for v in loss.tolist()]
        [0.6931, 1.3863]
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
    lambda_ = check_number(lambda_, "lambda_", low=0.0)
    freq = _check_freq(class_freq, length=batch.num_classes, like=batch.x)
    return _loss(batch, non_rare=_non_rare(freq, lambda_))


def _check_freq(class_freq: Statistic, *, length: int, like: Tensor | None = None) -> Tensor:
    """``class_freq`` as ``[K]`` image fractions in ``[0, 1]``."""
    freq = as_statistic(class_freq, "class_freq", length=length, like=like)
    if value_checks_enabled() and bool((freq > 1).any()):
        index = int((freq > 1).nonzero()[0, 0])
        raise ValueError(f"class_freq holds image fractions in [0, 1], got {freq[index].item()} at index {index}")
    return freq


def _non_rare(freq: Tensor, lambda_: float) -> Tensor | None:
    """``[K]`` weight of the negative elements of foreground rows: 0 for rare classes, 1 otherwise (None: no rare
    class)."""
    rare = freq < lambda_
    return (~rare).to(freq.dtype) if bool(rare.any()) else None


def _loss(batch: Batch, *, non_rare: Tensor | None) -> Tensor:
    # weight 0 on rare classes in foreground rows: foreground proposals do not push them down
    keep = None if non_rare is None else non_rare.to(batch.x)
    return sigmoid_bce(batch, weights=ColumnWeights(fg_neg=keep))[0]


class EqualizationLoss(ClassificationLoss):
    """Module form of :func:`equalization_loss`; scores at test time with :func:`sigmoid_scores`.

    Args:
        num_classes: K (the classifier outputs K logits).
        class_freq: ``[K]`` image fractions :math:`f_j` in ``[0, 1]``.
        lambda_: rare-class threshold.
        prior_prob: probability the class logits start at (:meth:`initial_bias`); 0.001 (bias
            ``-log((1 - 0.001) / 0.001)``) as eql.detectron2 initialises its sigmoid classifier.
        reduction, ignore_index: defaults for :meth:`forward`.

    Example:
        >>> import torch
        >>> loss_fn = EqualizationLoss(2, [0.5, 0.001], lambda_=0.01)
        >>> loss = loss_fn(torch.zeros(2, 2), torch.tensor([0, 2]))
        >>> round(loss.item(), 4)
        1.0397
    """

    class_freq: Tensor
    non_rare: Tensor | None

    def __init__(
        self,
        num_classes: int,
        class_freq: Statistic,
        *,
        lambda_: float = 1.76e-3,
        prior_prob: float = 0.001,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> None:
        super().__init__(num_classes, reduction=reduction, ignore_index=ignore_index)
        self.prior_prob = check_prior_prob(prior_prob)
        freq = _check_freq(class_freq, length=num_classes)
        self.register_buffer("class_freq", freq, persistent=False)
        self.lambda_ = check_number(lambda_, "lambda_", low=0.0)
        self.register_buffer("non_rare", _non_rare(freq, self.lambda_), persistent=False)

    @classmethod
    def from_stats(
        cls,
        num_classes: int,
        stats: Any,
        *,
        lambda_: float = 1.76e-3,
        prior_prob: float = 0.001,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> EqualizationLoss:
        """Build from a ClassStats (or WeightsFile): ``class_freq`` = image counts / number of images."""
        inner = class_stats(stats, num_classes)
        num_images = int(inner.num_images)
        if num_images < 1:
            raise ValueError(f"stats.num_images must be >= 1, got {inner.num_images}")
        freq = [float(count) / num_images for count in inner.image_counts]
        return cls(
            num_classes, freq, lambda_=lambda_, prior_prob=prior_prob, reduction=reduction, ignore_index=ignore_index
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
        return _loss(batch, non_rare=self.non_rare)

    def predict_scores(self, logits: Tensor) -> Tensor:
        return sigmoid_scores(logits)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, lambda_={self.lambda_}, prior_prob={self.prior_prob}"


__all__ = ["equalization_loss", "EqualizationLoss"]
