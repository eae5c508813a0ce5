"""Eager checks of the experiments' integer settings: each raises ``ValueError`` naming the bad value.

>>> check_int("seed", 0, minimum=0)
0
>>> check_int("iters", True, minimum=1)
Traceback (most recent call last):
    ...
ValueError: iters=True; expected an integer >= 1
>>> check_int("num_classes", 9, minimum=2, maximum=8)
Traceback (most recent call last):
    ...
ValueError: num_classes=9; expected an integer in [2, 8]
"""

from __future__ import annotations

import numbers

__all__ = ["check_int"]


def _bounds(minimum: int | None, maximum: int | None) -> str:
    if minimum is not None and maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"an integer >= {minimum}"
    if maximum is not None:
        return f"an integer <= {maximum}"
    return "an integer"


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
    """
    number = int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else None
    if number is None or (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ValueError(f"{name}={value!r}; expected {_bounds(minimum, maximum)}")
    return number
