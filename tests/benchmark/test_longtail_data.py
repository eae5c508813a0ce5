"""The LVIS-like long-tailed set: LVIS v1's r/c/f mix, four deterministic splits, distinct classes per image."""

import collections
import json

import pytest

from dbbench.data.longtail import (
    LVIS_V1_RANK_COUNTS,
    SPLITS,
    LongTailSpec,
    generate_longtail,
    get_longtail_dataset,
    lvis_rank_counts,
)
from detbalance.weights import frequency_groups

SMALL = dict(counts=(14, 11, 6, 3, 1), test_per_class=3, val_per_class=2, image_size=96, max_size=24, max_objects=2)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return get_longtail_dataset(LongTailSpec(**SMALL), cache_dir=tmp_path_factory.mktemp("cache"))


def _load(path):
    return json.loads(path.read_text())


def test_rank_counts_are_lvis_v1s_and_keep_its_group_mix(lvis_v1_stats):
    stats = json.loads(lvis_v1_stats.read_text())["categories"]
    assert lvis_rank_counts([c["image_count"] for c in stats]) == LVIS_V1_RANK_COUNTS
    groups = collections.Counter(frequency_groups(LVIS_V1_RANK_COUNTS))
    assert (groups["r"], groups["c"], groups["f"]) == (36, 49, 43)
    lvis = collections.Counter(c["frequency"] for c in stats)
    for g in "rcf":  # within one class of LVIS v1's own fractions (337 / 461 / 405 of 1203)
        assert abs(groups[g] - 128 * lvis[g] / 1203) < 1.5
    assert LVIS_V1_RANK_COUNTS[0] == 300 and LVIS_V1_RANK_COUNTS[-1] == 1


def test_rank_counts_formula_on_a_hand_made_tail():
    # counts <= 100 stay; above 100 they map log-linearly from [101, 10100] onto [101, 300].
    assert lvis_rank_counts([10100, 1010, 50, 5, 1], num_classes=5) == (300, round(101 * (300 / 101) ** 0.5), 50, 5, 1)


def test_splits_counts_groups_and_distinct_classes_per_image(small):
    spec = small.spec
    cats = small.categories
    assert [c["frequency"] for c in sorted(cats, key=lambda c: c["frequency_rank"])] == ["c", "c", "r", "r", "r"]
    for split in SPLITS:
        data = _load(small.split(split)[0])
        assert data["categories"] == list(cats)
        per_class = collections.Counter(a["category_id"] for a in data["annotations"])
        by_rank = {c["frequency_rank"]: c["id"] for c in cats}
        assert [per_class[by_rank[r]] for r in range(spec.num_classes)] == spec.split_counts(split)
        per_image = collections.defaultdict(list)
        for a in data["annotations"]:
            per_image[a["image_id"]].append(a["category_id"])
        assert all(len(v) == len(set(v)) for v in per_image.values())  # image count == instance count
        assert all(spec.min_objects <= len(v) <= spec.max_objects for v in per_image.values())
        assert len(per_image) == len(data["images"])
    assert sum(spec.split_counts("train_balanced")) == pytest.approx(sum(spec.counts), abs=spec.num_classes)


def test_classes_are_shape_colour_pairs_with_shuffled_frequency(small):
    names = [c["name"] for c in small.categories]
    assert len(set(names)) == len(names)
    assert all(c["name"] == f"{c['color']}_{c['shape']}" for c in small.categories)
    full = LongTailSpec()
    from dbbench.data.longtail import _categories

    ranks = [c["frequency_rank"] for c in _categories(full)]
    assert sorted(ranks) == list(range(128)) and ranks != list(range(128))


def test_generation_is_deterministic_and_versioned(small, tmp_path):
    again = generate_longtail(small.spec, tmp_path / "again")
    files = lambda root: {
        p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
    assert files(again.root) == files(small.root)
    assert again.version == small.version
    other = LongTailSpec(**{**SMALL, "seed": 1})
    assert get_longtail_dataset(other, cache_dir=tmp_path / "c").version != small.version


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(counts=(5,)), "counts"),
        (dict(counts=(5, 0)), "counts"),
        (dict(test_per_class=0), "test_per_class=0"),
        (dict(max_objects=8, max_size=36), "max_objects=8"),
    ],
)
def test_bad_specs_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LongTailSpec(**kwargs)


def test_unknown_split_and_impossible_packing(small, tmp_path):
    with pytest.raises(ValueError, match="split='trian'"):
        small.split("trian")
    with pytest.raises(ValueError, match="distinct images"):
        generate_longtail(LongTailSpec(counts=(5, 1), max_objects=4, min_objects=4), tmp_path / "x")
