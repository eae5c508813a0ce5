"""Fixtures of the workflow tests: a tiny COCO-format data set on disk (helpers live in wf_helpers.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from dbbench.data import SyntheticSpec, generate

# 4 classes, 64x64 images: a few seconds per tool run on 2 CPU cores.
TINY = SyntheticSpec(
    num_classes=4,
    head_instances=24,
    imbalance_ratio=8,
    test_per_class=2,
    image_size=64,
    min_size=10,
    max_size=16,
    max_objects=3,
)


@dataclass(frozen=True)
class CocoSet:
    root: Path
    train_json: Path
    train_images: Path
    test_json: Path
    test_images: Path
    num_classes: int


@pytest.fixture(scope="session")
def coco_set(tmp_path_factory) -> CocoSet:
    data = generate(TINY, tmp_path_factory.mktemp("workflow") / "shapes")
    return CocoSet(data.root, data.train_json, data.train_images, data.test_json, data.test_images, TINY.num_classes)


@pytest.fixture(scope="session")
def one_image_json(coco_set) -> Path:
    """The first train image alone (detectron2's sampler restarts its order on resume; one image has one order)."""
    train = json.loads(coco_set.train_json.read_text())
    image = train["images"][0]
    one = dict(train, images=[image], annotations=[a for a in train["annotations"] if a["image_id"] == image["id"]])
    path = coco_set.root / "one_image.json"
    path.write_text(json.dumps(one))
    return path
