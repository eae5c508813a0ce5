"""The demo end to end on a tiny synthetic set: real training in each framework, then table, plot and json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from dbbench.data import SyntheticSpec
from dbbench.demo import DemoSettings, parse_methods, run_demo
from dbbench.demo.pipeline import DEFAULT_SCORE_THRESHOLD
from dbbench.training import Schedule
from detbalance.evaluation import compare

TINY = SyntheticSpec(
    num_classes=4,
    head_instances=24,
    imbalance_ratio=8,
    test_per_class=3,
    image_size=64,
    min_size=10,
    max_size=16,
    max_objects=3,
)


def _run(tmp_path: Path, framework: str, methods: str, *, oracle: bool) -> tuple[dict, Path, str]:
    out = tmp_path / "out"
    settings = DemoSettings(
        frameworks=(framework,),
        methods=tuple(parse_methods(methods, (framework,))),
        seeds=(0,),
        schedule=Schedule(iters=6, warmup_iters=2),
        out_dir=out,
        synthetic=TINY,
        oracle=oracle,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    lines: list[str] = []
    summary = run_demo(settings, log=lines.append)
    return summary, out, "\n".join(lines)


def _check_outputs(summary: dict, out: Path, log: str, framework: str, methods: list[str]) -> None:
    for name in (f"{framework}_table.txt", f"{framework}_ap.png", "results.json", "weights.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(summary))
    assert [r["method"] for r in summary["runs"]] == methods
    assert list(summary["methods"]) == methods and summary["methods"]["wce"]["loss_setting"]["loss"] == (
        "WeightedCrossEntropyLoss"
    )
    assert all(
        json.loads((Path(r["results"]).parent / "trained.json").read_text())["train"]["iterations"] == 6
        for r in summary["runs"]
    )
    results = {}
    for run in summary["runs"]:
        assert run["iterations"] == 6 and math.isfinite(run["final_loss"]) and math.isfinite(run["first_loss"])
        detections = json.loads(Path(run["results"]).read_text())
        assert len(detections) == run["num_detections"] > 0
        assert {d["category_id"] for d in detections} <= {1, 2, 3, 4}
        results[run["method"]] = [run["results"]]
    # The reported numbers are those of the run's own result files, evaluated again here.
    test_json = summary["data"]["test_json"]
    oracle = "oracle" if "oracle" in results else None
    for key, threshold in (("reports", DEFAULT_SCORE_THRESHOLD), ("reports_all_detections", 0.0)):
        again = compare(
            test_json,
            results,
            baseline="ce",
            oracle=oracle,
            groups=summary["data"]["groups"],
            train_json=summary["data"]["train_json"],
            score_threshold=threshold,
        ).to_dict()
        reported = summary[key][framework]
        assert reported["score_threshold"] == threshold
        for method in results:
            assert reported["methods"][method]["per_class"] == again["methods"][method]["per_class"]
            assert reported["methods"][method]["summary"]["APr"] == again["methods"][method]["summary"]["APr"]
    for name in (f"{framework}_table.txt", f"{framework}_table_all_detections.txt"):
        table = (out / name).read_text()
        assert "APr" in table and "wce" in table and table.strip() in log
    assert "detections scoring >= 0.05" in (out / f"{framework}_table.txt").read_text()
    reported = summary["reports"][framework]
    assert [c["name"] for c in reported["classes"]] == ["circle", "square", "triangle", "cross"]


@pytest.mark.slow
def test_detectron2_demo_end_to_end(tmp_path):
    summary, out, log = _run(tmp_path, "detectron2", "ce,wce", oracle=True)
    _check_outputs(summary, out, log, "detectron2", ["ce", "wce", "oracle"])
    assert "rare_gap_closed" in summary["reports"]["detectron2"]["methods"]["wce"]
    config = (out / "runs/detectron2/wce/seed0/config.yaml").read_text()
    assert "BalancedROIHeads" in config and "WeightedCrossEntropyLoss" in config


@pytest.mark.slow
def test_mmdet_demo_end_to_end(tmp_path):
    summary, out, log = _run(tmp_path, "mmdet", "ce,wce,rfs", oracle=False)
    _check_outputs(summary, out, log, "mmdet", ["ce", "wce", "rfs"])
    config = (out / "runs/mmdet/wce/seed0/config.py").read_text()
    assert "DBWeightedCrossEntropyLoss" in config and "weights.json" in config
    # a method row with repeat-factor sampling, as the benchmark trains it
    rfs = (out / "runs/mmdet/rfs/seed0/config.py").read_text()
    assert "DBRepeatFactorSampler" in rfs and "threshold=0.01" in rfs
    assert summary["methods"]["rfs"]["sampler"] == "rfs" and summary["methods"]["rfs"]["rfs_threshold"] == 0.01
