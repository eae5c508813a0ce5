"""The ImageNet-pretrained EfficientNet-Lite0 as a Detectron2 backbone: built by name from the repository's config,
ResNet's feature names and strides under detectron2's FPN, the weights loaded, FREEZE_AT and FrozenBN honoured,
and a real Faster R-CNN trains a few steps and predicts on CPU."""

from __future__ import annotations

import pytest
import torch
from d2_helpers import NUM_CLASSES, synthetic_batch
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, build_backbone, build_model
from detectron2.utils.events import EventStorage

from detbalance.backbones import pretrained_path
from detbalance.detectron2 import EfficientNetLiteBackbone, get_config
from helpers import D2_CONFIGS

CONFIG = D2_CONFIGS / "faster_rcnn_EfficientNetLite0_FPN_tiny_cpu.yaml"


def cfg_of(*opts):
    return get_config(CONFIG, list(opts))


def test_both_builders_are_registered_and_the_config_names_the_fpn_one():
    assert "build_efficientnet_lite0_backbone" in BACKBONE_REGISTRY
    assert "build_efficientnet_lite0_fpn_backbone" in BACKBONE_REGISTRY
    cfg = cfg_of()
    assert cfg.MODEL.BACKBONE.NAME == "build_efficientnet_lite0_fpn_backbone"
    assert cfg.INPUT.FORMAT == "RGB"
    assert list(cfg.MODEL.PIXEL_MEAN) == [127.0] * 3 and list(cfg.MODEL.PIXEL_STD) == [128.0] * 3


def test_fpn_outputs_have_resnet_strides():
    backbone = build_backbone(cfg_of())
    bottom_up = backbone.bottom_up
    assert isinstance(bottom_up, EfficientNetLiteBackbone)
    shapes = bottom_up.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        "res3": (40, 8),
        "res4": (112, 16),
        "res5": (320, 32),
    }
    features = backbone(torch.zeros(2, 3, 128, 128))
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "p3": (2, 128, 16, 16),
        "p4": (2, 128, 8, 8),
        "p5": (2, 128, 4, 4),
        "p6": (2, 128, 2, 2),
    }


def test_all_four_levels_without_fpn():
    cfg = cfg_of(
        "MODEL.BACKBONE.NAME",
        "build_efficientnet_lite0_backbone",
        "MODEL.EFFICIENTNET.OUT_FEATURES",
        "['res2', 'res3', 'res4', 'res5']",
    )
    backbone = build_backbone(cfg)
    out = backbone(torch.zeros(1, 3, 64, 96))
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == {
        "res2": (24, 16, 24),
        "res3": (40, 8, 12),
        "res4": (112, 4, 6),
        "res5": (320, 2, 3),
    }


def test_the_imagenet_weights_are_loaded():
    state = torch.load(pretrained_path(), map_location="cpu", weights_only=True)
    net = build_backbone(cfg_of()).bottom_up.net
    assert torch.equal(net._conv_stem.weight, state["_conv_stem.weight"])
    assert torch.equal(net._blocks[15]._project_conv.weight, state["_blocks.15._project_conv.weight"])
    bn = net._blocks[9]._bn1  # FrozenBN keeps the statistics and eps of the file
    assert isinstance(bn, FrozenBatchNorm2d) and bn.eps == 1e-3
    assert torch.equal(bn.running_var, state["_blocks.9._bn1.running_var"])
    random = build_backbone(cfg_of("MODEL.EFFICIENTNET.PRETRAINED", "False")).bottom_up.net
    assert not torch.equal(random._conv_stem.weight, state["_conv_stem.weight"])


@pytest.mark.parametrize("freeze_at, frozen_blocks", [(0, 0), (1, 0), (2, 3), (3, 5), (5, 16)])
def test_freeze_at_freezes_the_stem_and_stages(freeze_at, frozen_blocks):
    cfg = cfg_of("MODEL.BACKBONE.FREEZE_AT", str(freeze_at), "MODEL.EFFICIENTNET.NORM", "BN")
    net = build_backbone(cfg).bottom_up.net
    assert net._conv_stem.weight.requires_grad == (freeze_at == 0)
    trainable = [any(p.requires_grad for p in block.parameters()) for block in net._blocks]
    assert trainable == [False] * frozen_blocks + [True] * (16 - frozen_blocks)
    for i, block in enumerate(net._blocks):  # "BN": trained BatchNorm only where the stage is not frozen
        assert isinstance(block._bn2, FrozenBatchNorm2d) == (i < frozen_blocks)


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="MODEL.EFFICIENTNET.NORM='GN'"):
        build_backbone(cfg_of("MODEL.EFFICIENTNET.NORM", "GN"))
    with pytest.raises(ValueError, match="OUT_FEATURES"):
        build_backbone(
            cfg_of(
                "MODEL.EFFICIENTNET.OUT_FEATURES",
                "['res6']",
                "MODEL.BACKBONE.NAME",
                "build_efficientnet_lite0_backbone",
            )
        )
    with pytest.raises(ValueError, match="FREEZE_AT=7"):
        build_backbone(cfg_of("MODEL.BACKBONE.FREEZE_AT", "7"))
    with pytest.raises(ValueError, match="input channels=1"):
        BACKBONE_REGISTRY.get("build_efficientnet_lite0_backbone")(cfg_of(), ShapeSpec(channels=1))


@pytest.mark.slow
def test_faster_rcnn_with_the_backbone_trains_and_predicts():
    cfg = cfg_of(  # detectron2's own head and softmax CE: only the backbone is detbalance's here
        "MODEL.ROI_HEADS.NAME",
        "StandardROIHeads",
        "MODEL.ROI_HEADS.NUM_CLASSES",
        str(NUM_CLASSES),
        "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
        "0.0",
    )
    torch.manual_seed(0)
    model = build_model(cfg)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    frozen_before = model.backbone.bottom_up.net._blocks[0]._depthwise_conv.weight.clone()
    trained_before = model.backbone.bottom_up.net._blocks[10]._project_conv.weight.clone()
    batch = synthetic_batch()
    model.train()
    totals = []
    with EventStorage(0):
        for _ in range(4):
            losses = model(batch)
            total = sum(losses.values())
            assert torch.isfinite(total)
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            totals.append(float(total))
    net = model.backbone.bottom_up.net
    assert torch.equal(net._blocks[0]._depthwise_conv.weight, frozen_before)  # FREEZE_AT 2
    assert not torch.equal(net._blocks[10]._project_conv.weight, trained_before)
    assert totals[-1] < totals[0]
    model.eval()
    with torch.no_grad():
        out = model(batch)
    assert len(out) == 2 and len(out[0]["instances"]) > 0
    assert out[0]["instances"].pred_classes.max() < NUM_CLASSES
