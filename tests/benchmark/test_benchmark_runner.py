"""The resumable runner end to end at a tiny size: a real Detectron2 model trains a few iterations on a tiny
long-tailed set, its record is written and a second call skips it; pending methods are refused by name."""

import json

import pytest
from bench_helpers import TINY

from dbbench.benchmark import METHODS, get_method, pending
from dbbench.benchmark.runner import run_matrix
from dbbench.benchmark.runs import BenchmarkSettings
from dbbench.training import LOSS_SETTINGS, Schedule
from dbbench.training.models import HEAD_LOSSES


@pytest.mark.slow
def test_detectron2_run_is_recorded_then_cached(tmp_path):
    settings = BenchmarkSettings(
        results_dir=tmp_path / "results",
        work_dir=tmp_path / "work",
        spec=TINY,
        schedule=Schedule(iters=3, warmup_iters=1),
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    log = []
    records = run_matrix(settings, ["detectron2"], ["ce", "mmdet-seesaw"], [0], log=log.append)
    assert [r["method"] for r in records] == ["ce"]
    assert any("mmdet-seesaw seed 0: skipped (mmdet-seesaw exists only in" in line for line in log)
    record = records[0]
    assert set(record["metrics"]) == {"AP", "APr", "APc", "APf"}
    assert record["ap_fixed"]["k"] >= 1 and set(record["ece"]) == {"all", "r", "c", "f"}
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["dataset"]["num_classes"] == 4 and summary["dataset"]["groups"] == {"r": 2, "c": 2, "f": 0}
    assert [(r["framework"], r["method"], r["seed"]) for r in summary["runs"]] == [("detectron2", "ce", 0)]
    detections = json.loads(next((tmp_path / "work").rglob("results.json")).read_text())
    per_image = {}
    for d in detections:
        assert d["score"] >= 1e-4
        per_image[d["image_id"]] = per_image.get(d["image_id"], 0) + 1
    assert max(per_image.values()) <= 300

    log.clear()
    assert run_matrix(settings, ["detectron2"], ["ce"], [0], log=log.append) == []
    assert "cached" in log[-1]


def test_method_table_and_bad_arguments(tmp_path):
    assert {"ce", "oracle", "seesaw", "eqlv2", "rfs-seesaw", "mmdet-seesaw", "mmdet-eqlv2"} <= set(METHODS)
    # the loss settings are the layer below the method table: each is some row's loss
    assert {m.loss for m in METHODS.values()} == set(LOSS_SETTINGS) | set(HEAD_LOSSES)
    assert pending(get_method("seesaw"), "mmdet") is None
    assert "only in" in pending(get_method("mmdet-seesaw"), "detectron2")
    with pytest.raises(ValueError, match="unknown method 'focal'"):
        get_method("focal")
    with pytest.raises(ValueError, match="device='tpu'"):
        BenchmarkSettings(device="tpu")
    settings = BenchmarkSettings(results_dir=tmp_path, work_dir=tmp_path, spec=TINY)
    with pytest.raises(ValueError, match="frameworks=\\['caffe'\\]"):
        run_matrix(settings, ["caffe"], ["ce"], [0])
    with pytest.raises(ValueError, match="seeds=\\[-1\\]"):
        run_matrix(settings, ["detectron2"], ["ce"], [-1])


@pytest.mark.slow
def test_quick_demo_says_it_only_checks_the_pipeline(tmp_path, monkeypatch):
    from dbbench.benchmark import demo
    from dbbench.benchmark.demo import QUICK_NOTICE, run_short_demo

    monkeypatch.setattr(demo, "QUICK_ITERS", 3)  # the real 100 iterations take minutes on a loaded machine
    log = []
    summary = run_short_demo(
        tmp_path,
        quick=True,
        methods=["ce"],
        regime="scratch",
        spec=TINY,
        cache_dir=tmp_path / "cache",
        progress=False,
        log=log.append,
    )
    assert log[0] == QUICK_NOTICE and log[-1] == QUICK_NOTICE and "only checks that the pipeline" in QUICK_NOTICE
    assert [(r["method"], r["seed"]) for r in summary["runs"]] == [("ce", 0)]
    assert "**detectron2**, LVIS protocol (primary: APr)" in log[-2]
    out = tmp_path / "quick" / "scratch"
    assert (out / "results" / "summary.json").is_file() and (out / "apr.png").is_file()
