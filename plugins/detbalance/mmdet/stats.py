"""Class statistics of the training set an MMDetection 3.x config builds (``train_dataloader.dataset``).

Translation only: the dataset is built through ``mmdet.registry.DATASETS`` exactly as training builds it (so
``filter_cfg``, ``metainfo`` class subsets and ``CocoDataset``'s category-id mapping apply), and each
``get_data_info(i)`` (``instances`` with ``bbox_label``, ``ignore_flag``, ``bbox``) becomes an image record
counted by :func:`detbalance.stats.records.summarize_records`. Labels follow the model's order, named by
``metainfo['classes']``.

Note: MMDetection's ``CocoDataset`` numbers labels in the order the json *lists* its categories (restricted to
``metainfo['classes']``), not in the order of ``metainfo['classes']``; the two agree when both are by category id.
When they disagree, the statistics name each label by the category it really maps to (read from the annotation
file) and a warning says so: the model's predictions would otherwise carry the wrong class names.
Boxes MMDetection drops while loading (``ignore: 1``, width or height below 1 pixel) are not seen here.
"""

from __future__ import annotations

import os
import warnings

from mmengine.config import Config
from mmengine.dataset import BaseDataset, ConcatDataset

from ..stats import DatasetStats
from ..stats.jsonstream import iter_object
from ..stats.progress import LARGE_ITEM_COUNT, show_progress
from ..stats.records import ImageRecord, summarize_records

__all__ = ["build_train_dataset", "stats_from_mmdet_config", "stats_from_mmdet_dataset"]


def build_train_dataset(config: str | os.PathLike | Config):
    """``train_dataloader.dataset`` of ``config`` (a path or a loaded ``Config``), built by the DATASETS registry."""
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules

    if not isinstance(config, Config):
        if not os.path.isfile(config):
            raise FileNotFoundError(f"MMDetection config {config} does not exist")
        config = Config.fromfile(config)
    register_all_modules(init_default_scope=True)
    loader = config.get("train_dataloader")
    if not loader or "dataset" not in loader:
        raise ValueError(f"config {config.filename}: no train_dataloader.dataset; expected a training config")
    return DATASETS.build(loader["dataset"])


def _leaves(dataset) -> list[BaseDataset]:
    """The annotated datasets under MMEngine/MMDetection wrappers (repeat, class-balanced, mix, concat)."""
    if isinstance(dataset, ConcatDataset):
        return [leaf for d in dataset.datasets for leaf in _leaves(d)]
    if hasattr(dataset, "dataset") and not hasattr(dataset, "data_list"):  # RepeatDataset, ClassBalancedDataset, ...
        return _leaves(dataset.dataset)
    return [dataset]


def _label_names(leaf, classes: list[str]) -> list[str]:
    """Name of the category behind each label of a COCO-style leaf (``cat_ids`` in label order), else ``classes``."""
    cat_ids = getattr(leaf, "cat_ids", None)
    ann_file = getattr(leaf, "ann_file", None)
    if not cat_ids or not ann_file or not os.path.isfile(ann_file) or len(cat_ids) != len(classes):
        return classes
    names_by_id = {}
    for key, value in iter_object(ann_file, ("images", "annotations")):
        if key == "categories":
            names_by_id = {c["id"]: c["name"] for c in value}
            break
    names = [names_by_id.get(cid) for cid in cat_ids]
    if None in names or names == classes:
        return classes
    warnings.warn(
        f"{ann_file}: MMDetection numbers labels in the json's category order {names}, which differs from "
        f"metainfo['classes'] {classes}; statistics follow the labels the model trains with. List the "
        "categories in the json in the order of metainfo['classes'] to make predictions carry the right names.",
        stacklevel=3,
    )
    return names


def stats_from_mmdet_dataset(
    dataset, *, include_ignored: bool = False, progress: str = "auto", source: str = ""
) -> DatasetStats:
    """Per-class counts of a built MMDetection dataset (wrappers are looked through: each image counted once).

    ``num_images`` counts the images the training loader iterates: those the dataset's ``filter_cfg`` kept
    (``filter_empty_gt`` drops the images without any annotation; a crowd-only image stays, as MMDetection keeps
    it). Boxes with ``ignore_flag`` (COCO ``iscrowd``, VOC ``difficult``) are ignored unless ``include_ignored``;
    they still name their image's classes in ``image_labels``, as MMEngine's ``ClassBalancedDataset`` counts them,
    so ``repeat_factors(image_labels, t)`` equals its repeat factors.
    """
    leaves = _leaves(dataset)
    classes = list(leaves[0].metainfo.get("classes") or [])
    if not classes:
        raise ValueError(f"{source or 'dataset'}: metainfo has no 'classes'; expected the class names")
    for leaf in leaves[1:]:
        if list(leaf.metainfo.get("classes") or []) != classes:
            raise ValueError(f"{source or 'dataset'}: concatenated datasets have different metainfo['classes']")
    classes = _label_names(leaves[0], classes)

    total = sum(len(leaf) for leaf in leaves)
    infos = (leaf.get_data_info(i) for leaf in leaves for i in range(len(leaf)))
    records = (
        ImageRecord(
            str(info.get("img_path", info.get("img_id", n))),
            [
                (inst["bbox_label"], bool(inst.get("ignore_flag", 0)), inst["bbox"])
                for inst in info.get("instances", [])
            ],
        )
        for n, info in enumerate(infos)
    )
    return summarize_records(
        classes,
        records,
        num_images=total,
        include_ignored=include_ignored,
        source=source or type(dataset).__name__,
        progress=show_progress(progress, total > LARGE_ITEM_COUNT),
    )


def stats_from_mmdet_config(
    config: str | os.PathLike | Config, *, include_ignored: bool = False, progress: str = "auto"
) -> DatasetStats:
    """Per-class counts of the training set ``config`` builds; see :func:`stats_from_mmdet_dataset`."""
    name = config.filename if isinstance(config, Config) else str(config)
    return stats_from_mmdet_dataset(
        build_train_dataset(config),
        include_ignored=include_ignored,
        progress=progress,
        source=f"MMDetection config {name} (train_dataloader.dataset)",
    )
