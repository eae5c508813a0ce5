"""Post-hoc calibration rows end to end at a tiny size, in both frameworks, through run_matrix: the base model is
trained and saved, the row chooses gamma from the grid on the validation split, stores the validation curve, and
predicts the test split through the framework's calibration config; the checkpoint reloads to the base's own
detections, and a calibrated prediction differs from them."""

import hashlib
import json

import pytest
from bench_helpers import tiny_settings

from dbbench.benchmark import get_method
from dbbench.benchmark.methods import GAMMA_GRID, METHODS, calibrated, calibration_method, definition_hash
from dbbench.benchmark.runner import run_matrix
from dbbench.benchmark.runs import run_definition, run_spec
from dbbench.benchmark.summary import record_path
from dbbench.data.longtail import get_longtail_dataset
from dbbench.training import LOSS_SETTINGS
from dbbench.training.runners import get_runner
from detbalance.evaluation.lvis_protocol import evaluate_large_vocabulary
from helpers import write_weights_file


def _detections(results):
    return sorted(
        (d["image_id"], d["category_id"], round(d["score"], 5), tuple(round(v, 2) for v in d["bbox"])) for d in results
    )


def _check_row(tmp_path, settings, framework, key):
    records = run_matrix(settings, [framework], [key], [0], log=lambda line: None)
    method = get_method(key)
    # a fresh matrix: the base trains (and is recorded) first, then the row calibrates its saved model
    assert [r["method"] for r in records] == [method.base, key]
    record = records[1]
    cal = record["calibration"]
    assert cal["method"] == method.calibrate and cal["base"] == method.base and cal["fit_split"] == "val"
    assert cal["gamma"] in GAMMA_GRID and cal["grid"] == list(GAMMA_GRID)
    assert set(cal["val_curve"]) == {f"{g:g}" for g in GAMMA_GRID}
    finite = {g: v for g, v in cal["val_curve"].items() if v is not None}
    if finite:  # the chosen gamma reaches the best validation APr (ties: the smaller gamma)
        assert cal["val_curve"][f"{cal['gamma']:g}"] == max(finite.values())
    summary = json.loads((settings.results_dir / "summary.json").read_text())
    assert [r.get("calibration") for r in summary["runs"] if r["method"] == key] == [cal]

    dataset = get_longtail_dataset(settings.spec, cache_dir=settings.cache_dir)
    version = settings.work_dir / dataset.version
    base = get_method(method.base)
    base_spec = run_spec(settings, dataset, version / "weights.json", framework, base, 0)
    assert base_spec.checkpoint.is_file()
    base_results = json.loads(base_spec.results_json.read_text())
    row_results = json.loads((version / framework / key / "seed0" / "results.json").read_text())
    if cal["gamma"] == 0:
        assert _detections(row_results) == _detections(base_results)
    else:
        assert _detections(row_results) != _detections(base_results)
    runner = get_runner(framework)
    test_json, test_images = dataset.split("test")
    assert _detections(runner.predict(base_spec, test_json, test_images)) == _detections(base_results)
    calibrated_at_1 = runner.predict(base_spec, test_json, test_images, calibration=(method.calibrate, 1.0))
    assert _detections(calibrated_at_1) != _detections(base_results)
    return record, base_spec


