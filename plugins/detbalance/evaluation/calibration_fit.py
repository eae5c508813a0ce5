"""Fit a post-hoc calibration on validation detections: NorCal / logit-adjustment gamma and per-class thresholds.

A COCO results json holds one score per box, not the row of class scores NorCal renormalises, so gamma cannot be
recomputed from it. Gamma is fitted instead from the model's validation detections at each candidate gamma, made
by the framework itself through a config change (``DETBALANCE.CALIBRATION.GAMMA`` or
``loss_cls.calibration.gamma``): :func:`fit_calibration` evaluates every candidate under the LVIS protocol
(:mod:`detbalance.evaluation.lvis_protocol`: scores >= 1e-4, the 300 best per image) and keeps the best by the
chosen metric (``"apr"``: mean AP of the rare group, or ``"ap"``). The uncalibrated detections are candidate
gamma 0. Per-class thresholds are then fitted on the chosen detections (:func:`detbalance.calibration.fit_thresholds`)
with their COCO matches at IoU 0.5 (the same matching, :func:`~detbalance.evaluation.lvis_protocol.match_detections`).

Example (the benchmark's use)::

    fit = fit_calibration(val_gt, baseline, {0.25: r25, 0.5: r50, 1.0: r100}, weights_file=wf, metric="apr",
                          objective="f1")
    save_calibration("calibration.json", fit.calibration); print(format_fit(fit))
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..calibration import CalibrationFile, ThresholdFit, fit_thresholds
from ..calibration._checks import check_gamma, check_thresholds
from .coco_eval import check_score_threshold, validate_ground_truth, validate_results
from .lvis_protocol import (
    LVIS_MAX_DETS,
    LVIS_SCORE_THRESHOLD,
    Matches,
    class_ap,
    group_means,
    keep_per_image,
    match_detections,
)
from .report import GROUPS

__all__ = ["FIT_METRICS", "CalibrationFit", "matched_at_iou50", "precision_recall", "fit_calibration", "format_fit"]

#: What gamma maximises.
FIT_METRICS = ("apr", "ap")


def matched_at_iou50(m: Matches) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(scores[N], labels[N], is_tp[N], num_gt[K])`` of the detections in ``m`` at IoU 0.5, those matching only a
    crowd box left out (as the COCO API does)."""
    t50 = int(np.flatnonzero(np.isclose(m.iou_thresholds, 0.5))[0])
    rows = ~m.ignored[t50]
    return m.score[rows], m.label[rows], m.matched[t50, rows], m.num_gt[t50]


def precision_recall(
    scores: np.ndarray, labels: np.ndarray, is_tp: np.ndarray, num_gt: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision and recall (percent) of the detections scoring at least their class threshold.

    NaN where undefined (no detection kept for precision, no ground truth for recall).
    """
    k = len(num_gt)
    keep = scores >= thresholds[labels] if labels.size else np.zeros(0, dtype=bool)
    kept = np.bincount(labels[keep], minlength=k).astype(float)
    tp = np.bincount(labels[keep & is_tp], minlength=k).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(kept > 0, 100.0 * tp / kept, math.nan)
        recall = np.where(num_gt > 0, 100.0 * tp / num_gt, math.nan)
    return precision, recall


@dataclass(frozen=True)
class CalibrationFit:
    """What :func:`fit_calibration` found: the calibration file to write and the numbers behind it.

    ``metric_by_gamma`` maps each candidate gamma to the metric it reached; ``before_ap``/``after_ap`` are the
    per-class AP (percent, LVIS protocol at ``score_threshold``, NaN without ground truth) of the uncalibrated and
    the chosen detections; ``*_precision``/``*_recall`` (percent, IoU 0.5) are measured at ``report_threshold``
    before and at the fitted thresholds (else ``report_threshold``) after. Per-class arrays follow the model's
    label order (categories sorted by id).
    """

    calibration: CalibrationFile
    metric: str
    metric_by_gamma: dict[float, float]
    groups: list[str] | None
    before_ap: np.ndarray
    after_ap: np.ndarray
    before_precision: np.ndarray
    before_recall: np.ndarray
    after_precision: np.ndarray
    after_recall: np.ndarray
    thresholds: ThresholdFit | None
    report_threshold: float
    score_threshold: float


def _groups(gt: dict, weights_file, num_classes: int) -> list[str] | None:
    declared = [c.get("frequency") for c in gt["categories"]]
    if all(g in GROUPS for g in declared):
        return declared
    groups = getattr(weights_file, "groups", None)
    return list(groups) if groups is not None and len(groups) == num_classes else None


def _lvis_ap(m: Matches, score_threshold: float) -> np.ndarray:
    """Per-class AP of the LVIS protocol: detections scoring >= ``score_threshold``, the 300 best per image."""
    return class_ap(m, keep_per_image(m, LVIS_MAX_DETS, score_threshold))


def fit_calibration(
    gt: dict,
    baseline: list[dict],
    results_by_gamma: Mapping[float, list[dict]] | None = None,
    *,
    weights_file,
    method: str = "norcal",
    metric: str = "apr",
    score_threshold: float = LVIS_SCORE_THRESHOLD,
    objective: str | None = None,
    target: float | None = None,
    default_threshold: float = 0.05,
    report_threshold: float = 0.05,
    source: dict | None = None,
) -> CalibrationFit:
    """Choose gamma and/or fit per-class thresholds on validation detections (module docstring).

    Args:
        gt: COCO ground truth of the validation split; its categories sorted by id are the model's labels and
            their names must equal the weights file's class names.
        baseline: the uncalibrated model's COCO results on ``gt`` (candidate gamma 0).
        results_by_gamma: ``{gamma: results}`` made with calibration ``method`` at each gamma; None or empty:
            no gamma is fitted and the file's method is ``""``.
        weights_file: the training statistics (``WeightsFile``): class names, image counts, r/c/f groups.
        method: ``"norcal"`` or ``"logit_adjust"``, how ``results_by_gamma`` were scored.
        metric: ``"apr"`` or ``"ap"``, what gamma maximises under the LVIS protocol.
        score_threshold: the LVIS protocol's lowest score kept (1e-4); e.g. 0.05 to fit for the frameworks' default
            test threshold.
        objective, target: threshold fitting (:func:`detbalance.calibration.fit_thresholds`); None: no thresholds.
        default_threshold: threshold of classes the validation set cannot fit.
        report_threshold: the score threshold the before/after precision and recall are measured at.
        source: free-form record stored in the file's ``fit`` field (e.g. input paths).

    Raises:
        ValueError: naming the bad value: class names that differ, a negative gamma, an unknown metric or
            method, no rare class with ``metric="apr"``, invalid results.
    """
    validate_ground_truth(gt)
    gt = {**gt, "categories": sorted(gt["categories"], key=lambda c: c["id"])}  # the model's label order
    score_threshold = check_score_threshold(score_threshold)
    check_thresholds([report_threshold], 1)
    if metric not in FIT_METRICS:
        raise ValueError(f"metric={metric!r}; expected one of {list(FIT_METRICS)}")
    if method not in ("norcal", "logit_adjust"):
        raise ValueError(f"method={method!r}; expected 'norcal' or 'logit_adjust'")
    names = [str(c.get("name", c["id"])) for c in gt["categories"]]
    stats = weights_file.stats
    if names != list(stats.class_names):
        raise ValueError(
            f"the ground truth's classes (by category id) {names[:10]} differ from the weights file's "
            f"{list(stats.class_names)[:10]}; expected the same classes in the same order"
        )
    num_classes = len(names)
    groups = _groups(gt, weights_file, num_classes)
    if metric == "apr" and (groups is None or "r" not in groups):
        raise ValueError("metric='apr' but no class is in the rare group; expected metric='ap' for this dataset")
    candidates = {0.0: baseline}
    for gamma, results in (results_by_gamma or {}).items():
        if check_gamma(gamma) == 0:
            raise ValueError(
                "results_by_gamma has an entry for gamma=0; expected gammas > 0 (the uncalibrated baseline is gamma 0)"
            )
        candidates[float(gamma)] = results
    matches, ap = {}, {}
    for gamma, results in candidates.items():
        validate_results(results, gt, f"results at gamma={gamma}")
        matches[gamma] = match_detections(gt, results)
        ap[gamma] = _lvis_ap(matches[gamma], score_threshold)
    key = "APr" if metric == "apr" else "AP"
    metric_by_gamma = {
        g: group_means(ap[g], groups)[key] if groups else float(np.nanmean(ap[g])) for g in sorted(candidates)
    }
    fitted = bool(results_by_gamma)
    best = max(metric_by_gamma, key=lambda g: (metric_by_gamma[g], -g)) if fitted else 0.0
    scores, labels, is_tp, num_gt = matched_at_iou50(matches[best])
    threshold_fit = None
    if objective is not None:
        threshold_fit = fit_thresholds(
            scores, labels, is_tp, num_gt, objective=objective, target=target, default=default_threshold
        )
    after_t = threshold_fit.thresholds if threshold_fit is not None else np.full(num_classes, report_threshold)
    after_p, after_r = precision_recall(scores, labels, is_tp, num_gt, after_t)
    before_p, before_r = precision_recall(*matched_at_iou50(matches[0.0]), np.full(num_classes, report_threshold))
    rule = (
        None
        if objective is None
        else ({"objective": objective} if target is None else {"objective": objective, "target": float(target)})
    )
    record = {
        "metric": metric,
        "score_threshold": score_threshold,
        "metric_by_gamma": {str(g): (None if math.isnan(v) else round(v, 4)) for g, v in metric_by_gamma.items()},
        **(source or {}),
    }
    calibration = CalibrationFile(
        class_names=names,
        class_counts=[int(c) for c in stats.image_counts] if fitted else None,
        method=method if fitted else "",
        gamma=float(best) if fitted else None,
        thresholds=None if threshold_fit is None else [float(t) for t in threshold_fit.thresholds],
        threshold_rule=rule,
        fit=record if fitted or threshold_fit is not None else {},
    )
    return CalibrationFit(
        calibration=calibration,
        metric=metric,
        metric_by_gamma=metric_by_gamma,
        groups=groups,
        before_ap=ap[0.0],
        after_ap=ap[best],
        before_precision=before_p,
        before_recall=before_r,
        after_precision=after_p,
        after_recall=after_r,
        thresholds=threshold_fit,
        report_threshold=report_threshold,
        score_threshold=score_threshold,
    )


def _fmt(v: float) -> str:
    return "   -" if not math.isfinite(v) else f"{v:5.1f}"


def format_fit(fit: CalibrationFit) -> str:
    """The per-class before/after table (AP, precision, recall), r/c/f means and the metric of every gamma."""
    cf = fit.calibration
    lines = []
    if cf.method:
        grid = ", ".join(f"{g:g}: {_fmt(v).strip()}" for g, v in fit.metric_by_gamma.items())
        lines.append(f"{fit.metric.upper()} by gamma ({cf.method}): {grid}  -> gamma = {cf.gamma:g}")
    after_rule = "fitted thresholds" if fit.thresholds is not None else f"score >= {fit.report_threshold:g}"
    scored = cf.method + (f" gamma={cf.gamma:g}" if cf.method else "") or "scores as trained"
    lines.append(f"before: uncalibrated; after: {scored}")
    lines.append(
        f"AP: LVIS protocol (score >= {fit.score_threshold:g}, 300 per image); P, R at IoU .5: before at "
        f"score >= {fit.report_threshold:g}, after at {after_rule}"
    )
    width = max(8, *(len(n) for n in cf.class_names))
    head = f"{'class':<{width}} grp  n_img  AP bef  AP aft   P bef  P aft   R bef  R aft  thresh"
    lines += [head, "-" * len(head)]
    counts = cf.class_counts
    for k, name in enumerate(cf.class_names):
        g = fit.groups[k] if fit.groups else "-"
        n = str(counts[k]) if counts else "-"
        t = f"{cf.thresholds[k]:.3f}" if cf.thresholds else "     -"
        lines.append(
            f"{name:<{width}} {g:>3} {n:>6}  {_fmt(fit.before_ap[k])}  {_fmt(fit.after_ap[k])}   "
            f"{_fmt(fit.before_precision[k])}  {_fmt(fit.after_precision[k])}   "
            f"{_fmt(fit.before_recall[k])}  {_fmt(fit.after_recall[k])}  {t}"
        )
    lines.append("-" * len(head))
    for label, members in [("mean", None)] + [(f"mean {g}", g) for g in GROUPS]:
        if members is not None and (not fit.groups or members not in fit.groups):
            continue
        mask = np.ones(len(cf.class_names), bool) if members is None else np.array([g == members for g in fit.groups])
        row = [
            np.nanmean(a[mask]) if np.isfinite(a[mask]).any() else math.nan
            for a in (
                fit.before_ap,
                fit.after_ap,
                fit.before_precision,
                fit.after_precision,
                fit.before_recall,
                fit.after_recall,
            )
        ]
        lines.append(
            f"{label:<{width}} {'':>3} {'':>6}  {_fmt(row[0])}  {_fmt(row[1])}   {_fmt(row[2])}  "
            f"{_fmt(row[3])}   {_fmt(row[4])}  {_fmt(row[5])}"
        )
    return "\n".join(lines)
