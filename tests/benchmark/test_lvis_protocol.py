"""LVIS protocol, cap 100, AP-fixed, AP-pool and ECE on hand-made cases whose answers are known, and COCO's own
accumulation as the reference for the per-class AP on random detections."""

import contextlib
import copy
import io
import math

import numpy as np
import pytest

from detbalance.evaluation.lvis_protocol import (
    calibration_error,
    class_ap,
    evaluate_large_vocabulary,
    group_means,
    keep_per_image,
    keep_top_per_class,
    match_detections,
    pooled_ap,
)


def _gt(boxes_per_image, num_classes=2, crowd=()):
    """``boxes_per_image[i]`` = list of (category_id, [x, y, w, h]); ``crowd``: (image, index) pairs."""
    images, anns = [], []
    for i, boxes in enumerate(boxes_per_image, start=1):
        images.append({"id": i, "width": 640, "height": 640})
        for j, (cid, box) in enumerate(boxes):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": cid,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": int((i, j) in crowd),
                }
            )
    return {
        "images": images,
        "annotations": anns,
        "categories": [{"id": c, "name": f"c{c}"} for c in range(1, num_classes + 1)],
    }


def _det(image, cid, box, score):
    return {"image_id": image, "category_id": cid, "bbox": box, "score": score}


A, B, FAR = [10, 10, 20, 20], [100, 100, 20, 20], [300, 300, 20, 20]


def test_class_ap_is_coco_interpolated_precision():
    gt = _gt([[(1, A), (1, B)]], num_classes=1)
    dets = [_det(1, 1, A, 0.9), _det(1, 1, FAR, 0.8), _det(1, 1, B, 0.7)]
    m = match_detections(gt, dets)
    # precision 1 up to recall 0.5 (51 of the 101 recall points), then 2/3 up to recall 1 (50 points)
    assert class_ap(m, m.keep_all())[0] == pytest.approx(100 * (51 + 50 * 2 / 3) / 101)


def test_lvis_cap_crowds_out_a_rare_class_that_ap_fixed_keeps():
    # one image: class 2's correct box scores 0.4, below 300 false class-1 boxes at 0.5
    gt = _gt([[(1, A), (2, B)]])
    dets = [_det(1, 1, A, 0.9)] + [_det(1, 1, [200 + i % 20, 200, 10, 10], 0.5) for i in range(299)]
    dets.append(_det(1, 2, B, 0.4))
    m = match_detections(gt, dets)
    assert class_ap(m, keep_per_image(m, 300))[1] == 0.0
    assert class_ap(m, keep_per_image(m, 301))[1] == pytest.approx(100.0)
    assert class_ap(m, keep_top_per_class(m, 1))[1] == pytest.approx(100.0)
    assert class_ap(m, keep_top_per_class(m, 1))[0] == pytest.approx(100.0)


def test_score_threshold_and_cap_count_every_class_of_the_image():
    gt = _gt([[(1, A)], [(2, B)]])
    dets = [_det(1, 1, A, 5e-5), _det(2, 2, B, 0.3), _det(2, 1, A, 0.6)]
    m = match_detections(gt, dets)
    keep = keep_per_image(m, 1, score_threshold=1e-4)
    kept = sorted(zip(m.image[keep].tolist(), m.label[keep].tolist()))
    assert kept == [(2, 0)]  # image 1: below 1e-4; image 2: only its best detection (class 1 at 0.6)
    assert class_ap(m, keep).tolist() == [0.0, 0.0]


def test_pooled_ap_ranks_all_classes_together():
    gt = _gt([[(1, A)], [(2, B)]])
    # class 2's correct box scores 0.2, below a false class-1 box at 0.5: per class both are perfect
    dets = [_det(1, 1, A, 0.9), _det(2, 1, FAR, 0.5), _det(2, 2, B, 0.2)]
    m = match_detections(gt, dets)
    assert class_ap(m, m.keep_all()) == pytest.approx([100.0, 100.0])
    # pooled: TP, FP, TP over 2 ground-truth boxes -> precision 1 to recall .5, 2/3 to recall 1
    assert pooled_ap(m, m.keep_all()) == pytest.approx(100 * (51 + 50 * 2 / 3) / 101)


