"""Per-class COCO metrics, r/c/f means, deltas, rare-gap closed, table and plot of detbalance.evaluation."""

import copy
import json
import math

import numpy as np
import pytest

from detbalance.evaluation import (
    ClassMetrics,
    build_report,
    compare,
    evaluate_detections,
    format_report,
    format_table,
    plot_report,
    resolve_groups,
    train_statistics,
)

# Non-contiguous category ids; "owl" (id 9) is listed but has no ground-truth box.
GT = {
    "images": [{"id": 10, "width": 100, "height": 100}, {"id": 11, "width": 100, "height": 100}],
    "annotations": [
        {"id": 1, "image_id": 10, "category_id": 2, "bbox": [5, 5, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 5, "bbox": [50, 50, 30, 20], "area": 600, "iscrowd": 0},
        {"id": 3, "image_id": 11, "category_id": 2, "bbox": [60, 10, 25, 25], "area": 625, "iscrowd": 0},
        {"id": 4, "image_id": 11, "category_id": 5, "bbox": [10, 60, 20, 30], "area": 600, "iscrowd": 0},
    ],
    "categories": [{"id": 2, "name": "cat"}, {"id": 5, "name": "dog"}, {"id": 9, "name": "owl"}],
}


def _perfect(gt=GT):
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]), "score": 0.9}
        for a in gt["annotations"]
    ]


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_perfect_detections_give_ap_100_and_nan_for_a_class_without_ground_truth():
    m = evaluate_detections(GT, _perfect())
    assert m.category_ids == [2, 5, 9] and m.class_names == ["cat", "dog", "owl"]
    for values in (m.ap, m.ap50, m.recall):
        np.testing.assert_allclose(values[:2], 100.0)
        assert math.isnan(values[2])
    assert m.overall_ap == pytest.approx(100.0)


def test_class_without_detections_has_ap_0_and_empty_results_are_evaluable():
    m = evaluate_detections(GT, [d for d in _perfect() if d["category_id"] != 5])
    assert m.ap.tolist()[:2] == [100.0, 0.0] and m.recall[1] == 0.0
    empty = evaluate_detections(GT, [])
    assert empty.ap.tolist()[:2] == [0.0, 0.0] and math.isnan(empty.ap[2])


def test_ground_truth_without_area_or_iscrowd_or_with_id_0_is_accepted():
    gt = copy.deepcopy(GT)
    for i, ann in enumerate(gt["annotations"]):
        ann.pop("area"), ann.pop("iscrowd")
        ann["id"] = i  # id 0 would read as "unmatched" inside the COCO API if kept
    np.testing.assert_allclose(evaluate_detections(gt, _perfect(gt)).ap[:2], 100.0)


def _noisy_results(gt, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for ann in gt["annotations"]:
        for _ in range(3):
            x, y, w, h = ann["bbox"]
            jitter = rng.normal(0, 3, 4)
            out.append(
                {
                    "image_id": ann["image_id"],
                    "category_id": int(rng.choice([2, 5, 9])),
                    "bbox": [x + jitter[0], y + jitter[1], max(1, w + jitter[2]), max(1, h + jitter[3])],
                    "score": float(rng.random()),
                }
            )
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_per_class_values_match_both_coco_implementations(seed):
    """Cross-check against faster-coco-eval's own class_map and an independent pycocotools run."""
    from faster_coco_eval import COCO, COCOeval_faster
    from pycocotools.coco import COCO as PyCOCO
    from pycocotools.cocoeval import COCOeval

    results = _noisy_results(GT, seed)
    mine = evaluate_detections(GT, results)
    gt = copy.deepcopy(GT)
    gt["info"] = {}
    coco_gt = COCO(copy.deepcopy(gt))
    fast = COCOeval_faster(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), "bbox", print_function=lambda *a: None)
    fast.run()
    class_map = {row["class"]: row for row in fast.extended_metrics["class_map"]}
    for k, name in enumerate(["cat", "dog"]):
        assert mine.ap[k] == pytest.approx(100 * class_map[name]["map@50:95"], abs=1e-9)
        assert mine.ap50[k] == pytest.approx(100 * class_map[name]["map@50"], abs=1e-9)
    py_gt = PyCOCO()
    py_gt.dataset = copy.deepcopy(gt)
    py_gt.createIndex()
    slow = COCOeval(py_gt, py_gt.loadRes(copy.deepcopy(results)), "bbox")
    slow.evaluate(), slow.accumulate(), slow.summarize()
    for k in range(2):
        p = slow.eval["precision"][:, :, k, 0, -1]
        assert mine.ap[k] == pytest.approx(100 * p[p > -1].mean(), abs=1e-9)
        assert mine.recall[k] == pytest.approx(100 * slow.eval["recall"][0, k, 0, -1], abs=1e-9)
    assert mine.overall_ap == pytest.approx(100 * slow.stats[0], abs=1e-9)


