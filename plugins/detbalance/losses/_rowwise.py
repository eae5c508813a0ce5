r"""Per-proposal losses whose gradient is computed in closed form during the forward pass, and what the sigmoid
losses share: the weighted BCE and the focal kernel, their gradient statistics and the accumulated
positive/negative gradient ratio (EQLv2, Equalized Focal Loss), and the sigmoid test-time scores.

Each loss here is a sum over the C columns of each row of ``logits[R, C]``, whose gradient w.r.t. row ``i``
depends on row ``i`` only. :class:`RowLoss` asks a kernel for ``per_row[R]`` and, when a gradient is needed,
``grad[R, C] = d per_row[i] / d logits[i, j]`` in one go; backward only scales ``grad`` by the incoming ``[R]``
gradient. Autograd keeps that one ``[R, C]`` tensor (as softmax cross-entropy keeps its log-probabilities), and
the kernels process :data:`BLOCK_ELEMENTS` logits at a time, so that their temporaries stay in the CPU caches.

A kernel takes ``labels[R]``: the positive column of each row, none for a label outside ``[0, C)``. It reads no
tensor value back: the positive element of every row is corrected with a gather and a scatter over R elements
(rows without one keep their value), and the kernels use :func:`torch.nn.functional.softplus` and
:func:`torch.sigmoid`, stable for any finite logit.

With ``row_weight[R]`` a sigmoid kernel also returns ``[2, C]`` gradient statistics, the sums
:math:`\sum_i r_i |\partial \ell_{ij} / \partial x_{ij}|` over the positive (row 0) and negative (row 1)
elements. EQLv2 and Equalized Focal Loss add them to their buffers ``pos_grad``/``neg_grad`` once the gradient
really flows back through the logits (a tensor hook), summed over ranks, and refresh
``pos_neg = pos_grad / (neg_grad + 1e-10)`` (:func:`accumulate_gradient_ratio`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._base import Batch, Statistic, all_reduce_sum, as_statistic, check_logits, check_number, reduce_rows

#: Elements of logits processed at a time: the temporaries of one block stay in the CPU caches (and below the
#: allocator's size for fresh memory mappings), only the ``[R, C]`` gradient is allocated in full.
BLOCK_ELEMENTS = 1 << 17
_RATIO_EPS = 1e-10


def row_blocks(x: Tensor) -> list[slice]:
    """Row slices of ``x[R, C]`` of about :data:`BLOCK_ELEMENTS` elements each."""
    step = max(1, BLOCK_ELEMENTS // max(1, x.shape[1]))
    return [slice(start, start + step) for start in range(0, x.shape[0], step)]


class RowLoss(torch.autograd.Function):
    """``per_row, extra = RowLoss.apply(x, kernel)``.

    ``kernel(x, need_grad=bool)`` (its other arguments bound, e.g. with :func:`functools.partial`) returns
    ``(per_row[R], grad[R, C] or None, extra)``; ``extra`` is a tensor without gradient (statistics gathered on
    the way) or None, returned as an empty tensor. Backward scales the saved ``grad`` in place and returns it; a
    second backward through a retained graph recomputes it from ``x``.
    """

    @staticmethod
    def forward(ctx, x: Tensor, kernel: Callable):
        with torch.autocast(x.device.type, enabled=False):  # the kernels compute in x's dtype
            per_row, grad, extra = kernel(x, need_grad=ctx.needs_input_grad[0])
        ctx.kernel, ctx.grad_used = kernel, False
        ctx.save_for_backward(x, grad)
        extra = per_row.new_empty(0) if extra is None else extra
        ctx.mark_non_differentiable(extra)
        return per_row, extra

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_rows: Tensor, _grad_extra: Tensor | None):
        x, grad = ctx.saved_tensors
        if ctx.grad_used:
            with torch.autocast(x.device.type, enabled=False):
                grad = ctx.kernel(x, need_grad=True)[1]
        ctx.grad_used = True
        grad.data.mul_(grad_rows[:, None])  # through .data: the saved tensor is never read again (grad_used)
        return grad, None


def row_loss(x: Tensor, kernel: Callable) -> tuple[Tensor, Tensor | None]:
    """``(per_row[R], extra)`` of :class:`RowLoss` (``extra`` None when the kernel returns none)."""
    per_row, extra = RowLoss.apply(x, kernel)
    return per_row, (extra if extra.numel() else None)


class ColumnWeights(NamedTuple):
    """Element weights of :func:`bce_kernel` by column (None: 1 everywhere).

    Attributes:
        neg: ``[C]`` weight of the negative elements of each column.
        fg_neg: ``[C]`` weight of the negative elements of the rows with a positive (overrides ``neg`` there).
        pos: ``[C]`` weight of the positive element of each column.
    """

    neg: Tensor | None = None
    fg_neg: Tensor | None = None
    pos: Tensor | None = None


def _positives(x: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(has_positive[R], column[R], x[i, column[i]])``: the positive column of each row (0 where there is none)."""
    has_positive = (labels >= 0) & (labels < x.shape[1])
    column = torch.where(has_positive, labels, 0)
    return has_positive, column, x.gather(1, column[:, None]).squeeze(1)


