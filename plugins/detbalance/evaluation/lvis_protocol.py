"""Large-vocabulary views of one detection result: the LVIS protocol, AP-fixed, AP-pool and calibration error.

The COCO API (``pycocotools.cocoeval.COCOeval``) matches every detection once, greedily per (image, class) in
descending score, at IoU .50:.05:.95. A detection's match depends only on the higher-scored detections of its
(image, class), and every view below keeps a score-ordered prefix of each (image, class) — so one matching
serves them all; each view only chooses which detections to keep and accumulates precision/recall as COCO does
(101 recall points, precision made non-increasing, mean over IoU thresholds; matches to crowd boxes ignored).

Views (``groups`` are the classes' r/c/f groups from train image counts; means skip classes without ground truth):

- **LVIS protocol** (Gupta et al. 2019): keep detections scoring >= 1e-4, at most 300 per image (the highest
  scores over all classes); AP = mean per-class AP; APr/APc/APf the means within a group;
- **cap 100**: the same with the frameworks' default of 100 detections per image;
- **AP-fixed** (Dave et al. 2021, "Evaluating Large-Vocabulary Object Detectors: The Devil is in the Details"): no
  per-image cap, the top ``k`` detections of each class over the whole test set, ``k`` = LVIS's 10,000 per class
  scaled by the number of test images (10,000 / 19,809 LVIS v1 val images per image);
- **AP-pool** (same paper): the AP-fixed detections of all classes ranked together in one precision/recall curve
  (recall over all ground truth), which rewards scores that are comparable across classes;
- **ECE** (expected calibration error, percent) of the LVIS-protocol detections, overall and per group of the
  predicted class: detections binned by score into ``bins`` equal-width bins,
  ``ECE = sum_b n_b / N * |precision_b - mean score_b|`` with a detection correct when it matches a ground-truth box
  of its class at IoU >= 0.5.

Example:
    >>> gt = {"images": [{"id": 1, "width": 64, "height": 64}],
    ...       "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100}],
    ...       "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}
    >>> dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
    ...         {"image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.95}]
    >>> m = match_detections(gt, dets)
    >>> round(float(class_ap(m, m.keep_all())[0]), 1), round(pooled_ap(m, m.keep_all()), 1)
    (100.0, 50.0)
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._checks import check_int
from .coco_eval import check_score_threshold, validate_ground_truth, validate_results

__all__ = [
    "LVIS_MAX_DETS",
    "LVIS_SCORE_THRESHOLD",
    "FRAMEWORK_MAX_DETS",
    "AP_FIXED_PER_IMAGE",
    "Matches",
    "match_detections",
    "keep_per_image",
    "keep_top_per_class",
    "class_ap",
    "pooled_ap",
    "calibration_error",
    "group_means",
    "evaluate_large_vocabulary",
]

LVIS_MAX_DETS = 300
LVIS_SCORE_THRESHOLD = 1e-4
FRAMEWORK_MAX_DETS = 100
#: AP-fixed's budget per class and test image: LVIS's 10,000 detections per class over 19,809 val images.
AP_FIXED_PER_IMAGE = 10_000 / 19_809
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class Matches:
    """The COCO match of every detection; rows in COCO's accumulation order (class, image, descending score).

    ``label[D]`` indexes ``category_ids`` (the ground truth's category order); ``matched[T, D]`` is True where the
    detection is a true positive at IoU threshold ``iou_thresholds[t]``, ``ignored[T, D]`` where it matched a
    crowd box (left out of precision and recall); ``num_gt[T, K]`` counts the non-crowd ground truth per class.
    """

    category_ids: list[int]
    image_ids: list[int]
    image: np.ndarray
    label: np.ndarray
    score: np.ndarray
    matched: np.ndarray
    ignored: np.ndarray
    num_gt: np.ndarray
    iou_thresholds: np.ndarray

    def keep_all(self) -> np.ndarray:
        return np.ones(len(self.score), dtype=bool)


def match_detections(gt: dict, results: list[dict]) -> Matches:
    """Validate ``gt`` and ``results`` and match every detection with the COCO API (no cap, every area)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    validate_ground_truth(gt)
    validate_results(results, gt)
    gt = copy.deepcopy(gt)
    gt.setdefault("info", {})
    for i, ann in enumerate(gt["annotations"], start=1):
        ann.setdefault("iscrowd", 0)
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]))
        ann["id"] = i  # the COCO API takes annotation id 0 for "unmatched"
    category_ids = [c["id"] for c in gt["categories"]]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results)) if results else None
    thresholds = np.linspace(0.5, 0.95, 10)
    k, t = len(category_ids), len(thresholds)
    if coco_dt is None:
        num_gt = np.tile(
            np.bincount(
                [category_ids.index(a["category_id"]) for a in gt["annotations"] if not a["iscrowd"]], minlength=k
            ),
            (t, 1),
        )
        empty = np.zeros(0)
        return Matches(
            category_ids,
            [im["id"] for im in gt["images"]],
            empty.astype(np.int64),
            empty.astype(np.int64),
            empty,
            np.zeros((t, 0), bool),
            np.zeros((t, 0), bool),
            num_gt,
            thresholds,
        )
    evaluator = COCOeval(coco_gt, coco_dt, "bbox")
    params = evaluator.params
    params.areaRng, params.areaRngLbl = [[0.0, 1e10]], ["all"]
    params.maxDets = [max(1, len(results))]
    with contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
    column = {cid: i for i, cid in enumerate(category_ids)}
    image, label, score, matched, ignored = [], [], [], [], []
    num_gt = np.zeros((t, k), dtype=np.int64)
    for record in evaluator.evalImgs:  # ordered by class, area range, image
        if record is None:
            continue
        kk = column[record["category_id"]]
        num_gt[:, kk] += int(np.count_nonzero(~np.asarray(record["gtIgnore"], dtype=bool)))
        n = len(record["dtIds"])
        if n:
            image.append(np.full(n, record["image_id"]))
            label.append(np.full(n, kk))
            score.append(np.asarray(record["dtScores"], dtype=float))
            matched.append(np.asarray(record["dtMatches"]).reshape(t, n) > 0)
            ignored.append(np.asarray(record["dtIgnore"], dtype=bool).reshape(t, n))
    cat = lambda parts, dtype, shape: np.concatenate(parts, axis=-1) if parts else np.zeros(shape, dtype)
    return Matches(
        category_ids=category_ids,
        image_ids=[im["id"] for im in gt["images"]],
        image=cat(image, np.int64, (0,)),
        label=cat(label, np.int64, (0,)),
        score=cat(score, float, (0,)),
        matched=cat(matched, bool, (t, 0)) & ~cat(ignored, bool, (t, 0)),
        ignored=cat(ignored, bool, (t, 0)),
        num_gt=num_gt,
        iou_thresholds=thresholds,
    )


