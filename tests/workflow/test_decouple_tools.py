"""Decoupled classifier re-training (cRT) as users run it: ``tools/train_net.py --decouple`` and ``tools/train.py
--decouple`` re-train only the box classifier of a trained model (everything else, BatchNorm statistics included,
stays exactly as trained), with a balanced sampler and another loss; a missing checkpoint or one of another number
of classes exits 2 and writes nothing."""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch
from test_mmdet_tools import TRAIN as MMDET_TRAIN
from test_mmdet_tools import user_config
from test_train_net import SMALL, TINY_YAML, TRAIN_NET, _register
from wf_helpers import assert_ok, run_tool


def _d2(coco_set, out, *extra, decouple=None):
    return [
        TRAIN_NET,
        *(["--decouple", decouple] if decouple is not None else []),  # options before the trailing KEY VALUE pairs
        "--config-file",
        TINY_YAML,
        *_register(coco_set),
        *SMALL,
        "DATASETS.TRAIN",
        '("wf_train",)',
        "DATASETS.TEST",
        "()",
        "OUTPUT_DIR",
        out,
        *extra,
    ]


@pytest.mark.slow
def test_detectron2_decouple_retrains_only_the_classifier(coco_set, tmp_path):
    stage1, stage2 = tmp_path / "ce", tmp_path / "crt"
    plain = ["MODEL.ROI_HEADS.NAME", "StandardROIHeads", "SOLVER.MAX_ITER", "3"]  # detectron2's own CE model
    assert_ok(run_tool(_d2(coco_set, stage1, *plain), cwd=tmp_path))
    checkpoint = stage1 / "model_final.pth"
    log = assert_ok(
        run_tool(
            _d2(
                coco_set,
                stage2,
                "SOLVER.MAX_ITER",
                "3",
                "DETBALANCE.LOSS",
                "EQLv2Loss",  # stage 2 with another loss (and head) than stage 1's
                "DATALOADER.SAMPLER_TRAIN",
                "RepeatFactorTrainingSampler",
                "DATALOADER.REPEAT_THRESHOLD",
                "0.1",
                decouple=checkpoint,
            ),
            cwd=tmp_path,
        )
    )
    assert "RepeatFactorTrainingSampler" in log or "Using training sampler" in log
    before = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    after = torch.load(stage2 / "model_final.pth", map_location="cpu", weights_only=True)["model"]
    changed = sorted(k for k in before if k in after and not torch.equal(before[k], after[k]))
    assert changed == ["roi_heads.box_predictor.cls_score.bias", "roi_heads.box_predictor.cls_score.weight"]
    assert any("running_mean" in k for k in before)  # BatchNorm statistics exist and stayed as trained


@pytest.fixture(scope="module")
def train_net():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONWARNINGS", os.environ.get("PYTHONWARNINGS", ""))
        spec = importlib.util.spec_from_file_location("train_net_tool_decouple", TRAIN_NET)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


def _classes_checkpoint(path, num_classes: int, key: str, wrap: str):
    torch.save({wrap: {key: torch.zeros(4 * num_classes, 16)}}, path)
    return path


@pytest.mark.parametrize("case", ["missing", "other_classes"])
def test_detectron2_bad_stage1_checkpoint_exits_2(case, train_net, coco_set, tmp_path, capsys):
    out = tmp_path / "out"
    path = tmp_path / "nope.pth"
    if case == "other_classes":
        path = _classes_checkpoint(tmp_path / "k8.pth", 8, "roi_heads.box_predictor.bbox_pred.weight", "model")
    args = [str(a) for a in _d2(coco_set, out, decouple=path)[1:]]
    rc = train_net.cli([a.replace("wf_train", f"wf_dc_{case}") for a in args])
    err = capsys.readouterr().err
    expected = "does not exist" if case == "missing" else "has 8 classes"
    assert rc == 2 and expected in err and "MODEL.ROI_HEADS.NUM_CLASSES=4" * (case != "missing") in err, err
    assert not out.exists()


@pytest.mark.slow
def test_mmdet_decouple_retrains_only_the_classifier(coco_set, tmp_path):
    stage1 = tmp_path / "ce"
    config = user_config(tmp_path / "cfg.py", coco_set, "SeesawLoss", loop="iter")
    assert_ok(
        run_tool(
            [
                MMDET_TRAIN,
                config,
                "--work-dir",
                stage1,
                "--cfg-options",
                "train_cfg.max_iters=2",
                "default_hooks.checkpoint.interval=2",
            ],
            cwd=tmp_path,
        )
    )
    checkpoint = stage1 / "iter_2.pth"
    stage2 = tmp_path / "crt"
    assert_ok(
        run_tool(
            [
                MMDET_TRAIN,
                config,
                "--work-dir",
                stage2,
                "--decouple",
                checkpoint,
                "--cfg-options",
                "train_cfg.max_iters=2",
                "default_hooks.checkpoint.interval=2",
            ],
            cwd=tmp_path,
        )
    )
    before = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    after = torch.load(stage2 / "iter_2.pth", map_location="cpu", weights_only=False)["state_dict"]
    changed = sorted(k for k in before if k in after and not torch.equal(before[k], after[k]))
    # the classifier, and the state Seesaw's loss accumulates while it trains; every other weight and statistic
    assert changed == [
        "roi_head.bbox_head.fc_cls.bias",
        "roi_head.bbox_head.fc_cls.weight",
        "roi_head.bbox_head.loss_cls.core.cum_samples",
    ], changed


@pytest.mark.parametrize("case", ["missing", "other_classes"])
def test_mmdet_bad_stage1_checkpoint_exits_2(case, coco_set, tmp_path, capsys, monkeypatch):
    from detbalance.mmdet.cli import train_main

    monkeypatch.setenv("PYTHONWARNINGS", "")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "0")
    config = user_config(tmp_path / "cfg.py", coco_set, "SeesawLoss", loop="iter")
    path = tmp_path / "nope.pth"
    if case == "other_classes":
        path = _classes_checkpoint(tmp_path / "k8.pth", 8, "roi_head.bbox_head.fc_reg.weight", "state_dict")
    work = tmp_path / "work"
    assert train_main([config, "--work-dir", str(work), "--decouple", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("train.py: error: --decouple:"), err
    assert ("does not exist" if case == "missing" else "has 8 classes") in err
    assert not work.exists()
