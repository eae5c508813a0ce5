"""The length of the tuned decoupled row's stage 2, chosen on the validation split
(dbbench.benchmark.decouple_tuning): the variant rows, their schedule and hash, a real tuning run of tiny trainings
(cached the second time), the plan's check and the committed choice the table names."""

from __future__ import annotations

import dataclasses
import importlib.util
import json

import pytest
from bench_helpers import tiny_settings

from dbbench.benchmark import METHODS, get_method
from dbbench.benchmark.decouple_tuning import decouple_tuning_path, tune_decouple_fraction
from dbbench.benchmark.methods import (
    DECOUPLE_FRACTION,
    DECOUPLE_FRACTION_GRID,
    DECOUPLE_TUNED_BASE,
    DECOUPLE_TUNED_FRACTION,
    Method,
    decouple_schedule,
    decouple_variant,
)
from dbbench.benchmark.runs import run_definition
from dbbench.benchmark.summary import load_summary
from dbbench.benchmark.tuning import choose_best
from dbbench.data.longtail import LongTailSpec
from dbbench.training import Schedule


def test_decouple_variant_rows_and_their_stage2_length():
    base = get_method(DECOUPLE_TUNED_BASE)
    assert base.stage2_fraction == DECOUPLE_FRACTION and decouple_variant(base, DECOUPLE_FRACTION) is base
    longer = decouple_variant(base, 0.6)
    assert (longer.key, longer.decouple_fraction, longer.base, longer.loss) == (f"{base.key}-f0.6", 0.6, "ce", "seesaw")
    assert longer.label.endswith("; stage 2 60% of stage 1's iterations")
    assert decouple_variant(base, 1.0).label.endswith("; stage 2 as long as stage 1")
    assert decouple_schedule(Schedule(iters=2000), longer.stage2_fraction).iters == 1200
    assert decouple_schedule(Schedule(iters=2000), 1.0).iters == 2000
    with pytest.raises(ValueError, match="base='ce'; expected a decoupled row"):
        decouple_variant(get_method("ce"), 0.6)
    for bad in (0.0, 1.5, 1, True):
        with pytest.raises(ValueError, match=rf"fraction={bad!r}; expected a float in \(0, 1\]"):
            decouple_variant(base, bad)
        with pytest.raises(ValueError, match=rf"fraction={bad!r}; expected a float in \(0, 1\]"):
            decouple_schedule(Schedule(iters=10), bad)
    with pytest.raises(ValueError, match="decouple_fraction=0.5 with decouple=None; expected a float in"):
        Method("x", "x", decouple_fraction=0.5)


def test_the_stage2_length_enters_the_definition(tmp_path):
    settings = dataclasses.replace(tiny_settings(tmp_path), regime="pretrained")
    weights = tmp_path / "w.json"
    base = get_method(DECOUPLE_TUNED_BASE)
    definitions = {run_definition(decouple_variant(base, f), settings, weights) for f in DECOUPLE_FRACTION_GRID}
    assert len(definitions) == len(DECOUPLE_FRACTION_GRID)


def test_choose_best_fraction_ties_the_shorter():
    val = {"detectron2": {0.3: 20.0, 0.6: 30.0, 1.0: 30.0}, "mmdet": {0.3: 25.0, 0.6: 28.0, 1.0: 28.0}}
    assert choose_best(val, "fractions") == 0.6
    with pytest.raises(ValueError, match="expected the same non-empty fractions in every framework"):
        choose_best({"detectron2": {0.3: 1.0}, "mmdet": {0.6: 1.0}}, "fractions")