def _at(weight: Tensor | None, column: Tensor, like: Tensor) -> Tensor:
    return torch.ones_like(like) if weight is None else weight[column]


def _finish(
    x: Tensor,
    *,
    labels: Tensor,
    per_row: Tensor,
    grad: Tensor | None,
    neg_sum: Tensor | None,
    row_weight: Tensor | None,
    terms: Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor, Tensor]],
) -> Tensor | None:
    """Correct the positive element of every row, which the blocks computed as a negative one: ``terms(x_t,
    column)`` gives its ``(positive value, positive slope, negative value, negative slope)``, weights included,
    slopes as gradient magnitudes. Returns the ``[2, C]`` statistics when ``neg_sum`` is given."""
    has_positive, column, x_t = _positives(x, labels)
    pos_value, pos_slope, neg_value, neg_slope = terms(x_t, column)
    per_row.add_(torch.where(has_positive, pos_value - neg_value, 0.0))
    if grad is not None:
        kept = grad.gather(1, column[:, None]).squeeze(1)
        grad.scatter_(1, column[:, None], torch.where(has_positive, -pos_slope, kept)[:, None])
    if neg_sum is None or row_weight is None:
        return None
    r_t = torch.where(has_positive, row_weight, 0.0)
    pos_sum = torch.zeros_like(neg_sum).index_add_(0, column, torch.where(has_positive, r_t * pos_slope, 0.0))
    neg_sum -= torch.zeros_like(neg_sum).index_add_(0, column, torch.where(has_positive, r_t * neg_slope, 0.0))
    return torch.stack([pos_sum, neg_sum.clamp_min_(0.0)])  # the subtraction can leave -1 ulp of rounding


