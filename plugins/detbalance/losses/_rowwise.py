"""Per-proposal sigmoid losses whose gradient is computed in closed form during the forward pass.

A sigmoid loss over ``logits[R, K]`` is a sum over the K elements of each row, and the gradient of row ``i``'s
sum depends on row ``i`` only. :class:`RowLoss` therefore asks a kernel for ``per_row[R]`` and, when a gradient
is needed, ``grad[R, K] = d per_row[i] / d logits[i, j]`` in one go; backward only scales ``grad`` by the
incoming ``[R]`` gradient. Autograd then keeps one ``[R, K]`` tensor (as softmax cross-entropy keeps its
log-probabilities) instead of the many intermediates of the element-wise formula. Row weights and the reduction
stay outside, in ordinary autograd on ``[R]`` vectors.

Kernels receive ``fg_rows[F]`` (row indices of the foreground proposals) and ``fg_labels[F]`` (their classes):
the one-hot target of a row is 1 at ``(fg_rows[f], fg_labels[f])`` and 0 elsewhere (all zeros for background
and ignored rows). All kernels are written with :func:`torch.nn.functional.softplus` and
:func:`torch.sigmoid`, which are stable for any finite logit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

#: Elements of logits processed at a time: the temporaries of one block stay in the CPU caches (and below the
#: allocator's size for fresh memory mappings), only the ``[R, K]`` gradient is allocated in full.
BLOCK_ELEMENTS = 1 << 17


def row_blocks(x: Tensor):
    """Row slices of ``x[R, K]`` of about :data:`BLOCK_ELEMENTS` elements each."""
    step = max(1, BLOCK_ELEMENTS // max(1, x.shape[1]))
    return [slice(start, start + step) for start in range(0, x.shape[0], step)]


class RowLoss(torch.autograd.Function):
    """``per_row, extra = RowLoss.apply(x, kernel, *args)``.

    ``kernel(x, *args, need_grad=bool)`` returns ``(per_row[R], grad[R, K] or None, extra)``; ``extra`` is a
    tensor without gradient (e.g. statistics gathered on the way) or None, returned as an empty tensor.

    Backward scales the saved ``grad`` in place and returns it, so it allocates nothing. A second backward
    through a retained graph finds the saved gradient already used and recomputes it from ``x``.
    """

    @staticmethod
    def forward(ctx, x: Tensor, kernel: Callable, *args):
        with torch.autocast(x.device.type, enabled=False):  # the kernels compute in x's dtype
            per_row, grad, extra = kernel(x, *args, need_grad=ctx.needs_input_grad[0])
        ctx.kernel, ctx.args, ctx.grad_used = kernel, args, False
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
                grad = ctx.kernel(x, *ctx.args, need_grad=True)[1]
        ctx.grad_used = True
        # through .data: the saved tensor is changed on purpose, and never read again (see grad_used)
        grad.data.mul_(grad_rows[:, None])
        return (grad, None) + (None,) * len(ctx.args)


def target_logits(x: Tensor, fg_rows: Tensor, fg_labels: Tensor) -> Tensor:
    """``x[fg_rows, fg_labels]``: the logit of each foreground proposal's own class, ``[F]``."""
    return x[fg_rows, fg_labels]


class BCEWeights(NamedTuple):
    """The element weights of :func:`bce_kernel`, by name (None: 1 everywhere, or no statistics).

    Attributes:
        neg_weight: ``[K]`` weight of the negative elements of each column.
        fg_neg_weight: ``[K]`` weight of the negative elements of the foreground rows (overrides ``neg_weight``
            there).
        pos_weight: ``[F]`` weight of the positive element of each foreground row.
        row_weight: ``[R]`` row weights; given, the kernel also returns the ``[2, K]`` gradient sums.
    """

    neg_weight: Tensor | None = None
    fg_neg_weight: Tensor | None = None
    pos_weight: Tensor | None = None
    row_weight: Tensor | None = None


def bce_kernel(x: Tensor, fg_rows: Tensor, fg_labels: Tensor, weights: BCEWeights, *, need_grad: bool):
    r"""Weighted sigmoid BCE summed per row: :math:`\sum_j w_{ij} \mathrm{BCE}(x_{ij}, t_{ij})`.

    The element weights come by name in ``weights`` (:class:`BCEWeights`): a negative element
    (:math:`t_{ij} = 0`) weighs ``neg_weight[j]`` (1 when None), or ``fg_neg_weight[j]`` in a foreground row when
    that is given; the positive element of foreground row ``f`` weighs ``pos_weight[f]`` (1 when None). With
    ``row_weight[R]`` the kernel also returns, as its extra, ``[2, K]`` sums
    :math:`\sum_i r_i w_{ij} |\sigma(x_{ij}) - t_{ij}|` over the positive (row 0) and negative (row 1) elements.

    Uses :math:`\mathrm{BCE}(x, 0) = \mathrm{softplus}(x)`, :math:`\mathrm{BCE}(x, 1) = \mathrm{softplus}(-x)` and
    :math:`\partial \mathrm{BCE} / \partial x = \sigma(x) - t`.
    """
    neg_weight, fg_neg_weight, pos_weight, row_weight = weights
    x_t = target_logits(x, fg_rows, fg_labels)
    pos_t = torch.ones_like(x_t) if pos_weight is None else pos_weight
    neg_fg = fg_neg_weight if fg_neg_weight is not None else neg_weight
    neg_t = torch.ones_like(x_t) if neg_fg is None else neg_fg[fg_labels]
    is_fg = None
    if fg_neg_weight is not None:
        is_fg = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device).index_fill_(0, fg_rows, True)
        neg_all = torch.ones_like(fg_neg_weight) if neg_weight is None else neg_weight

    per_row = x.new_empty(x.shape[0])
    grad = torch.empty_like(x) if need_grad else None
    neg_sum = None if row_weight is None else x.new_zeros(x.shape[1])
    for rows in row_blocks(x):
        block = x[rows]
        # element weights of the negative elements of the block (None: all 1, or one weight per column)
        weight = (
            neg_weight
            if is_fg is None or fg_neg_weight is None
            else torch.where(is_fg[rows, None], fg_neg_weight, neg_all)
        )
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
        if neg_sum is not None and row_weight is not None:
            neg_sum += row_weight[rows] @ prob
        if grad is not None and weight is not None:
            prob.mul_(weight)
    per_row.index_add_(0, fg_rows, pos_t * F.softplus(-x_t) - neg_t * F.softplus(x_t))

    stats = None
    prob_t = torch.sigmoid(x_t)
    if row_weight is not None and neg_sum is not None:
        if fg_neg_weight is not None:
            raise ValueError("gradient statistics need one negative weight per class (fg_neg_weight=None)")
        r_t = row_weight[fg_rows]
        pos_sum = torch.zeros_like(neg_sum).index_add_(0, fg_labels, r_t * pos_t * (1.0 - prob_t))
        if neg_weight is not None:
            neg_sum = neg_sum * neg_weight
        neg_sum = neg_sum - torch.zeros_like(neg_sum).index_add_(0, fg_labels, r_t * neg_t * prob_t)
        neg_sum.clamp_min_(0.0)  # a sum of non-negative terms; the subtraction can leave -1 ulp of rounding
        stats = torch.stack([pos_sum, neg_sum])
    if grad is not None:
        grad.index_put_((fg_rows, fg_labels), pos_t * (prob_t - 1.0))
    return per_row, grad, stats


