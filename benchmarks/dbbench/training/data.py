"""The data set one run trains and tests on: paths, class order, frequency groups and input size."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunData", "coco_categories"]


@dataclass(frozen=True)
class RunData:
    """A train and a test split in COCO json form.

    ``class_names`` follow the contiguous label order both frameworks use: categories sorted by id. ``groups`` is
    the ``'r'``/``'c'``/``'f'`` frequency group of each class (from the categories' ``"frequency"`` key where the
    json has one, as LVIS and the synthetic set do; else by the LVIS image-count rule on the train split).
    ``image_size`` is the shorter side images are resized to, ``max_size`` the longer-side cap. ``stats_source``
    names the train split for ``tools/compute_weights.py`` (e.g. ``("--coco", "train.json")``).
    """

    name: str
    train_json: Path
    train_images: Path
    test_json: Path
    test_images: Path
    class_names: tuple[str, ...]
    category_ids: tuple[int, ...]
    groups: tuple[str, ...]
    image_size: int
    max_size: int
    stats_source: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def coco_categories(json_path: str | Path) -> list[dict]:
    """The ``categories`` of a COCO json, sorted by id (the contiguous label order of both frameworks)."""
    path = Path(json_path)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid json: {e}") from e
    categories = data.get("categories") if isinstance(data, dict) else None
    if not categories:
        raise ValueError(f"{path} has no 'categories'; expected a COCO detection json")
    return sorted(categories, key=lambda c: c["id"])
