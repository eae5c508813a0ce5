r"""The inverse effective number of samples (Cui et al., "Class-Balanced Loss Based on Effective Number of
Samples", CVPR 2019), the one formula behind the ``'effective_number'`` weighting scheme and the class-balanced
focal loss.

The effective number of ``n`` samples is :math:`E_n = (1 - \beta^n) / (1 - \beta)`; a class's weight is
proportional to :math:`1 / E_n = (1 - \beta) / (1 - \beta^n)`. :math:`1 - \beta^n` is computed as
:math:`-\operatorname{expm1}(n \log \beta)`, which stays accurate for :math:`\beta` close to 1 (where
``1 - beta ** n`` loses digits); :math:`\beta = 0` gives 1 for every count. torch only, so that both
``weights`` and ``losses`` use it.

Example:
    >>> import torch
    >>> w = inverse_effective_number(torch.tensor([1.0, 2.0, 10.0], dtype=torch.float64), 0.9)
    >>> [round(v, 6) for v in w.tolist()]  # 0.1 / (1 - 0.9 ** n)
    [1.0, 0.526316, 0.153534]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["inverse_effective_number"]


def inverse_effective_number(counts: Tensor, beta: float) -> Tensor:
    r""":math:`(1 - \beta) / (1 - \beta^{n})` for every count ``n`` in ``counts``.

    Args:
        counts: sample counts, a floating tensor of any shape; every entry > 0 (a count of 0 has effective
            number 0 and no finite inverse: the callers mask or refuse those first).
        beta: in ``[0, 1)``.

    Returns:
        a tensor like ``counts`` (same shape, dtype and device).

    Raises:
        ValueError: ``beta`` outside ``[0, 1)``.
    """
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0.0 <= beta < 1.0:
        raise ValueError(f"beta={beta!r}; expected a number in [0, 1)")
    if beta == 0:
        return torch.ones_like(counts)
    return (1.0 - beta) / -torch.expm1(counts * math.log(beta))
