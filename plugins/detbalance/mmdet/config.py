"""Point a detbalance MMDetection config at a COCO-format dataset and its weights file.

The configs under ``configs/mmdet/`` name a dataset location, its classes and (for losses that read statistics)
a weights file. Overriding them by hand means setting, consistently:

- ``{train,val,test}_dataloader.dataset``: ``data_root``, ``ann_file``, ``data_prefix.img``, ``metainfo.classes``
  (descending through dataset wrappers such as ``RepeatDataset``),
- ``{val,test}_evaluator.ann_file`` (a path including ``data_root``),
- ``model.roi_head.bbox_head.num_classes`` and ``model.roi_head.bbox_head.loss_cls.num_classes`` (every stage's
  of a cascade; ``model.bbox_head`` of a dense detector such as RetinaNet),
- the loss's statistics argument (``loss_cls.<stats_arg>``, e.g. ``samples_per_class``) = the weights file.

:func:`use_dataset` does exactly that on a loaded ``mmengine.Config``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from mmdet.registry import MODELS
from mmengine.config import Config

__all__ = ["use_dataset"]


def _innermost(dataset: dict) -> dict:
    while "dataset" in dataset:
        dataset = dataset["dataset"]
    return dataset


def use_dataset(
    cfg: Config,
    *,
    data_root: str | os.PathLike,
    classes: Sequence[str],
    train_ann: str,
    train_images: str,
    val_ann: str,
    val_images: str,
    weights_file: str | os.PathLike | None = None,
) -> Config:
    """Set the dataset keys listed in the module docstring in place and return ``cfg``.

    Args:
        cfg: a loaded config with ``train_dataloader``/``val_dataloader``/``test_dataloader`` and a two-stage
            ``model`` (``model.roi_head.bbox_head``, or a list of them per cascade stage) or a dense one
            (``model.bbox_head``).
        data_root: folder the annotation files and images are relative to.
        classes: class names in label order (``len(classes)`` is K).
        train_ann, val_ann: COCO json files relative to ``data_root`` (val also serves the test loader).
        train_images, val_images: their image folders relative to ``data_root`` (``file_name`` is relative to
            these).
        weights_file: weights file for the loss's statistics argument (``stats_arg`` of its class); refused
            for a loss without one. When None the configured value stays (and is checked against K at build).

    Example (the layout of the demo's synthetic shapes, ``benchmarks/dbbench/data/synthetic.py``)::

        cfg = Config.fromfile('configs/mmdet/tiny/faster-rcnn_r18_fpn_tiny_cb-focal.py')
        use_dataset(cfg, data_root='out/shapes', classes=['circle', 'square'], train_ann='train.json',
                    train_images='train/', val_ann='test.json', val_images='test/',
                    weights_file='out/weights.json')
    """
    classes = tuple(str(c) for c in classes)
    if not classes:
        raise ValueError("classes is empty; expected the dataset's class names in label order")
    data_root = os.fspath(data_root)
    splits = (
        ("train_dataloader", train_ann, train_images),
        ("val_dataloader", val_ann, val_images),
        ("test_dataloader", val_ann, val_images),
    )
    for loader, ann, images in splits:
        if loader not in cfg:
            continue
        dataset = _innermost(cfg[loader]["dataset"])
        dataset.update(data_root=data_root, ann_file=ann, data_prefix=dict(img=images), metainfo=dict(classes=classes))
    for evaluator in ("val_evaluator", "test_evaluator"):
        if evaluator in cfg and "ann_file" in cfg[evaluator]:
            cfg[evaluator]["ann_file"] = os.path.join(data_root, val_ann)

    heads = cfg.model.roi_head.bbox_head if "roi_head" in cfg.model else cfg.model.bbox_head
    for bbox_head in heads if isinstance(heads, (list, tuple)) else [heads]:
        bbox_head.num_classes = len(classes)
        loss_cls = bbox_head.loss_cls
        if "num_classes" in loss_cls:
            loss_cls.num_classes = len(classes)
        stats_arg = getattr(MODELS.get(loss_cls.type), "stats_arg", None)
        if weights_file is not None:
            if stats_arg is None:
                raise ValueError(f"loss_cls type {loss_cls.type!r} reads no weights file; pass weights_file=None")
            loss_cls[stats_arg] = os.fspath(weights_file)
    return cfg
