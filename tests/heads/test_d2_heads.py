"""Detectron2 heads beyond Faster R-CNN, built from the repository's configs and trained a step on CPU:
Cascade R-CNN (a detbalance loss and per-box weights in every stage), Mask R-CNN, RetinaNet (EFL, focal)."""

from __future__ import annotations

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage
from heads_helpers import D2_HEADS, NUM_CLASSES, d2_batch, write_weights_file

from detbalance.detectron2 import BalancedCascadeROIHeads, BalancedFastRCNNOutputLayers, BalancedRetinaNet, get_config
from detbalance.losses import EqualizedFocalLoss, FocalLoss
from helpers import d2_config as cfg_of

TINY_CASCADE = D2_HEADS / "cascade_rcnn_R_18_FPN_tiny_cpu.yaml"
TINY_MASK = D2_HEADS / "mask_rcnn_R_18_FPN_tiny_cpu.yaml"
TINY_RETINANET = D2_HEADS / "retinanet_R_18_FPN_tiny_cpu.yaml"
FULL_CONFIGS = sorted(p for p in D2_HEADS.glob("*.yaml") if "tiny" not in p.name and not p.name.startswith("Base"))


def train_step(model, inputs):
    model.train()
    with EventStorage(0):
        losses = model(inputs)
        sum(losses.values()).backward()
    return losses


def predict(model, inputs):
    model.eval()
    with torch.no_grad():
        return model(inputs)


def capture_predictor_losses(predictor, records):
    """Record (class logits, proposals) each time ``predictor.losses`` runs (test instrumentation)."""
    original = predictor.losses

    def losses(predictions, proposals):
        records.append((predictions[0], [p for p in proposals]))
        return original(predictions, proposals)

    predictor.losses = losses


# ---------------------------------------------------------------------------------------------- Cascade R-CNN


@pytest.mark.parametrize("loss", ["EQLv2Loss", "SeesawLoss", "WeightedCrossEntropyLoss"])
@pytest.mark.slow
def test_cascade_every_stage_trains_the_loss_and_predicts(loss, heads_weights_file):
    model = build_model(cfg_of(TINY_CASCADE, loss, heads_weights_file))
    heads = model.roi_heads
    assert isinstance(heads, BalancedCascadeROIHeads) and heads.num_cascade_stages == 3
    predictors = list(heads.box_predictor)
    assert all(isinstance(p, BalancedFastRCNNOutputLayers) for p in predictors)
    assert all(type(p.cls_loss).__name__ == loss for p in predictors)
    assert len({id(p.cls_loss) for p in predictors}) == 3  # one loss module (and state) per stage

    losses = train_step(model, d2_batch())
    assert {f"loss_cls_stage{k}" for k in range(3)} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    for predictor in predictors:
        assert float(predictor.cls_score.weight.grad.abs().sum()) > 0
    if loss == "EQLv2Loss":  # each stage gathered its own statistics
        states = [p.cls_loss.pos_grad.clone() for p in predictors]
        assert all(float(s.sum()) > 0 for s in states)
        assert not torch.equal(states[0], states[2])
    for output in predict(model, d2_batch()):
        det = output["instances"]
        assert len(det) > 0 and int(det.pred_classes.max()) < NUM_CLASSES
        assert bool(((det.scores >= 0) & (det.scores <= 1)).all())


