"""The protocol's plan (dbbench.benchmark.plan): screen, then three seeds of CE, the oracle, the best three and
MMDetection's own losses, then calibration rows per base seed, then the head rows; made again from the records."""

import importlib.util

import pytest
from bench_helpers import TINY, tiny_settings

from dbbench.benchmark import METHODS, build_summary
from dbbench.benchmark.methods import RFS_THRESHOLD_GRID, RFS_TUNED_BASE, RFS_TUNED_THRESHOLD, rfs_variant
from dbbench.benchmark.plan import BEST, SEEDS, plan_jobs, run_plan, screened_best
from dbbench.training.models import DEFAULT_MODEL

SCREENED = {  # APr of a made-up screen of the demo model's trained rows
    "ce": 2.0,
    "oracle": 20.0,
    "wce": 3.0,
    "cbfocal": 1.0,
    "eql": 2.5,
    "eqlv2": 5.0,
    "seesaw": 3.0,
    "seesaw-normed": 3.5,
    "federated": 4.0,
    "rfs": 6.0,
    "rfs-seesaw": 7.0,
    "rfs-seesaw-normed": 5.8,
    "rfs-eqlv2": 12.0,
    "crt": 4.5,
    "bags": 4.4,
    "crt-eqlv2": 4.6,
    "mmdet-seesaw": 30.0,  # MMDetection's own rows are never among the best three: they get their seeds anyway
    "mmdet-seesaw-normed": 30.0,
    "mmdet-eqlv2": 30.0,
}
_TUNED = rfs_variant(METHODS[RFS_TUNED_BASE], RFS_TUNED_THRESHOLD).key
if _TUNED != RFS_TUNED_BASE:
    SCREENED[_TUNED] = 5.5  # between EQLv2 and RFS + CE: not among the best three


def _summary(runs):
    summary = build_summary([], TINY)
    summary["runs"] = [
        {"framework": f, "method": m, "seed": s, "metrics": {"AP": 1.0, "APr": apr, "APc": 1.0, "APf": 1.0}}
        for f, m, s, apr in runs
    ]
    return summary


def _screen(framework):
    keys = [k for k in SCREENED if framework == "mmdet" or not k.startswith("mmdet-")]
    return [(framework, k, 0, SCREENED[k]) for k in keys]


def test_an_empty_matrix_screens_every_trained_row_first():
    jobs = plan_jobs(_summary([]), ["detectron2"])
    trained = [
        m.key for m in METHODS.values() if m.model == DEFAULT_MODEL and m.calibrate is None and "scratch" in m.regimes
    ]
    trained = [k for k in trained if not k.startswith("mmdet-")]
    assert jobs[: len(trained)] == [("detectron2", k, 0) for k in trained]
    # before the screen is done the best three are unknown: only CE and the oracle get their other seeds
    assert jobs[len(trained) : len(trained) + 4] == [
        ("detectron2", "ce", 1),
        ("detectron2", "ce", 2),
        ("detectron2", "oracle", 1),
        ("detectron2", "oracle", 2),
    ]
    assert ("detectron2", "rfs-eqlv2", 1) not in jobs
    # calibration rows follow their base's seeds; the head rows come last, one seed
    assert [s for f, k, s in jobs if k == "ce-norcal"] == list(SEEDS)
    assert [s for f, k, s in jobs if k == "rfs-eqlv2-logit-adjust"] == [0]
    assert jobs[-1] == ("detectron2", "cascade-eqlv2", 0)
    assert not any(k.startswith("mmdet-") or k.startswith(("fcos", "atss")) for f, k, s in jobs)