def bce_kernel(x: Tensor, *, labels: Tensor, weights: ColumnWeights, row_weight: Tensor | None = None, need_grad: bool):
    r"""Weighted sigmoid BCE summed per row, :math:`\sum_j w_{ij}\,\mathrm{BCE}(x_{ij}, t_{ij})`, for
    :class:`RowLoss`: a negative element weighs ``neg[j]``, or ``fg_neg[j]`` in a row with a positive; the
    positive element ``pos[j]`` (:class:`ColumnWeights`). Uses :math:`\mathrm{BCE}(x, 0) = \mathrm{softplus}(x)`,
    :math:`\mathrm{BCE}(x, 1) = \mathrm{softplus}(-x)` and :math:`\partial \mathrm{BCE} / \partial x = \sigma(x)
    - t`."""
    neg, fg_neg, pos = weights
    has_positive = (labels >= 0) & (labels < x.shape[1])
    per_row = x.new_empty(x.shape[0])
    grad = torch.empty_like(x) if need_grad else None
    neg_sum = None if row_weight is None else x.new_zeros(x.shape[1])
    for rows in row_blocks(x):
        block = x[rows]
        weight = neg
        if fg_neg is not None:
            weight = torch.where(has_positive[rows, None], fg_neg, 1.0 if neg is None else neg)
        loss = F.softplus(block)
        if weight is None:
            torch.sum(loss, dim=1, out=per_row[rows])
        elif weight.dim() == 1:
            torch.mv(loss, weight, out=per_row[rows])
        else:
            torch.sum(loss.mul_(weight), dim=1, out=per_row[rows])
        if grad is None and neg_sum is None:
            continue
        prob = torch.sigmoid(block) if grad is None else torch.sigmoid(block, out=grad[rows])
        if weight is not None:
            prob.mul_(weight)
        if neg_sum is not None and row_weight is not None:
            neg_sum += row_weight[rows] @ prob

    def terms(x_t: Tensor, column: Tensor):
        pos_t, neg_t = _at(pos, column, x_t), _at(neg if fg_neg is None else fg_neg, column, x_t)
        prob = torch.sigmoid(x_t)
        return pos_t * F.softplus(-x_t), pos_t * (1.0 - prob), neg_t * F.softplus(x_t), neg_t * prob

    stats = _finish(x, labels=labels, per_row=per_row, grad=grad, neg_sum=neg_sum, row_weight=row_weight, terms=terms)
    return per_row, grad, stats


def sigmoid_bce(batch: Batch, *, weights: ColumnWeights, with_statistics: bool = False) -> tuple[Tensor, Tensor | None]:
    """``(loss, statistics)``: :func:`bce_kernel` on ``batch.x`` with one positive per row, column
    ``batch.classes`` (none where that is the column count), reduced by :func:`~._base.reduce_rows`; the
    ``[2, C]`` statistics weigh each row by its row weight (None unless ``with_statistics``)."""
    row_weight = batch.row_weight.detach() if with_statistics else None
    kernel = partial(bce_kernel, labels=batch.classes, weights=weights, row_weight=row_weight)
    per_row, statistics = row_loss(batch.x, kernel)
    return reduce_rows(per_row, batch), statistics


def _focal_term(z: Tensor, gamma: float | Tensor) -> tuple[Tensor, Tensor]:
    """``g(z) = sigmoid(z)^gamma softplus(z)`` and ``g'(z) = sigmoid(z)^gamma (gamma (1 - sigmoid(z)) softplus(z)
    + sigmoid(z))`` on a small tensor."""
    prob, softplus = torch.sigmoid(z), F.softplus(z)
    power = prob.pow(gamma)
    return power * softplus, power * (gamma * (1.0 - prob) * softplus + prob)


def focal_kernel(
    x: Tensor,
    *,
    labels: Tensor,
    gamma: float | Tensor,
    alpha: Tensor | None = None,
    factor: Tensor | None = None,
    row_weight: Tensor | None = None,
    need_grad: bool,
):
    r"""Sigmoid focal loss summed per row, :math:`\sum_j c_j \alpha^t_{ij} (1 - p^t_{ij})^{\gamma_j}
    (-\log p^t_{ij})`, for :class:`RowLoss`; ``gamma`` a number or ``[C]``, ``alpha`` and ``factor`` :math:`c`
    ``[C]`` or None (1).

    A negative element contributes :math:`c_j (1 - \alpha_j) g_j(x)` with :math:`g_j(x) = \sigma(x)^{\gamma_j}
    \mathrm{softplus}(x)`, a positive one :math:`c_j \alpha_j g_j(-x)`; with :math:`v = g_j(x)`,
    :math:`g_j'(x) = \gamma_j (1 - \sigma(x))\, v + \sigma(x)^{\gamma_j + 1}`.
    """
    neg_weight = None if alpha is None else 1.0 - alpha
    if factor is not None:
        neg_weight = factor if neg_weight is None else neg_weight * factor
    per_row = x.new_empty(x.shape[0])
    grad = torch.empty_like(x) if need_grad else None
    neg_sum = None if row_weight is None else x.new_zeros(x.shape[1])
    for rows in row_blocks(x):
        block = x[rows]
        prob = torch.sigmoid(block)
        power = prob.pow(gamma)
        value = F.softplus(block).mul_(power)
        if neg_weight is None:
            torch.sum(value, dim=1, out=per_row[rows])
        else:
            torch.mv(value, neg_weight, out=per_row[rows])
        if grad is None and neg_sum is None:
            continue
        spread = value.addcmul_(value, prob, value=-1.0).mul_(gamma)  # gamma (1 - p) g(x)
        slope = spread.addcmul_(power, prob) if grad is None else torch.addcmul(spread, power, prob, out=grad[rows])
        if neg_weight is not None:
            slope.mul_(neg_weight)
        if neg_sum is not None and row_weight is not None:
            neg_sum += row_weight[rows] @ slope

    def terms(x_t: Tensor, column: Tensor):
        gamma_t = gamma[column] if isinstance(gamma, Tensor) else gamma
        pos_t = _at(alpha, column, x_t) * (1.0 if factor is None else factor[column])
        neg_t = _at(neg_weight, column, x_t)
        neg_value, neg_slope = _focal_term(x_t, gamma_t)
        pos_value, pos_slope = _focal_term(-x_t, gamma_t)  # d/dx of g(-x) is -g'(-x)
        return pos_t * pos_value, pos_t * pos_slope, neg_t * neg_value, neg_t * neg_slope

    stats = _finish(x, labels=labels, per_row=per_row, grad=grad, neg_sum=neg_sum, row_weight=row_weight, terms=terms)
    return per_row, grad, stats


