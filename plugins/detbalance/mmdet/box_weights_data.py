"""Per-box annotation weights from COCO files into ``gt_instances.weights``.

A COCO annotation may carry ``"weight"`` (a finite number >= 0, default 1; checked by
:func:`detbalance.data.box_weights.annotation_weight`, as in Detectron2's mapper): that box's classification loss is
multiplied by it (0 removes the box's positives from the classification loss, 2 counts them twice). Three
registered components carry it from the file to the model, where :class:`DBStandardRoIHead` applies it:

- ``DBCocoDataset`` (``DATASETS``): ``CocoDataset`` that keeps ``"weight"`` in each parsed instance.
- ``DBLoadAnnotations`` (``TRANSFORMS``): ``LoadAnnotations`` that also loads ``results["gt_bboxes_weights"]``
  (float32 [N], aligned with ``gt_bboxes``).
- ``DBPackDetInputs`` (``TRANSFORMS``): ``PackDetInputs`` that packs it as ``gt_instances.weights``.

Transforms between loading and packing must keep ``gt_bboxes_weights`` aligned with ``gt_bboxes``: resizing and
flipping do; transforms that drop boxes (crops, ``FilterAnnotations``) do not know the key, and packing then
raises ``ValueError`` naming both lengths instead of pairing weights with the wrong boxes.

Example (train pipeline and dataset of a config)::

    train_pipeline = [dict(type='LoadImageFromFile'), dict(type='DBLoadAnnotations', with_bbox=True),
                      dict(type='Resize', scale=(128, 128), keep_ratio=True), dict(type='DBPackDetInputs')]
    train_dataloader = dict(dataset=dict(type='DBCocoDataset', pipeline=train_pipeline))
"""

from __future__ import annotations

import numpy as np
from mmdet.datasets import CocoDataset
from mmdet.datasets.transforms import LoadAnnotations, PackDetInputs
from mmdet.registry import DATASETS, TRANSFORMS

from ..data.box_weights import annotation_weight

__all__ = ["DBCocoDataset", "DBLoadAnnotations", "DBPackDetInputs", "WEIGHTS_KEY"]

#: Key of the per-box weights in the pipeline's results dict.
WEIGHTS_KEY = "gt_bboxes_weights"


@DATASETS.register_module()
class DBCocoDataset(CocoDataset):
    """``CocoDataset`` whose parsed instances keep the annotation's ``"weight"`` (1.0 where absent).

    Annotations are filtered exactly as ``CocoDataset`` does (each one is parsed by it); every kept instance
    gains ``instance["weight"]``. A weight that is not a finite number >= 0 raises ``ValueError`` naming the
    annotation id.
    """

    def parse_data_info(self, raw_data_info: dict) -> dict:
        data_info = super().parse_data_info(dict(raw_data_info, raw_ann_info=[]))
        instances = []
        for ann in raw_data_info["raw_ann_info"]:
            kept = super().parse_data_info(dict(raw_data_info, raw_ann_info=[ann]))["instances"]
            for instance in kept:
                instance["weight"] = annotation_weight(ann, f"id={ann.get('id')}")
            instances.extend(kept)
        data_info["instances"] = instances
        return data_info


@TRANSFORMS.register_module()
class DBLoadAnnotations(LoadAnnotations):
    """``LoadAnnotations`` that also loads per-box weights as ``results["gt_bboxes_weights"]`` (float32 [N]).

    Instances without ``"weight"`` get 1.0, so it also works on datasets that never set one.
    """

    def _load_bboxes(self, results: dict) -> None:
        super()._load_bboxes(results)
        weights = [instance.get("weight", 1.0) for instance in results.get("instances", [])]
        results[WEIGHTS_KEY] = np.asarray(weights, dtype=np.float32).reshape(-1)


@TRANSFORMS.register_module()
class DBPackDetInputs(PackDetInputs):
    """``PackDetInputs`` that also packs ``results["gt_bboxes_weights"]`` as ``gt_instances.weights``."""

    mapping_table = dict(PackDetInputs.mapping_table, **{WEIGHTS_KEY: "weights"})

    def transform(self, results: dict) -> dict:
        if WEIGHTS_KEY in results and "gt_bboxes" in results:
            num_weights, num_boxes = len(results[WEIGHTS_KEY]), len(results["gt_bboxes"])
            if num_weights != num_boxes:
                raise ValueError(
                    f"{WEIGHTS_KEY} has {num_weights} entries but gt_bboxes has {num_boxes}; a transform between "
                    f"DBLoadAnnotations and DBPackDetInputs dropped boxes without dropping their weights"
                )
        return super().transform(results)
