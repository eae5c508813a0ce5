"""The synthetic long-tailed detection set: determinism, schedule, geometry, balanced variants, cache."""

import collections
import json
import os

import numpy as np
import pytest
from PIL import Image

from dbbench.data import SyntheticSpec, frequency_groups_of, generate, get_synthetic_dataset, train_schedule
from dbbench.data.shapes import SHAPES, shape_mask

# Small but long-tailed: 60 -> 4 instances over 6 classes, 5 test instances per class.
SMALL = dict(num_classes=6, head_instances=60, imbalance_ratio=15.0, test_per_class=5, image_size=96, max_size=30)


def _load(path):
    return json.loads(path.read_text())


def _file_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return get_synthetic_dataset(SyntheticSpec(**SMALL), cache_dir=tmp_path_factory.mktemp("cache"))


def test_default_schedule_matches_the_measured_setting():
    assert train_schedule(SyntheticSpec()) == [1500, 753, 378, 189, 95, 48, 24, 12]
    assert frequency_groups_of(SyntheticSpec()) == ["f", "f", "f", "c", "c", "r", "r", "r"]
    assert train_schedule(SyntheticSpec(balanced=True)) == [375] * 8


def test_schedule_is_exponential_for_other_settings():
    counts = train_schedule(SyntheticSpec(num_classes=16, head_instances=2000, imbalance_ratio=1000))
    assert counts[0] == 2000 and counts[-1] == 2
    ratios = np.array(counts[:-1], float) / np.array(counts[1:], float)
    np.testing.assert_allclose(ratios[:8], 1000 ** (1 / 15), rtol=0.02)  # exact ratio until rounding dominates


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    spec = SyntheticSpec(**SMALL, seed=3)
    first, second = generate(spec, tmp_path / "a"), generate(spec, tmp_path / "b")
    files_a, files_b = _file_bytes(first.root), _file_bytes(second.root)
    assert files_a.keys() == files_b.keys() and "train/000001.png" in files_a
    assert files_a == files_b
    other = generate(SyntheticSpec(**SMALL, seed=4), tmp_path / "c")
    assert other.train_json.read_bytes() != first.train_json.read_bytes()


def test_counts_follow_the_schedule_and_test_is_balanced(small):
    train, test = _load(small.train_json), _load(small.test_json)
    expected = train_schedule(small.spec)
    assert expected == [60, 35, 20, 12, 7, 4]
    for coco, counts in ((train, expected), (test, [5] * 6)):
        per_class = collections.Counter(a["category_id"] for a in coco["annotations"])
        assert [per_class[i] for i in range(1, 7)] == counts
        per_image = collections.Counter(a["image_id"] for a in coco["annotations"])
        assert set(per_image) == {im["id"] for im in coco["images"]}  # no empty image
        assert 1 <= min(per_image.values()) and max(per_image.values()) <= 4
    assert [c["id"] for c in train["categories"]] == [1, 2, 3, 4, 5, 6]
    assert [c["name"] for c in train["categories"]] == list(small.class_names) == list(SHAPES[:6])
    assert train["categories"] == test["categories"]
    assert [c["longtail_instances"] for c in train["categories"]] == expected
    assert [c["frequency"] for c in train["categories"]] == frequency_groups_of(small.spec) == list("ffccrr")


def test_colours_are_shared_by_one_commoner_and_one_rarer_class(small):
    colours = [c["color"] for c in _load(small.train_json)["categories"]]
    assert colours[:3] == colours[3:] and len(set(colours)) == 3


def test_boxes_are_tight_inside_the_image_and_do_not_overlap(small):
    for json_path, image_dir in ((small.train_json, small.train_images), (small.test_json, small.test_images)):
        coco = _load(json_path)
        by_image = collections.defaultdict(list)
        for ann in coco["annotations"]:
            x, y, w, h = ann["bbox"]
            assert x >= 0 and y >= 0 and x + w <= 96 and y + h <= 96
            assert 8 <= max(w, h) <= 30 and ann["area"] <= w * h and ann["iscrowd"] == 0
            by_image[ann["image_id"]].append((x, y, x + w, y + h))
        for boxes in by_image.values():
            for i, a in enumerate(boxes):
                for b in boxes[i + 1 :]:
                    assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
        for image in coco["images"][:5]:
            with Image.open(image_dir / image["file_name"]) as im:
                assert im.size == (96, 96) and im.mode == "RGB"


