"""``DETBALANCE.CLS_PREDICTOR``: the Seesaw config as published builds a normalised linear classifier of K + 2
outputs at temperature 20, trains a step and predicts; plain ``Linear`` stays the default; bad values are named."""

from __future__ import annotations

import pytest
import torch
from d2_helpers import NUM_CLASSES, TINY_CONFIG, synthetic_batch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from torch import nn

from detbalance.detectron2 import get_config
from detbalance.layers import NormedLinear
from helpers import D2_CONFIGS


def _cfg(*opts):
    base = get_config(D2_CONFIGS / "faster_rcnn_R_50_FPN_1x_seesaw_normed.yaml")
    cfg = get_config(TINY_CONFIG, ["DETBALANCE.LOSS", "SeesawLoss"])
    cfg.DETBALANCE.CLS_PREDICTOR = base.DETBALANCE.CLS_PREDICTOR
    cfg.merge_from_list(list(opts))
    return cfg


def test_the_published_seesaw_config_selects_the_normed_classifier():
    node = get_config(D2_CONFIGS / "faster_rcnn_R_50_FPN_1x_seesaw_normed.yaml").DETBALANCE
    assert node.LOSS == "SeesawLoss" and node.CLS_PREDICTOR.TYPE == "NormedLinear"
    assert node.CLS_PREDICTOR.TEMPERATURE == 20.0
    assert get_config(TINY_CONFIG).DETBALANCE.CLS_PREDICTOR.TYPE == "Linear"


def test_normed_classifier_trains_and_predicts():
    torch.manual_seed(0)
    model = build_model(_cfg("MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0"))
    layer = model.roi_heads.box_predictor.cls_score
    assert isinstance(layer, NormedLinear) and layer.out_features == NUM_CLASSES + 2 and layer.temperature == 20.0
    before = layer.weight.detach().clone()
    with EventStorage(0):
        model.train()
        losses = model(synthetic_batch())
        sum(losses.values()).backward()
    assert torch.isfinite(losses["loss_cls"]) and layer.weight.grad is not None
    with torch.no_grad():
        layer.weight -= layer.weight.grad
    assert not torch.equal(layer.weight, before)
    model.eval()
    with torch.no_grad():
        out = model(synthetic_batch())
    scores = out[0]["instances"].scores
    assert len(scores) > 0 and bool(((scores >= 0) & (scores <= 1)).all())


def test_plain_linear_is_nn_linear():
    model = build_model(get_config(TINY_CONFIG, ["DETBALANCE.LOSS", "SeesawLoss"]))
    assert type(model.roi_heads.box_predictor.cls_score) is nn.Linear


def test_bad_classifier_settings_are_named():
    with pytest.raises(ValueError, match="CLS_PREDICTOR.TYPE='Cosine'"):
        build_model(_cfg("DETBALANCE.CLS_PREDICTOR.TYPE", "Cosine"))
    with pytest.raises(ValueError, match="TEMPERATURE: temperature=0.0"):
        build_model(_cfg("DETBALANCE.CLS_PREDICTOR.TEMPERATURE", "0.0"))