@pytest.mark.slow
def test_cascade_zero_weight_boxes_give_no_classification_gradient_in_any_stage(heads_weights_file):
    model = build_model(cfg_of(TINY_CASCADE, "WeightedCrossEntropyLoss", heads_weights_file))
    records = []
    for predictor in model.roi_heads.box_predictor:
        capture_predictor_losses(predictor, records)
    # image 0: its first box (class 0) weighs 0, its second 1; image 1: 2 and 1
    inputs = d2_batch(weights=[[0.0, 1.0], [2.0, 1.0]])
    model.train()
    with EventStorage(0):
        losses = model(inputs)
    assert len(records) == 3
    for stage, (logits, proposals) in enumerate(records):
        (grad,) = torch.autograd.grad(losses[f"loss_cls_stage{stage}"], logits, retain_graph=True)
        assert all(p.has("gt_weights") for p in proposals), f"stage {stage} lost the per-box weights"
        weights = torch.cat([p.gt_weights for p in proposals])
        classes = torch.cat([p.gt_classes for p in proposals])
        foreground = classes < NUM_CLASSES
        removed = foreground & (weights == 0)
        kept = foreground & (weights > 0)
        assert int(removed.sum()) > 0 and int(kept.sum()) > 0, f"stage {stage}: no proposal on both boxes"
        assert float(grad[removed].abs().max()) == 0.0, f"stage {stage}: a zero-weight box has a gradient"
        assert bool((grad[kept].abs().sum(dim=1) > 0).all())
        # the weights are those of the boxes each stage matched: image 0's class-0 box weighs 0
        image0 = proposals[0]
        fg0 = image0.gt_classes < NUM_CLASSES
        torch.testing.assert_close(image0.gt_weights[fg0], (image0.gt_classes[fg0] != 0).float())


def test_cascade_refuses_a_dense_loss_naming_it_and_the_head():
    with pytest.raises(
        ValueError, match="'EqualizedFocalLoss', which cannot serve the box head BalancedCascadeROIHeads"
    ):
        build_model(cfg_of(TINY_CASCADE, "EqualizedFocalLoss"))


# ---------------------------------------------------------------------------------------------- Mask R-CNN


@pytest.mark.parametrize("loss", ["EQLv2Loss", "SeesawLoss"])
@pytest.mark.slow
def test_mask_rcnn_trains_with_masks_and_predicts_masks(loss):
    model = build_model(cfg_of(TINY_MASK, loss))
    assert model.roi_heads.mask_on and type(model.roi_heads.box_predictor.cls_loss).__name__ == loss
    losses = train_step(model, d2_batch(masks=True))
    assert {"loss_cls", "loss_box_reg", "loss_mask"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values()) and float(losses["loss_mask"].detach()) > 0
    mask_grad = next(model.roi_heads.mask_head.parameters()).grad
    assert mask_grad is not None and float(mask_grad.abs().sum()) > 0
    for output in predict(model, d2_batch(masks=True)):
        det = output["instances"]
        assert len(det) > 0 and det.pred_masks.shape[1:] == (128, 128)


@pytest.mark.slow
def test_cascade_mask_rcnn_trains_with_masks(heads_weights_file):
    model = build_model(
        cfg_of(
            TINY_CASCADE,
            "EQLv2Loss",
            opts=["MODEL.MASK_ON", "True", "MODEL.ROI_MASK_HEAD.NUM_CONV", "1", "MODEL.ROI_MASK_HEAD.CONV_DIM", "32"],
        )
    )
    losses = train_step(model, d2_batch(masks=True, weights=[[0.0, 1.0], [1.0, 1.0]]))
    assert "loss_mask" in losses and all(torch.isfinite(v) for v in losses.values())


# ---------------------------------------------------------------------------------------------- RetinaNet


@pytest.mark.slow
def test_retinanet_focal_loss_equals_detectron2s_retinanet():
    cfg = cfg_of(TINY_RETINANET, "FocalLoss")
    ours = build_model(cfg)
    assert isinstance(ours, BalancedRetinaNet) and isinstance(ours.cls_loss, FocalLoss)
    stock_cfg = cfg.clone()
    stock_cfg.MODEL.META_ARCHITECTURE = "RetinaNet"
    stock = build_model(stock_cfg)
    stock.load_state_dict(ours.state_dict())
    inputs = d2_batch()
    ours.train(), stock.train()
    with EventStorage(0):
        ours_losses, stock_losses = ours(inputs), stock(inputs)
    assert set(ours_losses) == set(stock_losses) == {"loss_cls", "loss_box_reg"}
    for key in ours_losses:
        torch.testing.assert_close(ours_losses[key], stock_losses[key])
    # test time: detectron2's sigmoid scoring, unchanged
    for a, b in zip(predict(ours, inputs), predict(stock, inputs)):
        torch.testing.assert_close(a["instances"].scores, b["instances"].scores)


