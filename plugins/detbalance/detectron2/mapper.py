"""Per-box weights: an annotation key ``"weight"`` carried into ``Instances.gt_weights``.

A dataset dict may give any instance a ``"weight"``, a finite number >= 0 (default 1.0; checked by
:func:`detbalance.data.box_weights.annotation_weight`, as in MMDetection's loader: numbers only)::

    {"bbox": [10, 20, 50, 60], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 3, "weight": 0.5}

:class:`WeightedDatasetMapper` is detectron2's ``DatasetMapper`` plus that field: every training image's
``instances`` get ``gt_weights`` (float32, one per kept box, in the order of ``gt_boxes``). detectron2's
``StandardROIHeads.label_and_sample_proposals`` copies every ``gt_*`` field onto the sampled proposals, and
:class:`~detbalance.detectron2.fast_rcnn.BalancedFastRCNNOutputLayers` passes the weight of a proposal's matched
box as the loss's ``sample_weight`` (background proposals weigh 1). A weight of 0 removes a box from the
classification loss.

Use it in place of ``DatasetMapper``: ``build_detection_train_loader(cfg, mapper=WeightedDatasetMapper(cfg, True))``.
"""

from __future__ import annotations

import torch
from detectron2.data import DatasetMapper

from ..data.box_weights import WEIGHT_KEY, annotation_weight

__all__ = ["WeightedDatasetMapper", "WEIGHT_KEY"]


class WeightedDatasetMapper(DatasetMapper):
    """``DatasetMapper`` that also sets ``instances.gt_weights`` from each annotation's ``"weight"``.

    Same constructor and config as ``DatasetMapper``. Crowd annotations are dropped and boxes emptied by the
    augmentations are filtered exactly as by the parent; the weights follow the boxes that remain.
    """

    def _transform_annotations(self, dataset_dict, transforms, image_shape):
        # The parent drops crowd annotations and, after transforming, empty boxes. To know which annotations
        # survive without repeating its logic, each annotation's category_id temporarily holds its index; the
        # parent's gt_classes then list the surviving indices, from which classes and weights are restored.
        # ``dataset_dict`` is the parent's private deep copy, so editing its annotations is safe.
        annotations = dataset_dict["annotations"]
        categories = torch.as_tensor([int(a["category_id"]) for a in annotations], dtype=torch.int64)
        weights = torch.as_tensor(
            [annotation_weight(a, f"in image {_image_name(dataset_dict)!r}") for a in annotations], dtype=torch.float32
        )
        for index, annotation in enumerate(annotations):
            annotation["category_id"] = index
        super()._transform_annotations(dataset_dict, transforms, image_shape)
        instances = dataset_dict["instances"]
        kept = instances.gt_classes.to(torch.int64)
        instances.gt_classes = categories[kept]
        instances.gt_weights = weights[kept]


def _image_name(dataset_dict: dict):
    return dataset_dict.get("file_name", dataset_dict.get("image_id", "?"))
