"""Seesaw loss (Wang et al., "Seesaw Loss for Long-Tailed Instance Segmentation", CVPR 2021)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ._base import (
    Batch,
    ClassificationLoss,
    Normalizer,
    Statistic,
    all_reduce_sum,
    as_statistic,
    check_batch,
    check_logits,
    check_number,
    class_stats,
    reduce_rows,
)

LAYOUT = "[R, K + 2]"


def seesaw_loss(
    logits: Tensor,
    labels: Tensor,
    cum_samples: Statistic,
    *,
    p: float = 0.8,
    q: float = 2.0,
    eps: float = 1e-2,
    sample_weight: Tensor | None = None,
    ignore_index: int = -1,
    reduction: str = "mean",
    normalizer: Normalizer | None = None,
) -> Tensor:
    r"""Seesaw cross-entropy over K classes plus a 2-way objectness cross-entropy, as MMDetection's SeesawLoss.

    Wang et al., "Seesaw Loss for Long-Tailed Instance Segmentation", CVPR 2021. The logits hold K class
    columns then 2 objectness columns (object, background). For a proposal of foreground class :math:`y = i`:

    .. math::

        \ell^{cls} = -\log \frac{e^{z_i}}{e^{z_i} + \sum_{j \ne i} S_{ij} e^{z_j}},\quad
        S_{ij} = \underbrace{\min\!\big(1, (N_j / N_i)^p\big)}_{\text{mitigation}}\;
                 \underbrace{\max\!\big(1, (\sigma_j / \max(\sigma_i, \epsilon))^q\big)}_{\text{compensation}}

    with :math:`N` the cumulative per-class sample counts (clamped to >= 1) and :math:`\sigma` the softmax of
    the class logits, treated as a constant (no gradient), as in the reference code. Every proposal adds the
    objectness term :math:`\ell^{obj} = \mathrm{CE}(z^{obj}, [y = K])`; background proposals have no class term.

    :math:`\ell_i = s_i (\ell^{cls}_i + \ell^{obj}_i)`. 'mean' divides by the number of non-ignored proposals
    with a sample weight > 0, unless ``normalizer`` is given; both terms share that denominator. This equals
    ``loss_cls_classes + loss_cls_objectness`` of MMDetection's ``SeesawLoss`` called with that count as
    ``avg_factor`` (the value its bbox heads pass); MMDetection without ``avg_factor`` would instead average the
    class term over the foreground proposals only.

    The class term is computed on the foreground rows only and in the log domain, as
    :math:`\mathrm{CE}(z + \log S_{i\cdot}, i)` with :math:`\log S_{ij} = p \min(0, \log N_j - \log N_i) +
    q \max(0, \log \sigma_j - \log \max(\sigma_i, \epsilon))`, which is 0 for :math:`j = i`.

    Args:
        logits: ``[R, K + 2]``: K class logits, then objectness (object, background).
        labels: ``[R]`` int64 in ``[0, K]`` (K = background) or ``ignore_index``.
        cum_samples: ``[K]`` cumulative foreground sample counts :math:`N_j` (:class:`SeesawLoss` keeps them).
        p: mitigation exponent (0 disables it). q: compensation exponent (0 disables it).
        eps: lower bound of :math:`\sigma_i` in the compensation ratio.
        sample_weight, ignore_index, reduction, normalizer: see :func:`weighted_cross_entropy`.

    Returns:
        ``[R]`` for 'none', else a scalar; float32 (float64 for float64 logits).

    Example:
        >>> import torch
        >>> logits = torch.randn(4, 5, requires_grad=True)  # K = 3
        >>> loss = seesaw_loss(logits, torch.tensor([0, 2, 3, 1]), torch.tensor([1000.0, 10.0, 1.0]))
        >>> loss.backward()
    """
    batch = check_batch(
        logits,
        labels,
        extra_columns=2,
        layout=LAYOUT,
        sample_weight=sample_weight,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
    )
    counts = as_statistic(cum_samples, "cum_samples", length=batch.num_classes, like=batch.x)
    p, q, eps = _check_settings(p, q, eps)
    return _loss(batch, cum_samples=counts, p=p, q=q, eps=eps)


def _check_settings(p: float, q: float, eps: float) -> tuple[float, float, float]:
    return (
        check_number(p, "p", low=0.0),
        check_number(q, "q", low=0.0),
        check_number(eps, "eps", low=0.0, low_open=True),
    )


def _loss(batch: Batch, *, cum_samples: Tensor, p: float, q: float, eps: float) -> Tensor:
    """:func:`seesaw_loss` of a checked batch, ``[K]`` counts and settings. The foreground rows are found with a
    read-back (``nonzero``), as the reference code's boolean indexing."""
    x, num_classes = batch.x, batch.num_classes
    counts = cum_samples.to(x).clamp(min=1.0)
    foreground = batch.classes < num_classes  # ignored rows have class K
    fg_rows = foreground.nonzero().flatten()
    fg_labels = batch.classes[fg_rows]
    class_logits = x.detach().index_select(0, fg_rows)[:, :num_classes]

    # log S_ij of the foreground rows, a constant of the loss (no gradient); log S_ii = 0 by construction
    log_factor = None
    if q > 0:
        log_scores = torch.log_softmax(class_logits, dim=1)
        self_score = log_scores.gather(1, fg_labels[:, None]).clamp(min=math.log(eps))
        log_factor = log_scores.sub_(self_score).clamp_(min=0.0).mul_(q)
    if p > 0:
        log_counts = counts.log()
        mitigation = (log_counts[None, :] - log_counts[fg_labels][:, None]).clamp_(max=0.0).mul_(p)
        log_factor = mitigation if log_factor is None else log_factor.add_(mitigation)
    if log_factor is not None:
        class_logits = class_logits + log_factor
    rows = _SeesawRows.apply(x, class_logits, fg_rows, fg_labels, (~foreground).long())
    return reduce_rows(rows, batch)