def test_the_table_names_the_committed_choice(repo_root):
    tuned = decouple_variant(get_method(DECOUPLE_TUNED_BASE), DECOUPLE_TUNED_FRACTION)
    assert METHODS[tuned.key] == tuned
    record = json.loads(decouple_tuning_path(repo_root / "results").read_text(encoding="utf-8"))
    assert record["chosen"] == DECOUPLE_TUNED_FRACTION and record["row"] == tuned.key
    assert record["grid"] == list(DECOUPLE_FRACTION_GRID) and record["split"] == "val"
    assert record["regime"] == "pretrained" and record["base"] == DECOUPLE_TUNED_BASE and record["stage1"] == "ce"
    assert record["data_version"] == load_summary(repo_root / "results", LongTailSpec())["dataset"]["version"]
    val = {fw: {float(f): m["APr"] for f, m in by_f.items()} for fw, by_f in record["val"].items()}
    assert sorted(val) == ["detectron2", "mmdet"] and choose_best(val, "fractions") == record["chosen"]


def test_tuning_refuses_the_scratch_regime_and_the_plan_a_table_without_the_choice(tmp_path, monkeypatch):
    import dbbench.benchmark.plan as plan
    from dbbench.benchmark.methods import RFS_TUNED_THRESHOLD
    from dbbench.benchmark.runs import PRETRAINED_SCHEDULE

    with pytest.raises(ValueError, match="regime='scratch'; expected 'pretrained'"):
        tune_decouple_fraction(tiny_settings(tmp_path), ["detectron2"])
    other = next(f for f in DECOUPLE_FRACTION_GRID if f != DECOUPLE_TUNED_FRACTION)
    monkeypatch.setattr(plan, "tune_rfs_threshold", lambda *a, **k: {"chosen": RFS_TUNED_THRESHOLD})
    monkeypatch.setattr(
        plan, "tune_pretrained_schedule", lambda *a, **k: {"schedule": dataclasses.asdict(PRETRAINED_SCHEDULE)}
    )
    monkeypatch.setattr(plan, "tune_decouple_fraction", lambda *a, **k: {"chosen": other})
    settings = dataclasses.replace(tiny_settings(tmp_path), regime="pretrained")
    with pytest.raises(ValueError, match=f"chose stage 2 of {other:g} of the schedule, the method table has"):
        plan.run_plan(settings, ["detectron2"], log=lambda line: None)


def test_tool_tune_names_what_it_tunes(repo_root, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("benchmark_tool", repo_root / "tools" / "benchmark.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    results = ["--results", str(tmp_path / "r"), "--work-dir", str(tmp_path / "w")]
    assert tool.main(["run", "--tune", "stage2", *results]) == 2  # the scratch regime has no tuned decoupled row
    assert "regime='scratch'; expected 'pretrained'" in capsys.readouterr().err
    assert tool.main(["run", "--tune", "stage2", "--seeds", "1"]) == 2
    with pytest.raises(SystemExit):
        tool.main(["run", "--tune", "lr"])


@pytest.mark.slow
def test_tuning_trains_stage2_per_fraction_on_one_ce_model_and_validates_it(tmp_path):
    settings = dataclasses.replace(tiny_settings(tmp_path, iters=4), regime="pretrained")
    log = []
    out = tune_decouple_fraction(settings, ["detectron2"], log=log.append)
    assert [line.split(" (")[0] for line in log[:-1]] == [
        f"tune detectron2 {decouple_variant(get_method(DECOUPLE_TUNED_BASE), f).key}" for f in DECOUPLE_FRACTION_GRID
    ]
    iters = [decouple_schedule(settings.schedule, f).iters for f in DECOUPLE_FRACTION_GRID]
    assert all(f"stage 2 {n} it" in line for n, line in zip(iters, log[:-1], strict=True))
    assert out["chosen"] in DECOUPLE_FRACTION_GRID and sorted(out["val"]["detectron2"]) == ["0.3", "0.6", "1"]
    assert all(m["AP"] is not None for m in out["val"]["detectron2"].values())
    assert json.loads(decouple_tuning_path(settings.results_dir).read_text(encoding="utf-8")) == out
    # cached: neither CE nor a candidate trains again, the validation detections are reused
    log.clear()
    assert tune_decouple_fraction(settings, ["detectron2"], log=log.append) == out
