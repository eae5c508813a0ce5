"""The shared scalar checks: accepted values, rejected values and their messages, the module's doctests."""

import doctest

import numpy as np
import pytest

from detbalance import _checks
from detbalance._checks import check_int, check_number


@pytest.mark.parametrize("value", [0, 3, np.int64(3), np.int32(0)])
def test_check_int_accepts_integers_and_returns_int(value):
    out = check_int("n", value, minimum=0)
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize(
    "value, kwargs, expected",
    [
        (True, {}, "n=True; expected an integer"),
        (1.0, {"minimum": 1}, "n=1.0; expected an integer >= 1"),
        ("2", {"minimum": 1}, "n='2'; expected an integer >= 1"),
        (0, {"minimum": 1}, "n=0; expected an integer >= 1"),
        (9, {"minimum": 2, "maximum": 8}, "n=9; expected an integer in [2, 8]"),
        (5, {"maximum": 4}, "n=5; expected an integer <= 4"),
        (None, {}, "n=None; expected an integer"),
    ],
)
def test_check_int_rejects_with_the_value_and_the_expectation(value, kwargs, expected):
    with pytest.raises(ValueError) as err:
        check_int("n", value, **kwargs)
    assert str(err.value) == expected


@pytest.mark.parametrize("value", [0, 0.5, np.float32(2.5), 1e30])
def test_check_number_accepts_finite_reals(value):
    assert check_number("w", value, minimum=0) == float(value)


@pytest.mark.parametrize("value", ["0.5", True, float("nan"), float("inf"), -0.1, None, [1.0], 10**400])
def test_check_number_rejects_strings_bools_non_finite_and_below_minimum(value):
    with pytest.raises(ValueError, match=r"^w=.*; expected a finite number >= 0$"):
        check_number("w", value, minimum=0)


def test_doctests_run():
    result = doctest.testmod(_checks, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 6 and result.failed == 0
