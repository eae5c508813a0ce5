"""The two regimes of the benchmark: a pretrained-regime run trains the EfficientNet-Lite0 configs in both
frameworks and is recorded apart from the from-scratch runs, whose definition hashes do not change; the schedule
of the pretrained regime is chosen on the validation split; the demo's recipe comes from the results."""

from __future__ import annotations

import dataclasses
import json

import pytest
from bench_helpers import TINY, tiny_settings

from dbbench.benchmark import build_summary, get_method, pending, record_path
from dbbench.benchmark.demo import best_recipe, lift_table
from dbbench.benchmark.methods import METHODS, definition_hash, method_loss
from dbbench.benchmark.plan import plan_jobs
from dbbench.benchmark.runner import run_matrix
from dbbench.benchmark.runs import PRETRAINED_SCHEDULE, REGIME_SCHEDULES, BenchmarkSettings, run_definition
from dbbench.benchmark.schedule_tuning import SCHEDULE_GRID, choose_schedule, schedule_tag
from dbbench.data.longtail import data_version
from dbbench.training.models import config_path
from detbalance.evaluation.lvis_protocol import LVIS_MAX_DETS, LVIS_SCORE_THRESHOLD


@pytest.mark.slow
def test_pretrained_runs_train_the_efficientnet_configs_and_are_recorded_apart(tmp_path):
    settings = dataclasses.replace(tiny_settings(tmp_path), regime="pretrained")
    log = []
    records = run_matrix(settings, ["detectron2", "mmdet"], ["ce", "seesaw-normed"], [0], log=log.append)
    assert [(r["framework"], r["method"], r["regime"]) for r in records] == [
        ("detectron2", "ce", "pretrained"),
        ("detectron2", "seesaw-normed", "pretrained"),
        ("mmdet", "ce", "pretrained"),
        ("mmdet", "seesaw-normed", "pretrained"),
    ]
    version = data_version(TINY)
    assert record_path(tmp_path / "results", version, "mmdet", "ce", 0, "pretrained").is_file()
    assert not record_path(tmp_path / "results", version, "mmdet", "ce", 0).exists()
    work = tmp_path / "work" / version / "pretrained"
    d2 = (work / "detectron2" / "seesaw-normed" / "seed0" / "config.yaml").read_text()
    assert "build_efficientnet_lite0_fpn_backbone" in d2 and "NormedLinear" in d2
    mm = (work / "mmdet" / "seesaw-normed" / "seed0" / "config.py").read_text()
    assert "DBEfficientNetLite" in mm and "NormedLinear" in mm and "tempearture=20" in mm
    assert "DBEfficientNetLite" in (work / "mmdet" / "ce" / "seed0" / "config.py").read_text()
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert {r["regime"] for r in summary["runs"]} == {"pretrained"}
    assert "(pretrained)" in log[0]


def test_scratch_hashes_are_unchanged_and_the_pretrained_regime_is_part_of_the_definition(tmp_path):
    scratch, pretrained = tiny_settings(tmp_path), dataclasses.replace(tiny_settings(tmp_path), regime="pretrained")
    weights = tmp_path / "weights.json"
    method = get_method("ce")
    before_regimes = {  # what a run's definition held before the regimes
        "schedule": dataclasses.asdict(scratch.schedule),
        "loss": dataclasses.asdict(method_loss(method)),
        "protocol": [LVIS_MAX_DETS, LVIS_SCORE_THRESHOLD],
    }
    assert run_definition(method, scratch, weights) == definition_hash(method, before_regimes)
    assert run_definition(method, pretrained, weights) != run_definition(
        method, dataclasses.replace(scratch, schedule=pretrained.schedule), weights
    )


def test_regime_defaults_and_errors():
    assert BenchmarkSettings().schedule == REGIME_SCHEDULES["scratch"]
    assert BenchmarkSettings(regime="pretrained").schedule == PRETRAINED_SCHEDULE
    with pytest.raises(ValueError, match="regime='imagenet'"):
        BenchmarkSettings(regime="imagenet")
    with pytest.raises(ValueError, match="regime='imagenet'"):
        record_path("results", "v", "mmdet", "ce", 0, "imagenet")
    assert config_path("faster_rcnn", "mmdet", regime="pretrained").name == "faster-rcnn_efficientnet-lite0_fpn_tiny.py"
    with pytest.raises(ValueError, match="no detectron2 config here in regime 'pretrained'"):
        config_path("retinanet", "detectron2", regime="pretrained")