def test_after_the_screen_the_best_three_get_three_seeds():
    summary = _summary(_screen("detectron2") + _screen("mmdet"))
    assert screened_best(summary, "detectron2") == ["rfs-eqlv2", "rfs-seesaw", "rfs"]
    assert len(screened_best(summary, "mmdet")) == BEST
    jobs = plan_jobs(summary, ["detectron2", "mmdet"])
    seeded = {(f, k) for f, k, s in jobs if s == 2 and not METHODS[k].calibrate}
    assert seeded == {
        *(("detectron2", k) for k in ("ce", "oracle", "rfs-eqlv2", "rfs-seesaw", "rfs")),
        *(
            ("mmdet", k)
            for k in (
                "ce",
                "oracle",
                "rfs-eqlv2",
                "rfs-seesaw",
                "rfs",
                "mmdet-seesaw",
                "mmdet-seesaw-normed",
                "mmdet-eqlv2",
            )
        ),
    }
    assert ("detectron2", "eqlv2", 1) not in jobs and ("detectron2", "rfs", 0) not in jobs
    assert [s for f, k, s in jobs if (f, k) == ("mmdet", "rfs-eqlv2-logit-adjust")] == list(SEEDS)
    # the detectron2 jobs come before MMDetection's
    frameworks = [f for f, k, s in jobs]
    assert frameworks == sorted(frameworks)


def test_a_finished_matrix_plans_nothing():
    summary = _summary([])
    while jobs := plan_jobs(summary, ["detectron2"]):
        framework, key, seed = jobs[0]
        summary["runs"].append(
            {"framework": framework, "method": key, "seed": seed, "metrics": {"APr": SCREENED.get(key, 1.0)}}
        )
    done = {(r["method"], r["seed"]) for r in summary["runs"]}
    assert {("rfs-eqlv2", 2), ("ce-norcal", 2), ("rfs-eqlv2-logit-adjust", 2), ("retinanet-efl", 0)} <= done
    assert ("eqlv2", 1) not in done


def test_bad_frameworks():
    with pytest.raises(ValueError, match=r"frameworks=\['caffe'\]; expected one or more of"):
        plan_jobs(_summary([]), ["caffe"])


def test_run_plan_runs_one_job_at_a_time_and_plans_again(tmp_path, monkeypatch):
    import dbbench.benchmark.plan as plan

    planned = []

    def two_jobs(summary, frameworks, regime):
        left = [j for j in [("detectron2", "ce", 0), ("detectron2", "ce", 1)] if j not in _done(summary)]
        planned.append(left)
        return left

    monkeypatch.setattr(plan, "plan_jobs", two_jobs)
    tuned = []
    monkeypatch.setattr(
        plan, "tune_rfs_threshold", lambda *a, **k: tuned.append(a[1]) or {"chosen": RFS_TUNED_THRESHOLD}
    )
    lines = []
    assert run_plan(tiny_settings(tmp_path), ["detectron2"], log=lines.append) == 2
    assert planned == [[("detectron2", "ce", 0), ("detectron2", "ce", 1)], [("detectron2", "ce", 1)], []]
    assert lines[-1] == "plan: nothing left to run (2 jobs run now)"
    assert tuned == [("detectron2", "mmdet")]  # the threshold is chosen over both frameworks first


def test_run_plan_refuses_a_table_that_does_not_name_the_validation_choice(tmp_path, monkeypatch):
    import dbbench.benchmark.plan as plan

    other = next(t for t in RFS_THRESHOLD_GRID if t != RFS_TUNED_THRESHOLD)
    monkeypatch.setattr(plan, "tune_rfs_threshold", lambda *a, **k: {"chosen": other})
    with pytest.raises(ValueError, match=f"chose repeat threshold {other:g}, the method table has"):
        run_plan(tiny_settings(tmp_path), ["detectron2"], log=lambda line: None)


def _done(summary):
    return {(r["framework"], r["method"], r["seed"]) for r in summary["runs"]}


def test_tool_plan_prints_jobs_and_run_refuses_plan_with_methods(repo_root, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("benchmark_tool", repo_root / "tools" / "benchmark.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["plan", "--frameworks", "detectron2", "--results", str(tmp_path / "none")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "detectron2 ce 0" and lines[-1] == "detectron2 cascade-eqlv2 0"
    assert tool.main(["run", "--plan", "--methods", "ce"]) == 2
    assert "expected one of them, and no --methods/--seeds" in capsys.readouterr().err
    assert tool.main(["run", "--plan", "--tune"]) == 2
    assert tool.main(["plan", "--frameworks", "caffe"]) == 2
