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


def _as_float(value: numbers.Real) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond the float range
        return math.inf


def _within(number: float, minimum: float | None, maximum: float | None) -> bool:
    return (minimum is None or number >= minimum) and (maximum is None or number <= maximum)


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
    number = int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else None
    if number is None or not _within(number, minimum, maximum):
        raise ValueError(f"{name}={value!r}; expected {_bounds('an integer', minimum, maximum)}")
    return number


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
    number = _as_float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    if not math.isfinite(number) or not _within(number, minimum, maximum):
        raise ValueError(f"{name}={value!r}; expected {_bounds('a finite number', minimum, maximum)}")
    return number