def test_head_rows_wait_for_a_pretrained_config():
    assert pending(get_method("retinanet-focal"), "detectron2", "pretrained").endswith(
        "pretrained detectron2 config here"
    )
    assert pending(get_method("retinanet-focal"), "detectron2") is None
    assert pending(get_method("ce-norcal"), "mmdet", "pretrained") is None
    jobs = plan_jobs(build_summary([], TINY), ["detectron2"], "pretrained")
    assert ("detectron2", "ce", 0) in jobs and not any(METHODS[k].model != "faster_rcnn" for _, k, _ in jobs)


def test_the_plan_of_a_regime_ignores_the_other_regimes_runs():
    summary = build_summary([], TINY)
    summary["runs"] = [
        {"regime": "scratch", "framework": "detectron2", "method": "ce", "seed": 0, "metrics": {"APr": 1.0}}
    ]
    assert ("detectron2", "ce", 0) in plan_jobs(summary, ["detectron2"], "pretrained")
    assert ("detectron2", "ce", 0) not in plan_jobs(summary, ["detectron2"], "scratch")


def test_schedule_choice_is_the_best_mean_validation_ap_ties_shorter():
    short, long = (schedule_tag(s) for s in SCHEDULE_GRID)
    assert (
        choose_schedule({"detectron2": {short: 20.0, long: 24.0}, "mmdet": {short: 18.0, long: 15.0}})
        == SCHEDULE_GRID[1]
    )
    assert choose_schedule({"detectron2": {short: 20.0, long: 20.0}}) == SCHEDULE_GRID[0]
    with pytest.raises(ValueError, match="expected a number for each"):
        choose_schedule({"detectron2": {short: 20.0}})
    with pytest.raises(ValueError, match="finite number"):
        choose_schedule({"detectron2": {short: float("nan"), long: 1.0}})


def _run(framework, method, apr, regime="pretrained"):
    metrics = {"AP": 20.0, "APr": apr, "APc": 15.0, "APf": 30.0}
    return {"regime": regime, "framework": framework, "method": method, "seed": 0, "metrics": metrics}


def test_best_recipe_comes_from_the_results_of_the_regime():
    summary = {
        "runs": [
            _run("detectron2", "ce", 2.0),
            _run("mmdet", "ce", 1.0),
            _run("detectron2", "oracle", 30.0),
            _run("mmdet", "oracle", 30.0),
            _run("detectron2", "rfs", 9.0),
            _run("mmdet", "rfs", 7.0),
            _run("detectron2", "seesaw-normed", 12.0),
            _run("mmdet", "seesaw-normed", 3.0),  # mean 7.5 < rfs's 8.0
            _run("mmdet", "mmdet-seesaw", 40.0),  # MMDetection's own: never the recipe
            _run("detectron2", "eqlv2", 20.0),  # only one framework
            _run("detectron2", "rfs-eqlv2", 50.0, regime="scratch"),
        ]
    }
    assert best_recipe(summary, "pretrained") == "rfs"
    assert best_recipe(summary, "scratch") == "rfs-eqlv2"
    with pytest.raises(ValueError, match="no trained row of regime 'pretrained'"):
        best_recipe({"runs": [_run("detectron2", "ce", 1.0)]}, "pretrained")


def test_lift_table_says_where_the_recipe_sits_between_ce_and_the_oracle():
    runs = {"ce": _run("detectron2", "ce", 2.0), "rfs": _run("detectron2", "rfs", 12.0)}
    text = lift_table(runs, "rfs", oracle_apr=22.0)
    assert "| lift | +10.0 | +0.0 | +0.0 | +0.0 |" in text
    assert "closes 50% of CE's gap to the oracle" in text
    assert "oracle" not in lift_table(runs, "rfs", oracle_apr=None).split("\n\n")[-1]
