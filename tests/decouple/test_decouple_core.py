"""The framework-free parts of decoupled training: which parameters stay trainable, the classifier's
re-initialisation, the class count of a checkpoint, and the errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detbalance.decouple import (
    TRAINED_PARTS,
    check_trained_part,
    classes_of_regressor,
    freeze_all_but,
    init_classifier,
    normalisation_layers,
)


def _detector() -> nn.Module:
    head = nn.ModuleDict({"cls_score": nn.Linear(8, 4), "bbox_pred": nn.Linear(8, 12), "fc": nn.Linear(8, 8)})
    return nn.ModuleDict(
        {
            "backbone": nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)),
            "roi_heads": nn.ModuleDict({"box_predictor": head}),
        }
    )


def test_only_the_matched_modules_train():
    model = _detector()
    trained = freeze_all_but(model, [r"\.cls_score$"])
    assert trained == ["roi_heads.box_predictor.cls_score.bias", "roi_heads.box_predictor.cls_score.weight"]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "roi_heads.box_predictor.cls_score.weight",
        "roi_heads.box_predictor.cls_score.bias",
    ]
    both = freeze_all_but(model, [r"\.cls_score$", r"\.bbox_pred$"])  # a second call re-decides every parameter
    assert len(both) == 4 and not model["roi_heads"]["box_predictor"]["fc"].weight.requires_grad


def test_a_pattern_that_matches_nothing_is_refused():
    with pytest.raises(ValueError, match=r"no module of the model matches \['fc_cls'\]"):
        freeze_all_but(_detector(), ["fc_cls"])
    with pytest.raises(ValueError, match="patterns=\\[\\]"):
        freeze_all_but(_detector(), [])


def test_normalisation_layers_and_classifier_initialisation():
    model = _detector()
    assert normalisation_layers(model) == [model["backbone"][1]]
    layer = nn.Linear(256, 129)
    torch.manual_seed(0)
    with torch.no_grad():
        layer.weight.fill_(3.0)
    init_classifier(layer, torch.full((129,), -4.6))
    assert layer.weight.std().item() == pytest.approx(0.01, rel=0.1) and torch.equal(
        layer.bias, torch.full((129,), -4.6)
    )
    init_classifier(layer)
    assert torch.equal(layer.bias, torch.zeros(129))
    with pytest.raises(ValueError, match=r"bias of shape \(3,\); expected \(129,\)"):
        init_classifier(layer, torch.zeros(3))
    with pytest.raises(ValueError, match="Conv2d"):
        init_classifier(nn.Conv2d(1, 1, 1))


def test_classes_of_a_class_specific_regressor():
    assert classes_of_regressor(torch.zeros(512, 256), "roi_heads.box_predictor.bbox_pred.weight") == 128
    with pytest.raises(ValueError, match="class-agnostic"):
        classes_of_regressor(torch.zeros(4, 256), "fc_reg.weight")
    with pytest.raises(ValueError, match="has 10 rows"):
        classes_of_regressor(torch.zeros(10, 256), "fc_reg.weight")


def test_trained_parts():
    assert TRAINED_PARTS == ("classifier", "classifier+regressor")
    assert check_trained_part("classifier") == "classifier"
    with pytest.raises(ValueError, match="DECOUPLE.TRAIN='backbone'"):
        check_trained_part("backbone", "DECOUPLE.TRAIN")
