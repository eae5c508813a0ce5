"""Per-class statistics from a stream of image records: the loop both framework bridges share.

A bridge (``detbalance.detectron2.stats``, ``detbalance.mmdet.stats``) translates each image of its framework's
dataset into an :class:`ImageRecord` (its name and, per box, the contiguous label, the ignore flag and the box in
x0, y0, x1, y1 pixels); :func:`summarize_records` flattens them, reports zero-area boxes and counts with
:func:`~detbalance.stats.summary.summarize`, under a progress bar when asked.

Example:
    >>> records = [ImageRecord("a.png", [(0, False, (0, 0, 4, 4)), (1, True, (1, 1, 3, 3))]),
    ...            ImageRecord("b.png", [(0, False, (2, 2, 2, 6))])]
    >>> ds = summarize_records(["cat", "dog"], records, num_images=2)
    >>> ds.stats.instance_counts, ds.stats.image_counts, ds.ignored_counts
    ([2, 0], [2, 0], [0, 1])
    >>> print(ds.issues[0])
    zero-area box [2, 2, 2, 6] (x0, y0, x1, y1) of class 'cat' in b.png
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

from .progress import item_progress
from .summary import DatasetStats, summarize, zero_area_issues

__all__ = ["ImageRecord", "summarize_records"]


class ImageRecord(NamedTuple):
    """One image: its name (for messages) and its boxes as ``(label, ignored, (x0, y0, x1, y1))``."""

    name: str
    boxes: Sequence[tuple[int, bool, Sequence[float]]]


def summarize_records(
    class_names: Sequence[str],
    records: Iterable[ImageRecord],
    *,
    num_images: int,
    include_ignored: bool = False,
    source: str = "",
    progress: bool = False,
    desc: str = "reading dataset",
) -> DatasetStats:
    """:func:`~detbalance.stats.summary.summarize` of ``records`` (``num_images`` of them, in order), with the
    zero-area boxes as issues; ``progress`` shows a bar over the images."""
    image_index, labels, ignored, boxes, image_names = [], [], [], [], []
    for i, record in enumerate(item_progress(records, total=num_images, enabled=progress, desc=desc)):
        image_names.append(record.name)
        for label, flag, box in record.boxes:
            image_index.append(i)
            labels.append(int(label))
            ignored.append(bool(flag))
            boxes.append(box)
    issues = zero_area_issues(boxes, image_index, labels, image_names, class_names)
    return summarize(
        class_names,
        num_images,
        np.asarray(image_index, dtype=np.int64),
        np.asarray(labels, dtype=np.int64),
        np.asarray(ignored, dtype=bool),
        include_ignored=include_ignored,
        issues=issues,
        source=source,
    )
