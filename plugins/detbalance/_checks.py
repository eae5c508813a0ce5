"""Eager checks of scalar arguments shared by every layer: each raises ``ValueError`` naming the bad value.

Standard library only, so that every module of detbalance (``losses`` included) may import it.

>>> check_int("max_dets", 100, minimum=1)
100
>>> check_int("max_dets", True, minimum=1)
Traceback (most recent call last):
    ...
ValueError: max_dets=True; expected an integer >= 1
>>> check_number("weight", 0.5, minimum=0)
0.5
>>> check_number("weight", "0.5", minimum=0)
Traceback (most recent call last):
    ...
ValueError: weight='0.5'; expected a finite number >= 0
"""
from __future__ import annotations

import math
import numbers


def _bounds(kind: str, minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an ``int`` after checking it is an integer (not a bool) within the given bounds.

    Python and numpy integers pass; bools, floats (``1.0`` too) and strings do not.

    Args:
        name: how the message names the value (``"num_classes"``, ``"Schedule.iters"``).
        value: the value to check.
        minimum, maximum: inclusive bounds, ``None`` for none.

    Raises:
        ValueError: ``"{name}={value!r}; expected an integer >= {minimum}"`` (or ``in [minimum, maximum]``,
            ``<= maximum``, ``an integer``).

    >>> check_int("seed", 0, minimum=0)
    0
    >>> check_int("num_classes", 9, minimum=2, maximum=8)
    Traceback (most recent call last):
        ...
    ValueError: num_classes=9; expected an integer in [2, 8]
    """
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or (minimum is not None and value < minimum) or (maximum is not None and value > maximum)):
        raise ValueError(f"{name}={value!r}; expected {_bounds('an integer', minimum, maximum)}")
    return int(value)


def check_number(name: str, value, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """``value`` as a ``float`` after checking it is a finite real number (not a bool, not a string) in bounds.

    Raises:
        ValueError: ``"{name}={value!r}; expected a finite number >= {minimum}"`` (or ``in [minimum, maximum]``,
            ``<= maximum``, ``a finite number``).

    >>> check_number("score_threshold", 1, minimum=0, maximum=1)
    1.0
    >>> check_number("gamma", float("nan"))
    Traceback (most recent call last):
        ...
    ValueError: gamma=nan; expected a finite number
    """
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or (minimum is not None and value < minimum) or (maximum is not None and value > maximum)):
        raise ValueError(f"{name}={value!r}; expected {_bounds('a finite number', minimum, maximum)}")
    return float(value)
