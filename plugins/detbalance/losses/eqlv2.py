"""Equalization loss v2 (Tan et al., "Equalization Loss v2: A New Gradient Balance Approach for Long-tailed
Object Detection", CVPR 2021), with the official code's K + 1 sigmoid outputs (the last one an objectness /
background logit), and its test-time scores."""

from __future__ import annotations

from functools import partial
from typing import Any, cast

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
    check_number,
    check_prior_prob,
    class_stats,
)
from ._rowwise import ColumnWeights, accumulate_gradient_ratio, collecting_view, sigmoid_bce

LAYOUT = "[R, K + 1]"
#: Initial positive/negative gradient ratio: large, so that both weights start at 1 (as the reference code).
INITIAL_POS_NEG = 100.0


def eqlv2_weights(
    pos_neg: Tensor, *, mu: float = 0.8, gamma: float = 12.0, alpha: float = 4.0
) -> tuple[Tensor, Tensor]:
    r"""Per-class ``(pos_w[K], neg_w[K])`` from the gradient ratio :math:`g_j` = ``pos_neg[j]``.

    :math:`\mathrm{neg}_j = f(g_j) = 1 / (1 + e^{-\gamma (g_j - \mu)})`, :math:`\mathrm{pos}_j = 1 + \alpha
    (1 - \mathrm{neg}_j)`.
    """
    neg_w = torch.sigmoid(gamma * (pos_neg - mu))
    return 1.0 + alpha * (1.0 - neg_w), neg_w


def _loss(
    batch: Batch, *, pos_neg: Tensor, mu: float, gamma: float, alpha: float, with_statistics: bool = False
) -> tuple[Tensor, Tensor | None]:
    """``(loss, statistics)`` of :func:`eqlv2_loss` for a checked batch and ``[K]`` ratios; the ``[2, K]`` step
    statistics of :func:`eqlv2_gradient_statistics` come from the same pass (None unless ``with_statistics``).

    Every kept row has its positive in column ``labels[i]`` (K, the objectness column, for background rows).
    """
    pos_w, neg_w = eqlv2_weights(pos_neg.to(batch.x), mu=mu, gamma=gamma, alpha=alpha)
    # column K weighs 1 as a positive and as a negative
    weights = ColumnWeights(neg=F.pad(neg_w, (0, 1), value=1.0), pos=F.pad(pos_w, (0, 1), value=1.0))
    loss, statistics = sigmoid_bce(batch, weights=weights, with_statistics=with_statistics)
    # statistics of the K class columns only: the objectness column has none (as the reference code)
    return loss, None if statistics is None else statistics[:, :-1]


def _check_settings(mu: float, gamma: float, alpha: float) -> tuple[float, float, float]:
    return check_number(mu, "mu"), check_number(gamma, "gamma", low=0.0), check_number(alpha, "alpha", low=0.0)


def eqlv2_loss(
    logits: Tensor,
    labels: Tensor,
    pos_neg: Statistic,
    *,
    mu: float = 0.8,
    gamma: float = 12.0,
    alpha: float = 4.0,
    sample_weight: Tensor | None = None,
    ignore_index: int = -1,
    reduction: str = "mean",
    normalizer: Normalizer | None = None,
) -> Tensor:
    r"""Sigmoid BCE over K class columns and an objectness column, re-weighted by the accumulated
    positive/negative gradient ratio of each class.

    Tan et al., "Equalization Loss v2", CVPR 2021, as the official code (tztztztztz/eqlv2) and MMDetection's
    ``EQLV2Loss``: K + 1 logits, the last one (column K) an objectness/background logit trained with the same
    binary cross-entropy, target 1 on background proposals, weight 1 as a positive and as a negative:

    .. math::

        \ell_i = s_i \sum_{j=0}^{K} \big(y_{ij}\,\mathrm{pos}_j + (1 - y_{ij})\,\mathrm{neg}_j\big)
        \mathrm{BCE}(x_{ij}, y_{ij}),\quad \mathrm{neg}_j = \frac{1}{1 + e^{-\gamma (g_j - \mu)}},\quad
        \mathrm{pos}_j = 1 + \alpha (1 - \mathrm{neg}_j),\quad \mathrm{pos}_K = \mathrm{neg}_K = 1

    where :math:`y_i` is the one-hot target over the K + 1 columns (column K for background) and :math:`g_j`
    (``pos_neg``) is the ratio of accumulated positive to negative gradient magnitudes of class j;
    :class:`EQLv2Loss` keeps and updates it. 'mean' divides by the number of non-ignored proposals with a sample
    weight > 0 (the reference divides by the number of rows and has no weights), unless ``normalizer`` is given.
    Test-time scores: :func:`objectness_sigmoid_scores`.

    Args:
        logits: ``[R, K + 1]``: K class logits, then the objectness logit.
        labels: ``[R]`` int64 in ``[0, K]`` (K = background) or ``ignore_index``.
        pos_neg: ``[K]`` current gradient ratios :math:`g_j` (>= 0).
        mu, gamma, alpha: the mapping's centre, steepness and the positive boost.
        sample_weight, ignore_index, reduction, normalizer: see :func:`weighted_cross_entropy`.

    Returns:
        ``[R]`` for 'none', else a scalar; float32 (float64 for float64 logits).

    Example:
        >>> import torch
        >>> logits = torch.zeros(3, 3, requires_grad=True)  # K = 2
        >>> loss = eqlv2_loss(logits, torch.tensor([0, 1, 2]), torch.tensor([100.0, 100.0]))  # weights 1
        >>> round(loss.item(), 4)  # 3 * ln 2
        2.0794
    """
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
    ratio = as_statistic(pos_neg, "pos_neg", length=batch.num_classes, like=batch.x)
    mu, gamma, alpha = _check_settings(mu, gamma, alpha)
    return _loss(batch, pos_neg=ratio, mu=mu, gamma=gamma, alpha=alpha)[0]


