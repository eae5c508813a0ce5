"""Per-class COCO box metrics of one detection result file, computed by the COCO API.

The matching and precision/recall accumulation are done by ``faster_coco_eval.COCOeval_faster`` (or
``pycocotools.cocoeval.COCOeval`` where faster-coco-eval is not installed); this module only validates the inputs
and reads the accumulated arrays per class, exactly as detectron2's ``COCOEvaluator`` and faster-coco-eval's
``extended_metrics['class_map']`` do:

- ``ap[k]``: mean of ``eval['precision'][:, :, k, area='all', maxDets=100]`` over valid entries (IoU .50:.95),
- ``ap50[k]``: the same at IoU 0.50,
- ``recall[k]``: ``eval['recall'][IoU=0.50, k, area='all', maxDets=100]``: the fraction of ground-truth boxes of
  class k matched by some detection of class k at IoU >= 0.5 among the top 100 detections of each image.

With ``score_threshold`` only detections scoring at least that much are evaluated: the view of a model deployed
with a framework's default test threshold (0.05 in detectron2 and MMDetection) rather than of its ranking alone.

All three are percentages. A class listed in the ground-truth categories but without any ground-truth box has no
defined AP (COCO marks it -1): it is reported as NaN and left out of every mean. A class with ground-truth boxes
but no detections has AP 0.

Results are COCO results json: a list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` with the
ground truth's ids, as written by detectron2's ``COCOEvaluator`` (``coco_instances_results.json``) and mmdet's
``CocoMetric`` (``<outfile_prefix>.bbox.json``).

Example:
    >>> gt = {"images": [{"id": 1, "width": 64, "height": 64}],
    ...       "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [4, 4, 20, 20], "area": 400,
    ...                        "iscrowd": 0}],
    ...       "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]}
    >>> m = evaluate_detections(gt, [{"image_id": 1, "category_id": 3, "bbox": [4, 4, 20, 20], "score": 0.9}])
    >>> m.class_names, m.ap.tolist()
    (['cat', 'dog'], [100.0, nan])
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._checks import check_number

__all__ = [
    "ClassMetrics",
    "load_json",
    "validate_ground_truth",
    "validate_results",
    "check_score_threshold",
    "evaluate_detections",
]


@dataclass(frozen=True)
class ClassMetrics:
    """Per-class metrics of one result file, in the ground truth's category order (percentages, NaN = no GT)."""

    category_ids: list[int]
    class_names: list[str]
    ap: np.ndarray
    ap50: np.ndarray
    recall: np.ndarray
    overall_ap: float
    overall_ap50: float