@pytest.mark.slow
def test_detectron2_ce_norcal_then_a_missing_base_checkpoint_is_retrained(tmp_path):
    settings = tiny_settings(tmp_path, iters=3)
    record, base_spec = _check_row(tmp_path, settings, "detectron2", "ce-norcal")
    base_spec.checkpoint.unlink()  # a base run made before the runners saved checkpoints
    for path in (settings.results_dir / "runs").rglob("*ce-norcal*"):
        path.unlink()
    (base_spec.work_dir.parent.parent / "ce-norcal" / "seed0" / "calibrated.json").unlink()
    base_record = record_path(settings.results_dir, record["data_version"], "detectron2", "ce", 0)
    stale = json.loads(base_record.read_text())
    stale["metrics"]["APr"] = -1.0  # numbers of an earlier training of the base: replaced, not kept
    base_record.write_text(json.dumps(stale))
    lines = []
    again = run_matrix(settings, ["detectron2"], ["ce-norcal"], [0], log=lines.append)
    assert base_spec.checkpoint.is_file()
    assert [r["method"] for r in again] == ["ce", "ce-norcal"] and again[1]["calibration"]["grid"] == list(GAMMA_GRID)
    assert "base ce (no saved model)" in lines[0]
    rewritten = json.loads(base_record.read_text())
    assert rewritten["metrics"]["APr"] != -1.0 and rewritten["seconds"] == again[0]["seconds"]
    # the record is the evaluation of the base's detections on disk, the ones the calibration row started from
    dataset = get_longtail_dataset(settings.spec, cache_dir=settings.cache_dir)
    test_gt = json.loads(dataset.split("test")[0].read_text())
    views = evaluate_large_vocabulary(
        test_gt, json.loads(base_spec.results_json.read_text()), [c["frequency"] for c in dataset.categories]
    )
    expected = {k: views["lvis"][k] for k in ("AP", "APr", "APc", "APf")}
    assert json.dumps(rewritten["metrics"], sort_keys=True) == json.dumps(expected, sort_keys=True)  # NaN-safe


@pytest.mark.slow
def test_mmdet_seesaw_logit_adjust(tmp_path):
    _check_row(tmp_path, tiny_settings(tmp_path, iters=3), "mmdet", "seesaw-logit-adjust")


def test_calibration_rows_and_hashes(tmp_path):
    assert calibration_method(get_method("ce")) == "norcal"
    assert calibration_method(get_method("wce")) == "norcal"
    for key in ("seesaw", "eqlv2", "cbfocal", "federated"):
        assert calibration_method(get_method(key)) == "logit_adjust"
    assert calibrated(get_method("seesaw")) == get_method("seesaw-logit-adjust")
    assert calibrated(get_method("ce"), "ce-norcal").calibrate == get_method("ce-norcal").calibrate
    with pytest.raises(ValueError, match="base='mmdet-seesaw'"):
        calibrated(get_method("mmdet-seesaw"))
    # rows measured before calibration rows ran keep their definition: the hash of the same ten fields
    settings = tiny_settings(tmp_path)
    weights = write_weights_file(tmp_path / "weights.json")
    fields = (
        "key",
        "label",
        "loss",
        "train_split",
        "sampler",
        "rfs_threshold",
        "frameworks",
        "mmdet_loss",
        "calibrate",
        "base",
    )
    for key in ("ce", "seesaw", "rfs"):
        m = METHODS[key]
        row = {f: getattr(m, f) for f in fields}
        extra = {"schedule": vars(settings.schedule), "loss": vars(LOSS_SETTINGS[m.loss]), "protocol": [300, 1e-4]}
        text = json.dumps({"method": row, **extra}, sort_keys=True, default=str)
        assert run_definition(m, settings, weights) == hashlib.sha256(text.encode()).hexdigest()[:12]
    assert run_definition(METHODS["ce-norcal"], settings, weights) != definition_hash(METHODS["ce-norcal"], {})


def test_a_run_trained_with_other_class_weights_is_stale(tmp_path):
    # weighted CE reads the weights file's class weights: other weights, another definition; the losses that
    # read only the file's statistics (Seesaw: none) keep theirs
    settings = tiny_settings(tmp_path)
    one = write_weights_file(tmp_path / "one.json", background_weight=1.0)
    other = write_weights_file(tmp_path / "other.json", background_weight=0.5)
    assert run_definition(METHODS["wce"], settings, one) != run_definition(METHODS["wce"], settings, other)
    assert run_definition(METHODS["seesaw"], settings, one) == run_definition(METHODS["seesaw"], settings, other)