def test_objects_are_visible_in_the_pixels(small):
    """Inside each box the object colour differs clearly from the grey background around it."""
    coco = _load(small.test_json)
    image = coco["images"][0]
    pixels = np.asarray(Image.open(small.test_images / image["file_name"]), dtype=float)
    for ann in coco["annotations"]:
        if ann["image_id"] != image["id"]:
            continue
        x, y, w, h = ann["bbox"]
        patch = pixels[y : y + h, x : x + w]
        colourfulness = (patch.max(axis=2) - patch.min(axis=2)).max()
        assert colourfulness > 80


def test_balanced_variant_has_same_total_and_same_test_split(tmp_path, small):
    balanced = get_synthetic_dataset(SyntheticSpec(**SMALL, balanced=True), cache_dir=tmp_path)
    counts = collections.Counter(a["category_id"] for a in _load(balanced.train_json)["annotations"])
    assert sorted(counts.values()) == [23] * 6  # round(138 / 6)
    assert abs(sum(counts.values()) - sum(train_schedule(small.spec))) < 6
    assert balanced.test_json.read_bytes() == small.test_json.read_bytes()
    assert _file_bytes(balanced.test_images) == _file_bytes(small.test_images)


def test_cache_is_reused_and_leaves_no_temporary_folder(tmp_path):
    spec = SyntheticSpec(**SMALL)
    first = get_synthetic_dataset(spec, cache_dir=tmp_path)
    stamp = first.train_json.stat().st_mtime_ns
    second = get_synthetic_dataset(spec, cache_dir=tmp_path)
    assert second.root == first.root and second.train_json.stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path / "synthetic").iterdir()] == [first.root.name]
    assert json.loads((first.root / "spec.json").read_text())["num_classes"] == 6


def test_default_cache_folder_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DETBALANCE_CACHE_DIR", str(tmp_path))
    data = get_synthetic_dataset(SyntheticSpec(**SMALL))
    assert data.root.parent == tmp_path / "synthetic" and os.path.isfile(data.train_json)


def test_generate_refuses_an_existing_folder(tmp_path):
    with pytest.raises(ValueError, match="already exists"):
        generate(SyntheticSpec(**SMALL), tmp_path)


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("num_classes", 17, r"num_classes=17; expected an integer in \[2, 16\]"),
        ("num_classes", 1, "num_classes=1"),
        ("imbalance_ratio", 0.5, r"imbalance_ratio=0.5; expected a number in \[1, head_instances"),
        ("max_size", 70, "max_size=70"),
        ("max_objects", 12, "max_objects=12"),
        ("balanced", "yes", "balanced='yes'"),
    ],
)
def test_bad_spec_names_the_value(field, value, expected):
    with pytest.raises(ValueError, match=expected):
        SyntheticSpec(**{field: value})


def test_dense_spec_that_cannot_fit_is_rejected():
    with pytest.raises(ValueError, match="do not fit"):
        SyntheticSpec(image_size=64, max_objects=4, max_size=30)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_stays_inside_its_cell(shape):
    for size in (14, 36):
        mask = shape_mask(shape, 5, 7, size, 48)
        ys, xs = np.nonzero(mask)
        assert xs.min() >= 5 and xs.max() <= 5 + size - 1 and ys.min() >= 7 and ys.max() <= 7 + size - 1
        assert mask.sum() > 0.2 * size * size


def test_shapes_of_one_colour_pair_differ():
    masks = {s: shape_mask(s, 0, 0, 30, 30) for s in SHAPES}
    for i, a in enumerate(SHAPES):
        for b in SHAPES[i + 1 :]:
            assert (masks[a] != masks[b]).sum() > 30, (a, b)
