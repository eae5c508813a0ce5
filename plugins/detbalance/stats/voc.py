"""Class statistics from a Pascal VOC folder (``Annotations/*.xml``, optional ``ImageSets/Main/<split>.txt``)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .progress import item_progress
from .summary import BoxIssue, DatasetStats, degenerate_boxes, summarize

__all__ = ["read_voc", "voc_split_ids"]


def voc_split_ids(root: str | os.PathLike, split: str) -> list[str]:
    """The image ids listed in ``<root>/ImageSets/Main/<split>.txt`` (first word of each non-empty line).

    Raises:
        FileNotFoundError: the split file does not exist.
    """
    path = Path(root) / "ImageSets" / "Main" / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"VOC split file {path} does not exist; expected ImageSets/Main/{split}.txt")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def _text(node, tag: str, where: str) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise ValueError(f"{where}: <{tag}> is missing or empty")
    return child.text.strip()


def read_voc(
    root: str | os.PathLike,
    *,
    split: str | None = None,
    classes: Sequence[str] | None = None,
    include_ignored: bool = False,
    progress: bool = False,
) -> DatasetStats:
    """Per-class instance and image counts of a Pascal VOC dataset.

    Every ``<object>`` is a box; ``<difficult>1</difficult>`` marks it ignored (MMDetection's ``VOCDataset``
    ignores difficult boxes in training). Boxes with zero width or height are counted and reported in ``issues``.

    Args:
        root: folder containing ``Annotations/`` (e.g. ``VOCdevkit/VOC2007``).
        split: read only the images listed in ``ImageSets/Main/<split>.txt`` (default: every xml file).
        classes: the model's class names in label order (default: the names found, sorted); a box of another
            class is an error.
        include_ignored: count difficult boxes too.
        progress: show a progress bar over the xml files.

    Raises:
        FileNotFoundError: ``root``, its ``Annotations`` folder, the split file or a listed xml is missing.
        ValueError: malformed xml (with file, line and column), a box without name/coordinates, an unknown class,
            or an empty dataset.
    """
    root = Path(root)
    ann_dir = root / "Annotations"
    if not ann_dir.is_dir():
        raise FileNotFoundError(f"VOC folder {root} has no Annotations/ folder; expected <root>/Annotations/*.xml")
    if split is None:
        files = sorted(ann_dir.glob("*.xml"))
    else:
        files = [ann_dir / f"{image_id}.xml" for image_id in voc_split_ids(root, split)]
        for f in files:
            if not f.is_file():
                raise FileNotFoundError(f"ImageSets/Main/{split}.txt lists {f.stem}, but {f} does not exist")

    image_names: list[str] = []
    rows: list[tuple[int, str, bool, tuple[float, float, float, float]]] = []
    for i, f in enumerate(item_progress(files, total=len(files), enabled=progress, desc=f"reading {root.name}")):
        try:
            tree = ET.parse(f)
        except ET.ParseError as e:
            line, col = e.position
            raise ValueError(f"{f}: malformed xml at line {line} column {col}: {e}") from None
        node = tree.getroot()
        image_names.append(node.findtext("filename", default=f.stem + ".jpg").strip())
        for j, obj in enumerate(node.iter("object")):
            where = f"{f} <object> #{j + 1}"
            name = _text(obj, "name", where)
            bnd = obj.find("bndbox")
            if bnd is None:
                raise ValueError(f"{where}: <bndbox> is missing")
            try:
                box = tuple(float(_text(bnd, t, where)) for t in ("xmin", "ymin", "xmax", "ymax"))
            except ValueError as e:
                raise ValueError(f"{where}: box coordinates must be numbers ({e})") from None
            difficult = obj.findtext("difficult", default="0").strip() not in ("0", "")
            rows.append((i, name, difficult, box))

    found = sorted({r[1] for r in rows})
    names = list(classes) if classes is not None else found
    if len(set(names)) != len(names):
        raise ValueError(f"classes {names} contain duplicates; expected unique names")
    index = {n: k for k, n in enumerate(names)}
    for i, name, _, _ in rows:
        if name not in index:
            raise ValueError(f"{files[i]}: unknown class {name!r}; expected one of {names}")
    labels = np.array([index[r[1]] for r in rows], dtype=np.int64)
    boxes = np.array([r[3] for r in rows], dtype=np.float64).reshape(-1, 4)
    issues = [
        BoxIssue(image=image_names[rows[j][0]], class_name=rows[j][1], box_xyxy=rows[j][3], reason="zero-area")
        for j in degenerate_boxes(boxes)
    ]
    return summarize(
        names,
        len(files),
        np.array([r[0] for r in rows], dtype=np.int64),
        labels,
        np.array([r[2] for r in rows], dtype=bool),
        include_ignored=include_ignored,
        issues=issues,
        source=str(root) + (f" (split {split})" if split else ""),
    )
