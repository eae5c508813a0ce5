"""LVIS frequency groups and repeat factors (the latter against detectron2's own implementation)."""

import json
import math
import random

import pytest
import torch

from detbalance.weights import frequency_groups, repeat_factors


def test_frequency_group_boundaries():
    assert frequency_groups([0, 1, 10, 11, 100, 101, 10**6]) == ["r", "r", "r", "c", "c", "f", "f"]
    assert frequency_groups([]) == []
    with pytest.raises(ValueError, match="non-negative integers"):
        frequency_groups([3, -1])
    with pytest.raises(ValueError, match="non-negative integers"):
        frequency_groups([2.5])


def test_lvis_v1_groups_match_the_official_frequencies(lvis_v1_stats):
    cats = json.loads(lvis_v1_stats.read_text())["categories"]
    groups = frequency_groups([c["image_count"] for c in cats])
    assert groups == [c["frequency"] for c in cats]
    assert (groups.count("r"), groups.count("c"), groups.count("f")) == (337, 461, 405)


def _random_dataset_dicts(num_images, seed):
    rng = random.Random(seed)
    cat_ids = [1, 4, 9, 23, 57, 90]  # non-contiguous, as COCO's
    weights = [200, 40, 8, 3, 1, 1]
    dicts = []
    for _ in range(num_images):
        n = rng.choice([0, 1, 2, 3, 5])  # some images have no annotation
        anns = [{"category_id": c} for c in rng.choices(cat_ids, weights=weights, k=n)]
        dicts.append({"annotations": anns})
    return dicts


@pytest.mark.parametrize("threshold", [0.001, 0.05, 0.3, 1.0])
def test_repeat_factors_equal_detectron2(threshold):
    from detbalance.detectron2 import _compat  # noqa: F401  (before any detectron2 import)

    # isort: split
    from detectron2.data.samplers import RepeatFactorTrainingSampler

    dicts = _random_dataset_dicts(300, seed=int(threshold * 1000))
    expected = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(dicts, threshold)
    got = repeat_factors([[a["category_id"] for a in d["annotations"]] for d in dicts], threshold)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert torch.equal(got, expected)
    if threshold >= 0.05:  # the rarest classes are in ~1-2% of the images: these thresholds repeat them
        assert (got > 1).any()


def test_repeat_factors_hand_example_and_linear_rule():
    # 4 images; class 'a' in all 4 (f=1), class 'b' in 1 (f=0.25). t=0.5: r(b)=sqrt(0.5/0.25)=sqrt(2), r(a)=1.
    labels = [["a"], ["a", "b", "b"], ["a"], []]
    r = repeat_factors(labels, 0.5)
    assert r.tolist() == pytest.approx([1.0, math.sqrt(2), 1.0, 1.0])
    # sqrt=False (detectron2 main's option): r(b) = 0.5/0.25 = 2
    assert repeat_factors(labels, 0.5, sqrt=False).tolist() == [1.0, 2.0, 1.0, 1.0]
    assert repeat_factors([], 0.1).shape == (0,)
    with pytest.raises(ValueError, match="threshold must be a positive number, got 0"):
        repeat_factors(labels, 0)
