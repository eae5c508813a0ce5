"""Property tests of the core losses over random shapes, labels, statistics and weights (hypothesis).

R in [0, 64] proposals, K in [1, 20] classes, labels in [0, K] mixed with ``ignore_index`` rows, logits of random
scale, positive class weights / counts / frequencies, non-negative sample weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from detbalance.losses import (
    EQLv2Loss,
    SeesawLoss,
    class_balanced_focal_loss,
    eqlv2_loss,
    equalization_loss,
    federated_loss,
    seesaw_loss,
    weighted_cross_entropy,
)

SETTINGS = dict(deadline=None, derandomize=True)  # reproducible examples: the same cases on every run


@st.composite
def problems(draw, min_rows: int = 0):
    num_classes = draw(st.integers(1, 20))
    rows = draw(st.integers(min_rows, 64))
    ignore_index = draw(st.sampled_from([-1, -100, 255]))
    labels = draw(st.lists(st.one_of(st.integers(0, num_classes), st.just(ignore_index)), min_size=rows, max_size=rows))
    positive = st.floats(1e-3, 1e3, allow_nan=False, allow_infinity=False)
    return dict(
        num_classes=num_classes,
        ignore_index=ignore_index,
        labels=torch.tensor(labels, dtype=torch.int64).reshape(rows),
        scale=draw(st.floats(0.01, 30.0)),
        seed=draw(st.integers(0, 2**31 - 1)),
        class_weight=draw(st.lists(positive, min_size=num_classes + 1, max_size=num_classes + 1)),
        counts=draw(st.lists(st.integers(1, 100_000), min_size=num_classes, max_size=num_classes)),
        freq=draw(st.lists(st.floats(0.0, 1.0), min_size=num_classes, max_size=num_classes)),
        pos_neg=draw(st.lists(st.floats(0.0, 100.0), min_size=num_classes, max_size=num_classes)),
        num_sampled=draw(st.integers(1, num_classes + 1)),
        with_sample_weight=draw(st.booleans()),
    )


def _logits(p: dict, extra: int, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(p["seed"])
    rows = p["labels"].shape[0]
    return (torch.randn(rows, p["num_classes"] + extra, generator=g, dtype=torch.float64) * p["scale"]).to(dtype)


def _sample_weight(p: dict):
    if not p["with_sample_weight"]:
        return None
    g = torch.Generator().manual_seed(p["seed"] + 1)
    return torch.rand(p["labels"].shape[0], generator=g) * 3.0


def _losses(p: dict):
    """name -> (extra logit columns, loss(logits) -> Tensor) for every core loss function."""
    common = dict(ignore_index=p["ignore_index"], sample_weight=_sample_weight(p))
    y = p["labels"]
    return {
        "weighted_cross_entropy": (1, lambda x: weighted_cross_entropy(x, y, p["class_weight"], **common)),
        "class_balanced_focal_loss": (0, lambda x: class_balanced_focal_loss(x, y, p["counts"], **common)),
        "equalization_loss": (0, lambda x: equalization_loss(x, y, p["freq"], lambda_=0.1, **common)),
        "eqlv2_loss": (1, lambda x: eqlv2_loss(x, y, p["pos_neg"], **common)),
        "seesaw_loss": (2, lambda x: seesaw_loss(x, y, p["counts"], **common)),
        "federated_loss": (
            0,
            lambda x: federated_loss(
                x, y, p["counts"], num_sampled=p["num_sampled"], generator=torch.Generator().manual_seed(3), **common
            ),
        ),
    }


@settings(max_examples=80, **SETTINGS)
@given(problems())
def test_every_loss_and_gradient_is_finite(p):
    ignored = p["labels"] == p["ignore_index"]
    for name, (extra, loss_fn) in _losses(p).items():
        logits = _logits(p, extra).requires_grad_(True)
        loss = loss_fn(logits)
        assert loss.dim() == 0 and bool(torch.isfinite(loss)), (name, loss)
        assert float(loss.detach()) >= 0.0, (name, float(loss.detach()))
        loss.backward()
        assert logits.grad is not None and bool(torch.isfinite(logits.grad).all()), name
        assert bool((logits.grad[ignored] == 0).all()), f"{name}: ignored rows get gradient"


@settings(max_examples=25, **SETTINGS)
@given(problems())
def test_stateful_modules_keep_finite_state(p):
    k, y = p["num_classes"], p["labels"]
    eqlv2, seesaw = EQLv2Loss(k, ignore_index=p["ignore_index"]), SeesawLoss(k, ignore_index=p["ignore_index"])
    for step in range(3):
        q = dict(p, seed=p["seed"] + step)
        for module, extra in ((eqlv2, 1), (seesaw, 2)):
            logits = _logits(q, extra).requires_grad_(True)
            loss = module(logits, y, sample_weight=_sample_weight(q))
            loss.backward()
            assert bool(torch.isfinite(loss)) and bool(torch.isfinite(logits.grad).all())
    for name, value in {**eqlv2.state_dict(), **seesaw.state_dict()}.items():
        assert bool(torch.isfinite(value.double()).all()) and bool((value >= 0).all()), name
    foreground = (y >= 0) & (y < k)
    assert seesaw.cum_samples.tolist() == (torch.bincount(y[foreground], minlength=k) * 3).tolist()


@settings(max_examples=40, **SETTINGS)
@given(problems(min_rows=1), st.floats(1e-3, 1e3))
def test_uniform_weights_equal_cross_entropy(p, value):
    logits, labels = _logits(p, 1, torch.float64), p["labels"]
    valid = labels != p["ignore_index"]
    uniform = [value] * (p["num_classes"] + 1)
    for reduction in ("none", "sum", "mean"):
        got = weighted_cross_entropy(
            logits, labels, uniform, ignore_index=p["ignore_index"], reduction=reduction, denominator="weights"
        )
        plain = weighted_cross_entropy(logits, labels, None, ignore_index=p["ignore_index"], reduction=reduction)
        want = F.cross_entropy(logits, labels, ignore_index=p["ignore_index"], reduction=reduction)
        if reduction == "mean" and not bool(valid.any()):
            assert float(got) == 0.0 and math.isnan(float(want))  # F.cross_entropy: 0 / 0
            continue
        scale = value if reduction != "mean" else 1.0  # 'mean' divides by the summed weights here
        default = weighted_cross_entropy(logits, labels, uniform, ignore_index=p["ignore_index"], reduction=reduction)
        torch.testing.assert_close(default, want * value, rtol=1e-10, atol=1e-12)  # by the kept proposals
        torch.testing.assert_close(got, want * scale, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(plain, want, rtol=1e-10, atol=1e-12)


@settings(max_examples=40, **SETTINGS)
@given(problems(), st.floats(1e-3, 1e3))
def test_scaling_class_weights_scales_the_sum(p, c):
    logits, labels = _logits(p, 1, torch.float64), p["labels"]
    kw = dict(ignore_index=p["ignore_index"], sample_weight=_sample_weight(p))
    base = weighted_cross_entropy(logits, labels, p["class_weight"], reduction="sum", **kw)
    scaled = weighted_cross_entropy(logits, labels, [w * c for w in p["class_weight"]], reduction="sum", **kw)
    torch.testing.assert_close(scaled, base * c, rtol=1e-10, atol=1e-12)
    # and leaves 'mean' normalised by the summed weights unchanged
    mean = weighted_cross_entropy(logits, labels, p["class_weight"], denominator="weights", **kw)
    mean_scaled = weighted_cross_entropy(
        logits, labels, [w * c for w in p["class_weight"]], denominator="weights", **kw
    )
    torch.testing.assert_close(mean_scaled, mean, rtol=1e-9, atol=1e-12)


# bf16 rounds each logit to 8 significant bits (relative error <= 2**-8); with logits of magnitude <= ~8 the loss
# moves by at most a few percent of its value: the stated tolerance.
BF16_TOL = dict(rtol=3e-2, atol=3e-2)


@settings(max_examples=40, **SETTINGS)
@given(problems(), st.floats(0.1, 4.0))
def test_bf16_autocast_is_close_to_float32(p, scale):
    p = dict(p, scale=scale)
    for name, (extra, loss_fn) in _losses(p).items():
        g = torch.Generator().manual_seed(p["seed"])
        features = torch.randn(p["labels"].shape[0], 16, generator=g)
        layer = torch.nn.Linear(16, p["num_classes"] + extra)
        with torch.no_grad():
            layer.weight.mul_(scale)
        want = loss_fn(layer(features))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = layer(features)
            assert logits.dtype == torch.bfloat16
            got = loss_fn(logits)
        assert got.dtype == torch.float32, name
        # the loss itself runs in float32: exactly the loss of the bf16 logits computed outside autocast
        torch.testing.assert_close(got, loss_fn(logits.detach().float()), rtol=1e-6, atol=1e-6, msg=name)
        torch.testing.assert_close(got, want, **BF16_TOL, msg=name)
        got.backward()
        assert bool(torch.isfinite(layer.weight.grad).all()), name
