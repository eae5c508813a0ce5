"""The gap statistic: the ratio of the means (not the mean of per-seed ratios), its bootstrap interval over seeds,
and the errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from detbalance.evaluation.gap import bootstrap_gap_interval, gap_closed


def test_ratio_of_means_not_mean_of_ratios():
    # the committed Detectron2 numbers of the tuned RFS + EQLv2 row, per seed: CE, oracle, method
    ce, oracle, method = [2.6, 3.3, 1.9], [27.9, 20.7, 27.0], [13.9, 15.9, 12.4]
    per_seed = np.mean([(m - c) / (o - c) for m, c, o in zip(method, ce, oracle)])
    ratio = gap_closed(method, ce, oracle)
    expected = (np.mean(method) - np.mean(ce)) / (np.mean(oracle) - np.mean(ce))
    assert ratio == pytest.approx(expected, abs=1e-12)
    assert ratio < per_seed  # the weak oracle seed inflates the mean of per-seed fractions


def test_rows_with_different_seed_counts_use_their_own_means():
    assert gap_closed([10.0], [0.0, 2.0], [20.0, 22.0, 24.0]) == pytest.approx((10 - 1) / (22 - 1))


def test_no_gap_gives_none():
    assert gap_closed([5.0], [10.0], [10.0]) is None
    assert gap_closed([5.0], [10.0], [8.0]) is None


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_agreeing_seeds():
    low, high, kept = bootstrap_gap_interval([12.0, 14.0, 13.0], [2.0, 3.0, 1.0], [22.0, 24.0, 20.0], samples=4000)
    estimate = gap_closed([12.0, 14.0, 13.0], [2.0, 3.0, 1.0], [22.0, 24.0, 20.0])
    assert low <= estimate <= high and kept == 4000
    tight = bootstrap_gap_interval([13.0] * 3, [2.0] * 3, [22.0] * 3, samples=500)
    assert tight[0] == pytest.approx(0.55) and tight[1] == pytest.approx(0.55)
    # the same seed of randomness gives the same interval
    assert bootstrap_gap_interval([1.0, 3.0], [0.0, 1.0], [5.0, 9.0]) == bootstrap_gap_interval(
        [1.0, 3.0], [0.0, 1.0], [5.0, 9.0]
    )


def test_bootstrap_without_any_gap_reports_none_kept():
    low, high, kept = bootstrap_gap_interval([1.0], [5.0], [4.0], samples=50)
    assert kept == 0 and math.isnan(low) and math.isnan(high)


@pytest.mark.parametrize(
    "args, match",
    [
        (([], [1.0], [2.0]), "method=\\[\\]"),
        (([1.0], [float("nan")], [2.0]), "baseline=\\[nan\\]"),
    ],
)
def test_bad_values_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        gap_closed(*args)


def test_bad_bootstrap_settings_are_named():
    with pytest.raises(ValueError, match="samples=0"):
        bootstrap_gap_interval([1.0], [0.0], [2.0], samples=0)
    with pytest.raises(ValueError, match="level=1.5"):
        bootstrap_gap_interval([1.0], [0.0], [2.0], level=1.5)
