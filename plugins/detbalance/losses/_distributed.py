"""Summing per-step statistics over all ranks for the stateful losses (EQLv2, Seesaw)."""

from __future__ import annotations

import torch.distributed as dist
from torch import Tensor


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` over all ranks when ``torch.distributed`` is initialized; return the sum.

    The sum is written into ``tensor`` when it is contiguous; a non-contiguous view (e.g. a column slice) is
    summed in a contiguous copy, which is returned (collectives read and write contiguous memory only).
    Every rank must call this the same number of times (it is a collective), which the losses guarantee by
    calling it once per training forward (Seesaw) or once per backward through the logits (EQLv2), empty
    batches included.
    """
    if dist.is_available() and dist.is_initialized():
        tensor = tensor.contiguous()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor
