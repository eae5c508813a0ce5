"""Per-class score thresholds: fit them on validation detections, apply them to a head's scores.

A detection of class ``c`` is kept when its score is at least ``t_c``. Fitting sorts the validation detections
of each class by score and evaluates every cut between distinct scores, given which detections are true positives
(``detbalance.evaluation.calibration_fit.match_detections`` matches COCO results as the COCO API does):

- ``objective="f1"``: the cut with the highest ``F1 = 2 P R / (P + R)`` (the highest such threshold on ties);
- ``objective="precision"``: the lowest threshold whose precision ``P = TP / kept`` is at least ``target``, i.e.
  the most recall at that precision. Where no cut reaches the target the threshold lies just above the class's
  highest score (nothing is kept) and ``reached`` is False.

A class without validation ground truth or without detections gets ``default``.

Example:
    >>> import numpy as np
    >>> fit = fit_thresholds(np.array([0.9, 0.8, 0.3]), np.array([0, 0, 0]), np.array([True, False, True]),
    ...                      np.array([2]), objective="f1")
    >>> float(fit.thresholds[0]), round(float(fit.f1[0]), 3)
    (0.3, 0.8)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._checks import check_choice, check_thresholds

__all__ = ["OBJECTIVES", "ThresholdFit", "fit_thresholds", "apply_thresholds"]

OBJECTIVES = ("f1", "precision")


@dataclass(frozen=True)
class ThresholdFit:
    """Fitted thresholds ``[K]`` and, per class, what they achieve on the fit set (NaN where undefined)."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    reached: np.ndarray  # objective "precision": the target was reached; "f1": True where a cut was chosen


def fit_thresholds(
    scores: np.ndarray,
    labels: np.ndarray,
    is_tp: np.ndarray,
    num_gt: np.ndarray,
    *,
    objective: str = "f1",
    target: float | None = None,
    default: float = 0.05,
) -> ThresholdFit:
    """Per-class thresholds (module docstring) from matched detections.

    Args:
        scores, labels, is_tp: ``[N]`` detection scores, class indices in ``[0, K)`` and true-positive flags.
        num_gt: ``[K]`` ground-truth boxes per class.
        objective: ``"f1"`` or ``"precision"``.
        target: the precision to reach, in (0, 1]; only (and required) with ``objective="precision"``.
        default: threshold of classes without ground truth or detections, in [0, 1].
    """
    check_choice("objective", objective, OBJECTIVES)
    if objective == "precision":
        if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
            raise ValueError(f"target={target!r}; expected a precision in (0, 1] with objective='precision'")
    elif target is not None:
        raise ValueError(
            f"target={target!r} is given but objective={objective!r}; a target goes with objective='precision'"
        )
    check_thresholds([default], 1)
    num_classes = len(num_gt)
    thresholds = np.full(num_classes, float(default))
    precision, recall, f1 = (np.full(num_classes, math.nan) for _ in range(3))
    reached = np.zeros(num_classes, dtype=bool)
    for k in range(num_classes):
        mine = labels == k
        if num_gt[k] == 0 or not mine.any():
            continue
        order = np.argsort(-scores[mine], kind="stable")
        s, tp = scores[mine][order], is_tp[mine][order].astype(np.float64)
        cut = np.flatnonzero(np.r_[s[1:] < s[:-1], True])  # keeping s >= s[i] keeps every tie of s[i]
        tps = np.cumsum(tp)[cut]
        p, r = tps / (cut + 1), tps / num_gt[k]
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
        if objective == "f1":
            best = int(np.argmax(f))  # the first maximum: the highest threshold among ties
            reached[k] = True
        else:
            ok = np.flatnonzero(p >= target - 1e-12)
            if ok.size == 0:
                thresholds[k] = min(1.0, float(np.nextafter(s[0], np.inf)))
                precision[k], recall[k], f1[k] = math.nan, 0.0, 0.0
                continue
            best = int(ok[-1])
            reached[k] = True
        thresholds[k] = float(s[cut[best]])
        precision[k], recall[k], f1[k] = p[best], r[best], f[best]
    return ThresholdFit(thresholds=thresholds, precision=precision, recall=recall, f1=f1, reached=reached)


def apply_thresholds(scores: Tensor, thresholds: Tensor) -> Tensor:
    """``scores[R, K + 1]`` with every foreground score below its class threshold set to 0 (background kept).

    Both frameworks then drop those boxes with their own ``score > SCORE_THRESH_TEST`` / ``score_thr`` test.
    """
    num_classes = thresholds.numel()
    if scores.dim() != 2 or scores.shape[1] != num_classes + 1:
        raise ValueError(
            f"scores have shape {tuple(scores.shape)}; expected [R, K + 1] with K = {num_classes} "
            "(one threshold per class)"
        )
    t = torch.cat([thresholds.to(scores), scores.new_zeros(1)])
    return torch.where(scores >= t, scores, torch.zeros_like(scores))
