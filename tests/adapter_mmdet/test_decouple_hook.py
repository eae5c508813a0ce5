"""``DBDecoupleHook`` on a model built from the repository's tiny config: what it freezes and where it restarts the
classifier (the core loss's initial bias for a DB* loss)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from detbalance.mmdet import DBDecoupleHook
from helpers import MMDET_CONFIGS


def _model(name: str):
    torch.manual_seed(0)
    return MODELS.build(Config.fromfile(str(MMDET_CONFIGS / "tiny" / name)).model)


def test_hook_restarts_a_sigmoid_loss_classifier_at_its_prior_and_freezes_the_rest():
    model = _model("faster-rcnn_r18_fpn_tiny_cb-focal.py")
    classifier = model.roi_head.bbox_head.fc_cls
    with torch.no_grad():
        classifier.bias.fill_(0.5)
    DBDecoupleHook(train="classifier").before_train(SimpleNamespace(model=model, iter=0))
    core = model.roi_head.bbox_head.loss_cls.core
    # the class-balanced focal loss's classifier starts at the prior 1 / K (bias -log(K - 1)), not at 0
    torch.testing.assert_close(classifier.bias.detach(), core.initial_bias().to(classifier.bias))
    assert math.isclose(float(classifier.bias[0]), -math.log(core.num_classes - 1), rel_tol=1e-6)
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == ["roi_head.bbox_head.fc_cls.bias", "roi_head.bbox_head.fc_cls.weight"]


def test_hook_restarts_mmdets_own_classifier_at_zero_bias():
    model = _model("faster-rcnn_r18_fpn_tiny.py")
    classifier = model.roi_head.bbox_head.fc_cls
    with torch.no_grad():
        classifier.bias.fill_(0.5)
    DBDecoupleHook(train="classifier", reinit_classifier=True).before_train(SimpleNamespace(model=model, iter=0))
    assert torch.equal(classifier.bias.detach(), torch.zeros_like(classifier.bias))


def test_hook_on_a_resumed_run_keeps_the_classifier():
    model = _model("faster-rcnn_r18_fpn_tiny_eqlv2.py")
    classifier = model.roi_head.bbox_head.fc_cls
    with torch.no_grad():
        classifier.bias.fill_(0.5)
    DBDecoupleHook(train="classifier").before_train(SimpleNamespace(model=model, iter=7))
    assert torch.equal(classifier.bias.detach(), torch.full_like(classifier.bias, 0.5))
