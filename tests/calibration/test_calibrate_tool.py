"""tools/calibrate.py end to end on a simulated softmax detector: gamma fitted on APr, thresholds reaching their
target, the file it writes and the table it prints; bad input exits 2 and writes nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from detbalance.calibration import load_calibration, norcal_scores
from detbalance.evaluation import calibrate_cli
from detbalance.evaluation.calibration_fit import matched_at_iou50, precision_recall
from detbalance.evaluation.lvis_protocol import match_detections
from detbalance.weights import ClassStats, WeightsFile, frequency_groups, save_weights
from helpers import REPO_ROOT

NAMES = ["head0", "head1", "mid", "tail0", "tail1"]
IMAGE_COUNTS = [900, 600, 60, 6, 3]
CATEGORY_IDS = [3, 5, 8, 11, 20]


def simulate(folder, gammas=(0.5, 1.0)):
    """A validation set whose detector ranks the tail well but scores it low, so that the tail's boxes lose the
    framework's per-image top 20 to frequent classes' background boxes: gt, baseline and per-gamma results."""
    rng = np.random.default_rng(0)
    images, annotations, rows = [], [], []
    prior = torch.log(torch.tensor(IMAGE_COUNTS + [3000], dtype=torch.float64))
    for image_id in range(1, 41):
        images.append({"id": image_id, "width": 100, "height": 100, "file_name": f"{image_id}.png"})
        for j in range(3):
            k = int(rng.integers(0, 5))
            box = [float(30 * j), 10.0, 20.0, 20.0]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": CATEGORY_IDS[k],
                    "bbox": box,
                    "area": 400.0,
                    "iscrowd": 0,
                }
            )
            evidence = torch.zeros(6, dtype=torch.float64)
            evidence[k] = 3.0 + float(rng.normal(0, 1))
            rows.append((image_id, box, evidence + prior * 0.8 + torch.from_numpy(rng.normal(0, 1, 6))))
        for _ in range(30):  # background proposals
            box = [float(rng.uniform(0, 80)), 60.0, 15.0, 15.0]
            rows.append(
                (
                    image_id,
                    box,
                    prior * 0.8
                    + torch.from_numpy(rng.normal(0, 1, 6))
                    + torch.tensor([0, 0, 0, 0, 0, 2.5], dtype=torch.float64),
                )
            )
    logits = torch.stack([r[2] for r in rows])

    def results(scores):
        """Every (box, class) scoring >= 0.001, then the framework's per-image cap (here the top 20)."""
        per_image = {}
        for (image_id, box, _), row in zip(rows, scores):
            for k in range(5):
                if row[k] >= 0.001:
                    per_image.setdefault(image_id, []).append(
                        {"image_id": image_id, "category_id": CATEGORY_IDS[k], "bbox": box, "score": float(row[k])}
                    )
        return [d for dets in per_image.values() for d in sorted(dets, key=lambda d: -d["score"])[:20]]

    gt = {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": c, "name": n} for c, n in zip(CATEGORY_IDS, NAMES)],
    }
    paths = {"gt": folder / "val.json", "baseline": folder / "base.json", "weights": folder / "weights.json"}
    paths["gt"].write_text(json.dumps(gt))
    paths["baseline"].write_text(json.dumps(results(torch.softmax(logits, dim=1))))
    for g in gammas:
        paths[g] = folder / f"g{g}.json"
        paths[g].write_text(json.dumps(results(norcal_scores(logits, IMAGE_COUNTS, g))))
    stats = ClassStats(NAMES, [2 * n for n in IMAGE_COUNTS], IMAGE_COUNTS, 1000)
    save_weights(
        paths["weights"],
        WeightsFile(stats=stats, scheme="uniform", weights=[1.0] * 5, groups=frequency_groups(IMAGE_COUNTS)),
    )
    return paths


