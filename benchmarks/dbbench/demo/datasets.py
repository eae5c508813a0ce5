"""Where a demo's data come from: the synthetic long-tailed shapes, a COCO folder, or a Pascal VOC folder.

- synthetic (default): :func:`dbbench.data.get_synthetic_dataset`, generated on first use into the cache; with
  ``balanced=True`` the class-balanced train set of the same size (the "oracle"), same test split.
- COCO folder: ``train.json`` + ``train/`` and ``test.json`` + ``test/`` (``file_name`` relative to those folders;
  the layout the synthetic generator writes).
- Pascal VOC folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``): the ``trainval`` and ``test`` splits
  are converted to COCO json in ``out_dir``; ``difficult`` boxes become crowd boxes (ignored by training and
  evaluation), zero-area boxes are dropped from the converted json (they cannot be learnt or matched).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from detbalance.stats.voc import voc_split_ids
from detbalance.weights import frequency_groups

from ..data import SyntheticSpec, get_synthetic_dataset
from ..training.data import RunData, coco_categories
from ..training.files import write_json

__all__ = ["synthetic_data", "folder_data", "voc_to_coco"]

VOC_TRAIN_SPLIT, VOC_TEST_SPLIT = "trainval", "test"
#: shorter side / longer side cap for real images (BCCD: 640x480 -> 341x256).
REAL_IMAGE_SIZE, REAL_MAX_SIZE = 256, 384


def synthetic_data(spec: SyntheticSpec, cache_dir: str | Path | None = None) -> RunData:
    """The synthetic set of ``spec`` (generated into the cache on first use)."""
    ds = get_synthetic_dataset(spec, cache_dir=cache_dir)
    return _from_coco(
        "synthetic-balanced" if spec.balanced else "synthetic",
        ds.train_json,
        ds.train_images,
        ds.test_json,
        ds.test_images,
        spec.image_size,
        spec.image_size,
        ("--coco", str(ds.train_json)),
    )


def folder_data(path: str | Path, out_dir: Path) -> RunData:
    """A COCO folder or a Pascal VOC folder (see the module docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(
            f"--data {root} is not a folder; expected a COCO folder (train.json, train/, test.json, "
            "test/) or a Pascal VOC folder (Annotations/, JPEGImages/, ImageSets/Main/)"
        )
    voc_root = (
        root
        if (root / "Annotations").is_dir()
        else next((p for p in sorted(root.iterdir()) if (p / "Annotations").is_dir()), None)
    )
    if voc_root is not None:
        out = out_dir / "data"
        names = sorted({n for split in (VOC_TRAIN_SPLIT, VOC_TEST_SPLIT) for n in _voc_class_names(voc_root, split)})
        train = voc_to_coco(voc_root, VOC_TRAIN_SPLIT, names, out / f"{VOC_TRAIN_SPLIT}.json")
        test = voc_to_coco(voc_root, VOC_TEST_SPLIT, names, out / f"{VOC_TEST_SPLIT}.json")
        images = voc_root / "JPEGImages"
        return _from_coco(
            voc_root.name,
            train,
            images,
            test,
            images,
            REAL_IMAGE_SIZE,
            REAL_MAX_SIZE,
            ("--voc", str(voc_root), "--voc-split", VOC_TRAIN_SPLIT),
        )
    missing = [n for n in ("train.json", "train", "test.json", "test") if not (root / n).exists()]
    if missing:
        raise ValueError(
            f"--data {root} lacks {missing}; expected a COCO folder (train.json, train/, test.json, "
            "test/) or a Pascal VOC folder (Annotations/, JPEGImages/, ImageSets/Main/)"
        )
    return _from_coco(
        root.name,
        root / "train.json",
        root / "train",
        root / "test.json",
        root / "test",
        REAL_IMAGE_SIZE,
        REAL_MAX_SIZE,
        ("--coco", str(root / "train.json")),
    )


def _from_coco(name, train_json, train_images, test_json, test_images, image_size, max_size, stats_source) -> RunData:
    from detbalance.evaluation import load_json, train_statistics

    categories = coco_categories(train_json)
    test_ids = [c["id"] for c in coco_categories(test_json)]
    ids = [c["id"] for c in categories]
    if ids != test_ids:
        raise ValueError(f"{test_json} has category ids {test_ids[:20]}; expected those of {train_json}: {ids[:20]}")
    train = load_json(train_json, "train")
    _, images, declared = train_statistics(train, ids)
    groups = declared if declared is not None else frequency_groups(images)
    return RunData(
        name=name,
        train_json=Path(train_json),
        train_images=Path(train_images),
        test_json=Path(test_json),
        test_images=Path(test_images),
        class_names=tuple(c["name"] for c in categories),
        category_ids=tuple(ids),
        groups=tuple(groups),
        image_size=image_size,
        max_size=max_size,
        stats_source=tuple(stats_source),
    )


def _voc_class_names(root: Path, split: str) -> set[str]:
    return {
        obj.findtext("name").strip()
        for i in voc_split_ids(root, split)
        for obj in ET.parse(root / "Annotations" / f"{i}.xml").getroot().iter("object")
    }


def voc_to_coco(root: Path, split: str, class_names: list[str], out_json: Path) -> Path:
    """Write the VOC ``split`` as a COCO json (category ids 1..K in ``class_names`` order); returns its path."""
    ids = {n: i + 1 for i, n in enumerate(class_names)}
    images, annotations = [], []
    for image_id, stem in enumerate(voc_split_ids(root, split), start=1):
        node = ET.parse(root / "Annotations" / f"{stem}.xml").getroot()
        size = node.find("size")
        images.append(
            {
                "id": image_id,
                "file_name": node.findtext("filename", f"{stem}.jpg").strip(),
                "width": int(size.findtext("width")),
                "height": int(size.findtext("height")),
            }
        )
        for obj in node.iter("object"):
            box = obj.find("bndbox")
            x0, y0, x1, y1 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            if x1 <= x0 or y1 <= y0:
                continue
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": ids[obj.findtext("name").strip()],
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": int(obj.findtext("difficult", "0").strip() == "1"),
                }
            )
    write_json(
        out_json,
        {"images": images, "annotations": annotations, "categories": [{"id": i, "name": n} for n, i in ids.items()]},
    )
    return out_json