class _SeesawRows(torch.autograd.Function):
    """Per-row ``CE(z^obj, [y = K]) + [y < K] CE(z_{:K} + log S, y)`` of ``x[R, K + 2]``, with one gradient tensor.

    ``class_logits[F, K]`` are the class columns of the F foreground rows ``fg_rows`` plus ``log S`` (a copy
    without gradient: the gradient of the class term with respect to those columns of ``x`` is that of the
    cross-entropy of the shifted logits, ``log S`` being a constant). The same values and gradient as the
    composition of slices, ``index_select`` and two ``F.cross_entropy`` calls, whose backward materialises a zero
    ``[R, K + 2]`` tensor per slice; here the backward writes the objectness columns of every row and the class
    columns of the foreground rows into one.
    """

    @staticmethod
    def forward(ctx, x, class_logits, fg_rows, fg_labels, objectness_target):
        num_classes = x.shape[1] - 2
        objectness = torch.log_softmax(x[:, num_classes:], dim=1)
        log_probs = torch.log_softmax(class_logits, dim=1)
        rows = -objectness.gather(1, objectness_target[:, None]).squeeze(1)
        rows.index_add_(0, fg_rows, -log_probs.gather(1, fg_labels[:, None]).squeeze(1))
        ctx.save_for_backward(objectness, log_probs, fg_rows, fg_labels, objectness_target)
        return rows

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_rows):
        objectness, log_probs, fg_rows, fg_labels, objectness_target = ctx.saved_tensors
        num_classes = log_probs.shape[1]
        grad = grad_rows.new_zeros(grad_rows.shape[0], num_classes + 2)
        grad_objectness = objectness.exp().scatter_add_(
            1, objectness_target[:, None], objectness.new_full((objectness.shape[0], 1), -1.0)
        )
        grad[:, num_classes:] = grad_objectness.mul_(grad_rows[:, None])
        grad_classes = log_probs.exp().scatter_add_(1, fg_labels[:, None], log_probs.new_full((len(fg_rows), 1), -1.0))
        grad[:, :num_classes].index_copy_(0, fg_rows, grad_classes.mul_(grad_rows.index_select(0, fg_rows)[:, None]))
        return grad, None, None, None, None