@torch.no_grad()
def eqlv2_gradient_statistics(
    logits: Tensor,
    labels: Tensor,
    pos_neg: Statistic,
    *,
    mu: float = 0.8,
    gamma: float = 12.0,
    alpha: float = 4.0,
    sample_weight: Tensor | None = None,
    ignore_index: int = -1,
) -> tuple[Tensor, Tensor]:
    r"""One step's ``(pos_grad[K], neg_grad[K])``: weighted gradient magnitudes of the BCE w.r.t. the K class
    logits (the objectness column is left out, as in the reference code).

    .. math::

        \mathrm{pos}^{grad}_j = \sum_i r_i\, w_{ij}\, y_{ij}\, |\sigma(x_{ij}) - y_{ij}|,\qquad
        \mathrm{neg}^{grad}_j = \sum_i r_i\, w_{ij}\, (1 - y_{ij})\, |\sigma(x_{ij}) - y_{ij}|

    with :math:`w_{ij}` the element weight of :func:`eqlv2_loss` and :math:`r_i` the sample weight (0 for
    ignored proposals). The loss's normalisation is left out, as in the reference code, so the ratio does not
    depend on batch size, loss weight or gradient scaling.
    """
    batch = check_batch(
        logits,
        labels,
        extra_columns=1,
        layout=LAYOUT,
        sample_weight=sample_weight,
        ignore_index=ignore_index,
        reduction="none",
        normalizer=None,
    )
    ratio = as_statistic(pos_neg, "pos_neg", length=batch.num_classes, like=batch.x)
    mu, gamma, alpha = _check_settings(mu, gamma, alpha)
    statistics = cast(Tensor, _loss(batch, pos_neg=ratio, mu=mu, gamma=gamma, alpha=alpha, with_statistics=True)[1])
    return statistics[0], statistics[1]


def objectness_sigmoid_scores(logits: Tensor) -> Tensor:
    """Scores of ``logits[R, K + 1]`` whose last column is a sigmoid background logit -> ``[R, K + 1]``.

    ``scores[:, c] = sigmoid(x_c) * (1 - sigmoid(x_bg))`` for ``c < K`` and ``scores[:, K] = sigmoid(x_bg)``, as
    the official EQLv2 code (Tan et al., CVPR 2021) and MMDetection's ``EQLV2Loss.get_activation``.

    Example:
        >>> import torch
        >>> objectness_sigmoid_scores(torch.zeros(1, 3)).tolist()
        [[0.25, 0.25, 0.5]]
    """
    probs = torch.sigmoid(check_logits(logits, extra_columns=1, layout=LAYOUT)[0])
    background = probs[:, -1:]
    return torch.cat([probs[:, :-1] * (1.0 - background), background], dim=1)


