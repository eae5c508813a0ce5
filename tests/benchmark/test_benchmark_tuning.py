"""The repeat threshold chosen on the validation split (dbbench.benchmark.tuning): the choice rule, the variant
rows, a real tuning run of tiny trainings (cached the second time), and the committed choice the table names."""

import json

import pytest
from bench_helpers import tiny_settings

from dbbench.benchmark import METHODS, get_method
from dbbench.benchmark.methods import (
    RFS_THRESHOLD,
    RFS_THRESHOLD_GRID,
    RFS_TUNED_BASE,
    RFS_TUNED_THRESHOLD,
    rfs_variant,
)
from dbbench.benchmark.render import runs_markdown
from dbbench.benchmark.summary import load_summary
from dbbench.benchmark.tuning import TUNING_SEED, choose_threshold, tune_rfs_threshold, tuning_path
from dbbench.data.longtail import LongTailSpec


def test_choose_threshold_is_the_best_mean_over_frameworks_ties_the_smaller():
    # detectron2 alone prefers 0.1, the mean prefers 0.03
    val = {"detectron2": {0.01: 10.0, 0.03: 11.0, 0.1: 12.0}, "mmdet": {0.01: 8.0, 0.03: 9.0, 0.1: 7.0}}
    assert choose_threshold(val) == 0.03
    assert choose_threshold({"detectron2": {0.1: 5.0, 0.01: 5.0, 0.03: 4.0}}) == 0.01


@pytest.mark.parametrize(
    "val,message",
    [
        ({}, "expected the same non-empty thresholds"),
        ({"detectron2": {}}, "expected the same non-empty thresholds"),
        ({"detectron2": {0.01: 1.0}, "mmdet": {0.03: 1.0}}, "expected the same non-empty thresholds"),
        ({"detectron2": {0.01: 1.0, 0.03: None}}, r"no number at \{'detectron2': \[0.03\]\}"),
        ({"detectron2": {0.01: float("nan")}}, "expected one at every candidate"),
    ],
)
def test_choose_threshold_refuses_mismatched_grids(val, message):
    with pytest.raises(ValueError, match=message):
        choose_threshold(val)


def test_rfs_variant_rows():
    base = get_method(RFS_TUNED_BASE)
    assert rfs_variant(base, RFS_THRESHOLD) is base
    variant = rfs_variant(base, 0.1)
    assert (variant.key, variant.rfs_threshold, variant.loss, variant.sampler) == (
        "rfs-eqlv2-t0.1",
        0.1,
        "eqlv2",
        "rfs",
    )
    assert variant.label == "RFS + EQLv2, repeat threshold 0.1"
    with pytest.raises(ValueError, match="base='ce'; expected a trained row with sampler 'rfs'"):
        rfs_variant(get_method("ce"), 0.1)
    with pytest.raises(ValueError, match="base='rfs-eqlv2-logit-adjust'; expected a trained row"):
        rfs_variant(get_method("rfs-eqlv2-logit-adjust"), 0.1)
    for bad in (0.0, 1.5, 1):
        with pytest.raises(ValueError, match=rf"threshold={bad!r}; expected a float in \(0, 1\]"):
            rfs_variant(base, bad)


def test_the_table_names_the_committed_choice(repo_root):
    tuned = rfs_variant(get_method(RFS_TUNED_BASE), RFS_TUNED_THRESHOLD)
    assert METHODS[tuned.key] == tuned
    record = json.loads(tuning_path(repo_root / "results").read_text(encoding="utf-8"))
    assert record["chosen"] == RFS_TUNED_THRESHOLD and record["row"] == tuned.key
    assert record["grid"] == list(RFS_THRESHOLD_GRID) and record["split"] == "val"
    assert record["base_threshold"] == RFS_THRESHOLD
    assert record["data_version"] == load_summary(repo_root / "results", LongTailSpec())["dataset"]["version"]
    # the choice is the rule's on the recorded validation metrics
    val = {fw: {float(t): m["APr"] for t, m in by_t.items()} for fw, by_t in record["val"].items()}
    assert sorted(val) == ["detectron2", "mmdet"] and choose_threshold(val) == record["chosen"]


@pytest.mark.slow
def test_tuning_trains_each_candidate_once_and_validates_it(tmp_path, monkeypatch):
    import dbbench.training.detectron2_runner as runner

    settings = tiny_settings(tmp_path)
    out = tune_rfs_threshold(settings, ["detectron2"], log=lambda line: None)
    assert out["grid"] == list(RFS_THRESHOLD_GRID) and out["seed"] == TUNING_SEED
    assert set(out["val"]["detectron2"]) == {f"{t:g}" for t in RFS_THRESHOLD_GRID}
    assert all(set(m) == {"AP", "APr", "APc", "APf"} for m in out["val"]["detectron2"].values())
    assert set(out["train_seconds"]["detectron2"]) == {f"{t:g}" for t in RFS_THRESHOLD_GRID}
    assert out["chosen"] in RFS_THRESHOLD_GRID and json.loads(tuning_path(settings.results_dir).read_text()) == out
    work = next((tmp_path / "work").glob("*/detectron2"))
    for t in RFS_THRESHOLD_GRID:
        seed_dir = work / rfs_variant(get_method(RFS_TUNED_BASE), t).key / f"seed{TUNING_SEED}"
        assert f"REPEAT_THRESHOLD: {t}" in (seed_dir / "config.yaml").read_text()
        assert (seed_dir / "val_results.json").is_file() and (seed_dir / "model_final.pth").is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("a tuned candidate was trained again")

    monkeypatch.setattr(runner, "train_and_predict", no_training)
    assert tune_rfs_threshold(settings, ["detectron2"], log=lambda line: None) == out


def test_the_runs_list_counts_the_trainings_only_the_tuning_made():
    tuning = {
        "base_threshold": 0.01,
        "chosen": 0.1,
        "train_seconds": {"detectron2": {"0.01": 600, "0.03": 360, "0.1": 300}},
    }
    summary = {"runs": [], "tuning": {"rfs_threshold": tuning}}
    assert runs_markdown(summary).splitlines()[-1] == (
        "Choosing the repeat threshold on the validation split trained 1 more model (detectron2 0.03): 6 min; "
        "6 min with them."
    )
    tuning["train_seconds"]["detectron2"].pop("0.03")
    assert runs_markdown(summary).splitlines()[-1].endswith("trained no model besides the matrix's runs.")
