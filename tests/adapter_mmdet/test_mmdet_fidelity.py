"""MMDetection adapter fidelity: ``fc_cls`` starts at each loss's reference bias (after ``init_weights`` too), the
``prior_prob`` argument, EQLv2's K + 1 outputs and the former K-column checkpoint, weighted CE's denominator."""

from __future__ import annotations

import logging
import math

import mmcv.ops  # noqa: F401,E402  (compiled ops: `make setup` builds them; their absence is an error)
import pytest
import torch
from mmdet.registry import MODELS  # noqa: E402

from helpers import MMDET_CONFIGS, mmdet_config

CONFIG_DIR = MMDET_CONFIGS / "tiny"
K = 8  # the tiny configs'
LOSS_CONFIGS = {
    "DBWeightedCrossEntropyLoss": "weighted-ce",
    "DBClassBalancedFocalLoss": "cb-focal",
    "DBEqualizationLoss": "eql",
    "DBEQLv2Loss": "eqlv2",
    "DBSeesawLoss": "seesaw",
    "DBFederatedLoss": "federated",
}
#: first bias of the class columns in each reference implementation (K = 8)
REFERENCE_BIAS = {
    "DBWeightedCrossEntropyLoss": 0.0,
    "DBSeesawLoss": 0.0,
    "DBEQLv2Loss": 0.0,  # tztztztztz/eqlv2: 0, objectness column included
    "DBEqualizationLoss": -math.log((1 - 0.001) / 0.001),  # eql.detectron2: prior 0.001
    "DBClassBalancedFocalLoss": -math.log(K - 1),  # richardaecn/class-balanced-loss: -log(C - 1)
    "DBFederatedLoss": -math.log((1 - 0.01) / 0.01),  # Detic: prior 0.01
}
SIGMOID_LOSSES = ("DBClassBalancedFocalLoss", "DBEqualizationLoss", "DBEQLv2Loss", "DBFederatedLoss")


def model_cfg(name: str, weights_file, **loss_settings):
    path = CONFIG_DIR / f"faster-rcnn_r18_fpn_tiny_{LOSS_CONFIGS[name]}.py"
    return mmdet_config(path, weights_file(K), **loss_settings).model


@pytest.mark.parametrize("name", sorted(LOSS_CONFIGS))
@pytest.mark.slow
def test_fc_cls_starts_at_the_reference_bias_and_keeps_it_through_init_weights(name, weights_file):
    model = MODELS.build(model_cfg(name, weights_file))
    head = model.roi_head.bbox_head
    expected = torch.zeros(head.fc_cls.out_features)
    expected[:K] = REFERENCE_BIAS[name]
    torch.testing.assert_close(head.fc_cls.bias.detach(), expected)
    with torch.no_grad():
        head.fc_cls.bias.normal_()
    model.init_weights()  # the head's init_cfg (Normal, bias 0) runs, then the loss sets its bias again
    torch.testing.assert_close(head.fc_cls.bias.detach(), expected)
    torch.testing.assert_close(head.fc_cls.bias.detach(), head.loss_cls.core.initial_bias())


def test_prior_prob_argument_overrides_the_reference(weights_file):
    for name in SIGMOID_LOSSES:
        head = MODELS.build(model_cfg(name, weights_file, prior_prob=0.2)).roi_head.bbox_head
        bias = head.fc_cls.bias.detach()
        torch.testing.assert_close(bias[:K], torch.full((K,), -math.log(4.0)))
        assert bias[K:].eq(0).all()  # EQLv2's objectness column


def test_bad_prior_prob_fails_when_the_model_is_built(weights_file):
    with pytest.raises(ValueError, match=r"prior_prob must lie in \(0.0, 1.0\), got -0.1"):
        MODELS.build(model_cfg("DBEqualizationLoss", weights_file, prior_prob=-0.1))
    with pytest.raises(TypeError, match="prior_prob"):  # softmax losses take none
        MODELS.build(model_cfg("DBSeesawLoss", weights_file, prior_prob=0.1))


def test_classifier_reference_does_not_travel_with_copies(weights_file):
    import copy

    model = MODELS.build(model_cfg("DBEqualizationLoss", weights_file))
    loss = model.roi_head.bbox_head.loss_cls
    assert loss._classifier() is model.roi_head.bbox_head.fc_cls
    assert copy.deepcopy(loss)._classifier is None


def test_eqlv2_head_has_an_objectness_output(weights_file):
    head = MODELS.build(model_cfg("DBEQLv2Loss", weights_file)).roi_head.bbox_head
    assert head.fc_cls.out_features == K + 1 == head.loss_cls.core.num_logits


@pytest.mark.slow
def test_former_k_column_eqlv2_checkpoint_is_refused_naming_both_shapes(weights_file, tmp_path):
    from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = MODELS.build(model_cfg("DBEQLv2Loss", weights_file))
    state = model.state_dict()
    for suffix in ("weight", "bias"):
        key = f"roi_head.bbox_head.fc_cls.{suffix}"
        state[key] = state[key][:K].clone()
    state._metadata["roi_head.bbox_head.loss_cls.core"]["version"] = 1  # the K-column EQLv2Loss's
    save_checkpoint(dict(state_dict=state), str(tmp_path / "former.pth"))
    logger = logging.getLogger("fidelity")
    for strict in (False, True):
        with pytest.raises(
            ValueError,
            match=rf"K = {K} outputs, weight shape \({K}, C\).*"
            rf"K \+ 1 = {K + 1} outputs, weight shape \({K + 1}, C\)",
        ):
            load_checkpoint(
                MODELS.build(model_cfg("DBEQLv2Loss", weights_file)),
                str(tmp_path / "former.pth"),
                map_location="cpu",
                strict=strict,
                logger=logger,
            )
    # the current layout loads
    save_checkpoint(dict(state_dict=model.state_dict()), str(tmp_path / "current.pth"))
    restored = MODELS.build(model_cfg("DBEQLv2Loss", weights_file))
    load_checkpoint(restored, str(tmp_path / "current.pth"), map_location="cpu", strict=True, logger=logger)
    assert torch.equal(restored.roi_head.bbox_head.fc_cls.weight, model.roi_head.bbox_head.fc_cls.weight)


def test_weighted_ce_weights_denominator_replaces_avg_factor():
    class_weight = [1.0, 2.0, 0.5, 3.0, 1.5, 0.2]
    loss = MODELS.build(
        dict(type="DBWeightedCrossEntropyLoss", num_classes=5, class_weight=class_weight, denominator="weights")
    )
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(20, 6, generator=g), torch.randint(0, 6, (20,), generator=g)
    want = torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor(class_weight))
    torch.testing.assert_close(loss(logits, labels, torch.ones(20), avg_factor=20.0), want)
    default = MODELS.build(dict(type="DBWeightedCrossEntropyLoss", num_classes=5, class_weight=class_weight))
    torch.testing.assert_close(
        default(logits, labels, torch.ones(20), avg_factor=20.0),
        torch.nn.functional.cross_entropy(logits, labels, weight=torch.tensor(class_weight), reduction="sum") / 20.0,
    )
