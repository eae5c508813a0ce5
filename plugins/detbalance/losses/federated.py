"""Federated sigmoid loss (Zhou et al., "Probabilistic two-stage detection", 2021)."""

from __future__ import annotations

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
    check_integer,
    check_number,
    check_prior_prob,
    class_stats,
)
from ._rowwise import ColumnWeights, sigmoid_bce, sigmoid_scores

LAYOUT = "[R, K]"


def federated_classes(
    labels: Tensor,
    image_counts: Tensor,
    *,
    num_sampled: int = 50,
    freq_power: float = 0.5,
    generator: torch.Generator | None = None,
    ignore_index: int = -1,
) -> Tensor:
    r"""The classes a federated loss trains on: the labels present plus sampled negatives.

    As detectron2's ``get_fed_loss_classes``: the distinct non-ignored labels of the batch (background K
    included when present, so it takes one of the ``num_sampled`` places) are kept, and further classes are drawn
    without replacement with probability :math:`\propto n_j^{\text{freq\_power}}` (:math:`n_j` = images
    containing class j) until ``num_sampled`` classes are reached (or no class with non-zero probability is
    left). Sampling runs in float32 on the generator's device (the labels' device without one).

    Args:
        labels: ``[R]`` int64 labels, already validated.
        image_counts: ``[K]`` non-negative image counts.
        num_sampled, freq_power, generator, ignore_index: see :func:`federated_loss`.

    Returns:
        int64 class indices (present labels first, then sampled ones) on ``labels``' device; may contain K.
    """
    num_classes = image_counts.shape[0]
    device = generator.device if generator is not None else labels.device
    present = torch.unique(labels[labels != ignore_index]).to(device)
    if present.numel() >= num_sampled:
        return present.to(labels.device)
    prob = torch.zeros(num_classes + 1, dtype=torch.float32, device=device)
    prob[:num_classes] = image_counts.detach().to(device=device, dtype=torch.float32).pow(freq_power)
    prob[present] = 0.0
    draws = min(num_sampled - present.numel(), int((prob > 0).sum()))
    if draws == 0:
        return present.to(labels.device)
    sampled = torch.multinomial(prob, draws, replacement=False, generator=generator)
    return torch.cat([present, sampled]).to(labels.device)