def test_calibration_error_by_hand():
    gt = _gt([[(1, A), (2, B)]])
    dets = [_det(1, 1, A, 0.95), _det(1, 1, FAR, 0.95), _det(1, 2, B, 0.25), _det(1, 2, FAR, 0.05)]
    m = match_detections(gt, dets)
    # bin [.9, 1]: precision .5, mean score .95 -> |.45| * 2/4; bin [.2, .3): 1 vs .25 -> .75 * 1/4; bin [0, .1): 0
    # vs .05 -> .05 * 1/4
    assert calibration_error(m, m.keep_all()) == pytest.approx(100 * (0.45 * 0.5 + 0.75 * 0.25 + 0.05 * 0.25))
    assert calibration_error(m, m.label == 0) == pytest.approx(45.0)
    assert math.isnan(calibration_error(m, np.zeros(len(m.score), bool)))


def test_crowd_matches_are_ignored():
    gt = _gt([[(1, A), (1, B)]], num_classes=1, crowd={(1, 1)})
    m = match_detections(gt, [_det(1, 1, B, 0.9), _det(1, 1, A, 0.8)])
    assert m.num_gt[0].tolist() == [1]
    assert class_ap(m, m.keep_all())[0] == pytest.approx(100.0)  # the crowd match is neither a TP nor an FP


def test_group_means_and_evaluate_views():
    assert group_means(np.array([10.0, 20.0, np.nan, 40.0]), ["r", "r", "c", "f"]) == {
        "AP": pytest.approx(70 / 3),
        "APr": 15.0,
        "APc": pytest.approx(math.nan, nan_ok=True),
        "APf": 40.0,
    }
    gt = _gt([[(1, A), (2, B)]])
    out = evaluate_large_vocabulary(gt, [_det(1, 1, A, 0.9), _det(1, 2, FAR, 0.8)], ["f", "r"])
    assert (out["lvis"]["APf"], out["lvis"]["APr"], out["lvis"]["AP"]) == pytest.approx((100.0, 0.0, 50.0))
    assert (
        out["cap100"]["AP"] == pytest.approx(50.0)
        and out["ap_fixed"]["k"] == 1
        and out["ap_pool"] == pytest.approx(100 * 51 / 101)
    )
    assert out["ece"]["r"] == pytest.approx(80.0) and out["ece"]["f"] == pytest.approx(10.0)
    empty = evaluate_large_vocabulary(gt, [], ["f", "r"])
    assert empty["lvis"]["AP"] == 0.0 and math.isnan(empty["ece"]["all"])


def test_bad_arguments_name_the_value():
    gt = _gt([[(1, A)]])
    m = match_detections(gt, [_det(1, 1, A, 0.9)])
    with pytest.raises(ValueError, match="max_dets=0"):
        keep_per_image(m, 0)
    with pytest.raises(ValueError, match="k=0"):
        keep_top_per_class(m, 0)
    with pytest.raises(ValueError, match="bins=0"):
        calibration_error(m, m.keep_all(), bins=0)
    with pytest.raises(ValueError, match="groups"):
        evaluate_large_vocabulary(gt, [], ["r"])
    with pytest.raises(ValueError, match="category_id 9"):
        match_detections(gt, [_det(1, 9, A, 0.9)])


def test_class_ap_equals_cocoevals_accumulation_on_random_detections():
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    boxes = [
        [
            (int(rng.integers(1, 4)), [float(x) for x in rng.uniform(0, 400, 2)] + [40.0, 40.0])
            for _ in range(int(rng.integers(1, 5)))
        ]
        for _ in range(6)
    ]
    gt = _gt(boxes, num_classes=3, crowd={(2, 0)})
    dets = []
    for image, objs in enumerate(boxes, start=1):
        for _cid, (x, y, w, h) in objs:
            for _ in range(3):
                dets.append(
                    _det(
                        image,
                        int(rng.integers(1, 4)),
                        [x + rng.normal(0, 6), y + rng.normal(0, 6), w, h],
                        float(np.round(rng.uniform(), 2)),
                    )
                )  # rounded: ties in score
    m = match_detections(gt, dets)
    ours = class_ap(m, m.keep_all())

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(dets)), "bbox")
        ev.params.maxDets = [1000]
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][:, :, :, 0, 0]
    reference = [
        100 * precision[:, :, k][precision[:, :, k] > -1].mean() if (precision[:, :, k] > -1).any() else math.nan
        for k in range(3)
    ]
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-9)