@pytest.mark.parametrize(
    "bad, expected",
    [
        ({"category_id": 7}, r"category_id 7; expected one of the ground-truth category ids \[2, 5, 9\]"),
        ({"image_id": 99}, "image_id 99, which is not an image of the ground truth"),
        ({"bbox": [0, 0, -1, 5]}, r"bbox \[0, 0, -1, 5\]; expected \[x, y, width, height\]"),
        ({"bbox": [0, 0, 5]}, "bbox"),
        ({"score": float("nan")}, "score nan; expected a finite number"),
    ],
)
def test_bad_detection_is_named(bad, expected):
    results = _perfect()
    results[1].update(bad)
    with pytest.raises(ValueError, match=expected):
        evaluate_detections(GT, results)


def test_score_threshold_evaluates_only_detections_scoring_at_least_that_much():
    results = _noisy_results(GT, seed=3)
    for threshold in (0.3, 0.7):
        kept = [d for d in results if d["score"] >= threshold]
        assert 0 < len(kept) < len(results)
        filtered, by_hand = evaluate_detections(GT, results, threshold), evaluate_detections(GT, kept)
        np.testing.assert_array_equal(filtered.ap, by_hand.ap)
        np.testing.assert_array_equal(filtered.recall, by_hand.recall)
    # A threshold above every score leaves no detection: AP 0 where there is ground truth.
    assert evaluate_detections(GT, results, 2.0).ap[:2].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("threshold", [-0.1, float("nan"), float("inf"), "0.05", True])
def test_bad_score_threshold_is_named(threshold):
    with pytest.raises(ValueError, match=r"score_threshold=.*expected a finite number >= 0"):
        evaluate_detections(GT, _perfect(), threshold)
    with pytest.raises(ValueError, match=r"score_threshold=.*expected a finite number >= 0"):
        build_report({"ce": [evaluate_detections(GT, _perfect())]}, score_threshold=threshold)


def test_bad_ground_truth_is_named():
    gt = copy.deepcopy(GT)
    gt["annotations"][0]["category_id"] = 4
    with pytest.raises(ValueError, match=r"annotation 0 \(id 1\) has category_id 4"):
        evaluate_detections(gt, [])
    with pytest.raises(ValueError, match="'annotations' is empty"):
        evaluate_detections({**GT, "annotations": []}, [])
    with pytest.raises(ValueError, match="expected a COCO results list"):
        evaluate_detections(GT, GT)


def _metrics(ap, ids=(1, 2, 3, 4)):
    ap = np.array(ap, dtype=float)
    return ClassMetrics(
        category_ids=list(ids),
        class_names=[f"c{i}" for i in ids],
        ap=ap,
        ap50=ap + 10,
        recall=ap + 20,
        overall_ap=float(np.nanmean(ap)),
        overall_ap50=float(np.nanmean(ap + 10)),
    )


GROUPS4 = ["f", "c", "r", "r"]


def test_group_means_deltas_and_gap_closed():
    report = build_report(
        {
            "ce": [_metrics([80, 50, 10, 20]), _metrics([84, 54, 14, 24])],
            "wce": [_metrics([70, 55, 30, 40])],
            "oracle": [_metrics([80, 70, 60, 70])],
        },
        baseline="ce",
        oracle="oracle",
        groups=GROUPS4,
        train_instances=[10, 100, 5, 1],
    )
    assert report.order == [1, 0, 2, 3]  # most frequent train class first
    assert report.summary("ce", "ap", "r") == pytest.approx((17.0, math.sqrt(8)))  # runs: 15, 19
    assert report.summary("ce", "ap") == pytest.approx((42.0, 2 * math.sqrt(2)))
    assert report.summary("wce", "ap", "f")[0] == 70 and math.isnan(report.summary("wce", "ap", "f")[1])
    assert report.delta("wce", "ap", "r") == pytest.approx(35 - 17)
    assert report.delta("wce", "ap50", "c") == pytest.approx(65 - 62)
    assert report.gap_closed("wce") == pytest.approx((35 - 17) / (65 - 17))
    assert report.gap_closed("oracle") == pytest.approx(1.0) and report.gap_closed("ce") == 0.0
    dumped = json.dumps(report.to_dict(), allow_nan=False)
    assert json.loads(dumped)["methods"]["wce"]["summary"]["APr"]["delta"] == pytest.approx(18.0)


def test_nan_classes_are_left_out_of_means_and_gap_is_nan_when_undefined():
    report = build_report(
        {"ce": [_metrics([80, float("nan"), 10, 20])], "x": [_metrics([60, float("nan"), 0, 0])]},
        groups=GROUPS4,
        oracle="x",
    )
    assert report.baseline == "ce"
    assert report.summary("ce", "ap") == pytest.approx((110 / 3, math.nan), nan_ok=True)
    assert math.isnan(report.summary("ce", "ap", "c")[0])  # the only common class has no ground truth
    assert math.isnan(report.gap_closed("x"))  # the "oracle" is worse than the baseline on rare classes
    assert math.isnan(build_report({"ce": [_metrics([1, 2, 3, 4])]}).gap_closed("ce"))