def federated_loss(
    logits: Tensor,
    labels: Tensor,
    image_counts: Statistic,
    *,
    num_sampled: int = 50,
    freq_power: float = 0.5,
    generator: torch.Generator | None = None,
    sample_weight: Tensor | None = None,
    ignore_index: int = -1,
    reduction: str = "mean",
    normalizer: Normalizer | None = None,
) -> Tensor:
    r"""Sigmoid BCE restricted to the batch's classes plus frequency-sampled negative classes.

    Zhou, Koltun, Krähenbühl, "Probabilistic two-stage detection", arXiv:2103.07461, 2021 (federated loss, as
    detectron2's ``FastRCNNOutputLayers`` with ``use_fed_loss``):

    .. math::

        \ell_i = s_i \sum_{j \in \mathcal{C}} \mathrm{BCE}(x_{ij}, y_{ij})

    where :math:`\mathcal{C}` is :func:`federated_classes` (labels of the batch and negatives sampled
    :math:`\propto n_j^{\text{freq\_power}}`, ``num_sampled`` classes in all) and :math:`y_{ij}` the one-hot
    target (all zeros for background). 'mean' divides by the number of non-ignored proposals with a sample weight
    > 0 (R without weights, as detectron2), unless ``normalizer`` is given.

    Args:
        logits: ``[R, K]`` foreground logits.
        labels: ``[R]`` int64 in ``[0, K]`` (K = background) or ``ignore_index``.
        image_counts: ``[K]`` number of training images containing each class.
        num_sampled: number of classes per batch, present ones included (50 in the paper and detectron2).
        freq_power: exponent of the image counts in the sampling probability (0.5).
        generator: ``torch.Generator`` for the sampling (its device is where sampling runs), or None for the
            global generator.
        sample_weight, ignore_index, reduction, normalizer: see :func:`weighted_cross_entropy`.

    Returns:
        ``[R]`` for 'none', else a scalar; float32 (float64 for float64 logits).

    Example:
        >>> import torch
        >>> logits = torch.randn(4, 6, requires_grad=True)
        >>> loss = federated_loss(logits, torch.tensor([0, 2, 6, 1]), [90, 40, 10, 5, 1, 1], num_sampled=5,
        ...                       generator=torch.Generator().manual_seed(0))
        >>> loss.backward()
        >>> # 5 places: present classes 0, 1, 2, background (6), and one sampled negative class
        >>> int((logits.grad.abs().sum(dim=0) > 0).sum())
        4
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
    counts = as_statistic(image_counts, "image_counts", length=batch.num_classes, like=batch.x)
    num_sampled = check_integer(num_sampled, "num_sampled", minimum=1)
    freq_power = check_number(freq_power, "freq_power", low=0.0)
    return _loss(batch, counts=counts, num_sampled=num_sampled, freq_power=freq_power, generator=generator)


def _loss(
    batch: Batch, *, counts: Tensor, num_sampled: int, freq_power: float, generator: torch.Generator | None
) -> Tensor:
    """:func:`federated_loss` of a checked batch, ``[K]`` image counts and settings."""
    num_classes = batch.num_classes
    if num_sampled > num_classes:
        # room for every class: the present ones and each one with a sampling probability > 0 (the draw's float32)
        # are all drawn, whatever the generator gives, so the classes need no draw (and no read-back)
        drawn = counts.detach().to(device=batch.x.device, dtype=torch.float32).pow(freq_power) > 0
        present = torch.zeros(num_classes + 1, dtype=torch.bool, device=batch.x.device)
        present = present.index_fill_(0, batch.classes, True)[:num_classes]
        trained = (drawn | present).to(batch.x.dtype)
    else:
        classes = federated_classes(
            torch.where(batch.valid, batch.classes, batch.ignore_index),  # a label out of range: background
            counts,
            num_sampled=num_sampled,
            freq_power=freq_power,
            generator=generator,
            ignore_index=batch.ignore_index,
        )
        trained = batch.x.new_zeros(num_classes + 1).index_fill_(0, classes.to(batch.x.device), 1.0)[:num_classes]
    # 1 for the classes trained on, 0 for the others
    return sigmoid_bce(batch, weights=ColumnWeights(neg=trained, pos=trained))[0]


class FederatedLoss(ClassificationLoss):
    """Module form of :func:`federated_loss` owning its sampling generator; test-time scores are sigmoid.

    Args:
        num_classes: K (the classifier outputs K logits).
        image_counts: ``[K]`` number of training images containing each class.
        num_sampled, freq_power: see :func:`federated_loss`.
        seed: seed of the module's CPU ``torch.Generator``; None draws it from the global torch generator at
            construction (reproducible under ``torch.manual_seed``, and different per rank when ranks are seeded
            differently). The generator state is not checkpointed.
        prior_prob: probability the class logits start at (:meth:`initial_bias`); 0.01 as Detic
            (``MODEL.ROI_BOX_HEAD.PRIOR_PROB``) initialises its federated sigmoid classifier.
        reduction, ignore_index: defaults for :meth:`forward`.

    Example:
        >>> import torch
        >>> loss_fn = FederatedLoss(6, [90, 40, 10, 5, 1, 1], num_sampled=4, seed=0)
        >>> loss = loss_fn(torch.randn(4, 6), torch.tensor([0, 2, 6, 1]))
    """

    image_counts: Tensor

    def __init__(
        self,
        num_classes: int,
        image_counts: Statistic,
        *,
        num_sampled: int = 50,
        freq_power: float = 0.5,
        seed: int | None = None,
        prior_prob: float = 0.01,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> None:
        super().__init__(num_classes, reduction=reduction, ignore_index=ignore_index)
        self.prior_prob = check_prior_prob(prior_prob)
        counts = as_statistic(image_counts, "image_counts", length=num_classes)
        self.register_buffer("image_counts", counts, persistent=False)
        self.num_sampled = check_integer(num_sampled, "num_sampled", minimum=1)
        self.freq_power = check_number(freq_power, "freq_power", low=0.0)
        self.seed = int(torch.randint(0, 2**62, ())) if seed is None else check_integer(seed, "seed", minimum=0)
        self.generator = torch.Generator().manual_seed(self.seed)

    @classmethod
    def from_stats(
        cls,
        num_classes: int,
        stats: Any,
        *,
        num_sampled: int = 50,
        freq_power: float = 0.5,
        seed: int | None = None,
        prior_prob: float = 0.01,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> FederatedLoss:
        """Build from a ClassStats (or WeightsFile): ``image_counts`` = its per-class image counts."""
        counts = list(class_stats(stats, num_classes).image_counts)
        return cls(
            num_classes,
            counts,
            num_sampled=num_sampled,
            freq_power=freq_power,
            seed=seed,
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
        return _loss(
            batch,
            counts=self.image_counts,
            num_sampled=self.num_sampled,
            freq_power=self.freq_power,
            generator=self.generator,
        )

    def predict_scores(self, logits: Tensor) -> Tensor:
        return sigmoid_scores(logits)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, num_sampled={self.num_sampled}, freq_power={self.freq_power}, "
            f"seed={self.seed}, prior_prob={self.prior_prob}"
        )


__all__ = ["federated_classes", "federated_loss", "FederatedLoss"]
