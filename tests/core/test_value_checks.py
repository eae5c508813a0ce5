"""The value checks of the losses: one read-back per call when on, none when switched off
(``set_value_checks(False)``), with the same values and gradients either way."""

from __future__ import annotations

import pytest
import torch

from detbalance.losses import (
    ClassBalancedFocalLoss,
    EQLv2Loss,
    EqualizationLoss,
    EqualizedFocalLoss,
    FederatedLoss,
    FocalLoss,
    SeesawLoss,
    WeightedCrossEntropyLoss,
    set_value_checks,
    value_checks_enabled,
)

K = 4
COUNTS = [300.0, 40.0, 6.0, 1.0]
#: the losses whose computation reads nothing back (Seesaw's foreground rows come from ``nonzero``, a device-side
#: synchronisation that does not go through Python; BAGS reads its draw's size)
MODULES = {
    "WeightedCrossEntropyLoss": lambda: WeightedCrossEntropyLoss(K, [1.0, 2.0, 4.0, 8.0, 0.5]),
    "ClassBalancedFocalLoss": lambda: ClassBalancedFocalLoss(K, COUNTS),
    "EqualizationLoss": lambda: EqualizationLoss(K, [0.5, 0.1, 0.002, 0.0005], lambda_=0.01),
    "EQLv2Loss": lambda: EQLv2Loss(K),
    "SeesawLoss": lambda: SeesawLoss(K),
    "FederatedLoss": lambda: FederatedLoss(K, COUNTS, num_sampled=K + 1, seed=0),  # room for every class: no draw
    "FocalLoss": lambda: FocalLoss(K),
    "EqualizedFocalLoss": lambda: EqualizedFocalLoss(K),
}
READS = ("item", "tolist", "__bool__", "__int__", "__float__")


@pytest.fixture(autouse=True)
def _restore_the_switch():
    yield
    set_value_checks(True)


def _batch(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(10, module.num_logits, generator=gen, dtype=torch.float64).requires_grad_(True)
    labels = torch.tensor([0, 1, 2, 3, K, K, -1, 2, K, 1])
    weight = torch.rand(10, generator=gen, dtype=torch.float64)
    return logits, labels, weight


def _count_reads(monkeypatch) -> list[str]:
    """Record every read of a tensor value into Python (the calls that synchronise with an accelerator)."""
    reads: list[str] = []
    for name in READS:
        original = getattr(torch.Tensor, name)

        def read(self, *args, _name=name, _original=original):
            reads.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, read)
    return reads


@pytest.mark.parametrize("name", MODULES)
def test_checks_off_read_nothing_back_and_change_nothing(name, monkeypatch):
    results = {}
    for enabled in (True, False):
        set_value_checks(enabled)
        module = MODULES[name]().double()
        logits, labels, weight = _batch(module)
        for kwargs in ({}, {"sample_weight": weight, "normalizer": torch.tensor(3.0)}):
            reads = _count_reads(monkeypatch)
            loss = module(logits, labels, **kwargs)
            loss.backward()
            monkeypatch.undo()
            assert len(reads) == (1 if enabled else 0), reads
            results.setdefault(enabled, []).append((loss.detach(), logits.grad.clone()))
            logits.grad = None
        if hasattr(module, "pos_grad"):
            results[enabled].append((module.pos_grad.clone(), module.neg_grad.clone()))
    torch.testing.assert_close(results[True], results[False], rtol=0, atol=0)


def test_checks_off_let_bad_values_through():
    set_value_checks(False)
    assert not value_checks_enabled()
    loss_fn = EqualizationLoss(K, [0.5, 0.1, 0.002, 0.0005])
    assert torch.isnan(loss_fn(torch.full((2, K), float("nan")), torch.tensor([0, K])))
    loss_fn(torch.zeros(2, K), torch.tensor([0, K + 3]))  # an out-of-range label counts as background
    set_value_checks(True)
    with pytest.raises(ValueError, match=f"got {K + 3} at position 1"):
        loss_fn(torch.zeros(2, K), torch.tensor([0, K + 3]))
    with pytest.raises(ValueError, match="enabled must be a bool"):
        set_value_checks(0)


def test_a_call_that_raises_leaves_the_seesaw_counts_unchanged():
    loss_fn = SeesawLoss(K)
    loss_fn(torch.randn(3, K + 2), torch.tensor([0, 1, K]))
    before = loss_fn.cum_samples.clone()
    with pytest.raises(ValueError, match="got -5 at position 1"):
        loss_fn(torch.randn(3, K + 2), torch.tensor([2, -5, 1]))
    assert torch.equal(loss_fn.cum_samples, before)
