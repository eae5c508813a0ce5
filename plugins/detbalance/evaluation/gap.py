"""How much of the baseline's gap to the oracle a method closes: one statistic, the ratio of the means.

.. math::

    g = \\frac{\\bar m - \\bar b}{\\bar o - \\bar b}

with :math:`\\bar m`, :math:`\\bar b`, :math:`\\bar o` the means over seeds of the method's, the baseline's (CE) and
the oracle's metric (APr). Each row's mean is over its own seeds. The mean of per-seed fractions is not used: a
seed whose oracle is weak has a small denominator and inflates it. :func:`bootstrap_gap_interval` gives a
percentile interval: every bootstrap sample draws each row's seeds with replacement, independently, and takes the
ratio of the resampled means (samples whose oracle does not exceed the baseline are dropped and counted).

Example:
    >>> round(gap_closed([12.0, 14.0], [2.0, 3.0, 1.0], [22.0, 24.0, 20.0]), 4)
    0.55
    >>> low, high, kept = bootstrap_gap_interval([12.0, 14.0], [2.0, 3.0, 1.0], [22.0, 24.0, 20.0], samples=200)
    >>> low <= 0.55 <= high, kept
    (True, 200)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["gap_closed", "bootstrap_gap_interval"]


def _values(name: str, values) -> np.ndarray:
    array = np.asarray(list(values), dtype=np.float64)
    if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        raise ValueError(f"{name}={list(values)!r}; expected one or more finite numbers")
    return array


def gap_closed(method, baseline, oracle) -> float | None:
    """The ratio of the means (module docstring) of the per-seed metrics ``method``, ``baseline``, ``oracle``;
    ``None`` when the oracle's mean does not exceed the baseline's (no gap to close)."""
    m, b, o = _values("method", method), _values("baseline", baseline), _values("oracle", oracle)
    gap = o.mean() - b.mean()
    return None if gap <= 0 else float((m.mean() - b.mean()) / gap)


def bootstrap_gap_interval(
    method, baseline, oracle, *, samples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float, int]:
    """``(low, high, kept)``: the ``level`` percentile interval of :func:`gap_closed` over ``samples`` bootstrap
    draws of each row's seeds, and how many draws had a gap (``kept``; the interval is NaN when none had)."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples={samples!r}; expected an int >= 1")
    if not 0 < level < 1:
        raise ValueError(f"level={level!r}; expected a number in (0, 1)")
    m, b, o = _values("method", method), _values("baseline", baseline), _values("oracle", oracle)
    rng = np.random.default_rng(seed)

    def means(x: np.ndarray) -> np.ndarray:
        return x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1)

    mm, bb, oo = means(m), means(b), means(o)
    ok = oo > bb
    if not ok.any():
        return math.nan, math.nan, 0
    ratios = (mm[ok] - bb[ok]) / (oo[ok] - bb[ok])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high), int(ok.sum())
