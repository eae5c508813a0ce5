"""Class statistics of a dataset registered in Detectron2's ``DatasetCatalog``/``MetadataCatalog``.

Translation only: Detectron2 dataset dicts (contiguous ``category_id`` in ``[0, K)``, names in
``metadata.thing_classes``) become the flat arrays counted by :func:`detbalance.stats.summarize`.
"""
from __future__ import annotations

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances
from detectron2.structures import BoxMode

from ..stats import DatasetStats, summarize, zero_area_issues
from ..stats.progress import LARGE_ITEM_COUNT, item_progress
from ..weights import ClassStats

__all__ = ["class_stats_from_catalog", "register_coco", "stats_from_detectron2"]


def register_coco(name: str, json_file: str, image_root: str) -> None:
    """Register a COCO json under ``name`` (``register_coco_instances``); a name already registered is an error."""
    if name in DatasetCatalog.list():
        raise ValueError(f"dataset {name!r} is already registered in DatasetCatalog; choose another name")
    register_coco_instances(name, {}, json_file, image_root)


def stats_from_detectron2(name: str, *, include_ignored: bool = False, progress: str = "auto") -> DatasetStats:
    """Per-class counts of ``DatasetCatalog.get(name)`` in the model's label order (``thing_classes``).

    ``iscrowd`` boxes are ignored (Detectron2's ``DatasetMapper`` drops them before training) unless
    ``include_ignored``. When the metadata has ``thing_dataset_id_to_contiguous_id`` (COCO-style datasets with
    arbitrary category ids) it must map onto ``0..K-1``; the dataset dicts already carry the contiguous ids.

    Args:
        name: registered dataset name.
        include_ignored: count crowd boxes too.
        progress: ``'always'``, ``'never'`` or ``'auto'`` (bar for more than ``LARGE_ITEM_COUNT`` images).
    """
    if name not in DatasetCatalog.list():
        raise ValueError(f"dataset {name!r} is not registered in Detectron2's DatasetCatalog")
    meta = MetadataCatalog.get(name)
    dicts = DatasetCatalog.get(name)  # loading first fills thing_classes for COCO-json datasets
    classes = list(getattr(meta, "thing_classes", None) or [])
    if not classes:
        raise ValueError(f"dataset {name!r}: MetadataCatalog has no thing_classes; expected the class names")
    id_map = getattr(meta, "thing_dataset_id_to_contiguous_id", None)
    if id_map is not None and sorted(id_map.values()) != list(range(len(classes))):
        raise ValueError(
            f"dataset {name!r}: thing_dataset_id_to_contiguous_id maps onto {sorted(id_map.values())[:10]}, "
            f"expected 0..{len(classes) - 1} (one id per thing class)"
        )

    image_index, labels, ignored, boxes, image_names = [], [], [], [], []
    show = progress == "always" or (progress == "auto" and len(dicts) > LARGE_ITEM_COUNT)
    for i, record in enumerate(item_progress(dicts, total=len(dicts), enabled=show, desc=f"reading {name}")):
        image_names.append(str(record.get("file_name", record.get("image_id", i))))
        for ann in record.get("annotations", []):
            image_index.append(i)
            labels.append(ann["category_id"])
            ignored.append(bool(ann.get("iscrowd", 0)))
            boxes.append(BoxMode.convert(list(ann["bbox"]), ann["bbox_mode"], BoxMode.XYXY_ABS))
    issues = zero_area_issues(boxes, image_index, labels, image_names, classes)
    return summarize(
        classes,
        len(dicts),
        np.asarray(image_index, dtype=np.int64),
        np.asarray(labels, dtype=np.int64),
        np.asarray(ignored, dtype=bool),
        include_ignored=include_ignored,
        issues=issues,
        source=f"Detectron2 dataset {name!r}",
    )


def class_stats_from_catalog(names: list[str]) -> ClassStats:
    """Summed per-class counts of the training datasets ``names`` (e.g. ``cfg.DATASETS.TRAIN``).

    All datasets must share the same ``thing_classes`` (Detectron2 trains one label space); crowd boxes are left
    out, as in training.

    Raises:
        ValueError: no names, an unregistered name, or datasets whose class lists differ.
    """
    if not names:
        raise ValueError("expected at least one registered dataset name, got none")
    per_dataset = [stats_from_detectron2(name, progress="never").stats for name in names]
    classes = per_dataset[0].class_names
    for name, stats in zip(names[1:], per_dataset[1:]):
        if stats.class_names != classes:
            raise ValueError(
                f"dataset {name!r} has classes {stats.class_names[:5]}..., expected the classes of "
                f"{names[0]!r} {classes[:5]}... (all training datasets must share one label space)"
            )
    return ClassStats(
        class_names=list(classes),
        instance_counts=[sum(c) for c in zip(*(s.instance_counts for s in per_dataset))],
        image_counts=[sum(c) for c in zip(*(s.image_counts for s in per_dataset))],
        num_images=sum(s.num_images for s in per_dataset),
    )
