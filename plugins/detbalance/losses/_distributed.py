"""Summing per-step statistics over all ranks for the stateful losses (EQLv2, Seesaw)."""
from __future__ import annotations

import torch.distributed as dist
from torch import Tensor


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """Sum ``tensor`` in place over all ranks when ``torch.distributed`` is initialized; return it.

    Every rank must call this the same number of times (it is a collective), which the losses guarantee by
    calling it once per forward (Seesaw) or once per backward through the logits (EQLv2), empty batches included.
    """
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor
