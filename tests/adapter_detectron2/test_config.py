"""The DETBALANCE config node and the yaml configs under configs/detectron2 (model_zoo:// bases)."""

from __future__ import annotations

import inspect

import pytest
from d2_helpers import BASE_CONFIG, CONFIG_DIR, OTHER_CONFIGS, PER_LOSS_CONFIGS, TINY_CONFIG
from detectron2 import model_zoo
from detectron2.config import get_cfg

from detbalance.detectron2 import HYPER_PARAMETER_KEYS, add_detbalance_config, get_config
from detbalance.losses import LOSSES


def test_node_is_added_once_and_keeps_values():
    cfg = get_cfg()
    add_detbalance_config(cfg)
    assert cfg.DETBALANCE.LOSS == "WeightedCrossEntropyLoss" and cfg.DETBALANCE.WEIGHTS_FILE == ""
    cfg.DETBALANCE.LOSS = "SeesawLoss"
    add_detbalance_config(cfg)
    assert cfg.DETBALANCE.LOSS == "SeesawLoss"


def test_every_loss_has_a_hyper_parameter_node_matching_its_arguments():
    assert set(HYPER_PARAMETER_KEYS) == set(LOSSES)
    cfg = get_cfg()
    add_detbalance_config(cfg)
    for name, (sub_node, keys) in HYPER_PARAMETER_KEYS.items():
        accepted = inspect.signature(LOSSES[name].from_stats).parameters
        for key, argument in keys.items():
            assert argument in accepted, (name, argument)
            # the config default equals the loss's own default
            assert cfg.DETBALANCE[sub_node][key] == accepted[argument].default, (name, key)


def test_model_zoo_base_is_resolved():
    cfg = get_config(BASE_CONFIG)
    zoo = get_cfg()
    zoo.merge_from_file(model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"))
    assert cfg.MODEL.ROI_HEADS.NAME == "BalancedROIHeads"
    for key in ("RESNETS", "FPN", "RPN", "ANCHOR_GENERATOR", "ROI_BOX_HEAD"):
        assert cfg.MODEL[key] == zoo.MODEL[key], key
    assert cfg.SOLVER == zoo.SOLVER and cfg.INPUT == zoo.INPUT and cfg.DATASETS == zoo.DATASETS


@pytest.mark.parametrize("loss", sorted(PER_LOSS_CONFIGS))
def test_per_loss_config_changes_only_the_detbalance_node(loss):
    cfg, base = get_config(PER_LOSS_CONFIGS[loss]), get_config(BASE_CONFIG)
    assert cfg.DETBALANCE.LOSS == loss
    base.DETBALANCE = cfg.DETBALANCE
    assert cfg == base  # so the tiny config with this DETBALANCE node is this config at tiny scale


def test_tiny_config_settings():
    cfg = get_config(TINY_CONFIG)
    assert cfg.MODEL.RESNETS.DEPTH == 18 and cfg.MODEL.RESNETS.NORM == "BN" and cfg.MODEL.WEIGHTS == ""
    assert cfg.MODEL.FPN.IN_FEATURES == ["res3", "res4", "res5"] and cfg.MODEL.FPN.OUT_CHANNELS == 128
    assert list(cfg.MODEL.PIXEL_STD) == [57.4, 57.1, 58.4]
    assert cfg.INPUT.MIN_SIZE_TRAIN == (128,) and cfg.INPUT.MAX_SIZE_TEST == 128
    assert cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE == 64 and cfg.MODEL.ROI_BOX_HEAD.FC_DIM == 256


def test_opts_relative_and_list_bases(tmp_path):
    child = tmp_path / "child.yaml"
    child.write_text(f'_BASE_: ["{TINY_CONFIG}", "extra.yaml"]\nDETBALANCE:\n  LOSS: "EQLv2Loss"\n')
    (tmp_path / "extra.yaml").write_text("MODEL:\n  ROI_HEADS:\n    NUM_CLASSES: 3\n")
    cfg = get_config(child, ["DETBALANCE.EQLV2.MU", "0.5"])
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 3 and cfg.MODEL.RESNETS.DEPTH == 18
    assert cfg.DETBALANCE.LOSS == "EQLv2Loss" and cfg.DETBALANCE.EQLV2.MU == 0.5


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        get_config(tmp_path / "nope.yaml")
    typo = tmp_path / "typo.yaml"
    typo.write_text(f'_BASE_: "{BASE_CONFIG}"\nDETBALANCE:\n  LOSSS: "SeesawLoss"\n')
    with pytest.raises(KeyError, match="LOSSS"):
        get_config(typo)
    zoo = tmp_path / "zoo.yaml"
    zoo.write_text('_BASE_: "model_zoo://COCO-Detection/no_such_config.yaml"\n')
    with pytest.raises(RuntimeError, match="no_such_config"):
        get_config(zoo)


def test_every_yaml_in_the_folder_is_covered():
    covered = {BASE_CONFIG, TINY_CONFIG, *PER_LOSS_CONFIGS.values(), *OTHER_CONFIGS}
    assert set(CONFIG_DIR.glob("*.yaml")) == covered
