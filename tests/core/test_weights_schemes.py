"""compute_class_weights: each scheme against its formula, both normalizations, power, max_ratio, missing classes."""

import numpy as np
import pytest

from detbalance.weights import SCHEMES, compute_class_weights

COUNTS = [5000, 420, 37, 3]


def _normalized(w, counts=None):
    """Mean 1 over classes, or (given counts) mean 1 over the counted instances: sum(n * w) = sum(n)."""
    w = np.asarray(w, dtype=np.float64)
    if counts is None:
        return w / w.mean()
    n = np.asarray(counts, dtype=np.float64)
    return w * n.sum() / (n * w).sum()


@pytest.mark.parametrize(
    "scheme, base",
    [
        ("uniform", lambda n: np.ones_like(n)),
        ("inverse", lambda n: 1.0 / n),
        ("sqrt_inverse", lambda n: n**-0.5),
        ("effective_number", lambda n: (1 - 0.999) / (1 - 0.999**n)),  # Cui et al. 2019, Eq. (the CB term)
        ("median_frequency", lambda n: np.median(n / n.sum()) / (n / n.sum())),
    ],
)
def test_scheme_matches_formula_under_both_normalizations(scheme, base):
    n = np.asarray(COUNTS, dtype=np.float64)
    w = compute_class_weights(COUNTS, scheme, normalize="classes")
    assert w.dtype == np.float64 and w.shape == (4,)
    np.testing.assert_allclose(w, _normalized(base(n)), rtol=1e-12)
    assert w.mean() == pytest.approx(1.0, abs=1e-12)
    w = compute_class_weights(COUNTS, scheme)  # default: an average instance weighs 1
    np.testing.assert_allclose(w, _normalized(base(n), n), rtol=1e-12)
    assert (n * w).sum() / n.sum() == pytest.approx(1.0, abs=1e-12)


def test_instance_normalization_keeps_objects_level_with_background():
    # 1/sqrt(freq) on a long tail: scaled to mean 1 over classes the average instance weighs far below a
    # background proposal (1); scaled over instances it weighs 1 and the ratios between classes are the same.
    counts = np.array([3000, 900, 40, 3, 1], dtype=np.float64)
    by_class = compute_class_weights(counts, "sqrt_inverse", normalize="classes")
    by_instance = compute_class_weights(counts, "sqrt_inverse")
    assert (counts * by_class).sum() / counts.sum() < 0.3
    assert (counts * by_instance).sum() / counts.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(by_instance / by_instance[0], by_class / by_class[0], rtol=1e-12)
    # image counts: an average image occurrence weighs 1
    np.testing.assert_allclose(compute_class_weights([4, 1], "inverse"), [5 / 8, 5 / 2])


def test_effective_number_beta_and_limits():
    n = np.asarray(COUNTS, dtype=np.float64)
    for beta in (0.9, 0.99, 0.9999):
        np.testing.assert_allclose(
            compute_class_weights(COUNTS, "effective_number", beta=beta),
            _normalized((1 - beta) / (1 - beta**n), n),
            rtol=1e-9,
        )
    # beta -> 0: every class has effective number 1, so uniform weights.
    np.testing.assert_allclose(compute_class_weights(COUNTS, "effective_number", beta=0.0), np.ones(4))
    # beta -> 1: effective number -> n, so the inverse-frequency weights.
    np.testing.assert_allclose(
        compute_class_weights(COUNTS, "effective_number", beta=1 - 1e-12),
        compute_class_weights(COUNTS, "inverse"),
        rtol=1e-3,
    )


def test_median_frequency_uses_image_counts():
    n = np.array([100.0, 40.0, 9.0])
    m = np.array([50.0, 40.0, 3.0])
    f = n / m  # instances per image containing the class (Eigen & Fergus frequency)
    w = compute_class_weights(n, "median_frequency", image_counts=m)
    np.testing.assert_allclose(w, _normalized(np.median(f) / f, n), rtol=1e-12)
    with pytest.raises(ValueError, match="image_counts is used only by scheme 'median_frequency'"):
        compute_class_weights(n, "inverse", image_counts=m)
    with pytest.raises(ValueError, match=r"image count 5 must be in \[1, 4\]"):
        compute_class_weights([4, 1], "median_frequency", image_counts=[5, 1])


def test_power_interpolates_between_uniform_and_scheme():
    np.testing.assert_allclose(compute_class_weights(COUNTS, "inverse", power=0.0), np.ones(4))
    np.testing.assert_allclose(
        compute_class_weights(COUNTS, "inverse", power=0.5), compute_class_weights(COUNTS, "sqrt_inverse"), rtol=1e-12
    )
    n = np.asarray(COUNTS, dtype=np.float64)
    np.testing.assert_allclose(compute_class_weights(COUNTS, "inverse", power=2.0), _normalized(n**-2.0, n), rtol=1e-12)


