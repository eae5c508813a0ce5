"""tools/train.py and tools/test.py as an MMDetection user runs them: a user config on the tiny configs, training,
--resume continuing the loss state bit-exactly (iteration- and epoch-based loops), the per-class report of the
test tool, and bad input (exit status 2, nothing written)."""

from __future__ import annotations

import shutil

import pytest
import torch
from wf_helpers import REPO, TOOLS, assert_ok, run_tool

TRAIN = TOOLS / "train.py"
TEST = TOOLS / "test.py"
TINY_DIR = REPO / "configs" / "mmdet" / "tiny"
LOSS_CONFIGS = {"SeesawLoss": "faster-rcnn_r18_fpn_tiny_seesaw.py", "EQLv2Loss": "faster-rcnn_r18_fpn_tiny_eqlv2.py"}


def user_config(path, coco_set, loss: str, *, loop: str, train_ann: str = "train.json") -> str:
    """A config as a user writes it: the tiny config of ``loss`` pointed at the workflow data set."""
    schedule = (
        "train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=4, val_interval=1000)\n"
        "default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2), logger=dict(interval=1))\n"
        "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)]\n"
        if loop == "iter"
        else "train_cfg = dict(max_epochs=4, val_interval=1000)\n"
        "default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))\n"
        "param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)]\n"
    )
    sampler = ", sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True)" if loop == "iter" else ""
    path.write_text(
        f"""_base_ = '{TINY_DIR / LOSS_CONFIGS[loss]}'
data_root = '{coco_set.root}/'
metainfo = dict(classes=('circle', 'square', 'triangle', 'cross'))
model = dict(roi_head=dict(bbox_head=dict(num_classes=4, loss_cls=dict(num_classes=4))))
train_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root, ann_file='{train_ann}',
                        data_prefix=dict(img='train/'), metainfo=metainfo){sampler})
val_dataloader = dict(batch_size=2, dataset=dict(data_root=data_root, ann_file='test.json',
                      data_prefix=dict(img='test/'), metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'test.json')
test_evaluator = val_evaluator
randomness = dict(seed=0)
"""
        + schedule,
        encoding="utf-8",
    )
    return str(path)


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


@pytest.mark.slow
@pytest.mark.parametrize("loss, loop", [("SeesawLoss", "iter"), ("EQLv2Loss", "epoch")])
def test_resume_continues_the_loss_state_exactly(loss, loop, coco_set, one_image_json, tmp_path):
    """4 iterations (epochs) in one go == 2, then --resume to 4; random flips on, proposals sampled."""
    config = user_config(
        tmp_path / "cfg.py",
        coco_set,
        loss,
        loop=loop,
        train_ann="train.json" if loop == "iter" else one_image_json.name,
    )
    unit = "iter" if loop == "iter" else "epoch"
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert_ok(run_tool([TRAIN, config, "--work-dir", whole], cwd=tmp_path))
    resumed.mkdir()
    shutil.copy(whole / f"{unit}_2.pth", resumed / f"{unit}_2.pth")  # what an interrupted run leaves
    log = assert_ok(
        run_tool([TRAIN, config, "--work-dir", resumed, "--resume", resumed / f"{unit}_2.pth"], cwd=tmp_path)
    )
    assert "resumed" in log.lower()
    want, got, half = (
        _state(whole / f"{unit}_4.pth"),
        _state(resumed / f"{unit}_4.pth"),
        _state(whole / f"{unit}_2.pth"),
    )
    buffers = [k for k in want if k.startswith("roi_head.bbox_head.loss_cls.")]
    assert buffers and any(not torch.equal(half[k], want[k]) for k in buffers)
    for key, value in want.items():
        assert torch.equal(got[key], value), key


@pytest.mark.slow
def test_train_then_test_prints_the_per_class_report(coco_set, tmp_path):
    config = user_config(tmp_path / "cfg.py", coco_set, "SeesawLoss", loop="iter")
    work = tmp_path / "work"
    assert_ok(
        run_tool(
            [
                TRAIN,
                config,
                "--work-dir",
                work,
                "--cfg-options",
                "train_cfg.max_iters=2",
                "default_hooks.checkpoint.interval=2",
            ],
            cwd=tmp_path,
        )
    )
    log = assert_ok(
        run_tool([TEST, config, work / "iter_2.pth", "--work-dir", work, "--out", work / "dets.json"], cwd=tmp_path)
    )
    assert "coco/bbox_mAP" in log and "Per-class report" in log and "APr" in log
    report = log.split("Per-class report")[1]
    assert all(name in report for name in ("circle", "square", "triangle", "cross"))
    assert (work / "dets.json").is_file()


@pytest.mark.parametrize(
    "case, expected",
    [
        ("unknown_key", "'trian_cfg' is not a key of the config"),
        ("num_classes", "num_classes=8"),
        ("missing_config", "does not exist"),
    ],
)
def test_bad_input_exits_2_naming_it_and_writes_nothing(case, expected, coco_set, tmp_path, capsys, monkeypatch):
    from detbalance.mmdet.cli import train_main

    # the tool sets these for its own process; restored here so that they do not leak into other tests
    monkeypatch.setenv("PYTHONWARNINGS", "")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "0")
    config = user_config(tmp_path / "cfg.py", coco_set, "SeesawLoss", loop="iter")
    work = tmp_path / "work"
    args = [config, "--work-dir", str(work)]
    if case == "unknown_key":
        args += ["--cfg-options", "trian_cfg.max_iters=2"]
    elif case == "num_classes":
        args += ["--cfg-options", "model.roi_head.bbox_head.loss_cls.num_classes=8"]
    else:
        args[0] = str(tmp_path / "nope.py")
    assert train_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("train.py: error:") and expected in err, err
    assert not work.exists()