def _focal_term(z: Tensor, gamma: float) -> tuple[Tensor, Tensor]:
    """``g(z) = sigmoid(z)^gamma * softplus(z)`` and ``g'(z) = sigmoid(z)^gamma (gamma (1 - sigmoid(z))
    softplus(z) + sigmoid(z))`` on a small tensor."""
    prob, softplus = torch.sigmoid(z), F.softplus(z)
    power = prob.pow(gamma)
    return power * softplus, power * (gamma * (1.0 - prob) * softplus + prob)


def focal_kernel(x: Tensor, fg_rows: Tensor, fg_labels: Tensor, gamma: float, *, need_grad: bool):
    r"""Sigmoid focal loss (no alpha) summed per row: :math:`\sum_j -(1 - p^t_{ij})^\gamma \log p^t_{ij}`.

    A negative element contributes :math:`g(x) = \sigma(x)^\gamma\,\mathrm{softplus}(x)`, a positive one
    :math:`g(-x)`; with :math:`v = g(x)`, :math:`g'(x) = \gamma (1 - \sigma(x))\, v + \sigma(x)^{\gamma + 1}`.
    """
    per_row = x.new_empty(x.shape[0])
    grad = torch.empty_like(x) if need_grad else None
    for rows in row_blocks(x):
        block = x[rows]
        prob = torch.sigmoid(block)
        power = prob.pow(gamma)
        value = F.softplus(block).mul_(power)
        torch.sum(value, dim=1, out=per_row[rows])
        if grad is not None:
            torch.addcmul(value.addcmul_(value, prob, value=-1.0).mul_(gamma), power, prob, out=grad[rows])
    x_t = target_logits(x, fg_rows, fg_labels)
    g_neg, dg_neg = _focal_term(x_t, gamma)
    g_pos, dg_pos = _focal_term(-x_t, gamma)
    per_row.index_add_(0, fg_rows, g_pos - g_neg)
    if grad is not None:
        grad.index_put_((fg_rows, fg_labels), -dg_pos)
    return per_row, grad, None


def dense_focal_kernel(x: Tensor, labels: Tensor, gamma: float, *, need_grad: bool):
    r""":func:`focal_kernel` for an ``x[R, K]`` of at most :data:`BLOCK_ELEMENTS` elements, by label.

    ``labels[R]``: the positive column of each row (a label outside ``[0, K)``, e.g. background or an ignored
    row's, gives a row without one). With :math:`z = x` on a negative element and :math:`z = -x` on a positive
    one, every element contributes :math:`g(z) = \sigma(z)^\gamma\,\mathrm{softplus}(z)`, and with
    :math:`v = g(z)`, :math:`g'(z) = \gamma (1 - \sigma(z))\, v + \sigma(z)^{\gamma + 1}`, so
    :math:`\partial / \partial x = \pm g'(z)`. One one-hot comparison and two selections over the block, instead
    of finding the foreground rows (a read-back) and correcting their positive elements afterwards, which costs
    less only when the block is large.
    """
    hot = labels[:, None] == torch.arange(x.shape[1], device=x.device)
    z = torch.where(hot, -x, x)
    prob = torch.sigmoid(z)
    power = prob.pow(gamma)
    value = F.softplus(z).mul_(power)
    per_row = value.sum(dim=1)
    grad = None
    if need_grad:
        slope = torch.addcmul(value.addcmul_(value, prob, value=-1.0).mul_(gamma), power, prob)
        grad = torch.where(hot, slope.neg(), slope)
    return per_row, grad, None


def foreground(labels: Tensor, valid: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """``(fg_rows[F], fg_labels[F])``: rows of the kept foreground proposals and their classes."""
    fg_rows = (valid & (labels >= 0) & (labels < num_classes)).nonzero().flatten()
    return fg_rows, labels[fg_rows]


__all__ = [
    "BCEWeights",
    "RowLoss",
    "bce_kernel",
    "dense_focal_kernel",
    "focal_kernel",
    "foreground",
    "row_blocks",
    "target_logits",
]