def load_json(path: str | os.PathLike, what: str):
    """Parse a json file; a missing file or malformed json raises ValueError naming the file and position."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} file {path} does not exist; expected a json file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} file {path} is not valid json: {e.msg} at line {e.lineno} column {e.colno}") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} file {path} is not UTF-8 text ({e})") from e


def validate_ground_truth(gt, source: str = "ground truth") -> dict:
    """Check a COCO ground-truth dict; raise ValueError naming the first problem."""
    if not isinstance(gt, dict):
        raise ValueError(
            f"{source}: expected a COCO json object with images/annotations/categories, got {type(gt).__name__}"
        )
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise ValueError(f"{source}: '{key}' is missing or not a list; expected a COCO detection json")
    if not gt["categories"]:
        raise ValueError(f"{source}: 'categories' is empty; expected at least one category")
    cat_ids = [c.get("id") if isinstance(c, dict) else None for c in gt["categories"]]
    if any(not isinstance(i, int) or isinstance(i, bool) for i in cat_ids) or len(set(cat_ids)) != len(cat_ids):
        raise ValueError(f"{source}: category ids {cat_ids[:20]} must be distinct integers")
    image_ids = {im.get("id") for im in gt["images"] if isinstance(im, dict)}
    if not gt["annotations"]:
        raise ValueError(f"{source}: 'annotations' is empty; expected at least one ground-truth box")
    known = set(cat_ids)
    for i, ann in enumerate(gt["annotations"]):
        if not isinstance(ann, dict) or not {"image_id", "category_id", "bbox"} <= ann.keys():
            raise ValueError(f"{source}: annotation {i} must have image_id, category_id and bbox, got {ann!r:.120}")
        if ann["category_id"] not in known:
            raise ValueError(
                f"{source}: annotation {i} (id {ann.get('id')}) has category_id {ann['category_id']!r}; "
                f"expected one of the category ids {sorted(known)[:20]}"
            )
        if ann["image_id"] not in image_ids:
            raise ValueError(
                f"{source}: annotation {i} (id {ann.get('id')}) has image_id {ann['image_id']!r} "
                "that is not in 'images'"
            )
    return gt


def validate_results(results, gt: dict, source: str = "results") -> list[dict]:
    """Check a COCO results list against its ground truth; raise ValueError naming the first bad entry."""
    if isinstance(results, dict) and "annotations" in results:
        raise ValueError(
            f"{source}: got a COCO dataset object; expected a COCO results list "
            "[{image_id, category_id, bbox, score}, ...]"
        )
    if not isinstance(results, list):
        raise ValueError(f"{source}: expected a list of detections, got {type(results).__name__}")
    image_ids = {im["id"] for im in gt["images"]}
    cat_ids = {c["id"] for c in gt["categories"]}
    for i, det in enumerate(results):
        if not isinstance(det, dict) or not {"image_id", "category_id", "bbox", "score"} <= det.keys():
            raise ValueError(
                f"{source}: detection {i} must have image_id, category_id, bbox and score, got {det!r:.120}"
            )
        if det["image_id"] not in image_ids:
            raise ValueError(
                f"{source}: detection {i} has image_id {det['image_id']!r}, which is not an image of the ground truth"
            )
        if det["category_id"] not in cat_ids:
            raise ValueError(
                f"{source}: detection {i} has category_id {det['category_id']!r}; expected one of the "
                f"ground-truth category ids {sorted(cat_ids)[:20]}"
            )
        box = det["bbox"]
        if (
            not isinstance(box, (list, tuple))
            or len(box) != 4
            or not all(_finite(v) for v in box)
            or box[2] < 0
            or box[3] < 0
        ):
            raise ValueError(
                f"{source}: detection {i} has bbox {box!r}; expected [x, y, width, height] with "
                "finite numbers and width, height >= 0"
            )
        if not _finite(det["score"]):
            raise ValueError(f"{source}: detection {i} has score {det['score']!r}; expected a finite number")
    return results


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _coco_api():
    try:
        from faster_coco_eval import COCO, COCOeval_faster

        return COCO, COCOeval_faster
    except ImportError:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        return COCO, COCOeval


def check_score_threshold(score_threshold) -> float:
    """``score_threshold`` as a float; ``ValueError`` naming it unless it is a finite number >= 0."""
    return check_number("score_threshold", score_threshold, minimum=0)


def evaluate_detections(gt: dict, results: list[dict], score_threshold: float = 0.0) -> ClassMetrics:
    """Per-class AP, AP50 and recall (percent) of ``results`` on ``gt``; both are validated first.

    Detections scoring below ``score_threshold`` are dropped before evaluation (0 keeps them all).
    """
    threshold = check_score_threshold(score_threshold)
    validate_ground_truth(gt)
    validate_results(results, gt)
    results = [det for det in results if det["score"] >= threshold]
    coco_cls, eval_cls = _coco_api()
    gt = copy.deepcopy(gt)
    gt.setdefault("info", {})
    for i, ann in enumerate(gt["annotations"], start=1):
        ann.setdefault("iscrowd", 0)  # the COCO API needs iscrowd and area; fill them as both frameworks do
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
        ann["id"] = i  # the COCO API takes annotation id 0 for "unmatched": number them from 1
    with contextlib.redirect_stdout(io.StringIO()):  # the COCO API prints progress
        coco_gt = coco_cls()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results)) if results else _empty_results(coco_cls, gt)
        evaluator = eval_cls(coco_gt, coco_dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    params = evaluator.params
    cat_ids = [c["id"] for c in gt["categories"]]
    if list(params.catIds) != sorted(cat_ids):
        raise RuntimeError(f"COCO evaluated categories {list(params.catIds)}; expected {sorted(cat_ids)}")
    iou50 = int(np.flatnonzero(np.isclose(params.iouThrs, 0.5))[0])
    area_all, max_dets = params.areaRngLbl.index("all"), len(params.maxDets) - 1
    precision = np.asarray(evaluator.eval["precision"])[:, :, :, area_all, max_dets]  # [T, R, K sorted by id]
    recall = np.asarray(evaluator.eval["recall"])[:, :, area_all, max_dets]  # [T, K]
    column = {cid: k for k, cid in enumerate(params.catIds)}
    ap, ap50, rec = [], [], []
    for cid in cat_ids:
        p = precision[:, :, column[cid]]
        ap.append(_mean_valid(p))
        ap50.append(_mean_valid(p[iou50]))
        r = recall[iou50, column[cid]]
        rec.append(100.0 * float(r) if r > -1 else math.nan)
    stats = np.asarray(evaluator.stats, dtype=float)
    return ClassMetrics(
        category_ids=cat_ids,
        class_names=[str(c.get("name", c["id"])) for c in gt["categories"]],
        ap=np.array(ap),
        ap50=np.array(ap50),
        recall=np.array(rec),
        overall_ap=100.0 * max(float(stats[0]), 0.0) if stats[0] > -1 else math.nan,
        overall_ap50=100.0 * max(float(stats[1]), 0.0) if stats[1] > -1 else math.nan,
    )


def _mean_valid(values: np.ndarray) -> float:
    valid = values[values > -1]
    return 100.0 * float(valid.mean()) if valid.size else math.nan


def _empty_results(coco_cls, gt: dict):
    """A results object without detections (pycocotools' loadRes cannot build one from an empty list)."""
    res = coco_cls()
    res.dataset = {
        "info": {},
        "images": list(gt["images"]),
        "categories": copy.deepcopy(gt["categories"]),
        "annotations": [],
    }
    res.createIndex()
    return res
