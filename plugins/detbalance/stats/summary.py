"""From per-box labels to per-class statistics: the counting shared by every dataset reader.

Readers (COCO/LVIS json, Pascal VOC xml, the Detectron2 and MMDetection bridges) translate their input into flat
arrays, one entry per box: the image index, the contiguous label and whether the box is *ignored* (COCO
``iscrowd``/``ignore``, VOC ``difficult``, MMDetection ``ignore_flag``). :func:`summarize` counts them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..weights import ClassStats

__all__ = ["BoxIssue", "DatasetStats", "summarize", "degenerate_boxes", "zero_area_issues"]


@dataclass(frozen=True)
class BoxIssue:
    """A suspicious box that is kept in the counts and reported: ``reason`` is e.g. ``'zero-area'``."""

    image: str
    class_name: str
    box_xyxy: tuple[float, float, float, float]
    reason: str

    def __str__(self) -> str:
        box = ", ".join(f"{v:g}" for v in self.box_xyxy)
        return f"{self.reason} box [{box}] (x0, y0, x1, y1) of class {self.class_name!r} in {self.image}"


@dataclass
class DatasetStats:
    """Statistics of one training set.

    Attributes:
        stats: per-class counts in the model's label order.
        image_labels: for each image, the sorted distinct labels of its boxes, crowd/ignored/difficult ones
            included whatever ``include_ignored`` says: the classes repeat-factor sampling sees in the image, as
            detectron2's ``RepeatFactorTrainingSampler`` and MMDetection's ``ClassBalancedDataset`` count them
            (input to :func:`detbalance.weights.repeat_factors`).
        ignored_counts: per class, boxes flagged crowd/ignored/difficult.
        include_ignored: whether those boxes are part of ``stats``.
        issues: suspicious boxes (kept in the counts).
        source: human-readable description of the input.
    """

    stats: ClassStats
    image_labels: list[np.ndarray]
    ignored_counts: list[int]
    include_ignored: bool
    issues: list[BoxIssue] = field(default_factory=list)
    source: str = ""


def degenerate_boxes(boxes_xyxy: np.ndarray) -> np.ndarray:
    """Indices of boxes ``[B, 4]`` (x0, y0, x1, y1) with zero or negative width or height."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    return np.flatnonzero((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1]))


def zero_area_issues(
    boxes_xyxy,
    image_index: Sequence[int],
    labels: Sequence[int],
    image_names: Sequence[str],
    class_names: Sequence[str],
) -> list[BoxIssue]:
    """A ``'zero-area'`` :class:`BoxIssue` for each degenerate box of ``boxes_xyxy[B, 4]`` whose label is a class
    (``image_index[B]``/``labels[B]`` name its image and class); out-of-range labels are reported by
    :func:`summarize`."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    return [
        BoxIssue(image_names[image_index[j]], class_names[labels[j]], tuple(boxes[j].tolist()), "zero-area")
        for j in degenerate_boxes(boxes)
        if 0 <= labels[j] < len(class_names)
    ]


def summarize(
    class_names: Sequence[str],
    num_images: int,
    image_index: np.ndarray,
    labels: np.ndarray,
    ignored: np.ndarray,
    *,
    include_ignored: bool = False,
    issues: Sequence[BoxIssue] = (),
    source: str = "",
) -> DatasetStats:
    """Count instances and images per class.

    Args:
        class_names: ``K`` names in the model's label order.
        num_images: ``N``, the images the training loader iterates: every image of the reader's input, or
            what remains after the framework's empty-image filter for the framework bridges (images without
            boxes included when the filter is off).
        image_index: ``[B]`` int, image of each box in ``[0, N)``.
        labels: ``[B]`` int, contiguous label of each box in ``[0, K)``.
        ignored: ``[B]`` bool, box flagged crowd/ignored/difficult.
        include_ignored: count flagged boxes like any other (default: leave them out, as both frameworks do
            when training: they are not foreground targets).

    Raises:
        ValueError: an empty dataset (no images, or no counted box), or an index out of range.
    """
    names = list(class_names)
    k = len(names)
    if num_images <= 0:
        raise ValueError(f"{source or 'dataset'} is empty: it has no images")
    image_index = np.asarray(image_index, dtype=np.int64).reshape(-1)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    ignored = np.asarray(ignored, dtype=bool).reshape(-1)
    if not (image_index.shape == labels.shape == ignored.shape):
        raise ValueError(
            f"image_index, labels and ignored must have one entry per box, got shapes "
            f"{image_index.shape}, {labels.shape}, {ignored.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        bad = int(labels[(labels < 0) | (labels >= k)][0])
        raise ValueError(f"{source or 'dataset'}: box label {bad} is outside [0, {k}) ({k} classes)")
    if image_index.size and (image_index.min() < 0 or image_index.max() >= num_images):
        bad = int(image_index[(image_index < 0) | (image_index >= num_images)][0])
        raise ValueError(f"{source or 'dataset'}: box image index {bad} is outside [0, {num_images})")

    keep = np.ones_like(ignored) if include_ignored else ~ignored
    if not keep.any():
        what = "boxes" if labels.size == 0 else "boxes that are not crowd/ignored"
        raise ValueError(f"{source or 'dataset'} is empty: its {num_images} images have no {what}")
    if k == 0:
        raise ValueError(f"{source or 'dataset'}: no classes defined")
    kept_labels = labels[keep]
    instance_counts = np.bincount(kept_labels, minlength=k)
    pairs = np.unique(image_index[keep] * k + kept_labels)  # one entry per (image, class) counted
    image_counts = np.bincount(pairs % k, minlength=k)
    pair_image, pair_label = np.divmod(np.unique(image_index * k + labels), k)  # every box, for repeat factors
    bounds = np.searchsorted(pair_image, np.arange(num_images + 1))
    image_labels = [pair_label[bounds[i] : bounds[i + 1]] for i in range(num_images)]
    ignored_counts = np.bincount(labels[ignored], minlength=k)

    stats = ClassStats(
        class_names=names,
        instance_counts=[int(v) for v in instance_counts],
        image_counts=[int(v) for v in image_counts],
        num_images=int(num_images),
    )
    return DatasetStats(
        stats=stats,
        image_labels=image_labels,
        ignored_counts=[int(v) for v in ignored_counts],
        include_ignored=include_ignored,
        issues=list(issues),
        source=source,
    )
