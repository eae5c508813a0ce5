"""The inverse effective number against exact rational arithmetic (Cui et al. 2019: (1 - beta) / (1 - beta^n))."""

import doctest
from fractions import Fraction

import numpy as np
import pytest
import torch

from detbalance.weights import compute_class_weights, effective_number
from detbalance.weights.effective_number import inverse_effective_number


def _exact(n: int, beta: float) -> float:
    b = Fraction(beta)  # the float's exact value
    return float((1 - b) / (1 - b**n))


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.999, 0.9999, 0.999999])
def test_matches_exact_rational_values(beta):
    counts = [1, 2, 3, 10, 57, 400]
    got = inverse_effective_number(torch.tensor(counts, dtype=torch.float64), beta)
    expected = torch.tensor([_exact(n, beta) for n in counts], dtype=torch.float64)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


def test_beta_zero_weighs_every_count_one_and_keeps_dtype_and_shape():
    counts = torch.tensor([[1.0, 5.0], [7.0, 2.0]])
    out = inverse_effective_number(counts, 0.0)
    assert out.dtype == torch.float32 and out.shape == (2, 2) and bool((out == 1).all())


@pytest.mark.parametrize("beta", [1.0, -0.1, 1.5, True, "0.9", float("nan")])
def test_bad_beta_names_the_value(beta):
    with pytest.raises(ValueError, match=r"beta=.*; expected a number in \[0, 1\)"):
        inverse_effective_number(torch.ones(2, dtype=torch.float64), beta)


def test_gradcheck():
    counts = torch.tensor([1.5, 3.0, 40.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda n: inverse_effective_number(n, 0.99), (counts,))


def test_effective_number_scheme_uses_it():
    counts = [400, 57, 10, 1]
    expected = np.array([_exact(n, 0.999) for n in counts])
    np.testing.assert_allclose(
        compute_class_weights(counts, "effective_number", beta=0.999, normalize="classes"),
        expected / expected.mean(),
        rtol=1e-12,
    )


def test_doctests_run():
    result = doctest.testmod(effective_number)
    assert result.attempted >= 3 and result.failed == 0