@pytest.mark.parametrize("normalize", ["instances", "classes"])
@pytest.mark.parametrize("max_ratio", [1.0, 2.0, 10.0, 100.0])
def test_max_ratio_caps_and_keeps_order(max_ratio, normalize):
    uncapped = compute_class_weights(COUNTS, "inverse", normalize=normalize)
    w = compute_class_weights(COUNTS, "inverse", max_ratio=max_ratio, normalize=normalize)
    assert w.max() / w.min() <= max_ratio * (1 + 1e-12)
    n = np.asarray(COUNTS, dtype=np.float64)
    assert (w.mean() if normalize == "classes" else (n * w).sum() / n.sum()) == pytest.approx(1.0)
    assert np.all(np.diff(w) >= -1e-12)  # counts decrease, so weights stay non-decreasing
    # only the largest weights are lowered: the classes below the cap keep their relative weights
    below = uncapped <= uncapped.min() * max_ratio
    np.testing.assert_allclose(w[below] / w[below][0], uncapped[below] / uncapped[below][0], rtol=1e-12)
    # a cap above the actual ratio changes nothing
    np.testing.assert_allclose(compute_class_weights(COUNTS, "inverse", max_ratio=1e9, normalize=normalize), uncapped)


def test_zero_counts_raise_naming_classes_unless_missing_max():
    with pytest.raises(ValueError, match=r"2 class\(es\) have zero count: zebra, yak"):
        compute_class_weights([10, 0, 5, 0], "inverse", class_names=["cat", "zebra", "dog", "yak"])
    with pytest.raises(ValueError, match="zero count: 1"):
        compute_class_weights([10, 0], "effective_number")
    w = compute_class_weights([10, 0, 5, 0], "inverse", missing="max", normalize="classes")
    seen = _normalized([1 / 10, 1 / 5, 1 / 5, 1 / 5])
    np.testing.assert_allclose(w, seen[[0, 1, 2, 3]], rtol=1e-12)
    assert w[1] == w[3] == w.max()
    # over instances, the classes without instances count for nothing: 10 * w0 + 5 * w2 = 15
    w = compute_class_weights([10, 0, 5, 0], "inverse", missing="max")
    np.testing.assert_allclose(w, [0.75, 1.5, 1.5, 1.5], rtol=1e-12)
    # uniform needs no counts
    np.testing.assert_allclose(compute_class_weights([0, 0, 3], "uniform"), np.ones(3))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(counts=[1, 2], scheme="log"), "scheme must be one of"),
        (dict(counts=[1, 2], scheme="inverse", missing="skip"), "missing must be one of"),
        (dict(counts=[1, 2], scheme="effective_number", beta=1.0), r"beta must be in \[0, 1\), got 1.0"),
        (dict(counts=[1, 2], scheme="inverse", power=-1), "power must be finite and >= 0, got -1"),
        (dict(counts=[1, 2], scheme="inverse", max_ratio=0.5), "max_ratio must be >= 1"),
        (dict(counts=[1, 2], scheme="inverse", normalize="mean"), r"normalize must be one of .*got 'mean'"),
        (dict(counts=[1, -2], scheme="inverse"), "class 1 has -2"),
        (dict(counts=[1, float("nan")], scheme="inverse"), "must be finite"),
        (dict(counts=[], scheme="inverse"), "non-empty 1-D"),
        (dict(counts=[[1, 2]], scheme="inverse"), "non-empty 1-D"),
        (dict(counts=[0, 0], scheme="inverse"), "all 2 class counts are zero"),
        (dict(counts=[1, 2], scheme="inverse", class_names=["a"]), "class_names has 1 entries, expected 2"),
    ],
)
def test_bad_arguments_name_value_and_expectation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute_class_weights(**kwargs)


def test_every_scheme_is_positive_and_finite_on_lvis_like_counts():
    rng = np.random.default_rng(0)
    counts = np.maximum(1, (rng.pareto(0.8, size=1203) * 5).astype(int))
    for scheme in SCHEMES:
        w = compute_class_weights(counts, scheme)
        assert np.isfinite(w).all() and (w > 0).all() and (counts * w).sum() / counts.sum() == pytest.approx(1.0)
        w = compute_class_weights(counts, scheme, normalize="classes")
        assert np.isfinite(w).all() and (w > 0).all() and w.mean() == pytest.approx(1.0)
