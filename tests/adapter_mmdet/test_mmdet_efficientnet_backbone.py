"""The ImageNet-pretrained EfficientNet-Lite0 as an MMDetection backbone (``DBEfficientNetLite``): built from the
repository's config, stage outputs with ResNet's strides, the weights loaded by ``init_weights`` from the installed
package (or a file), ``frozen_stages`` and ``norm_eval`` honoured, and a real Faster R-CNN trains a few steps and
predicts on CPU."""

from __future__ import annotations

import mmcv.ops  # noqa: F401  (compiled ops)
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from torch import nn

from detbalance.backbones import EfficientNetLite0, pretrained_path
from detbalance.mmdet import DBEfficientNetLite
from helpers import MMDET_CONFIGS

CONFIG = MMDET_CONFIGS / "tiny" / "faster-rcnn_efficientnet-lite0_fpn_tiny.py"


def test_the_config_builds_the_backbone_by_name():
    cfg = Config.fromfile(str(CONFIG))
    assert cfg.model.backbone.type == "DBEfficientNetLite"
    assert cfg.model.data_preprocessor.bgr_to_rgb and cfg.model.data_preprocessor.std == [128.0] * 3
    backbone = MODELS.build(cfg.model.backbone)
    assert isinstance(backbone, DBEfficientNetLite)
    outs = backbone(torch.zeros(2, 3, 128, 128))
    assert [tuple(o.shape[1:]) for o in outs] == [(24, 32, 32), (40, 16, 16), (112, 8, 8), (320, 4, 4)]
    assert [o.shape[1] for o in outs] == list(cfg.model.neck.in_channels)


def test_init_weights_loads_the_package_file_or_a_given_one(tmp_path):
    state = torch.load(pretrained_path(), map_location="cpu", weights_only=True)
    backbone = DBEfficientNetLite()
    assert not torch.equal(backbone.net._conv_stem.weight, state["_conv_stem.weight"])
    backbone.init_weights()
    assert torch.equal(backbone.net._conv_stem.weight, state["_conv_stem.weight"])
    assert torch.equal(backbone.net._blocks[12]._bn1.running_mean, state["_blocks.12._bn1.running_mean"])
    other = EfficientNetLite0()
    torch.save(other.state_dict(), tmp_path / "mine.pth")
    mine = DBEfficientNetLite(init_cfg=dict(type="Pretrained", checkpoint=str(tmp_path / "mine.pth")))
    mine.init_weights()
    assert torch.equal(mine.net._conv_stem.weight, other._conv_stem.weight)
    untouched = DBEfficientNetLite(init_cfg=None)
    before = untouched.net._conv_stem.weight.clone()
    untouched.init_weights()
    assert torch.equal(untouched.net._conv_stem.weight, before)


def test_frozen_stages_and_norm_eval():
    backbone = DBEfficientNetLite(frozen_stages=2, norm_eval=True, init_cfg=None)
    backbone.train()
    net = backbone.net
    trainable = [any(p.requires_grad for p in block.parameters()) for block in net._blocks]
    assert trainable == [False] * 3 + [True] * 13  # stem, stage 0 (1 block), stage 1 (2 blocks)
    assert not net._conv_stem.weight.requires_grad
    assert all(not m.training for m in backbone.modules() if isinstance(m, nn.BatchNorm2d))
    free = DBEfficientNetLite(frozen_stages=-1, norm_eval=False, init_cfg=None).train()
    assert all(m.training for m in free.modules() if isinstance(m, nn.BatchNorm2d))
    assert all(p.requires_grad for p in free.parameters())


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match=r"out_indices=\(4, 2\)"):
        DBEfficientNetLite(out_indices=(4, 2), init_cfg=None)
    with pytest.raises(ValueError, match="frozen_stages=9"):
        DBEfficientNetLite(frozen_stages=9, init_cfg=None)
    with pytest.raises(ValueError, match="init_cfg=.*Kaiming"):
        DBEfficientNetLite(init_cfg=dict(type="Kaiming"))


@pytest.mark.slow
def test_faster_rcnn_with_the_backbone_trains_and_predicts(batch):
    cfg = Config.fromfile(str(CONFIG))
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    net = model.backbone.net
    assert torch.equal(
        net._conv_stem.weight, torch.load(pretrained_path(), map_location="cpu", weights_only=True)["_conv_stem.weight"]
    )
    frozen_before = net._blocks[1]._expand_conv.weight.clone()
    trained_before = net._blocks[10]._project_conv.weight.clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    num_classes = cfg.model.roi_head.bbox_head.num_classes
    model.train()
    totals = []
    for _ in range(4):
        data = model.data_preprocessor(batch(num_classes), True)
        loss, _ = model.parse_losses(model(**data, mode="loss"))
        assert torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(loss.item())
    assert torch.equal(net._blocks[1]._expand_conv.weight, frozen_before)
    assert not torch.equal(net._blocks[10]._project_conv.weight, trained_before)
    assert totals[-1] < totals[0]
    model.eval()
    with torch.no_grad():
        results = model.test_step(model.data_preprocessor(batch(num_classes), False))
    assert len(results) == 2 and len(results[0].pred_instances) > 0
