"""MMDetection's own SeesawLoss and EQLV2Loss rows: the mmdet runner builds the baseline model with MMDetection's
registered loss (its LVIS settings, num_classes = K) as the box classifier's loss, trains one step, saves the model
and predicts the test split; the rows exist only in MMDetection."""

import json

import pytest
import torch
from bench_helpers import TINY, tiny_settings

from dbbench.benchmark import get_method, pending
from dbbench.benchmark.runner import run_matrix
from dbbench.training import LOSS_SETTINGS, Schedule
from dbbench.training.run import RunSpec


def test_rows_run_in_mmdet_only():
    for key in ("mmdet-seesaw", "mmdet-eqlv2"):
        assert pending(get_method(key), "mmdet") is None
        assert "exists only in ('mmdet',)" in pending(get_method(key), "detectron2")


def test_runspec_refuses_mmdet_loss_elsewhere(tmp_path):
    common = dict(seed=0, data=None, schedule=Schedule(iters=1), weights_file=tmp_path, work_dir=tmp_path)
    with pytest.raises(ValueError, match="mmdet_loss='SeesawLoss' with framework='detectron2'"):
        RunSpec(framework="detectron2", loss=LOSS_SETTINGS["ce"], mmdet_loss="SeesawLoss", **common)
    with pytest.raises(ValueError, match="and loss 'seesaw'; expected framework='mmdet' and the baseline"):
        RunSpec(framework="mmdet", loss=LOSS_SETTINGS["seesaw"], mmdet_loss="SeesawLoss", **common)


@pytest.mark.slow
def test_mmdet_own_losses_train_a_step_and_predict(tmp_path):
    records = run_matrix(
        tiny_settings(tmp_path, iters=1), ["mmdet"], ["mmdet-seesaw", "mmdet-eqlv2"], [0], log=lambda line: None
    )
    assert [r["method"] for r in records] == ["mmdet-seesaw", "mmdet-eqlv2"]
    k = TINY.num_classes
    # SeesawLoss adds an objectness pair to the K class logits; EQLV2Loss keeps K + 1 (background last)
    for record, loss_type, channels in zip(records, ("SeesawLoss", "EQLV2Loss"), (k + 2, k + 1)):
        work = next((tmp_path / "work").rglob(f"mmdet/{record['method']}/seed0"))
        config = (work / "config.py").read_text()
        assert f"type='{loss_type}'" in config and "type='DBSeesawLoss'" not in config
        state = torch.load(work / "model_final.pth", weights_only=True)["state_dict"]
        assert state["roi_head.bbox_head.fc_cls.weight"].shape[0] == channels
        assert json.loads((work / "trained.json").read_text())["train"]["iterations"] == 1
        assert set(record["metrics"]) == {"AP", "APr", "APc", "APf"}
        assert record["num_detections"] == len(json.loads((work / "results.json").read_text()))