def keep_per_image(m: Matches, max_dets: int, score_threshold: float = 0.0) -> np.ndarray:
    """Mask of the detections scoring >= ``score_threshold`` among the ``max_dets`` best of their image."""
    check_int("max_dets", max_dets, minimum=1)
    keep = m.score >= check_score_threshold(score_threshold)
    order = np.lexsort((-m.score, m.image))  # by image, then descending score (stable)
    image_sorted = m.image[order]
    starts = np.searchsorted(image_sorted, image_sorted, side="left")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - starts
    return keep & (rank < max_dets)


def keep_top_per_class(m: Matches, k: int) -> np.ndarray:
    """Mask of the ``k`` highest-scoring detections of each class over the whole set (no per-image cap)."""
    check_int("k", k, minimum=1)
    order = np.lexsort((-m.score, m.label))
    label_sorted = m.label[order]
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.searchsorted(label_sorted, label_sorted, side="left")
    return rank < k


def _ap(score: np.ndarray, matched: np.ndarray, ignored: np.ndarray, num_gt: np.ndarray) -> float:
    """COCO's interpolated AP (percent) of one ranked list, mean over IoU thresholds; NaN without ground truth."""
    if num_gt[0] == 0:
        return math.nan
    order = np.argsort(-score, kind="mergesort")
    values = []
    for t in range(matched.shape[0]):
        valid = ~ignored[t, order]
        tp = np.cumsum(matched[t, order][valid])
        fp = np.cumsum(~matched[t, order][valid])
        recall = tp / num_gt[t]
        precision = tp / (tp + fp + np.spacing(1))
        precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
        at = np.searchsorted(recall, _RECALL_POINTS, side="left")
        q = np.zeros(len(_RECALL_POINTS))
        inside = at < len(precision)
        q[inside] = precision[at[inside]]
        values.append(q.mean())
    return 100.0 * float(np.mean(values))


