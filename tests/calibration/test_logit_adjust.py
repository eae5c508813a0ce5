"""Logit adjustment: values and gradients against ``x_c - gamma * log n_c`` in float64, gradcheck, its relation to
NorCal, and the property that it never reorders the boxes of one class in a sigmoid head."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from detbalance.calibration import ScoreCalibration, logit_adjust, norcal_scores
from detbalance.losses import (
    ClassBalancedFocalLoss,
    EQLv2Loss,
    EqualizationLoss,
    FederatedLoss,
    SeesawLoss,
    WeightedCrossEntropyLoss,
)

COUNTS = [700, 500, 300, 150, 80, 40, 20, 10]


def test_values_and_gradients():
    x = torch.randn(11, 8, dtype=torch.float64, requires_grad=True)
    out = logit_adjust(x, COUNTS, 0.8)
    expected = x.detach() - torch.tensor([0.8 * math.log(n) for n in COUNTS], dtype=torch.float64)
    torch.testing.assert_close(out, expected, rtol=1e-14, atol=1e-14)
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))
    assert torch.autograd.gradcheck(lambda t: logit_adjust(t, COUNTS, 0.8), (x.detach().requires_grad_(),))


def test_extra_columns_are_not_moved():
    x = torch.randn(4, 10, dtype=torch.float64)  # Seesaw: K class logits then 2 objectness logits
    out = logit_adjust(x, COUNTS, 1.0)
    torch.testing.assert_close(out[:, 8:], x[:, 8:])


def test_softmax_head_equals_norcal_on_exps():
    x = torch.randn(9, 9, dtype=torch.float64)
    calibration = ScoreCalibration(8, "logit_adjust", class_counts=COUNTS, gamma=0.6)
    torch.testing.assert_close(
        calibration(WeightedCrossEntropyLoss(8), x), norcal_scores(x, COUNTS, 0.6, on="exps", renorm=True)
    )


def test_bad_input():
    with pytest.raises(ValueError, match=r"gamma=-1; expected a finite number >= 0"):
        logit_adjust(torch.zeros(2, 8), COUNTS, -1)
    with pytest.raises(ValueError, match=r"class_counts\[7\]=0\.0"):
        logit_adjust(torch.zeros(2, 8), COUNTS[:-1] + [0], 1.0)
    with pytest.raises(ValueError, match=r"logits have 7 columns; expected at least K = 8"):
        logit_adjust(torch.zeros(2, 7), COUNTS, 1.0)


SIGMOID_HEADS = [
    lambda k, n: ClassBalancedFocalLoss(k, n),
    lambda k, n: EqualizationLoss(k, [c / 1000 for c in n]),
    lambda k, n: FederatedLoss(k, n),
    lambda k, n: EQLv2Loss(k),  # with one objectness logit shared by the rows (see below)
]


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(2, 30),
    gamma=st.floats(0.0, 3.0),
    head=st.integers(0, len(SIGMOID_HEADS) - 1),
    seed=st.integers(0, 10_000),
)
def test_sigmoid_head_keeps_the_order_within_each_class(rows, gamma, head, seed):
    g = torch.Generator().manual_seed(seed)
    loss = SIGMOID_HEADS[head](8, COUNTS)
    logits = torch.randn(rows, loss.num_logits, generator=g, dtype=torch.float64) * 4
    logits[:, 8:] = 0.3  # EQLv2's objectness: its ranking claim holds among boxes of equal objectness
    before = loss.predict_scores(logits)[:, :8]
    after = ScoreCalibration(8, "logit_adjust", class_counts=COUNTS, gamma=gamma)(loss, logits)[:, :8]
    for c in range(8):
        b, a = before[:, c], after[:, c]
        # strictly increasing map of each class's scores: every pair keeps its order (ties stay ties)
        diff_b = b[:, None] - b[None, :]
        diff_a = a[:, None] - a[None, :]
        assert torch.equal(torch.sign(diff_b), torch.sign(diff_a))
        assert (a <= b + 1e-15).all()  # counts >= 1 and gamma >= 0 never raise a score


def test_every_head_scores_through_logit_adjustment():
    shift = torch.tensor([0.5 * math.log(n) for n in COUNTS])
    for loss in (EQLv2Loss(8), SeesawLoss(8), WeightedCrossEntropyLoss(8), ClassBalancedFocalLoss(8, COUNTS)):
        logits = torch.randn(6, loss.num_logits)
        scores = ScoreCalibration(8, "logit_adjust", class_counts=COUNTS, gamma=0.5)(loss, logits)
        assert scores.shape == (6, 9) and torch.isfinite(scores).all()
        plain = loss.predict_scores(logits)
        if isinstance(loss, (SeesawLoss, WeightedCrossEntropyLoss)):
            # softmax over the classes: every odds ratio moves by exactly exp(shift_0 - shift_c)
            torch.testing.assert_close(
                scores[:, 7] / scores[:, 0],
                plain[:, 7] / plain[:, 0] * torch.exp(shift[0] - shift[7]),
                rtol=1e-5,
                atol=0,
            )
        else:
            assert (scores[:, :8] <= plain[:, :8] + 1e-7).all()