@pytest.mark.parametrize("loss", ["EqualizedFocalLoss", "FocalLoss", "ClassBalancedFocalLoss"])
@pytest.mark.slow
def test_retinanet_trains_each_dense_loss_and_predicts(loss, heads_weights_file):
    model = build_model(cfg_of(TINY_RETINANET, loss, heads_weights_file))
    assert type(model.cls_loss).__name__ == loss
    if loss == "FocalLoss":  # per-class alphas from the weights file's class weights
        assert len(set(model.cls_loss.alpha.tolist())) == NUM_CLASSES
    losses = train_step(model, d2_batch())
    assert set(losses) == {"loss_cls", "loss_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values()) and float(losses["loss_cls"].detach()) > 0
    cls_layer = model.head.cls_score
    assert float(cls_layer.weight.grad.abs().sum()) > 0
    if isinstance(model.cls_loss, EqualizedFocalLoss):
        assert float(model.cls_loss.neg_grad.sum()) > 0 and float(model.cls_loss.pos_grad.sum()) > 0
    for output in predict(model, d2_batch()):
        det = output["instances"]
        assert bool((det.pred_classes < NUM_CLASSES).all()) and bool((det.scores <= 1).all())


@pytest.mark.parametrize("loss", ["SeesawLoss", "WeightedCrossEntropyLoss"])
def test_retinanet_refuses_losses_that_cannot_serve_it(loss, heads_weights_file):
    with pytest.raises(ValueError, match=f"loss {loss} cannot serve the dense head BalancedRetinaNet"):
        build_model(cfg_of(TINY_RETINANET, loss, heads_weights_file))


@pytest.mark.slow
def test_retinanet_refuses_per_box_weights():
    model = build_model(cfg_of(TINY_RETINANET, "EqualizedFocalLoss"))
    with pytest.raises(ValueError, match="per-box weights"):
        train_step(model, d2_batch(weights=[[0.0, 1.0], [1.0, 1.0]]))


def test_box_head_refuses_a_dense_loss_naming_it_and_the_head():
    with pytest.raises(
        ValueError, match="DETBALANCE.LOSS is 'FocalLoss', which cannot serve the box head BalancedROIHeads"
    ):
        build_model(cfg_of(TINY_MASK, "FocalLoss"))


# ---------------------------------------------------------------------------------------------- full size


@pytest.mark.slow
@pytest.mark.parametrize("path", FULL_CONFIGS, ids=lambda p: p.name)
def test_full_size_config_builds_and_trains_a_step(path, tmp_path):
    cfg = get_config(
        path,
        [
            "MODEL.DEVICE",
            "cpu",
            "MODEL.WEIGHTS",
            "",
            "MODEL.RESNETS.NORM",
            "BN",
            "MODEL.PIXEL_STD",
            "[57.4, 57.1, 58.4]",
            "MODEL.BACKBONE.FREEZE_AT",
            "0",
            "DETBALANCE.WEIGHTS_FILE",
            str(write_weights_file(tmp_path / "w.json", 1203)),
        ],
    )
    assert cfg.TEST.DETECTIONS_PER_IMAGE == 300
    assert "lvis_v1_train" in cfg.DATASETS.TRAIN
    assert cfg.DATALOADER.SAMPLER_TRAIN == "RepeatFactorTrainingSampler" and cfg.DATALOADER.REPEAT_THRESHOLD == 1e-3
    if cfg.MODEL.META_ARCHITECTURE == "BalancedRetinaNet":
        cfg.MODEL.RETINANET.TOPK_CANDIDATES_TEST = 100
        assert cfg.MODEL.RETINANET.SCORE_THRESH_TEST == 1e-4 and cfg.MODEL.RETINANET.NUM_CLASSES == 1203
    else:
        assert cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST == 1e-4 and cfg.MODEL.ROI_HEADS.NUM_CLASSES == 1203
        cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = 200
        cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 64
    model = build_model(cfg)
    inputs = d2_batch(num_images=1, masks=bool(cfg.MODEL.MASK_ON))
    for item in inputs:
        item["instances"].gt_classes = torch.tensor([5, 1000])
    losses = train_step(model, inputs)
    assert all(torch.isfinite(v) for v in losses.values()), losses


# ---------------------------------------------------------------------------------------------- FCOS (LazyConfig)

LAZY_FCOS = D2_HEADS / "lazy_fcos_R_50_FPN_1x_lvis_efl.py"


def tiny_fcos(cls_loss_name="EqualizedFocalLoss", weights_file=None):
    """The LazyConfig FCOS shrunk for CPU: ResNet-18, 64-channel FPN and head, BN, 8 classes."""
    from detectron2.config import LazyConfig
    from detectron2.layers import ShapeSpec

    model = LazyConfig.load(str(LAZY_FCOS)).model
    model.num_classes = NUM_CLASSES
    model.test_score_thresh = 0.05
    model.pixel_std = [57.4, 57.1, 58.4]
    bottom_up = model.backbone.bottom_up
    bottom_up.freeze_at = 0
    bottom_up.stem.norm = "BN"
    del bottom_up.stages.stride_in_1x1  # ResNet-18's basic blocks have no 1x1 convolution
    bottom_up.stages.update(depth=18, norm="BN")
    model.backbone.out_channels = 64
    model.backbone.top_block.in_channels = 64
    model.head.update(input_shape=[ShapeSpec(channels=64)] * 5, conv_dims=[64, 64])
    model.cls_loss.name = cls_loss_name
    model.cls_loss.hyper_params = {"gamma": 2.0, "alpha": 0.25} if cls_loss_name == "FocalLoss" else {}
    model.cls_loss.weights_file = str(weights_file) if weights_file else None
    return model


@pytest.mark.slow
def test_fcos_focal_loss_equals_detectron2s_fcos():
    from detectron2.config import instantiate
    from detectron2.modeling.meta_arch.fcos import FCOS

    from detbalance.detectron2 import BalancedFCOS

    config = tiny_fcos("FocalLoss")
    ours = instantiate(config)
    assert isinstance(ours, BalancedFCOS) and isinstance(ours.cls_loss, FocalLoss)
    config._target_ = FCOS
    del config.cls_loss
    config.focal_loss_alpha, config.focal_loss_gamma = 0.25, 2.0
    stock = instantiate(config)
    stock.load_state_dict(ours.state_dict())
    inputs = d2_batch()
    ours.train(), stock.train()
    with EventStorage(0):
        ours_losses, stock_losses = ours(inputs), stock(inputs)
    assert set(ours_losses) == set(stock_losses)
    for key in ours_losses:
        torch.testing.assert_close(ours_losses[key], stock_losses[key])


@pytest.mark.slow
def test_fcos_trains_equalized_focal_loss_and_refuses_seesaw(heads_weights_file):
    from detectron2.config import instantiate

    model = instantiate(tiny_fcos("EqualizedFocalLoss"))
    losses = train_step(model, d2_batch())
    assert all(torch.isfinite(v) for v in losses.values()) and float(model.cls_loss.neg_grad.sum()) > 0
    for output in predict(model, d2_batch()):
        assert bool((output["instances"].pred_classes < NUM_CLASSES).all())
    with pytest.raises(ValueError, match="loss SeesawLoss cannot serve the dense head BalancedFCOS"):
        instantiate(tiny_fcos("SeesawLoss", heads_weights_file))


@pytest.mark.slow
def test_full_size_lazy_fcos_builds_and_trains_a_step():
    from detectron2.config import LazyConfig, instantiate

    config = LazyConfig.load(str(LAZY_FCOS))
    assert config.model.num_classes == 1203 and config.model.max_detections_per_image == 300
    assert config.dataloader.train.sampler.repeat_thresh == 0.001
    config.model.backbone.bottom_up.stem.norm = "BN"
    config.model.backbone.bottom_up.stages.norm = "BN"
    config.model.pixel_std = [57.4, 57.1, 58.4]
    model = instantiate(config.model)
    inputs = d2_batch(num_images=1)
    inputs[0]["instances"].gt_classes = torch.tensor([5, 1000])
    losses = train_step(model, inputs)
    assert all(torch.isfinite(v) for v in losses.values()), losses
