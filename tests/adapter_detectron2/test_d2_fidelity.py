"""Detectron2 adapter fidelity: the classifier bias each loss's reference starts from, DETBALANCE.CLS_PRIOR_PROB,
EQLv2's K + 1 outputs and the former K-column checkpoint, weighted CE's denominator from the config."""

from __future__ import annotations

import math

import pytest
import torch
from d2_helpers import NUM_CLASSES, random_proposals, tiny_cfg
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from detbalance import losses as core
from detbalance.detectron2 import BalancedFastRCNNOutputLayers

FEATURES = ShapeSpec(channels=16)
#: first bias of the class columns in each reference implementation (K = 8)
REFERENCE_BIAS = {
    "WeightedCrossEntropyLoss": 0.0,
    "SeesawLoss": 0.0,
    "EQLv2Loss": 0.0,  # tztztztztz/eqlv2: 0, objectness column included
    "EqualizationLoss": -math.log((1 - 0.001) / 0.001),  # eql.detectron2: prior 0.001
    "ClassBalancedFocalLoss": -math.log(NUM_CLASSES - 1),  # richardaecn/class-balanced-loss: -log(C - 1)
    "FederatedLoss": -math.log((1 - 0.01) / 0.01),  # Detic: prior 0.01
    "BAGSLoss": 0.0,  # FishYuLi/BalancedGroupSoftmax: 0, "others" columns included
}
SIGMOID_LOSSES = ("ClassBalancedFocalLoss", "EqualizationLoss", "EQLv2Loss", "FederatedLoss")
CLASSIFIER = "roi_heads.box_predictor.cls_score"


def _predictor(loss, weights_file, *opts):
    return BalancedFastRCNNOutputLayers(tiny_cfg(loss, weights_file, opts), FEATURES)


@pytest.mark.parametrize("name", sorted(core.LOSSES))
def test_built_model_classifier_starts_at_the_reference_bias(name, weights_file):
    predictor = build_model(tiny_cfg(name, weights_file)).roi_heads.box_predictor
    expected = torch.zeros(predictor.cls_loss.num_logits)
    expected[:NUM_CLASSES] = REFERENCE_BIAS[name]
    torch.testing.assert_close(predictor.cls_score.bias.detach(), expected)
    torch.testing.assert_close(predictor.cls_score.bias.detach(), predictor.cls_loss.initial_bias())


@pytest.mark.parametrize("name", ["EqualizationLoss", "ClassBalancedFocalLoss", "FederatedLoss"])
def test_first_loss_of_a_prior_biased_head_is_far_below_k_ln2(name, weights_file):
    """With bias 0 a sigmoid head starts at about K ln 2 per proposal; with the reference prior far below (a batch
    of 3/4 background proposals, as detectron2's RoI sampling gives)."""
    predictor = _predictor(name, weights_file)
    proposals = random_proposals()
    for p in proposals:
        p.gt_classes[p.gt_classes % 4 != 0] = NUM_CLASSES
    logits = predictor.cls_score(torch.randn(sum(len(p) for p in proposals), 16))
    deltas = torch.zeros(logits.shape[0], NUM_CLASSES * 4)
    with EventStorage(0):
        loss = predictor.losses((logits, deltas), proposals)["loss_cls"]
    assert 0 < loss.item() < 0.5 * NUM_CLASSES * math.log(2)


def test_cls_prior_prob_overrides_the_reference(weights_file):
    for name in SIGMOID_LOSSES:
        predictor = _predictor(name, weights_file, "DETBALANCE.CLS_PRIOR_PROB", "0.2")
        bias = predictor.cls_score.bias.detach()
        torch.testing.assert_close(bias[:NUM_CLASSES], torch.full((NUM_CLASSES,), -math.log(4.0)))
        assert bias[NUM_CLASSES:].eq(0).all()  # EQLv2's objectness column


@pytest.mark.parametrize(
    "value,message",
    [
        ("-0.1", r"DETBALANCE.CLS_PRIOR_PROB is -0.1, expected a probability in \(0, 1\)"),
        ("1.0", r"DETBALANCE.CLS_PRIOR_PROB is 1.0, expected a probability in \(0, 1\)"),
    ],
)
def test_bad_cls_prior_prob_fails_when_the_model_is_built(value, message, weights_file):
    with pytest.raises(ValueError, match=message):
        build_model(tiny_cfg("EqualizationLoss", weights_file, ("DETBALANCE.CLS_PRIOR_PROB", value)))


@pytest.mark.parametrize("name", ["WeightedCrossEntropyLoss", "SeesawLoss"])
def test_cls_prior_prob_is_refused_for_softmax_losses(name, weights_file):
    with pytest.raises(ValueError, match=f"CLS_PRIOR_PROB is 0.1 but DETBALANCE.LOSS '{name}' is a softmax loss"):
        _predictor(name, weights_file, "DETBALANCE.CLS_PRIOR_PROB", "0.1")


def test_eqlv2_head_has_an_objectness_output(weights_file):
    predictor = build_model(tiny_cfg("EQLv2Loss", weights_file)).roi_heads.box_predictor
    assert predictor.cls_score.out_features == NUM_CLASSES + 1 == predictor.cls_loss.num_logits


def _former_eqlv2_state(model):
    """The model's state as the K-column EQLv2 head saved it: K classifier rows, loss state version 1."""
    state = model.state_dict()
    for suffix in ("weight", "bias"):
        state[f"{CLASSIFIER}.{suffix}"] = state[f"{CLASSIFIER}.{suffix}"][:NUM_CLASSES].clone()
    state._metadata["roi_heads.box_predictor.cls_loss"]["version"] = 1
    return state


def test_former_k_column_eqlv2_checkpoint_is_refused_naming_both_shapes(tmp_path):
    torch.manual_seed(0)
    model = build_model(tiny_cfg("EQLv2Loss"))
    width = model.roi_heads.box_predictor.cls_score.in_features
    old = _former_eqlv2_state(model)
    torch.save({"model": old}, tmp_path / "former.pth")
    # detectron2's checkpointer drops the mismatched classifier; the loss state still names both layouts
    with pytest.raises(
        ValueError,
        match=rf"K = {NUM_CLASSES} outputs, weight shape \({NUM_CLASSES}, C\).*"
        rf"K \+ 1 = {NUM_CLASSES + 1} outputs, weight shape \({NUM_CLASSES + 1}, C\)",
    ):
        DetectionCheckpointer(build_model(tiny_cfg("EQLv2Loss"))).load(str(tmp_path / "former.pth"))
    # a plain load_state_dict sees the classifier itself
    with pytest.raises(
        ValueError,
        match=rf"cls_score.weight has shape \({NUM_CLASSES}, {width}\), expected "
        rf"\({NUM_CLASSES + 1}, {width}\): EQLv2Loss needs {NUM_CLASSES + 1}",
    ):
        build_model(tiny_cfg("EQLv2Loss")).load_state_dict(old)


def test_current_eqlv2_checkpoint_round_trips_through_the_checkpointer(tmp_path):
    torch.manual_seed(0)
    model = build_model(tiny_cfg("EQLv2Loss"))
    model.roi_heads.box_predictor.cls_loss.pos_grad.fill_(0.5)
    DetectionCheckpointer(model, save_dir=str(tmp_path)).save("current")
    restored = build_model(tiny_cfg("EQLv2Loss"))
    DetectionCheckpointer(restored).load(str(tmp_path / "current.pth"))
    for name, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[name], value), name


def test_weighted_ce_denominator_from_config(weights_file):
    assert _predictor("WeightedCrossEntropyLoss", weights_file).cls_loss.denominator == "proposals"
    predictor = _predictor("WeightedCrossEntropyLoss", weights_file, "DETBALANCE.WEIGHTED_CE.DENOMINATOR", "weights")
    assert predictor.cls_loss.denominator == "weights"
    proposals = random_proposals()
    labels = torch.cat([p.gt_classes for p in proposals])
    logits = torch.randn(labels.shape[0], NUM_CLASSES + 1)
    with EventStorage(0):
        loss = predictor.losses((logits, torch.zeros(labels.shape[0], NUM_CLASSES * 4)), proposals)["loss_cls"]
    weight = predictor.cls_loss.class_weight
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, labels, weight=weight))
    with pytest.raises(ValueError, match="denominator must be one of .*got 'sum'"):
        _predictor("WeightedCrossEntropyLoss", weights_file, "DETBALANCE.WEIGHTED_CE.DENOMINATOR", "sum")
