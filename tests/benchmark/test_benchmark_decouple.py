"""The decoupled rows of the matrix (cRT, BAGS): stage 2 re-trains only the classifier of the CE row's saved model
(trained first where missing, never twice), for a fraction of the schedule; its record states stage 2's time and
stage 1's apart."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from bench_helpers import tiny_settings

from dbbench.benchmark import get_method, pending
from dbbench.benchmark.methods import DECOUPLE_FRACTION, Method, decouple_schedule
from dbbench.benchmark.runner import run_matrix
from dbbench.benchmark.runs import prepare_version, run_definition, run_spec
from dbbench.training import Schedule


def test_decoupled_rows_name_their_stage1_and_wait_for_it():
    for key in ("crt", "crt-eqlv2", "bags"):
        row = get_method(key)
        assert row.decouple == "classifier" and row.base == "ce" and row.calibrate is None
    assert get_method("crt").sampler == "rfs" and get_method("bags").sampler is None
    assert pending(get_method("crt"), "mmdet", "pretrained") is None
    with pytest.raises(ValueError, match="decouple='classifier' with base=None"):
        Method("x", "x", decouple="classifier")


def test_stage2_schedule_is_a_fraction_of_the_regimes():
    stage2 = decouple_schedule(Schedule(iters=1000))
    assert stage2.iters == round(DECOUPLE_FRACTION * 1000) and stage2.base_lr == Schedule().base_lr
    assert stage2.warmup_iters <= stage2.iters // 4
    assert decouple_schedule(Schedule(iters=2)).iters == 1


def test_definition_follows_stage1(tmp_path):
    settings = tiny_settings(tmp_path)
    weights = tmp_path / "w.json"
    crt = get_method("crt")
    longer = dataclasses.replace(settings, schedule=Schedule(iters=5, warmup_iters=1))
    assert run_definition(crt, settings, weights) != run_definition(crt, longer, weights)


#: the box classifier's parameter prefix in each framework's state dict
CLASSIFIER = {"detectron2": "roi_heads.box_predictor.cls_score", "mmdet": "roi_head.bbox_head.fc_cls"}


def _stage_weights(settings, framework: str, row: str) -> tuple[dict, dict, int]:
    """The saved weights of the CE model (stage 1) and of row ``row``'s stage 2, and the data's class count."""
    dataset, weights = prepare_version(settings)
    key = "model" if framework == "detectron2" else "state_dict"
    before, after = (
        torch.load(
            run_spec(settings, dataset, weights, framework, get_method(m), 0).checkpoint,
            map_location="cpu",
            weights_only=True,
        )[key]
        for m in ("ce", row)
    )
    return before, after, len(dataset.categories)


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["detectron2", "mmdet"])
def test_crt_trains_only_the_classifier_of_the_saved_ce_model(framework, tmp_path):
    settings = tiny_settings(tmp_path, iters=4)
    log = []
    records = run_matrix(settings, [framework], ["crt"], [0], log=log.append)
    assert [r["method"] for r in records] == ["ce", "crt"]  # the CE model first: none was saved yet
    record = records[1]
    assert (
        record["decouple"]["base"] == "ce" and record["decouple"]["iters"] == decouple_schedule(settings.schedule).iters
    )
    assert record["decouple"]["stage1_seconds"] == records[0]["seconds"]
    # the test prediction's share of each stage's time, so that training alone can be compared
    stage1_predict = records[0]["train"]["predict_seconds"]
    assert record["decouple"]["stage1_predict_seconds"] == stage1_predict and 0 < stage1_predict < records[0]["seconds"]
    assert 0 < record["train"]["predict_seconds"] < record["seconds"]
    before, after, _ = _stage_weights(settings, framework, "crt")
    # Detectron2's frozen BatchNorm keeps no num_batches_tracked; every other entry is in both
    assert all(k.endswith("num_batches_tracked") for k in set(before) - set(after)) and set(after) <= set(before)
    changed = sorted(k for k in after if not torch.equal(before[k], after[k]))
    classifier = CLASSIFIER[framework]
    assert changed == [f"{classifier}.bias", f"{classifier}.weight"]
    log.clear()
    assert run_matrix(settings, [framework], ["crt"], [0], log=log.append) == []  # cached, stage 1 not retrained


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["detectron2", "mmdet"])
def test_crt_with_seesaw_puts_a_normed_classifier_of_k_plus_2_outputs_on_the_ce_model(framework, tmp_path):
    """Stage 2 may change the classifier's layer and width: CE's ``[K + 1]`` linear classifier of the pretrained
    CE model becomes Seesaw's ``[K + 2]`` normalised linear one, trained alone; the rest is the CE model's."""
    settings = dataclasses.replace(tiny_settings(tmp_path, iters=4), regime="pretrained")
    records = run_matrix(settings, [framework], ["crt-seesaw-normed"], [0], log=lambda _: None)
    assert [r["method"] for r in records] == ["ce", "crt-seesaw-normed"]
    assert records[1]["decouple"]["base"] == "ce" and records[1]["num_detections"] > 0
    before, after, k = _stage_weights(settings, framework, "crt-seesaw-normed")
    classifier = CLASSIFIER[framework]
    assert before[f"{classifier}.weight"].shape[0] == k + 1 and after[f"{classifier}.weight"].shape[0] == k + 2
    unchanged = [n for n in after if n in before and not n.startswith(classifier) and "cls_loss" not in n]
    assert unchanged and all(torch.equal(before[n], after[n]) for n in unchanged)
