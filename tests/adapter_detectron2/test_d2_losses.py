"""BalancedFastRCNNOutputLayers.losses() gives the core loss functions' values, weights and gradients."""

from __future__ import annotations

import pytest
import torch
from d2_helpers import NUM_CLASSES, class_stats, random_proposals, tiny_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.roi_heads import FastRCNNOutputLayers
from detectron2.utils.events import EventStorage

from detbalance import losses as core
from detbalance.detectron2 import BalancedFastRCNNOutputLayers, build_classification_loss
from detbalance.detectron2.fast_rcnn import drop_upstream_classification_options
from detbalance.weights import WeightsFile, load_weights, save_weights

FEATURES = ShapeSpec(channels=16)


def build_predictor(loss, weights_file):
    return BalancedFastRCNNOutputLayers(tiny_cfg(loss, weights_file), FEATURES)


def core_loss(name, logits, labels, module_before, wf, sample_weight=None):
    """The core function for ``name`` with the statistics ``module_before`` (the state before the step) holds."""
    stats = wf.stats
    common = dict(sample_weight=sample_weight)
    if name == "WeightedCrossEntropyLoss":
        return core.weighted_cross_entropy(logits, labels, wf.weights + [wf.background_weight], **common)
    if name == "ClassBalancedFocalLoss":
        return core.class_balanced_focal_loss(
            logits, labels, stats.instance_counts, beta=0.99, gamma=2.0, background_weight=1.0, **common
        )
    if name == "EqualizationLoss":
        freq = [c / stats.num_images for c in stats.image_counts]
        return core.equalization_loss(logits, labels, freq, lambda_=1.76e-3, **common)
    if name == "EQLv2Loss":
        return core.eqlv2_loss(logits, labels, module_before.pos_neg, mu=0.8, gamma=12.0, alpha=4.0, **common)
    if name == "SeesawLoss":  # the module counts this batch's labels (weight > 0) before computing the loss
        counted = labels < NUM_CLASSES
        if sample_weight is not None:
            counted &= sample_weight > 0
        fg = labels[counted]
        cum = module_before.cum_samples + torch.bincount(fg, minlength=NUM_CLASSES)
        return core.seesaw_loss(logits, labels, cum, p=0.8, q=2.0, eps=1e-2, **common)
    if name == "FederatedLoss":
        generator = torch.Generator()
        generator.set_state(module_before.generator.get_state())
        return core.federated_loss(
            logits, labels, stats.image_counts, num_sampled=50, freq_power=0.5, generator=generator, **common
        )
    if name == "BAGSLoss":
        generator = torch.Generator()
        generator.set_state(module_before.generator.get_state())
        return core.bags_loss(
            logits,
            labels,
            stats.instance_counts,
            bin_edges=(10, 100, 1000),
            others_sample_ratio=8.0,
            generator=generator,
            **common,
        )
    raise AssertionError(name)


def run_losses(predictor, proposals, seed=1):
    g = torch.Generator().manual_seed(seed)
    rows = sum(len(p) for p in proposals)
    logits = (torch.randn(rows, predictor.cls_loss.num_logits, generator=g) * 2).requires_grad_()
    deltas = torch.randn(rows, NUM_CLASSES * 4, generator=g).requires_grad_()
    with EventStorage(0):
        out = predictor.losses((logits, deltas), proposals)
    return out, logits, deltas


@pytest.mark.parametrize("name", sorted(core.LOSSES))
def test_loss_cls_equals_core_function_value_and_gradient(name, weights_file):
    wf = load_weights(weights_file)
    predictor = build_predictor(name, weights_file)
    proposals = random_proposals()
    labels = torch.cat([p.gt_classes for p in proposals])
    before = build_predictor(name, weights_file).cls_loss
    before.load_state_dict(predictor.cls_loss.state_dict())
    if name in ("FederatedLoss", "BAGSLoss"):  # the same draw
        before.generator.set_state(predictor.cls_loss.generator.get_state())
    out, logits, _ = run_losses(predictor, proposals)

    ref_logits = logits.detach().clone().requires_grad_()
    ref = core_loss(name, ref_logits, labels, before, wf)
    torch.testing.assert_close(out["loss_cls"], ref)
    (grad,) = torch.autograd.grad(out["loss_cls"], logits)
    (ref_grad,) = torch.autograd.grad(ref, ref_logits)
    torch.testing.assert_close(grad, ref_grad)


def test_uniform_weighted_ce_is_detectron2s_own_loss(tmp_path):
    wf = WeightsFile(
        stats=class_stats(),
        scheme="uniform",
        weights=[1.0] * NUM_CLASSES,
        background_weight=1.0,
        groups=["f"] * NUM_CLASSES,
    )
    save_weights(tmp_path / "uniform.json", wf)
    cfg = tiny_cfg("WeightedCrossEntropyLoss", tmp_path / "uniform.json")
    ours, stock = BalancedFastRCNNOutputLayers(cfg, FEATURES), FastRCNNOutputLayers(cfg, FEATURES)
    proposals = random_proposals()
    out, logits, deltas = run_losses(ours, proposals)
    with EventStorage(0):
        expected = stock.losses((logits, deltas), proposals)
    assert set(out) == set(expected) == {"loss_cls", "loss_box_reg"}
    for key in out:
        torch.testing.assert_close(out[key], expected[key])
    probs = torch.cat(ours.predict_probs((logits, deltas), proposals))
    torch.testing.assert_close(probs, torch.cat(stock.predict_probs((logits, deltas), proposals)))