def check_alpha(alpha: float | Statistic | None, num_classes: int, like: Tensor) -> Tensor | None:
    """The focal ``alpha`` as ``[K]`` values in ``[0, 1]`` (a number is used for every class); None stays None."""
    if alpha is None:
        return None
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        return like.new_full((num_classes,), check_number(alpha, "alpha", low=0.0, high=1.0))
    values = as_statistic(cast(Statistic, alpha), "alpha", length=num_classes, like=like)
    if bool((values > 1).any()):
        position = int((values > 1).nonzero()[0, 0])
        raise ValueError(f"alpha must lie in [0, 1] for every class, got {values[position].item()} at index {position}")
    return values


def positive_count(batch: Batch) -> Tensor:
    """Default 'mean' denominator of the dense losses: the non-ignored foreground rows, at least 1 (RetinaNet)."""
    return (batch.classes < batch.num_classes).sum().clamp(min=1)


def collecting_view(logits: Tensor) -> tuple[Tensor, bool]:
    """``(logits', collect)``: collect is True when a backward pass will run through ``logits``; logits' is then a
    view made for this call, so that the hook put on it ends with this call's graph."""
    collect = torch.is_grad_enabled() and logits.requires_grad
    return (logits.view_as(logits) if collect else logits), collect


@torch.no_grad()
def accumulate_gradient_ratio(
    step: Tensor, *, pos_grad: Tensor, neg_grad: Tensor, pos_neg: Tensor, max_ratio: float | None = None
) -> None:
    """Add one step's ``[2, K]`` statistics (summed over ranks) to the buffers and refresh ``pos_neg`` in place;
    a step in which no rank saw anything keeps the ratio, decided on the device (no read-back)."""
    step = all_reduce_sum(step.to(pos_grad.dtype))
    pos_grad += step[0]
    neg_grad += step[1]
    ratio = pos_grad / (neg_grad + _RATIO_EPS)
    if max_ratio is not None:
        ratio.clamp_(max=max_ratio)
    torch.where(step.any(), ratio, pos_neg, out=pos_neg)


def sigmoid_scores(logits: Tensor) -> Tensor:
    """Per-class sigmoid of ``logits[R, K]`` plus background ``1 - max_j sigmoid(logit_j)`` -> ``[R, K + 1]``."""
    x, _ = check_logits(logits, extra_columns=0, layout="[R, K]")
    probs = torch.sigmoid(x)
    background = 1.0 - probs.amax(dim=1, keepdim=True) if probs.shape[0] else probs.new_zeros(0, 1)
    return torch.cat([probs, background], dim=1)