def class_ap(m: Matches, keep: np.ndarray) -> np.ndarray:
    """Per-class AP (percent, ``[K]``, NaN for a class without ground truth) of the kept detections."""
    out = np.full(len(m.category_ids), math.nan)
    for k in range(len(m.category_ids)):
        rows = keep & (m.label == k)
        out[k] = _ap(m.score[rows], m.matched[:, rows], m.ignored[:, rows], m.num_gt[:, k])
    return out


def pooled_ap(m: Matches, keep: np.ndarray) -> float:
    """AP (percent) of the kept detections of all classes ranked together, recall over all ground truth."""
    return _ap(m.score[keep], m.matched[:, keep], m.ignored[:, keep], m.num_gt.sum(axis=1))


def calibration_error(m: Matches, keep: np.ndarray, bins: int = 10) -> float:
    """ECE (percent) of the kept detections, correct = matched at IoU 0.5; NaN when nothing is kept."""
    check_int("bins", bins, minimum=1)
    t50 = int(np.flatnonzero(np.isclose(m.iou_thresholds, 0.5))[0])
    rows = keep & ~m.ignored[t50]
    score, correct = np.clip(m.score[rows], 0.0, 1.0), m.matched[t50, rows].astype(float)
    if score.size == 0:
        return math.nan
    which = np.minimum((score * bins).astype(np.int64), bins - 1)
    total = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            total += in_bin.sum() / score.size * abs(correct[in_bin].mean() - score[in_bin].mean())
    return 100.0 * total


def group_means(values: np.ndarray, groups: Sequence[str]) -> dict[str, float]:
    """``{"AP", "APr", "APc", "APf"}``: mean of the per-class values over all classes and within each group."""
    values = np.asarray(values, dtype=float)
    if len(groups) != len(values) or any(g not in ("r", "c", "f") for g in groups):
        raise ValueError(
            f"groups {list(groups)[:20]} must give one of 'r', 'c', 'f' for each of the {len(values)} classes"
        )
    out = {"AP": _nanmean(values)}
    for g in ("r", "c", "f"):
        out[f"AP{g}"] = _nanmean(values[[i for i, x in enumerate(groups) if x == g]])
    return out


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def evaluate_large_vocabulary(gt: dict, results: list[dict], groups: Sequence[str], *, bins: int = 10) -> dict:
    """Every view of the module docstring, json-ready (percent).

    Keys: ``lvis`` and ``cap100`` (``AP``/``APr``/``APc``/``APf``/``AP50``), ``ap_fixed`` (the same plus ``k``),
    ``ap_pool``, ``ece`` (``all``/``r``/``c``/``f``), ``per_class_ap`` (LVIS protocol, ground-truth category order).
    """
    m = match_detections(gt, results)
    t50 = int(np.flatnonzero(np.isclose(m.iou_thresholds, 0.5))[0])

    def view(keep):
        ap = class_ap(m, keep)
        ap50 = class_ap(_at_iou(m, t50), keep)
        return ap, {**group_means(ap, groups), "AP50": group_means(ap50, groups)["AP"]}

    lvis_keep = keep_per_image(m, LVIS_MAX_DETS, LVIS_SCORE_THRESHOLD)
    per_class, lvis = view(lvis_keep)
    _, cap100 = view(keep_per_image(m, FRAMEWORK_MAX_DETS, LVIS_SCORE_THRESHOLD))
    k = max(1, round(AP_FIXED_PER_IMAGE * len(m.image_ids)))
    fixed_keep = keep_top_per_class(m, k)
    _, fixed = view(fixed_keep)
    group_of = np.asarray(list(groups))
    ece = {"all": calibration_error(m, lvis_keep, bins)}
    for g in ("r", "c", "f"):
        ece[g] = calibration_error(m, lvis_keep & (group_of[m.label] == g), bins)
    return {
        "lvis": lvis,
        "cap100": cap100,
        "ap_fixed": {**fixed, "k": k},
        "ap_pool": pooled_ap(m, fixed_keep),
        "ece": ece,
        "per_class_ap": [None if math.isnan(v) else v for v in per_class.tolist()],
        "num_detections": int(len(m.score)),
        "num_lvis_detections": int(lvis_keep.sum()),
    }


def _at_iou(m: Matches, t: int) -> Matches:
    """``m`` restricted to one IoU threshold (for AP50)."""
    return Matches(
        m.category_ids,
        m.image_ids,
        m.image,
        m.label,
        m.score,
        m.matched[t : t + 1],
        m.ignored[t : t + 1],
        m.num_gt[t : t + 1],
        m.iou_thresholds[t : t + 1],
    )
