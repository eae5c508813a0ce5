"""Eager checks shared by the calibration functions: every one raises ``ValueError`` naming the bad value."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .._checks import check_number

Counts = Tensor | Sequence[int] | Sequence[float]

#: How NorCal rescales the foreground columns of a softmax head (the reference's three modes).
NORCAL_ON = ("probs", "exps", "logits")
#: ``power``: ``1 / n_c ** gamma``; ``class_balanced``: ``(1 - beta) / (1 - beta ** n_c)`` with ``beta = gamma``.
NORCAL_VARIANTS = ("power", "class_balanced")


def compute_dtype(x: Tensor) -> torch.dtype:
    """float64 for float64 input, float32 otherwise (half precision included)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def check_gamma(gamma, variant: str = "power") -> float:
    """``gamma`` as a float: finite and >= 0 (``power``), in [0, 1) for ``class_balanced`` (there it is beta)."""
    check_choice("variant", variant, NORCAL_VARIANTS)
    check_number("gamma", gamma, minimum=0)
    if variant == "class_balanced" and gamma >= 1:
        raise ValueError(f"gamma={gamma!r} is beta of the class-balanced variant; expected 0 <= beta < 1")
    return float(gamma)


def check_choice(what: str, value, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{what}={value!r}; expected one of {list(choices)}")
    return value


def check_counts(class_counts: Counts, device=None, dtype=torch.float64) -> Tensor:
    """``class_counts[K]`` as a tensor: 1-D, non-empty, every count finite and > 0 (a zero count has no prior)."""
    counts = (
        torch.as_tensor(class_counts, dtype=dtype, device=device)
        if not isinstance(class_counts, Tensor)
        else class_counts.detach().to(device=device, dtype=dtype)
    )
    if counts.dim() != 1 or counts.numel() == 0:
        raise ValueError(
            f"class_counts must be 1-D with one entry per foreground class, got shape {tuple(counts.shape)}"
        )
    bad = (~torch.isfinite(counts)) | (counts <= 0)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"class_counts[{i}]={counts[i].item()!r}; expected a finite count > 0 for every class "
            "(training images of the class)"
        )
    return counts


def check_logits(logits: Tensor, columns: int, layout: str) -> Tensor:
    """``logits`` in the compute dtype after checking it is a 2-D floating tensor with ``columns`` columns."""
    if not isinstance(logits, Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a 2-D floating tensor {layout}, got {shape}")
    if logits.shape[1] != columns:
        raise ValueError(
            f"logits have {logits.shape[1]} columns; expected {layout} = {columns} (K = number of class counts)"
        )
    return logits.to(compute_dtype(logits))


def check_thresholds(thresholds, num_classes: int) -> Tensor:
    """``thresholds[K]`` as a float64 tensor, every entry in [0, 1]."""
    t = (
        torch.as_tensor(thresholds, dtype=torch.float64)
        if not isinstance(thresholds, Tensor)
        else thresholds.detach().to(torch.float64)
    )
    if t.dim() != 1 or t.numel() != num_classes:
        raise ValueError(f"thresholds has shape {tuple(t.shape)}; expected one per class ({num_classes},)")
    bad = ~((t >= 0) & (t <= 1))
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(f"thresholds[{i}]={t[i].item()!r}; expected a score threshold in [0, 1]")
    return t
