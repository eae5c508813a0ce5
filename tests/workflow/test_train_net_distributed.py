"""tools/train_net.py --num-gpus 2 on a CPU-only machine, through detectron2's own ``launch`` (the path users take).

detectron2 main starts CPU ranks with gloo: two ranks train and write one checkpoint. detectron2 v0.6's launch
asserts CUDA for more than one process, so there train_net.py refuses up front, naming the reason, with exit
status 2. The run cannot hang: its process group (the tool and the ranks it spawned) is killed past the timeout.
"""

from __future__ import annotations

import importlib
import inspect

import pytest
import torch
from wf_helpers import REPO, TOOLS, assert_ok, run_tool

TRAIN_NET = TOOLS / "train_net.py"
TINY_YAML = REPO / "configs" / "detectron2" / "faster_rcnn_R_18_FPN_tiny_cpu.yaml"
# v0.6 and main both say version 0.6; main's launcher falls back to gloo without CUDA.
IS_V06 = "GLOO" not in inspect.getsource(importlib.import_module("detectron2.engine.launch")._distributed_worker)


def _args(coco_set, out):
    return [
        TRAIN_NET,
        "--config-file",
        TINY_YAML,
        "--num-gpus",
        "2",
        "--register-coco",
        "wfd_train",
        coco_set.train_json,
        coco_set.train_images,
        "INPUT.MIN_SIZE_TRAIN",
        "(64,)",
        "INPUT.MAX_SIZE_TRAIN",
        "64",
        "SOLVER.IMS_PER_BATCH",
        "2",
        "MODEL.ROI_HEADS.NUM_CLASSES",
        "4",
        "DATASETS.TRAIN",
        '("wfd_train",)',
        "DATASETS.TEST",
        "()",
        "DETBALANCE.LOSS",
        "SeesawLoss",
        "SOLVER.MAX_ITER",
        "2",
        "SEED",
        "0",
        "OUTPUT_DIR",
        out,
    ]


@pytest.mark.skipif(torch.cuda.is_available(), reason="pins the CPU-only behaviour")
@pytest.mark.skipif(IS_V06, reason="detectron2 v0.6's launch needs CUDA (see the test below)")
@pytest.mark.slow
def test_main_launch_trains_on_two_cpu_ranks(coco_set, tmp_path):
    out = tmp_path / "out"
    log = assert_ok(run_tool(_args(coco_set, out), cwd=tmp_path, timeout=240))
    assert "world size: 2" in log.lower() or "Rank of current process: 0" in log
    state = torch.load(out / "model_final.pth", map_location="cpu", weights_only=True)
    counts = state["model"]["roi_heads.box_predictor.cls_loss.cum_samples"]
    assert counts.sum() > 0  # the Seesaw class counts of both ranks' batches


@pytest.mark.skipif(torch.cuda.is_available(), reason="pins the CPU-only behaviour")
@pytest.mark.skipif(not IS_V06, reason="detectron2 main starts CPU ranks (see the test above)")
@pytest.mark.slow
def test_v06_refuses_cpu_ranks_up_front(coco_set, tmp_path):
    result = run_tool(_args(coco_set, tmp_path / "out"), cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "detectron2 v0.6's launch needs CUDA" in result.stderr
    assert not (tmp_path / "out").exists()