def seesaw_scores(logits: Tensor) -> Tensor:
    """Seesaw scores of ``logits[R, K + 2]`` (K class logits, then 2 objectness logits) -> ``[R, K + 1]``.

    ``scores[:, :K] = softmax(logits[:, :K]) * obj[:, 0]`` and ``scores[:, K] = obj[:, 1]`` where
    ``obj = softmax(logits[:, K:])`` (objectness column 0 = object, column 1 = background), as MMDetection's
    ``SeesawLoss``.

    Example:
        >>> import torch
        >>> seesaw_scores(torch.zeros(1, 4)).tolist()
        [[0.25, 0.25, 0.5]]
    """
    x = check_logits(logits, extra_columns=2, layout=LAYOUT)[0]
    classes = torch.softmax(x[:, :-2], dim=1)
    objectness = torch.softmax(x[:, -2:], dim=1)
    return torch.cat([classes * objectness[:, :1], objectness[:, 1:]], dim=1)


class SeesawLoss(ClassificationLoss):
    """Module form of :func:`seesaw_loss` that counts the samples seen; test-time scores: :func:`seesaw_scores`.

    Buffer (in ``state_dict``): ``cum_samples[K]``, int64 so that counts stay exact however long training runs
    and survive ``.half()``/``.double()``. In training mode each ``forward`` first adds the foreground labels of
    its non-ignored proposals whose sample weight is > 0 (a box removed from the loss moves no count), summed over
    ranks when ``torch.distributed`` is initialized, then computes the loss with the updated counts, as the
    reference code (a call whose input is refused leaves them unchanged); in eval mode the counts are left
    unchanged. The sum over ranks runs in every training
    ``forward``, empty batches included, so every rank must call it once per step (the adapters do, also when a
    rank has no proposal).

    Args:
        num_classes: K (the classifier outputs K + 2 logits).
        p, q, eps: see :func:`seesaw_loss` (defaults of the paper: 0.8, 2.0, 1e-2).
        reduction, ignore_index: defaults for :meth:`forward`.

    Example:
        >>> import torch
        >>> loss_fn = SeesawLoss(3)
        >>> loss = loss_fn(torch.randn(4, 5), torch.tensor([0, 2, 3, 0]))
        >>> loss_fn.cum_samples.tolist()
        [2, 0, 1]
    """

    extra_columns = 2
    layout = LAYOUT
    state_buffers = ("cum_samples",)
    cum_samples: Tensor

    def __init__(
        self,
        num_classes: int,
        *,
        p: float = 0.8,
        q: float = 2.0,
        eps: float = 1e-2,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> None:
        super().__init__(num_classes, reduction=reduction, ignore_index=ignore_index)
        self.p, self.q, self.eps = _check_settings(p, q, eps)
        self.register_buffer("cum_samples", torch.zeros(num_classes, dtype=torch.int64))

    @classmethod
    def from_stats(
        cls,
        num_classes: int,
        stats: Any,
        *,
        p: float = 0.8,
        q: float = 2.0,
        eps: float = 1e-2,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> SeesawLoss:
        """Build for the classes of ``stats`` (checked against K); Seesaw counts its samples while training."""
        class_stats(stats, num_classes)
        return cls(num_classes, p=p, q=q, eps=eps, reduction=reduction, ignore_index=ignore_index)

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
            extra_columns=2,
            layout=LAYOUT,
            sample_weight=sample_weight,
            ignore_index=self.ignore_index,
            reduction=self._reduction(reduction_override),
            normalizer=normalizer,
        )
        if not self.training:
            return _loss(batch, cum_samples=self.cum_samples, p=self.p, q=self.q, eps=self.eps)
        step = all_reduce_sum(self._counts(batch))
        loss = _loss(batch, cum_samples=self.cum_samples + step, p=self.p, q=self.q, eps=self.eps)
        self.cum_samples += step  # after the loss's checks: a call that raises leaves the counts unchanged
        return loss

    @torch.no_grad()
    def _counts(self, batch: Batch) -> Tensor:
        """``[K]`` foreground labels of the kept rows whose sample weight is > 0 (no read-back)."""
        k = self.num_classes
        counted = (batch.row_weight > 0) & (batch.classes < k)
        index = torch.where(counted, batch.classes, k).to(self.cum_samples.device)
        return torch.zeros(k + 1, dtype=torch.int64, device=index.device).index_add_(0, index, torch.ones_like(index))[
            :k
        ]

    def predict_scores(self, logits: Tensor) -> Tensor:
        return seesaw_scores(logits)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}, q={self.q}, eps={self.eps}"


__all__ = ["seesaw_loss", "seesaw_scores", "SeesawLoss"]
