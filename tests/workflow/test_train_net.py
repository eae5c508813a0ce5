"""tools/train_net.py as a Detectron2 user runs it: train + evaluate with the per-class report, --eval-only,
--resume (bit-exact loss state), LazyConfig, and bad input (exit status 2, nothing written)."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest
import torch
from wf_helpers import REPO, TOOLS, assert_ok, run_tool

TRAIN_NET = TOOLS / "train_net.py"
TINY_YAML = REPO / "configs" / "detectron2" / "faster_rcnn_R_18_FPN_tiny_cpu.yaml"
LAZY = REPO / "configs" / "detectron2" / "lazy_faster_rcnn_R_50_FPN_1x_seesaw.py"
SMALL = [
    "INPUT.MIN_SIZE_TRAIN",
    "(64,)",
    "INPUT.MAX_SIZE_TRAIN",
    "64",
    "INPUT.MIN_SIZE_TEST",
    "64",
    "INPUT.MAX_SIZE_TEST",
    "64",
    "SOLVER.IMS_PER_BATCH",
    "1",
    "SEED",
    "0",
    "MODEL.ROI_HEADS.NUM_CLASSES",
    "4",
]


def _register(coco_set, train_json=None):
    return [
        "--register-coco",
        "wf_train",
        train_json or coco_set.train_json,
        coco_set.train_images,
        "--register-coco",
        "wf_test",
        coco_set.test_json,
        coco_set.test_images,
    ]


@pytest.mark.slow
def test_train_evaluate_and_eval_only_print_the_per_class_report(coco_set, tmp_path):
    out = tmp_path / "seesaw"
    log = assert_ok(
        run_tool(
            [
                TRAIN_NET,
                "--config-file",
                TINY_YAML,
                *_register(coco_set),
                *SMALL,
                "DATASETS.TRAIN",
                '("wf_train",)',
                "DATASETS.TEST",
                '("wf_test",)',
                "DETBALANCE.LOSS",
                "SeesawLoss",
                "SOLVER.MAX_ITER",
                "3",
                "OUTPUT_DIR",
                out,
            ],
            cwd=tmp_path,
        )
    )
    assert (out / "model_final.pth").is_file() and (out / "config.yaml").is_file()
    assert (out / "inference" / "wf_test" / "coco_instances_results.json").is_file()
    assert "Per-class report of wf_test" in log and "APr" in log and "APf" in log
    for name in ("circle", "square", "triangle", "cross"):
        assert name in log.split("Per-class report of wf_test")[1]
    log = assert_ok(
        run_tool(
            [
                TRAIN_NET,
                "--config-file",
                TINY_YAML,
                "--eval-only",
                *_register(coco_set),
                *SMALL,
                "DATASETS.TEST",
                '("wf_test",)',
                "DETBALANCE.LOSS",
                "SeesawLoss",
                "MODEL.WEIGHTS",
                out / "model_final.pth",
                "OUTPUT_DIR",
                tmp_path / "eval",
            ],
            cwd=tmp_path,
        )
    )
    assert "Per-class report of wf_test" in log and "APr" in log
    assert not (tmp_path / "eval" / "model_final.pth").exists()


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["EQLv2Loss", "SeesawLoss"])
def test_resume_continues_the_loss_state_exactly(loss, coco_set, one_image_json, tmp_path):
    """4 iterations in one go == 2 iterations, then --resume to 4 (same config, flips on: RNG state restored)."""
    common = [
        TRAIN_NET,
        "--config-file",
        TINY_YAML,
        *_register(coco_set, one_image_json),
        *SMALL,
        "DATASETS.TRAIN",
        '("wf_train",)',
        "DATASETS.TEST",
        "()",
        "DETBALANCE.LOSS",
        loss,
        "SOLVER.MAX_ITER",
        "4",
        "SOLVER.CHECKPOINT_PERIOD",
        "2",
    ]
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert_ok(run_tool([*common, "OUTPUT_DIR", whole], cwd=tmp_path))
    # The state after 2 iterations, as an interrupted run leaves it: its checkpoint and last_checkpoint.
    resumed.mkdir()
    shutil.copy(whole / "model_0000001.pth", resumed / "model_0000001.pth")
    (resumed / "last_checkpoint").write_text("model_0000001.pth")
    log = assert_ok(run_tool([TRAIN_NET, "--resume", *common[1:], "OUTPUT_DIR", resumed], cwd=tmp_path))
    assert "Starting training from iteration 2" in log
    want = torch.load(whole / "model_final.pth", map_location="cpu", weights_only=True)
    got = torch.load(resumed / "model_final.pth", map_location="cpu", weights_only=True)
    assert got["iteration"] == want["iteration"] == 3
    buffers = [k for k in want["model"] if "cls_loss" in k]
    assert buffers, sorted(want["model"])  # the loss state is part of the checkpoint
    first = torch.load(whole / "model_0000001.pth", map_location="cpu", weights_only=True)["model"]
    assert any(not torch.equal(first[k], want["model"][k]) for k in buffers)  # ... and changed in iterations 2-3
    for key, value in want["model"].items():
        assert torch.equal(got["model"][key], value), key


@pytest.mark.slow
def test_lazy_config_evaluates_with_the_per_class_report(coco_set, tmp_path):
    log = assert_ok(
        run_tool(
            [
                TRAIN_NET,
                "--config-file",
                LAZY,
                "--eval-only",
                *_register(coco_set),
                "train.init_checkpoint=",
                "train.device=cpu",
                f"train.output_dir={tmp_path / 'lazy'}",
                "model.roi_heads.num_classes=4",
                "dataloader.train.dataset.names=wf_train",
                "dataloader.test.dataset.names=wf_test",
                "dataloader.test.num_workers=0",
                "dataloader.test.mapper.augmentations.0.short_edge_length=64",
                "dataloader.test.mapper.augmentations.0.max_size=64",
                "model.proposal_generator.pre_nms_topk=[200,200]",
                "model.proposal_generator.post_nms_topk=[50,50]",
                "model.roi_heads.box_predictor.test_score_thresh=0.0",
            ],
            cwd=tmp_path,
            timeout=400,
        )
    )
    assert "Per-class report of wf_test" in log and "APr" in log


# ------------------------------------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def train_net():
    with pytest.MonkeyPatch.context() as patch:  # importing the tool extends PYTHONWARNINGS: keep it local
        patch.setenv("PYTHONWARNINGS", os.environ.get("PYTHONWARNINGS", ""))
        spec = importlib.util.spec_from_file_location("train_net_tool", TRAIN_NET)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


@pytest.mark.parametrize(
    "case, expected",
    [
        ("unknown_key", "MODEL.ROI_HEADS.NUM_CLASSSES"),
        ("missing_json", "does not exist"),
        ("malformed_json", "is not valid json"),
        ("not_coco", "missing ['annotations', 'categories']"),
        ("loss_without_head", "DETBALANCE.LOSS='SeesawLoss' set, but MODEL.ROI_HEADS.NAME='CascadeROIHeads'"),
        ("unregistered", "'nowhere', which is not registered"),
    ],
)
def test_bad_input_exits_2_naming_it_and_writes_nothing(case, expected, train_net, coco_set, tmp_path, capsys):
    out = tmp_path / "out"
    train = str(coco_set.train_json)
    opts = ["DATASETS.TRAIN", '("wf_train",)', "DATASETS.TEST", "()", "OUTPUT_DIR", str(out)]
    if case == "unknown_key":
        opts += ["MODEL.ROI_HEADS.NUM_CLASSSES", "4"]
    elif case == "missing_json":
        train = str(tmp_path / "nope.json")
    elif case == "malformed_json":
        train = str(tmp_path / "broken.json")
        (tmp_path / "broken.json").write_text('{"images": [')
    elif case == "not_coco":
        train = str(tmp_path / "list.json")
        (tmp_path / "list.json").write_text('{"images": []}')
    elif case == "loss_without_head":
        opts += ["MODEL.ROI_HEADS.NAME", "CascadeROIHeads", "DETBALANCE.LOSS", "SeesawLoss"]
    else:
        opts += ["DATASETS.TEST", '("nowhere",)']
    name = f"wf_bad_{case}"
    rc = train_net.cli(
        [
            "--config-file",
            str(TINY_YAML),
            "--register-coco",
            name,
            train,
            str(coco_set.train_images),
            *[o.replace("wf_train", name) for o in opts],
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("train_net.py: error:") and expected in err, err
    assert not out.exists()