@pytest.mark.parametrize("name", sorted(core.LOSSES))
def test_box_weights_become_sample_weights(name, weights_file):
    wf = load_weights(weights_file)
    predictor = build_predictor(name, weights_file)
    proposals = random_proposals()
    # image 0: its proposals' matched boxes weigh 0 or 2 alternately; image 1 has no gt_weights (weight 1)
    proposals[0].gt_weights = torch.tensor([0.0, 2.0] * (len(proposals[0]) // 2))
    labels = torch.cat([p.gt_classes for p in proposals])
    foreground0 = proposals[0].gt_classes < NUM_CLASSES
    expected_weight = torch.cat(
        [
            torch.where(foreground0, proposals[0].gt_weights, torch.ones(len(proposals[0]))),
            torch.ones(len(proposals[1])),
        ]
    )
    before = build_predictor(name, weights_file).cls_loss
    before.load_state_dict(predictor.cls_loss.state_dict())
    if name in ("FederatedLoss", "BAGSLoss"):  # the same draw
        before.generator.set_state(predictor.cls_loss.generator.get_state())
    out, logits, _ = run_losses(predictor, proposals)
    ref = core_loss(name, logits.detach(), labels, before, wf, sample_weight=expected_weight)
    torch.testing.assert_close(out["loss_cls"].detach(), ref)

    # A box of weight 0 contributes nothing: no gradient reaches the logits of the proposals matched to it.
    (grad,) = torch.autograd.grad(out["loss_cls"], logits)
    removed = expected_weight == 0
    assert int(removed.sum()) >= 2
    assert float(grad[removed].abs().max()) == 0.0
    assert bool((grad[~removed].abs().sum(dim=1) > 0).all())


def test_empty_batch_gives_zero_losses_with_gradients(weights_file):
    for name in sorted(core.LOSSES):
        predictor = build_predictor(name, weights_file)
        logits = torch.zeros(0, predictor.cls_loss.num_logits, requires_grad=True)
        deltas = torch.zeros(0, NUM_CLASSES * 4, requires_grad=True)
        with EventStorage(0):
            out = predictor.losses((logits, deltas), [])
        assert float(out["loss_cls"].detach()) == 0.0 and float(out["loss_box_reg"].detach()) == 0.0, name
        out["loss_cls"].backward()
        assert predictor.predict_probs((logits, deltas), []) == ()


def test_explicit_constructor_for_lazy_configs():
    predictor = BalancedFastRCNNOutputLayers(
        FEATURES,
        box2box_transform=Box2BoxTransform(weights=(10, 10, 5, 5)),
        num_classes=NUM_CLASSES,
        cls_loss=build_classification_loss("SeesawLoss", NUM_CLASSES, hyper_params={"p": 0.5}),
        test_score_thresh=0.05,
    )
    assert predictor.cls_score.out_features == NUM_CLASSES + 2 and predictor.cls_loss.p == 0.5
    with pytest.raises(ValueError, match=r"num_classes=3, expected 8"):
        BalancedFastRCNNOutputLayers(
            FEATURES,
            box2box_transform=Box2BoxTransform(weights=(10, 10, 5, 5)),
            num_classes=NUM_CLASSES,
            cls_loss=core.EQLv2Loss(3),
        )


def test_build_classification_loss_errors(weights_file):
    with pytest.raises(ValueError, match=r"unknown loss 'Focal'.*EQLv2Loss"):
        build_classification_loss("Focal", NUM_CLASSES)
    with pytest.raises(ValueError, match=r"describes 8 classes, expected 5"):
        build_classification_loss("FederatedLoss", 5, weights_file=str(weights_file))
    loss = build_classification_loss("ClassBalancedFocalLoss", NUM_CLASSES)  # inference needs no statistics
    with pytest.raises(ValueError, match="expected a weights file .* or training datasets"):
        loss(torch.zeros(2, loss.num_logits), torch.tensor([0, NUM_CLASSES]))


def test_config_without_detbalance_node_is_explained():
    from detectron2.config import get_cfg

    with pytest.raises(ValueError, match="add_detbalance_config"):
        BalancedFastRCNNOutputLayers(get_cfg(), FEATURES)


def test_upstream_classification_options_are_dropped_or_rejected():
    # What FastRCNNOutputLayers.from_config returns on detectron2 releases after v0.6.
    upstream = {
        "num_classes": 8,
        "use_sigmoid_ce": False,
        "use_fed_loss": False,
        "get_fed_loss_cls_weights": lambda: None,
        "fed_loss_num_classes": 50,
    }
    assert drop_upstream_classification_options(dict(upstream)) == {"num_classes": 8}
    assert drop_upstream_classification_options({"num_classes": 8}) == {"num_classes": 8}  # v0.6
    for key, cfg_key in (("use_sigmoid_ce", "USE_SIGMOID_CE"), ("use_fed_loss", "USE_FED_LOSS")):
        with pytest.raises(ValueError, match=f"MODEL.ROI_BOX_HEAD.{cfg_key} is True, expected False"):
            drop_upstream_classification_options({**upstream, key: True})
