"""Post-hoc logit adjustment by the training class frequencies, for any detbalance head.

Menon et al., "Long-Tail Learning via Logit Adjustment", ICLR 2021: subtract ``gamma * log n_c`` from the logit
of each foreground class ``c`` and score as the head always does:

.. math::

    \\tilde x_{r,c} = x_{r,c} - \\gamma \\log n_c \\quad (c < K), \\qquad \\tilde x_{r,j} = x_{r,j} \\quad (j \\ge K)

``n_c`` is the number of training images containing class ``c``. Only the first ``K`` columns (the class
logits) move; background and objectness columns (softmax CE's background logit, EQLv2's objectness logit, Seesaw's
two objectness logits) stay. For the per-class sigmoid heads (EQL, class-balanced focal, Federated) each class
score becomes ``sigmoid(x_c - gamma * log n_c)``, a strictly increasing function of the old score: the ranking of
boxes within a class never changes, only the scores compared with the detection threshold and across classes do.
EQLv2's ``sigmoid(x_c) * (1 - sigmoid(x_bg))`` keeps that ranking among boxes of equal objectness. For a softmax
head it equals NorCal on ``exps`` with renormalisation.

Shapes: ``logits[R, K + E]`` (``E >= 0`` extra columns after the class logits), ``class_counts[K]`` -> the same
shape. Computed in float32 (float64 for float64 logits); differentiable in ``logits``.

Example:
    >>> import torch
    >>> adjusted = logit_adjust(torch.zeros(1, 2), [100, 1], gamma=1.0)
    >>> [round(v, 3) for v in adjusted[0].tolist()]
    [-4.605, 0.0]
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import Counts, check_counts, check_gamma, compute_dtype

__all__ = ["logit_adjust", "logit_shift"]


def logit_shift(class_counts: Counts, gamma: float, *, device=None, dtype: torch.dtype = torch.float64) -> Tensor:
    """``gamma * log n_c`` per class, ``[K]``; every count must be > 0 and ``gamma >= 0``."""
    gamma = check_gamma(gamma)
    return (gamma * check_counts(class_counts, device=device).log()).to(dtype)


def logit_adjust(logits: Tensor, class_counts: Counts, gamma: float) -> Tensor:
    """``logits`` with ``gamma * log n_c`` subtracted from each class column ``c < K = len(class_counts)``."""
    if not isinstance(logits, Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a 2-D floating tensor [R, K + E], got {shape}")
    num_classes = check_counts(class_counts).numel()
    if logits.shape[1] < num_classes:
        raise ValueError(
            f"logits have {logits.shape[1]} columns; expected at least K = {num_classes} (one per class count)"
        )
    x = logits.to(compute_dtype(logits))
    shift = logit_shift(class_counts, gamma, device=x.device, dtype=x.dtype)
    pad = shift.new_zeros(x.shape[1] - num_classes)
    return x - torch.cat([shift, pad])
