"""Class statistics from a COCO or LVIS instances json, streamed (see :mod:`.jsonstream`).

Label order: categories sorted by id, mapped to ``0..K-1`` — the contiguous order Detectron2's ``load_coco_json``
gives ``thing_classes`` and MMDetection's ``CocoDataset`` gives ``metainfo['classes']`` for a file whose
categories are listed by increasing id. Pass ``classes`` (the model's class names in label order) to use another
order. Category ids need not be contiguous (COCO's are 1..90 with gaps).
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .jsonstream import iter_object
from .progress import byte_progress
from .summary import DatasetStats, summarize, zero_area_issues

__all__ = ["read_coco"]

_REQUIRED = ("images", "annotations", "categories")


def _require(obj, key: str, where: str, path):
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: {where} must be a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise ValueError(f"{path}: {where} has no '{key}'")
    return obj[key]


def read_coco(
    path: str | os.PathLike,
    *,
    classes: Sequence[str] | None = None,
    include_ignored: bool = False,
    progress: bool = False,
) -> DatasetStats:
    """Per-class instance and image counts of a COCO/LVIS instances json.

    Boxes with ``iscrowd: 1`` or ``ignore: 1`` are *ignored* (left out of the counts unless ``include_ignored``).
    Boxes with zero width or height are counted and reported in ``issues``.

    Args:
        path: the json file.
        classes: the model's class names in label order; must name exactly the file's categories.
        include_ignored: count crowd/ignored boxes too.
        progress: show a progress bar (bytes read).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: malformed JSON (with line/column), a missing key, an annotation whose ``category_id`` or
            ``image_id`` is not declared, duplicate ids, ``classes`` not matching the categories, or an empty
            dataset.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"COCO json {path} does not exist")
    image_ids: list = []
    file_names: list[str] = []
    categories: dict = {}
    ann_image, ann_cat, ann_ignored = array("q"), array("q"), array("b")
    boxes = array("d")
    ann_ids: list = []
    seen = set()
    with byte_progress(path, enabled=progress, desc=f"reading {path.name}") as on_read:
        for key, value in iter_object(path, _REQUIRED, on_read):
            seen.add(key)
            if key == "images":
                for i, img in enumerate(value):
                    image_ids.append(_require(img, "id", f"images[{i}]", path))
                    file_names.append(str(img.get("file_name", img.get("coco_url", image_ids[-1]))))
            elif key == "categories":
                for i, cat in enumerate(value):
                    cid = _require(cat, "id", f"categories[{i}]", path)
                    if cid in categories:
                        raise ValueError(f"{path}: category id {cid!r} is declared twice in 'categories'")
                    categories[cid] = str(_require(cat, "name", f"categories[{i}]", path))
            elif key == "annotations":
                for i, ann in enumerate(value):
                    cid = _require(ann, "category_id", f"annotations[{i}]", path)
                    img = _require(ann, "image_id", f"annotations[{i}]", path)
                    bbox = _require(ann, "bbox", f"annotations[{i}]", path)
                    if not (isinstance(bbox, list) and len(bbox) == 4):
                        raise ValueError(f"{path}: annotations[{i}] 'bbox' must be [x, y, w, h], got {bbox!r}")
                    if not (isinstance(cid, int) and isinstance(img, int)):
                        raise ValueError(
                            f"{path}: annotations[{i}] needs integer 'category_id' and 'image_id', "
                            f"got {cid!r} and {img!r}"
                        )
                    ann_cat.append(cid)
                    ann_image.append(img)
                    ann_ignored.append(bool(ann.get("iscrowd", 0) or ann.get("ignore", 0)))
                    boxes.extend(bbox)
                    ann_ids.append(ann.get("id", i))
    missing = [k for k in _REQUIRED if k not in seen]
    if missing:
        raise ValueError(
            f"{path}: top-level keys {missing} are missing; expected a COCO instances file with {_REQUIRED}"
        )
    if not categories:
        raise ValueError(f"{path}: 'categories' is empty; expected at least one category")

    cat_ids = sorted(categories)
    names = [categories[c] for c in cat_ids]
    if classes is not None:
        classes = list(classes)
        if sorted(classes) != sorted(names) or len(set(classes)) != len(classes):
            raise ValueError(
                f"{path}: classes must name exactly the file's {len(names)} categories; missing from classes: "
                f"{sorted(set(names) - set(classes))[:10]}, not in the file: {sorted(set(classes) - set(names))[:10]}"
            )
        by_name = {categories[c]: c for c in cat_ids}
        cat_ids = [by_name[n] for n in classes]
        names = classes
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: category names are not unique; expected one name per category id")

    cats = np.frombuffer(ann_cat, dtype=np.int64) if len(ann_cat) else np.zeros(0, np.int64)
    imgs = np.frombuffer(ann_image, dtype=np.int64) if len(ann_image) else np.zeros(0, np.int64)
    labels = _map_ids(cats, cat_ids, "category_id", "categories", path, ann_ids)
    if len(set(image_ids)) != len(image_ids):
        raise ValueError(f"{path}: 'images' declares an image id twice; expected unique ids")
    if not all(isinstance(i, int) for i in image_ids):
        raise ValueError(f"{path}: image ids must be integers")
    image_index = _map_ids(imgs, image_ids, "image_id", "images", path, ann_ids)

    xyxy = np.frombuffer(boxes, dtype=np.float64).reshape(-1, 4).copy()
    xyxy[:, 2:] += xyxy[:, :2]
    issues = zero_area_issues(xyxy, image_index, labels, file_names, names)
    return summarize(
        names,
        len(image_ids),
        image_index,
        labels,
        np.frombuffer(ann_ignored, dtype=np.int8).astype(bool) if len(ann_ignored) else np.zeros(0, bool),
        include_ignored=include_ignored,
        issues=issues,
        source=str(path),
    )


def _map_ids(values: np.ndarray, declared: list, field: str, section: str, path, ann_ids: list) -> np.ndarray:
    """Position of each of ``values`` in ``declared``; raises naming the first annotation with an unknown id."""
    order = np.asarray(declared, dtype=np.int64)
    sorter = np.argsort(order, kind="stable")
    pos = np.searchsorted(order, values, sorter=sorter) if order.size else np.zeros_like(values)
    pos = np.clip(pos, 0, max(order.size - 1, 0))
    found = order[sorter[pos]] == values if order.size else np.zeros(values.shape, bool)
    if not found.all():
        j = int(np.flatnonzero(~found)[0])
        known = ", ".join(str(v) for v in sorted(declared)[:10]) + (" ..." if len(declared) > 10 else "")
        raise ValueError(
            f"{path}: annotation id {ann_ids[j]} has {field} {int(values[j])}, which is not declared in "
            f"'{section}' (declared: {known})"
        )
    return sorter[pos]