def run_tool(*args):
    """tools/calibrate.py in its own process."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "calibrate.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_main(capsys, *args) -> tuple[int, str, str]:
    """The same entry point in this process (argparse errors exit through SystemExit)."""
    try:
        code = calibrate_cli.main([str(a) for a in args], prog="calibrate")
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_fits_gamma_and_precision_thresholds(tmp_path):
    paths = simulate(tmp_path)
    out = tmp_path / "calibration.json"
    proc = run_tool(
        "--gt",
        paths["gt"],
        "--weights",
        paths["weights"],
        "--results",
        paths["baseline"],
        "--gamma-results",
        f"0.5={paths[0.5]}",
        f"1.0={paths[1.0]}",
        "--target-precision",
        "0.8",
        "-o",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    cf = load_calibration(out, num_classes=5)
    by_gamma = {float(g): v for g, v in cf.fit["metric_by_gamma"].items()}
    assert set(by_gamma) == {0.0, 0.5, 1.0}
    assert cf.method == "norcal" and cf.gamma == max(by_gamma, key=by_gamma.get) and cf.gamma > 0
    assert by_gamma[cf.gamma] > by_gamma[0.0]  # the tail's AP improves with calibration
    assert cf.class_counts == IMAGE_COUNTS and cf.threshold_rule == {"objective": "precision", "target": 0.8}
    # the thresholds reach their target on the fit set (the chosen gamma's detections)
    gt = json.loads(paths["gt"].read_text())
    chosen = json.loads(paths[cf.gamma].read_text())
    scores, labels, is_tp, num_gt = matched_at_iou50(match_detections(gt, chosen))
    precision, _ = precision_recall(scores, labels, is_tp, num_gt, np.array(cf.thresholds))
    kept = np.isfinite(precision)
    assert kept.any() and (precision[kept] >= 80.0).all()
    table = proc.stdout
    assert "APR by gamma (norcal)" in table and "tail1" in table and "mean r" in table and f"wrote {out}" in table


def test_thresholds_only_from_plain_results(tmp_path, capsys):
    paths = simulate(tmp_path, gammas=())
    out = tmp_path / "calibration.json"
    code, _, err = run_main(
        capsys,
        "--gt",
        paths["gt"],
        "--weights",
        paths["weights"],
        "--results",
        paths["baseline"],
        "--thresholds",
        "f1",
        "-o",
        out,
    )
    assert code == 0, err
    cf = load_calibration(out)
    assert cf.method == "" and cf.gamma is None and cf.class_counts is None and len(cf.thresholds) == 5


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda p: [f"--gamma-results=-0.5={p['baseline']}"], "GAMMA a number >= 0"),
        (lambda p: ["--gamma-results", f"0.5={p['gt']}"], "expected a COCO results list"),
        (lambda p: ["--target-precision", "1.5"], "target=1.5; expected a precision in (0, 1]"),
        (lambda p: ["--thresholds", "f1", "--default-threshold", "2"], "expected a score threshold in [0, 1]"),
        (lambda p: ["--thresholds", "f1", "--weights", p["gt"]], "not a detbalance weights file"),
        (lambda p: ["--thresholds", "f1", "--results", p["gt"].with_name("missing.json")], "does not exist"),
        (lambda p: [], "nothing to fit"),
        (lambda p: ["--gamma-results", f"0={p['baseline']}"], "expected gammas > 0"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, mutate, message):
    paths = simulate(tmp_path, gammas=())
    out = tmp_path / "out" / "calibration.json"
    out.parent.mkdir()
    base = ["--gt", paths["gt"], "--weights", paths["weights"], "--results", paths["baseline"], "-o", out]
    code, _, err = run_main(capsys, *base, *mutate(paths))
    assert code == 2
    assert message in err
    assert not any(out.parent.iterdir())


def test_weights_for_other_classes_exit_2(tmp_path, capsys):
    paths = simulate(tmp_path, gammas=())
    stats = ClassStats(NAMES[:4], [10] * 4, [5] * 4, 50)
    save_weights(paths["weights"], WeightsFile(stats=stats, scheme="uniform", weights=[1.0] * 4, groups=["r"] * 4))
    out = tmp_path / "calibration.json"
    code, _, err = run_main(
        capsys,
        "--gt",
        paths["gt"],
        "--weights",
        paths["weights"],
        "--results",
        paths["baseline"],
        "--thresholds",
        "f1",
        "-o",
        out,
    )
    assert code == 2 and "differ from the weights file's" in err and not out.exists()