def _record(method, seed, apr, gamma=None, ap=5.0, ece=0.1, val=None):
    record = {
        "framework": "mmdet",
        "method": method,
        "seed": seed,
        "data_version": None,
        "metrics": {"AP": ap, "APr": apr, "APc": 4.0, "APf": 6.0},
        "AP50": 9.0,
        "cap100": {"AP": ap, "APr": apr},
        "ap_fixed": {"AP": ap, "APr": apr, "k": 1},
        "ap_pool": 5.0,
        "ece": {"all": ece, "r": 0.1, "c": 0.1, "f": 0.1},
        "seconds": 1.0,
        "machine": {},
    }
    if gamma is not None:
        record["calibration"] = {"method": "norcal", "base": "ce", "gamma": gamma, "val_curve": val}
    return record


def test_calibration_effect_table_pairs_each_seed_with_its_base():
    from bench_helpers import TINY

    from dbbench.benchmark.render import calibration_markdown
    from dbbench.benchmark.summary import build_summary
    from dbbench.data.longtail import data_version

    records = [
        _record("ce", 0, 1.0, ece=2.0),
        _record("ce", 1, 2.0, ece=4.0),
        _record("ce", 2, 9.0),  # no calibrated run of seed 2: left out of the pairs
        _record("ce-norcal", 0, 2.5, 0.5, ap=6.0, ece=1.0, val={"0": 3.0, "0.5": 4.0}),
        _record("ce-norcal", 1, 4.5, 0.25, ap=5.0, ece=3.0, val={"0": 5.0, "0.25": 7.0}),
    ]
    for r in records:
        r["data_version"] = data_version(TINY)
    text = calibration_markdown(build_summary(records, TINY))
    # val APr 3, 5 -> 4, 7; test APr 1, 2 -> 2.5, 4.5 (deltas 1.5, 2.5); AP deltas 1, 0; ECE 2, 4 -> 1, 3
    assert (
        "| CE + post-hoc calibration | 0,1 | 0.5, 0.25 | 4.0 ± 1.4 → 5.5 ± 2.1 | 1.5 ± 0.7 → 3.5 ± 1.4 | "
        "2.0 ± 0.7 | 0.5 ± 0.7 | 0.0 ± 0.0 | 2.0 ± 0.7 | 3.0 ± 1.4 → 2.0 ± 1.4 |" in text
    )
    assert text.startswith("**mmdet** (test split")
    assert "no calibration row" not in text.lower()
    empty = calibration_markdown(build_summary(records[:3], TINY))
    assert empty.startswith("No calibration row has been measured yet")


def test_results_table_names_the_chosen_gammas():
    from bench_helpers import TINY

    from dbbench.benchmark.render import results_markdown
    from dbbench.benchmark.summary import build_summary

    def run(method, seed, apr, gamma=None):
        record = {
            "framework": "mmdet",
            "method": method,
            "seed": seed,
            "data_version": None,
            "metrics": {"AP": 5.0, "APr": apr, "APc": 4.0, "APf": 6.0},
            "AP50": 9.0,
            "cap100": {"AP": 5.0, "APr": apr},
            "ap_fixed": {"AP": 5.0, "APr": apr, "k": 1},
            "ap_pool": 5.0,
            "ece": {"all": 0.1, "r": 0.1, "c": 0.1, "f": 0.1},
            "seconds": 1.0,
            "machine": {},
        }
        if gamma is not None:
            record["calibration"] = {"method": "norcal", "base": "ce", "gamma": gamma}
        return record

    from dbbench.data.longtail import data_version

    records = [run("ce", 0, 1.0), run("ce", 1, 2.0), run("ce-norcal", 0, 2.5, 0.5), run("ce-norcal", 1, 2.0, 0.0)]
    for r in records:
        r["data_version"] = data_version(TINY)
    text = results_markdown(build_summary(records, TINY))
    assert "| CE + post-hoc calibration (γ on val: 0.5, 0) | 0,1 | **2.2 ± 0.4** |" in text
    assert "| softmax CE (framework default) | 0,1 |" in text
