"""Per-class thresholds: F1 maximum against brute force, precision targets reached on the fit set, application to
scores, COCO-style matching, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detbalance.calibration import apply_thresholds, fit_thresholds
from detbalance.evaluation.calibration_fit import matched_at_iou50, precision_recall
from detbalance.evaluation.lvis_protocol import match_detections


def random_detections(seed: int, num_classes: int = 4, n: int = 300):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    is_tp = rng.random(n) < 0.5
    # true positives score higher on average, with overlap; a few exact ties
    scores = np.clip(np.where(is_tp, rng.normal(0.6, 0.2, n), rng.normal(0.35, 0.2, n)), 0, 1).round(3)
    num_gt = np.bincount(labels[is_tp], minlength=num_classes) + rng.integers(0, 5, num_classes)
    return scores, labels, is_tp, num_gt


def brute_force(scores, is_tp, num_gt, rule):
    """Every threshold among the scores, kept detections = score >= threshold."""
    best = None
    for t in sorted(set(scores.tolist()), reverse=True):
        keep = scores >= t
        tp = int((keep & is_tp).sum())
        p, r = tp / keep.sum(), tp / num_gt
        f = 2 * p * r / (p + r) if p + r else 0.0
        value = rule(p, r, f)
        if value is not None and (best is None or value > best[0]):
            best = (value, t, p, r)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_f1_maximum_equals_brute_force(seed):
    scores, labels, is_tp, num_gt = random_detections(seed)
    fit = fit_thresholds(scores, labels, is_tp, num_gt, objective="f1")
    for k in range(4):
        m = labels == k
        value, t, _, _ = brute_force(scores[m], is_tp[m], num_gt[k], lambda p, r, f: f)
        assert fit.f1[k] == pytest.approx(value, abs=1e-12)
        assert fit.thresholds[k] == t


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("target", [0.6, 0.8, 0.95])
def test_precision_target_is_reached_on_the_fit_set(seed, target):
    scores, labels, is_tp, num_gt = random_detections(seed)
    fit = fit_thresholds(scores, labels, is_tp, num_gt, objective="precision", target=target)
    precision, recall = precision_recall(scores, labels, is_tp, num_gt, fit.thresholds)
    for k in range(4):
        m = labels == k
        best = brute_force(scores[m], is_tp[m], num_gt[k], lambda p, r, f: r if p >= target else None)
        if best is None:  # unreachable: nothing of the class is kept
            assert not fit.reached[k] and not (scores[m] >= fit.thresholds[k]).any()
        else:
            assert fit.reached[k]
            assert precision[k] / 100 >= target
            assert recall[k] / 100 == pytest.approx(best[0])  # and no lower threshold reaches it with more recall


def test_classes_without_ground_truth_or_detections_get_the_default():
    fit = fit_thresholds(np.array([0.9]), np.array([0]), np.array([True]), np.array([1, 0, 3]), default=0.2)
    assert fit.thresholds.tolist() == [0.9, 0.2, 0.2]


def test_apply_thresholds_zeroes_foreground_scores_below_their_class_threshold():
    scores = torch.tensor([[0.3, 0.1, 0.6], [0.05, 0.5, 0.45]], dtype=torch.float64)
    out = apply_thresholds(scores, torch.tensor([0.2, 0.5]))
    assert out.tolist() == [[0.3, 0.0, 0.6], [0.0, 0.5, 0.45]]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(objective="recall"), r"objective='recall'; expected one of \['f1', 'precision'\]"),
        (dict(objective="precision", target=1.5), r"target=1\.5; expected a precision in \(0, 1\]"),
        (dict(objective="precision"), r"target=None"),
        (dict(objective="f1", target=0.5), r"target=0\.5 is given but objective='f1'"),
        (dict(default=-0.1), r"thresholds\[0\]=-0\.1; expected a score threshold in \[0, 1\]"),
    ],
)
def test_bad_fit_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_thresholds(np.array([0.5]), np.array([0]), np.array([True]), np.array([1]), **kwargs)


def test_true_positives_at_iou_50_follow_the_coco_rules():
    gt = {
        "images": [{"id": 1}],
        "categories": [{"id": 5, "name": "a"}, {"id": 9, "name": "b"}],
        "annotations": [
            {"image_id": 1, "category_id": 5, "bbox": [0, 0, 10, 10]},
            {"image_id": 1, "category_id": 5, "bbox": [50, 50, 10, 10], "iscrowd": 1},
            {"image_id": 1, "category_id": 9, "bbox": [0, 0, 10, 10]},
        ],
    }
    results = [
        {"image_id": 1, "category_id": 5, "bbox": [0, 0, 10, 10], "score": 0.5},  # TP
        {"image_id": 1, "category_id": 5, "bbox": [1, 0, 10, 10], "score": 0.9},  # TP (higher score first)
        {"image_id": 1, "category_id": 5, "bbox": [52, 52, 5, 5], "score": 0.7},  # crowd only: ignored
        {"image_id": 1, "category_id": 9, "bbox": [30, 30, 10, 10], "score": 0.4},
    ]  # FP
    scores, labels, is_tp, num_gt = matched_at_iou50(match_detections(gt, results))
    got = sorted(zip(scores.tolist(), labels.tolist(), is_tp.tolist()))
    assert got == [(0.4, 1, False), (0.5, 0, False), (0.9, 0, True)]
    assert num_gt.tolist() == [1, 1]
