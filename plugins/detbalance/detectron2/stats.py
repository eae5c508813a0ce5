"""Class statistics of a dataset registered in Detectron2's ``DatasetCatalog``/``MetadataCatalog``.

Translation only: Detectron2 dataset dicts (contiguous ``category_id`` in ``[0, K)``, names in
``metadata.thing_classes``) become the image records counted by
:func:`detbalance.stats.records.summarize_records`.

The images counted are those the training loader iterates: with ``filter_empty`` (detectron2's
``DATALOADER.FILTER_EMPTY_ANNOTATIONS``, on by default) images without a non-crowd box are dropped first, by
detectron2's own ``filter_images_with_only_crowd_annotations``, as ``get_detection_dataset_dicts`` does before
building the loader and its ``RepeatFactorTrainingSampler``. ``num_images`` and the image frequencies
``image_counts / num_images`` are therefore those of the loader, and ``repeat_factors(image_labels, t)`` equals the
sampler's ``repeat_factors_from_category_frequency``.
"""

from __future__ import annotations

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.build import filter_images_with_only_crowd_annotations
from detectron2.data.datasets import register_coco_instances
from detectron2.structures import BoxMode

from ..stats import DatasetStats
from ..stats.progress import LARGE_ITEM_COUNT, show_progress
from ..stats.records import ImageRecord, summarize_records
from ..weights import ClassStats

__all__ = ["class_stats_from_catalog", "register_coco", "stats_from_detectron2"]


def register_coco(name: str, json_file: str, image_root: str) -> None:
    """Register a COCO json under ``name`` (``register_coco_instances``); a name already registered is an error."""
    if name in DatasetCatalog.list():
        raise ValueError(f"dataset {name!r} is already registered in DatasetCatalog; choose another name")
    register_coco_instances(name, {}, json_file, image_root)


def stats_from_detectron2(
    name: str, *, include_ignored: bool = False, filter_empty: bool = True, progress: str = "auto"
) -> DatasetStats:
    """Per-class counts of ``DatasetCatalog.get(name)`` in the model's label order (``thing_classes``).

    ``iscrowd`` boxes are ignored (Detectron2's ``DatasetMapper`` drops them before training) unless
    ``include_ignored``; they still name their image's classes in ``image_labels``, as detectron2's repeat-factor
    sampler counts them. When the metadata has ``thing_dataset_id_to_contiguous_id`` (COCO-style datasets with
    arbitrary category ids) it must map onto ``0..K-1``; the dataset dicts already carry the contiguous ids.

    Args:
        name: registered dataset name.
        include_ignored: count crowd boxes too.
        filter_empty: drop the images without a non-crowd box first, as the training loader does with
            ``DATALOADER.FILTER_EMPTY_ANNOTATIONS`` (detectron2's default); False counts every image.
        progress: ``'always'``, ``'never'`` or ``'auto'`` (bar for more than ``LARGE_ITEM_COUNT`` images).
    """
    if name not in DatasetCatalog.list():
        raise ValueError(f"dataset {name!r} is not registered in Detectron2's DatasetCatalog")
    meta = MetadataCatalog.get(name)
    dicts = DatasetCatalog.get(name)  # loading first fills thing_classes for COCO-json datasets
    if filter_empty and dicts and "annotations" in dicts[0]:  # the condition of get_detection_dataset_dicts
        dicts = filter_images_with_only_crowd_annotations(dicts)
    classes = list(getattr(meta, "thing_classes", None) or [])
    if not classes:
        raise ValueError(f"dataset {name!r}: MetadataCatalog has no thing_classes; expected the class names")
    id_map = getattr(meta, "thing_dataset_id_to_contiguous_id", None)
    if id_map is not None and sorted(id_map.values()) != list(range(len(classes))):
        raise ValueError(
            f"dataset {name!r}: thing_dataset_id_to_contiguous_id maps onto {sorted(id_map.values())[:10]}, "
            f"expected 0..{len(classes) - 1} (one id per thing class)"
        )

    records = (
        ImageRecord(
            str(record.get("file_name", record.get("image_id", i))),
            [
                (
                    ann["category_id"],
                    bool(ann.get("iscrowd", 0)),
                    BoxMode.convert(list(ann["bbox"]), ann["bbox_mode"], BoxMode.XYXY_ABS),
                )
                for ann in record.get("annotations", [])
            ],
        )
        for i, record in enumerate(dicts)
    )
    return summarize_records(
        classes,
        records,
        num_images=len(dicts),
        include_ignored=include_ignored,
        source=f"Detectron2 dataset {name!r}" + (" (images with a non-crowd box)" if filter_empty else ""),
        progress=show_progress(progress, len(dicts) > LARGE_ITEM_COUNT),
        desc=f"reading {name}",
    )


def class_stats_from_catalog(names: list[str], *, filter_empty: bool = True) -> ClassStats:
    """Summed per-class counts of the training datasets ``names`` (e.g. ``cfg.DATASETS.TRAIN``).

    All datasets must share the same ``thing_classes`` (Detectron2 trains one label space); crowd boxes are left
    out, as in training; ``filter_empty`` is ``cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS`` (see
    :func:`stats_from_detectron2`), so ``num_images`` counts the images the training loader iterates.

    Raises:
        ValueError: no names, an unregistered name, or datasets whose class lists differ.
    """
    if not names:
        raise ValueError("expected at least one registered dataset name, got none")
    per_dataset = [stats_from_detectron2(name, filter_empty=filter_empty, progress="never").stats for name in names]
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