def test_build_report_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="baseline 'nope' is not one of the methods"):
        build_report({"ce": [_metrics([1, 2, 3, 4])]}, baseline="nope")
    with pytest.raises(ValueError, match="evaluated on categories"):
        build_report({"ce": [_metrics([1, 2, 3, 4])], "x": [_metrics([1, 2, 3, 4], ids=(1, 2, 3, 5))]})
    with pytest.raises(ValueError, match="groups has 3 entries; expected one per category"):
        build_report({"ce": [_metrics([1, 2, 3, 4])]}, groups=["r", "c", "f"])


def _train_json(counts, frequency=None):
    """A train json where category id 2/5/9 occurs ``counts`` times, one box per image, plus one crowd box."""
    images, anns = [], []
    for cid, n in zip((2, 5, 9), counts):
        for _ in range(n):
            images.append({"id": len(images) + 1, "width": 10, "height": 10})
            anns.append({"id": len(anns) + 1, "image_id": len(images), "category_id": cid, "bbox": [0, 0, 2, 2]})
    anns.append({"id": len(anns) + 1, "image_id": 1, "category_id": 9, "bbox": [0, 0, 2, 2], "iscrowd": 1})
    cats = [{"id": cid, "name": n} for cid, n in ((2, "cat"), (5, "dog"), (9, "owl"))]
    if frequency:
        for c, f in zip(cats, frequency):
            c["frequency"] = f
    return {"images": images, "annotations": anns, "categories": cats}


def test_groups_from_train_counts_declared_fields_or_argument():
    train = _train_json([150, 40, 3])
    assert train_statistics(train, [2, 5, 9]) == ([150, 40, 3], [150, 40, 3], None)  # crowd box not counted
    assert resolve_groups(GT, train) == ["f", "c", "r"]  # LVIS thresholds on image counts
    assert resolve_groups(GT, _train_json([150, 40, 3], ["c", "r", "r"])) == ["c", "r", "r"]
    assert resolve_groups(GT, train, groups=["r", "r", "f"]) == ["r", "r", "f"]
    assert resolve_groups(GT) is None
    with pytest.raises(ValueError, match="must give one of 'r', 'c', 'f' for each of the 3 categories"):
        resolve_groups(GT, groups=["r", "x", "f"])
    with pytest.raises(ValueError, match=r"train json has no category with id \[9\]"):
        train_statistics(
            {
                **train,
                "categories": train["categories"][:2],
                "annotations": [a for a in train["annotations"] if a["category_id"] != 9],
            },
            [2, 5, 9],
        )


def test_compare_files_table_and_plot(tmp_path):
    gt = _write(tmp_path, "gt.json", GT)
    perfect = _write(tmp_path, "perfect.json", _perfect())
    no_dog = _write(tmp_path, "no_dog.json", [d for d in _perfect() if d["category_id"] != 5])
    report = compare(
        gt,
        {"ce": [no_dog, no_dog], "good": [perfect]},
        train_json=_write(tmp_path, "train.json", _train_json([5, 300, 20])),
    )
    assert report.groups == ["r", "f", "c"] and report.order == [1, 2, 0]
    assert report.delta("good", "ap") == pytest.approx(50.0)
    assert report.delta("good", "ap", "f") == pytest.approx(100.0)
    table = format_table(report, "ap")
    lines = table.splitlines()
    assert lines[3].split()[:5] == ["dog", "f", "300/300", "0.0", "100.0"]
    assert lines[4].split() == ["owl", "c", "20/20", "n/a", "n/a", "n/a"]
    assert any(line.startswith("APf") and "+100.0" in line for line in lines)
    assert "R50 = recall" in format_report(report)
    out = plot_report(report, tmp_path / "plots" / "ap.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["ap.png"]
    with pytest.raises(ValueError, match=r"suffix '.jpeg'; expected .png, .pdf or .svg"):
        plot_report(report, tmp_path / "ap.jpeg")


def test_compare_names_the_bad_file(tmp_path):
    gt = _write(tmp_path, "gt.json", GT)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"image_id": 10,\n "category_id": }]')
    with pytest.raises(ValueError, match=r"broken.json is not valid json: Expecting value at line 2 column 17"):
        compare(gt, {"ce": [broken]})
    with pytest.raises(ValueError, match=r"missing.json does not exist"):
        compare(gt, {"ce": [tmp_path / "missing.json"]})
    bad = _write(tmp_path, "bad.json", [{**_perfect()[0], "category_id": 3}])
    with pytest.raises(ValueError, match=r"bad.json: results: detection 0 has category_id 3"):
        compare(gt, {"ce": [bad]})
