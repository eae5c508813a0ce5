"""Repeat-factor sampling rows of the matrix run in both frameworks: each runner trains with its framework's
repeat-factor sampler at the row's threshold (detectron2's RepeatFactorTrainingSampler, MMDetection's
DBRepeatFactorSampler), saves its model and is recorded."""

import json

import pytest
import torch
from bench_helpers import tiny_settings

from dbbench.benchmark import get_method, pending
from dbbench.benchmark.methods import RFS_THRESHOLD
from dbbench.benchmark.runner import run_matrix


def test_rfs_rows_are_runnable():
    for key in ("rfs", "rfs-seesaw", "rfs-eqlv2"):
        for framework in ("detectron2", "mmdet"):
            assert pending(get_method(key), framework) is None


@pytest.mark.slow
def test_rfs_trains_with_each_frameworks_sampler(tmp_path):
    records = run_matrix(tiny_settings(tmp_path), ["detectron2", "mmdet"], ["rfs"], [0], log=lambda line: None)
    assert [(r["framework"], r["method"]) for r in records] == [("detectron2", "rfs"), ("mmdet", "rfs")]
    work = {r["framework"]: next((tmp_path / "work").rglob(f"{r['framework']}/rfs/seed0")) for r in records}
    d2_config = (work["detectron2"] / "config.yaml").read_text()
    assert "SAMPLER_TRAIN: RepeatFactorTrainingSampler" in d2_config
    assert f"REPEAT_THRESHOLD: {RFS_THRESHOLD}" in d2_config
    mm_config = (work["mmdet"] / "config.py").read_text()
    assert "type='DBRepeatFactorSampler'" in mm_config and f"threshold={RFS_THRESHOLD}" in mm_config
    assert "model" in torch.load(work["detectron2"] / "model_final.pth", weights_only=True)
    assert "state_dict" in torch.load(work["mmdet"] / "model_final.pth", weights_only=True)
    for r in records:
        assert json.loads((work[r["framework"]] / "trained.json").read_text())["train"]["iterations"] == 2


@pytest.mark.parametrize(
    "sampler,threshold,message",
    [
        ("rfs", None, "rfs_threshold=None; expected a number > 0 with sampler='rfs'"),
        ("rfs", 0.0, "rfs_threshold=0.0; expected a number > 0"),
        (None, 0.01, "rfs_threshold=0.01 given with sampler=None"),
        ("balanced", None, "sampler='balanced'; expected one of"),
    ],
)
def test_runspec_sampler_settings_are_checked(tmp_path, sampler, threshold, message):
    from dbbench.training import LOSS_SETTINGS, Schedule
    from dbbench.training.run import RunSpec

    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunSpec(
            framework="detectron2",
            loss=LOSS_SETTINGS["ce"],
            seed=0,
            data=None,
            schedule=Schedule(iters=1),
            weights_file=tmp_path,
            work_dir=tmp_path,
            sampler=sampler,
            rfs_threshold=threshold,
        )
