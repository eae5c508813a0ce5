"""The accumulated positive/negative gradient ratio shared by EQLv2 and Equalized Focal Loss.

Both losses compute one step's ``[2, K]`` gradient statistics in their forward pass and add them to the
buffers ``pos_grad[K]`` / ``neg_grad[K]`` once the gradient really flows back through the logits (a tensor hook),
summed over ranks; the ratio ``pos_neg[K] = pos_grad / (neg_grad + 1e-10)`` (capped at ``max_ratio`` when given)
then sets the next step's weights.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor

from ._distributed import all_reduce_sum

_RATIO_EPS = 1e-10


def collecting_view(logits: Tensor) -> tuple[Tensor, bool]:
    """``(logits', collect)``: collect is True when a backward pass will run through ``logits``; then logits' is
    a view made for this call, so that the hook put on it ends with this call's graph."""
    collect = torch.is_grad_enabled() and logits.requires_grad
    return (logits.view_as(logits) if collect else logits), collect


def collect_on_backward(logits: Tensor, statistics: Tensor, collect: Callable[[Tensor, Tensor], None]) -> None:
    """Call ``collect(statistics, grad)`` when the gradient of ``logits`` is computed."""
    logits.register_hook(partial(collect, statistics))


@torch.no_grad()
def accumulate_gradient_ratio(
    step: Tensor, pos_grad: Tensor, neg_grad: Tensor, pos_neg: Tensor, max_ratio: float | None = None
) -> None:
    """Add one step's ``[2, K]`` statistics (summed over ranks) to the buffers and refresh ``pos_neg`` in place.

    A step in which no rank saw anything keeps the ratio (its initial value included); that is decided on the
    device (``torch.where``), without reading the statistics back.
    """
    step = all_reduce_sum(step.to(pos_grad.dtype))
    pos_grad += step[0]  # a step without anything adds zeros
    neg_grad += step[1]
    ratio = pos_grad / (neg_grad + _RATIO_EPS)
    if max_ratio is not None:
        ratio.clamp_(max=max_ratio)
    torch.where(step.any(), ratio, pos_neg, out=pos_neg)  # element-wise: pos_neg may be read and written
