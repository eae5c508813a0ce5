"""Class-balanced sigmoid focal loss (Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
CVPR 2019)."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from torch import Tensor

from ..weights.effective_number import inverse_effective_number
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
    reduce_rows,
    value_checks_enabled,
)
from ._rowwise import focal_kernel, row_loss, sigmoid_scores

LAYOUT = "[R, K]"


def class_balanced_weights(samples_per_class: Statistic, beta: float = 0.99) -> Tensor:
    r"""Cui et al.'s per-class weights :math:`w_c \propto (1 - \beta) / (1 - \beta^{n_c})`, summing to K.

    :math:`(1 - \beta^{n}) / (1 - \beta)` is the effective number of ``n`` samples; a class with no sample has
    effective number 0 and no finite weight, so zero counts raise. Returns float64 ``[K]``.

    Example:
        >>> class_balanced_weights([10, 10], beta=0.9).tolist()
        [1.0, 1.0]
    """
    device = samples_per_class.device if isinstance(samples_per_class, Tensor) else None
    like = torch.empty(0, dtype=torch.float64, device=device)
    counts = as_statistic(samples_per_class, "samples_per_class", length=None, like=like)
    beta = check_number(beta, "beta", low=0.0, high=1.0, high_open=True)
    if value_checks_enabled() and not bool((counts > 0).all()):
        empty = (counts == 0).nonzero().flatten().tolist()
        raise ValueError(
            f"samples_per_class must be > 0 for every class (effective number 0 has no weight); "
            f"classes {empty} have 0 samples"
        )
    weights = inverse_effective_number(counts, beta)
    return weights * (counts.numel() / weights.sum())


def class_balanced_focal_loss(
    logits: Tensor,
    labels: Tensor,
    samples_per_class: Statistic,
    *,
    beta: float = 0.99,
    gamma: float = 2.0,
    background_weight: float = 1.0,
    sample_weight: Tensor | None = None,
    ignore_index: int = -1,
    reduction: str = "mean",
    normalizer: Normalizer | None = None,
) -> Tensor:
    r"""Class-balanced sigmoid focal loss over the K foreground logits.

    Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019 (focal term of Lin et al.,
    ICCV 2017, without its alpha), as its reference code (richardaecn/class-balanced-loss, ``focal_loss`` in
    ``src/cifar_main.py``) computes it:

    .. math::

        L = \frac{1}{N} \sum_i s_i \, \omega_i \sum_{j=0}^{K-1} -(1 - p^t_{ij})^{\gamma} \log p^t_{ij},\qquad
        p^t_{ij} = \begin{cases} \sigma(x_{ij}) & j = y_i \\ 1 - \sigma(x_{ij}) & j \ne y_i \end{cases}

    with :math:`\omega_i = w_{y_i} / \bar w` for a foreground proposal, :math:`\omega_i = b` (``background_weight``)
    for a background one (all-zero target), :math:`w_c = \frac{1-\beta}{1-\beta^{n_c}}` rescaled so that
    :math:`\sum_c w_c = K` (:func:`class_balanced_weights`), :math:`\bar w = \sum_c n_c w_c / \sum_c n_c` the mean
    weight of a training instance, and :math:`N` the number of
    non-ignored proposals with a sample weight > 0 (``normalizer`` replaces it: MMDetection's ``avg_factor``, a
    dense head's count of foreground anchors).

    Choices the reference (image classification, one positive per example) does not make:

    * **Scale**: the weights are divided by :math:`\bar w`, so that an average training instance weighs 1, as
      every proposal does in the unweighted loss; the ratios between classes are the reference's. Its
      normalisation (weights summing to K) multiplies the whole loss by :math:`\bar w`: 0.15 on an 8-class set
      with 1500 to 12 instances per class (:math:`\beta` = 0.999), where a detector trained from scratch then
      barely moves its classifier from the prior in 600 iterations.
    * **Background proposals** weigh :math:`b` = ``background_weight`` (default 1, an average instance): the class
      weights move loss between foreground classes and leave the balance of background against foreground as in
      the unweighted focal loss. (Weight 1 next to the reference's sum-to-K weights, the mean *class* weight,
      outweighs an average instance :math:`1 / \bar w` times: 6.6x on that set.)
    * Default :math:`\beta` = 0.99: closer to 1 weighs rare classes many times an average instance (on that set
      26x for 12 instances with 0.999, and training diverged at iteration ~300; 7.9x with 0.99, which trained:
      AP 36.4 after 600 iterations, CE 35.7, 12.4 before these choices). The reference sets it per data set:
      with classes of a single image among many (LVIS-like: 128 classes of 1 to 300 instances), 0.99 weighs the
      rarest 55x an average instance and Faster R-CNN diverged in its first minute; 0.9 (9.7x there) trained.
    * The reference divides the summed loss by its number of positive labels, which is its number of examples
      (one positive each); here every proposal is an example, so 'mean' divides by the proposals. Dividing by
      the foreground proposals alone, 1 to 32 per batch of 128 in a two-stage detector, makes the loss jump
      with that count: the 8-class demo (Detectron2, seed 0) diverged at iteration ~230 that way.

    Args:
        logits: ``[R, K]`` foreground logits (no background column).
        labels: ``[R]`` int64 in ``[0, K]`` (K = background) or ``ignore_index``.
        samples_per_class: ``[K]`` positive training instance counts :math:`n_c`.
        beta: in ``[0, 1)``; 0 gives equal weights, values near 1 weight by inverse counts.
        gamma: focusing exponent, >= 0.
        background_weight: :math:`b` >= 0, the weight of a background proposal (an average instance weighs 1).
        sample_weight, ignore_index, reduction: see :func:`weighted_cross_entropy`.
        normalizer: divides the summed loss for 'mean' instead of :math:`N`.

    Returns:
        ``[R]`` for 'none', else a scalar; float32 (float64 for float64 logits).

    Example:
        >>> import torch
        >>> logits = torch.randn(4, 3, requires_grad=True)
        >>> loss = class_balanced_focal_loss(logits, torch.tensor([0, 2, 3, 1]), [500, 20, 3])
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
    background_weight = check_number(background_weight, "background_weight", low=0.0)
    counts = as_statistic(samples_per_class, "samples_per_class", length=batch.num_classes, like=batch.x)
    gamma = check_number(gamma, "gamma", low=0.0)
    return _loss(batch, label_weights=_label_weights(counts, beta, background_weight), gamma=gamma)


def _label_weights(counts: Tensor, beta: float, background_weight: float) -> Tensor:
    """``[K + 1]`` float64 weight of a proposal by its label: the class weights divided by the mean training
    instance's weight, then ``background_weight``. Validates ``counts`` and ``beta``."""
    class_weight = class_balanced_weights(counts, beta)
    counts = counts.to(class_weight)
    class_weight = class_weight * (counts.sum() / (counts * class_weight).sum())  # an average instance weighs 1
    return torch.cat([class_weight, class_weight.new_tensor([background_weight])])


def _loss(batch: Batch, *, label_weights: Tensor, gamma: float) -> Tensor:
    """:func:`class_balanced_focal_loss` of a checked batch given the :func:`_label_weights` of its statistics."""
    per_row, _ = row_loss(batch.x, partial(focal_kernel, labels=batch.classes, gamma=gamma))
    # an ignored row weighs 0 in reduce_rows whatever its label's weight
    return reduce_rows(per_row * label_weights.to(batch.x)[batch.classes], batch)


class ClassBalancedFocalLoss(ClassificationLoss):
    """Module form of :func:`class_balanced_focal_loss`; scores at test time with :func:`sigmoid_scores`.

    Args:
        num_classes: K (the classifier outputs K logits).
        samples_per_class: ``[K]`` positive training instance counts.
        beta, gamma, background_weight: see :func:`class_balanced_focal_loss`.
        prior_prob: probability the class logits start at (:meth:`initial_bias`); None: ``1 / K``, i.e. bias
            ``-log(K - 1)``, as the reference code (richardaecn/class-balanced-loss) initialises its sigmoid
            classifier. With K = 1 that prior is 1 (no finite bias), so ``prior_prob`` must then be given.
        reduction, ignore_index: defaults for :meth:`forward`.

    Example:
        >>> import torch
        >>> loss_fn = ClassBalancedFocalLoss(3, [500, 20, 3], beta=0.99)
        >>> loss = loss_fn(torch.randn(4, 3), torch.tensor([0, 2, 3, 1]))
        >>> loss_fn.predict_scores(torch.zeros(1, 3)).shape
        torch.Size([1, 4])
    """

    label_weights: Tensor

    def __init__(
        self,
        num_classes: int,
        samples_per_class: Statistic,
        *,
        beta: float = 0.99,
        gamma: float = 2.0,
        background_weight: float = 1.0,
        prior_prob: float | None = None,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> None:
        super().__init__(num_classes, reduction=reduction, ignore_index=ignore_index)
        if prior_prob is None and num_classes == 1:
            raise ValueError(
                "prior_prob is None with num_classes=1: the reference prior 1/K = 1 has no finite bias "
                "(-log(K - 1)); expected a prior_prob in (0, 1)"
            )
        self.prior_prob = check_prior_prob(1.0 / num_classes if prior_prob is None else prior_prob)
        counts = as_statistic(samples_per_class, "samples_per_class", length=num_classes)
        self.register_buffer("samples_per_class", counts, persistent=False)
        self.beta = beta
        self.gamma = check_number(gamma, "gamma", low=0.0)
        self.background_weight = check_number(background_weight, "background_weight", low=0.0)
        # validates beta and the counts now; the loss reads these weights at every step
        self.register_buffer("label_weights", _label_weights(counts, beta, self.background_weight), persistent=False)

    @classmethod
    def from_stats(
        cls,
        num_classes: int,
        stats: Any,
        *,
        beta: float = 0.99,
        gamma: float = 2.0,
        background_weight: float = 1.0,
        prior_prob: float | None = None,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> ClassBalancedFocalLoss:
        """Build from a ClassStats (or WeightsFile): ``samples_per_class`` = its instance counts."""
        counts = list(class_stats(stats, num_classes).instance_counts)
        return cls(
            num_classes,
            counts,
            beta=beta,
            gamma=gamma,
            background_weight=background_weight,
            prior_prob=prior_prob,
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
        return _loss(batch, label_weights=self.label_weights, gamma=self.gamma)

    def predict_scores(self, logits: Tensor) -> Tensor:
        return sigmoid_scores(logits)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, beta={self.beta}, gamma={self.gamma}, "
            f"background_weight={self.background_weight}, prior_prob={self.prior_prob}"
        )


__all__ = ["class_balanced_weights", "class_balanced_focal_loss", "ClassBalancedFocalLoss"]