class EQLv2Loss(ClassificationLoss):
    r"""Module form of :func:`eqlv2_loss` that owns the gradient statistics; K + 1 logits (objectness last).

    Test-time score of class c: ``sigmoid(x_c) * (1 - sigmoid(x_bg))`` (:func:`objectness_sigmoid_scores`).

    Buffers (in ``state_dict``): ``pos_grad[K]`` and ``neg_grad[K]`` (accumulated
    :func:`eqlv2_gradient_statistics`) and ``pos_neg[K] = pos_grad / (neg_grad + 1e-10)``, initially 100 so that
    every weight starts at 1. They are float32 and stay so (or wider, after ``.double()``) when the model is cast
    to float16/bfloat16 (:attr:`ClassificationLoss.state_buffers`).

    The statistics of a step are computed during ``forward`` (in the same pass as the loss) and added when the
    gradient reaches the logits (a hook on a view of the logits made by that call, so that a leaf tensor used
    for several steps does not collect hooks), summed over ranks when ``torch.distributed`` is initialized. The
    hook runs in every back-propagated step, also one without any proposal (an empty ``[0, K + 1]`` gradient), so
    every rank joins the sum once per step as long as every rank calls the loss (the adapters make sure of it).
    A forward pass that is not back-propagated (evaluation, ``torch.no_grad``, logits that do not require grad)
    leaves the state unchanged, and so does a step without any proposal on any rank.

    The state format is versioned (``_version`` 2: K + 1 logits). Loading the state of the former K-logit
    layout (version 1) raises ``ValueError`` naming the classifier shapes of both layouts: its classifier
    weights cannot be reused for the K + 1 outputs.

    Args:
        num_classes: K (the classifier outputs K + 1 logits).
        mu, gamma, alpha: see :func:`eqlv2_loss` (defaults of the paper: 0.8, 12, 4).
        prior_prob: probability the K class logits start at (:meth:`initial_bias`); None: bias 0 on every
            column, as the official code.
        reduction, ignore_index: defaults for :meth:`forward`.

    Example:
        >>> import torch
        >>> loss_fn = EQLv2Loss(3)
        >>> loss_fn.num_logits
        4
        >>> logits = torch.randn(4, 4, requires_grad=True)
        >>> loss_fn(logits, torch.tensor([0, 2, 3, 1])).backward()
        >>> bool((loss_fn.pos_grad > 0).all())
        True
    """

    extra_columns = 1
    layout = LAYOUT
    _version = 2

    state_buffers = ("pos_grad", "neg_grad", "pos_neg")
    pos_grad: Tensor
    neg_grad: Tensor
    pos_neg: Tensor

    def __init__(
        self,
        num_classes: int,
        *,
        mu: float = 0.8,
        gamma: float = 12.0,
        alpha: float = 4.0,
        prior_prob: float | None = None,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> None:
        super().__init__(num_classes, reduction=reduction, ignore_index=ignore_index)
        self.prior_prob = None if prior_prob is None else check_prior_prob(prior_prob)
        self.mu, self.gamma, self.alpha = _check_settings(mu, gamma, alpha)
        self.register_buffer("pos_grad", torch.zeros(num_classes))
        self.register_buffer("neg_grad", torch.zeros(num_classes))
        self.register_buffer("pos_neg", torch.full((num_classes,), INITIAL_POS_NEG))

    @classmethod
    def from_stats(
        cls,
        num_classes: int,
        stats: Any,
        *,
        mu: float = 0.8,
        gamma: float = 12.0,
        alpha: float = 4.0,
        prior_prob: float | None = None,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> EQLv2Loss:
        """Build for the classes of ``stats`` (checked against K); EQLv2 learns its statistics while training."""
        class_stats(stats, num_classes)
        return cls(
            num_classes,
            mu=mu,
            gamma=gamma,
            alpha=alpha,
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
        logits, collect = collecting_view(logits)
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
        loss, statistics = _loss(
            batch, pos_neg=self.pos_neg, mu=self.mu, gamma=self.gamma, alpha=self.alpha, with_statistics=collect
        )
        if statistics is not None:
            logits.register_hook(partial(self._collect, statistics))
        return loss

    def _collect(self, step: Tensor, grad: Tensor) -> None:
        accumulate_gradient_ratio(step, pos_grad=self.pos_grad, neg_grad=self.neg_grad, pos_neg=self.pos_neg)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        version = local_metadata.get("version")
        saved = state_dict.get(prefix + "pos_grad")
        if version is not None and version < 2 and saved is not None:
            k = saved.shape[0]
            raise ValueError(
                f"checkpoint entry {prefix}pos_grad comes from the former EQLv2 layout (state version {version}) "
                f"whose box classifier has K = {k} outputs, weight shape ({k}, C); this EQLv2Loss needs K + 1 = "
                f"{self.num_logits} outputs, weight shape ({self.num_logits}, C), the last one the objectness "
                "logit of the official EQLv2: train the model again (or drop the box classifier and the "
                "EQLv2 state from the checkpoint)"
            )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def predict_scores(self, logits: Tensor) -> Tensor:
        return objectness_sigmoid_scores(logits)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, mu={self.mu}, gamma={self.gamma}, alpha={self.alpha}, "
            f"prior_prob={self.prior_prob}"
        )


__all__ = ["eqlv2_weights", "eqlv2_loss", "eqlv2_gradient_statistics", "objectness_sigmoid_scores", "EQLv2Loss"]
