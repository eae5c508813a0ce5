"""The per-box weight check both frameworks' loaders share: numbers only, finite, >= 0."""

import doctest

import numpy as np
import pytest

from detbalance.data import box_weights
from detbalance.data.box_weights import annotation_weight


@pytest.mark.parametrize(
    "value, expected", [(0, 0.0), (0.0, 0.0), (2, 2.0), (0.25, 0.25), (np.float32(0.5), 0.5), (1e9, 1e9)]
)
def test_numbers_pass_as_floats(value, expected):
    out = annotation_weight({"weight": value}, "id=1")
    assert out == expected and type(out) is float


def test_absent_weight_is_one():
    assert annotation_weight({"bbox": [0, 0, 1, 1]}, "id=1") == 1.0


@pytest.mark.parametrize("bad", ["0.5", "heavy", True, False, None, -1e-9, float("nan"), float("inf"), [1.0]])
def test_anything_else_names_the_annotation_and_the_value(bad):
    with pytest.raises(ValueError) as err:
        annotation_weight({"weight": bad}, "id=9")
    assert str(err.value) == f"annotation id=9 has weight={bad!r}; expected a finite number >= 0"


def test_doctests_run():
    result = doctest.testmod(box_weights)
    assert result.attempted >= 3 and result.failed == 0
