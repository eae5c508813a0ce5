"""Repeat-factor sampling epochs (torch only): stochastic rounding against an independent transcription of LVIS
Appendix B.2 (floor + Bernoulli of the fractional part), per-epoch streams from (seed, epoch), bad input."""

import math

import pytest
import torch

from detbalance.weights.sampling import epoch_generator, repeat_factor_epoch, stochastic_repeats


def _reference_repeats(factors, uniforms):
    """n_i = floor(r_i) + [u_i < r_i - floor(r_i)], written out per image."""
    out = []
    for r, u in zip(factors, uniforms):
        whole = math.floor(r)
        out.append(whole + (1 if u < r - whole else 0))
    return out


def test_stochastic_rounding_matches_the_transcription():
    factors = [1.0, 1.25, 2.5, 3.0, 4.999, 1.0001]
    uniforms = torch.rand(len(factors), generator=torch.Generator().manual_seed(5), dtype=torch.float64).tolist()
    got = stochastic_repeats(factors, torch.Generator().manual_seed(5)).tolist()
    assert got == _reference_repeats(factors, uniforms)


@pytest.mark.slow
def test_epoch_holds_each_image_its_repeats_and_the_mean_is_the_factor():
    factors = torch.tensor([1.0, 1.5, 2.25, 3.9, 1.0])
    total = torch.zeros(5, dtype=torch.float64)
    epochs = 2000
    for epoch in range(epochs):
        counts = torch.bincount(repeat_factor_epoch(factors, seed=11, epoch=epoch), minlength=5).double()
        assert ((counts == factors.floor()) | (counts == factors.floor() + 1)).all()
        total += counts
    assert (total / epochs).tolist() == pytest.approx(factors.tolist(), abs=0.05)


def test_epochs_are_reproducible_and_differ():
    factors = [1.5] * 20
    a = repeat_factor_epoch(factors, seed=2, epoch=3)
    assert torch.equal(a, repeat_factor_epoch(factors, seed=2, epoch=3))
    assert not torch.equal(a, repeat_factor_epoch(factors, seed=2, epoch=4))
    assert not torch.equal(a, repeat_factor_epoch(factors, seed=3, epoch=3))
    ordered = repeat_factor_epoch(factors, seed=2, epoch=3, shuffle=False)
    assert torch.equal(ordered, a.sort().values)
    assert repeat_factor_epoch([], seed=0, epoch=0).numel() == 0


@pytest.mark.parametrize("bad", [[0.5, 1.0], [float("nan")], [[1.0, 2.0]]])
def test_bad_factors_are_refused(bad):
    with pytest.raises(ValueError, match="repeat factors must be"):
        stochastic_repeats(bad, torch.Generator())


@pytest.mark.parametrize("seed,epoch,name", [(-1, 0, "seed=-1"), (0, 1.5, "epoch=1.5"), (True, 0, "seed=True")])
def test_bad_seed_or_epoch_names_the_value(seed, epoch, name):
    with pytest.raises(ValueError, match=name):
        epoch_generator(seed, epoch)
