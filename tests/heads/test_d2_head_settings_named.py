"""Detectron2: an error about a head's number of classes names that head's config key (RetinaNet's is
``MODEL.RETINANET.NUM_CLASSES``, the box heads' ``MODEL.ROI_HEADS.NUM_CLASSES``); a missing weights file builds a
RetinaNet for inference, as it does a box head."""

from __future__ import annotations

import pytest
import torch
from detectron2.modeling import build_model
from heads_helpers import NUM_CLASSES
from test_d2_heads import TINY_MASK, TINY_RETINANET

from helpers import d2_config as cfg_of
from helpers import write_weights_file


@pytest.mark.parametrize("loss", ["FocalLoss", "EqualizedFocalLoss", "ClassBalancedFocalLoss"])
def test_retinanet_weights_file_of_another_size_names_the_retinanet_key(loss, tmp_path):
    three = write_weights_file(tmp_path / "three.json", num_classes=3)
    with pytest.raises(
        ValueError, match=rf"describes 3 classes, expected {NUM_CLASSES} \(MODEL.RETINANET.NUM_CLASSES\)$"
    ):
        build_model(cfg_of(TINY_RETINANET, loss, three))


def test_box_head_weights_file_of_another_size_names_the_roi_heads_key(tmp_path):
    three = write_weights_file(tmp_path / "three.json", num_classes=3)
    with pytest.raises(ValueError, match=rf"describes 3 classes, expected {NUM_CLASSES} \(MODEL.ROI_HEADS.NUM_CLASSES"):
        build_model(cfg_of(TINY_MASK, "ClassBalancedFocalLoss", three))


@pytest.mark.parametrize("loss", ["FocalLoss", "ClassBalancedFocalLoss"])
def test_retinanet_without_its_weights_file_builds_for_inference(loss, tmp_path):
    model = build_model(cfg_of(TINY_RETINANET, loss, tmp_path / "absent.json"))
    logits, labels = torch.zeros(2, NUM_CLASSES), torch.tensor([0, NUM_CLASSES])
    model.cls_loss.eval()
    assert model.cls_loss.predict_scores(logits).shape[0] == 2
    model.cls_loss.train()
    with pytest.raises(FileNotFoundError, match=rf"absent.json does not exist; {loss} was built without"):
        model.cls_loss(logits, labels)
