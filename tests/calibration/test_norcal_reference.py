"""NorCal against an independent float64 transcription of the reference's ``predict_probs``
(tydpan/NorCal, projects/NorCal/norcal/roi_heads.py): three modes, renorm on/off, both variants, values and
gradients, gradcheck and bad input."""

from __future__ import annotations

import pytest
import torch

from detbalance.calibration import norcal_factors, norcal_scores

COUNTS = [700.0, 500.0, 300.0, 150.0, 80.0, 40.0, 20.0, 10.0]


def reference_norcal(logits, frequencies, gamma, calibrate_on, renorm, method):
    """The reference's formulas, written out: ``gamma`` method 1/f**g, ``cb`` (1 - b)/(1 - b**f)."""
    f = torch.tensor(frequencies, dtype=torch.float64).view(1, -1)
    if method == "gamma":
        factor = 1 / f**gamma
    else:
        factor = (1 - gamma) / (1 - gamma**f)
    ones = torch.ones(1, 1, dtype=torch.float64)
    full = torch.cat([factor, ones], dim=1)  # the last (background) column is never touched
    if calibrate_on == "logits":
        probs = torch.nn.functional.softmax(logits * full, dim=-1)
    elif calibrate_on == "probs":
        probs = torch.nn.functional.softmax(logits, dim=-1) * full
    else:
        probs = torch.exp(logits) * full
    if renorm:
        probs = probs / probs.sum(dim=1, keepdim=True)
    return probs


VARIANTS = [
    ("power", "gamma", 0.0),
    ("power", "gamma", 0.3),
    ("power", "gamma", 1.2),
    ("class_balanced", "cb", 0.0),
    ("class_balanced", "cb", 0.9),
    ("class_balanced", "cb", 0.999),
]


@pytest.mark.parametrize("on", ["probs", "exps", "logits"])
@pytest.mark.parametrize("renorm", [True, False])
@pytest.mark.parametrize("variant,ref_method,gamma", VARIANTS)
def test_values_and_gradients_match_the_reference(on, renorm, variant, ref_method, gamma):
    g = torch.Generator().manual_seed(3)
    base = torch.randn(37, 9, generator=g, dtype=torch.float64) * 3
    ours_in = base.clone().requires_grad_(True)
    ref_in = base.clone().requires_grad_(True)
    ours = norcal_scores(ours_in, COUNTS, gamma, on=on, renorm=renorm, variant=variant)
    ref = reference_norcal(ref_in, COUNTS, gamma, on, renorm, ref_method)
    assert ours.dtype == torch.float64 and ours.shape == (37, 9)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-14)
    upstream = torch.randn(37, 9, generator=g, dtype=torch.float64)
    (ours * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("on", ["probs", "exps", "logits"])
@pytest.mark.parametrize("renorm", [True, False])
def test_gradcheck(on, renorm):
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: norcal_scores(t, [50, 5, 1], 0.7, on=on, renorm=renorm), (x,))


def test_zero_gamma_is_the_softmax_and_rare_classes_gain():
    x = torch.randn(20, 9, dtype=torch.float64)
    torch.testing.assert_close(norcal_scores(x, COUNTS, 0.0), torch.softmax(x, dim=1))
    calibrated = norcal_scores(x, COUNTS, 0.5)
    ratio = calibrated[:, :-1] / torch.softmax(x, dim=1)[:, :-1]
    # relative to the softmax, every row scales the rarest class most and the most frequent least
    assert (ratio[:, -1] > ratio[:, 0]).all()


def test_exps_renormalised_is_stable_for_large_logits():
    x = torch.tensor([[1000.0, 990.0, 0.0]])
    scores = norcal_scores(x, [100, 1], 1.0, on="exps")
    assert torch.isfinite(scores).all()
    torch.testing.assert_close(scores, torch.softmax(x + torch.tensor([-torch.log(torch.tensor(100.0)), 0, 0]), 1))


def test_float32_in_float32_out_and_empty_rows():
    assert norcal_scores(torch.randn(3, 3), [2, 1], 0.5).dtype == torch.float32
    assert norcal_scores(torch.zeros(0, 3), [2, 1], 0.5).shape == (0, 3)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(gamma=-0.1), r"gamma=-0\.1; expected a finite number >= 0"),
        (dict(gamma=float("nan")), r"gamma=nan"),
        (dict(gamma=1.0, variant="class_balanced"), r"expected 0 <= beta < 1"),
        (dict(gamma=0.5, variant="cb"), r"variant='cb'; expected one of \['power', 'class_balanced'\]"),
        (dict(gamma=0.5, on="prob"), r"on='prob'; expected one of \['probs', 'exps', 'logits'\]"),
        (dict(gamma=0.5, renorm=1), r"renorm=1; expected True or False"),
    ],
)
def test_bad_settings_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        norcal_scores(torch.zeros(2, 3), [5, 1], **kwargs)


def test_bad_counts_and_shapes():
    with pytest.raises(ValueError, match=r"class_counts\[1\]=0\.0; expected a finite count > 0"):
        norcal_factors([5, 0, 3], 0.5)
    with pytest.raises(ValueError, match=r"logits have 3 columns; expected \[R, K \+ 1\] = 4"):
        norcal_scores(torch.zeros(2, 3), [5, 2, 1], 0.5)
    with pytest.raises(ValueError, match=r"class_counts must be 1-D"):
        norcal_factors([[5, 2]], 0.5)
