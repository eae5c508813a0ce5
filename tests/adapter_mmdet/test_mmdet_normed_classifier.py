"""The Seesaw configs as MMDetection ships them (``cls_predictor_cfg=dict(type='NormedLinear', tempearture=20)``)
build MMDetection's own NormedLinear with K + 2 outputs for ``DBSeesawLoss``, and detbalance's framework-free
``NormedLinear`` (Detectron2's classifier) computes exactly what MMDetection's does."""

from __future__ import annotations

import mmcv.ops  # noqa: F401  (compiled ops)
import torch
from mmdet.models.layers import NormedLinear as MMDetNormedLinear
from mmdet.registry import MODELS
from mmengine.config import Config

import detbalance.mmdet  # noqa: F401  (registers DBSeesawLoss)
from detbalance.layers import NormedLinear
from helpers import MMDET_CONFIGS


def test_same_values_and_gradients_as_mmdetections_normed_linear():
    torch.manual_seed(0)
    theirs = MMDetNormedLinear(16, 10, tempearture=20).double()
    ours = NormedLinear(16, 10, temperature=20.0).double()
    ours.load_state_dict(theirs.state_dict())
    with torch.no_grad():
        ours.bias.normal_()
        theirs.bias.copy_(ours.bias)
    x = torch.randn(12, 16, dtype=torch.float64)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    za, zb = ours(a), theirs(b)
    torch.testing.assert_close(za, zb, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(za)
    za.backward(grad)
    zb.backward(grad)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-10, atol=1e-12)


def test_tiny_seesaw_config_as_shipped_builds_the_normed_classifier(batch):
    cfg = Config.fromfile(str(MMDET_CONFIGS / "tiny" / "faster-rcnn_r18_fpn_tiny_seesaw-normed.py"))
    model = MODELS.build(cfg.model)
    head = model.roi_head.bbox_head
    k = head.num_classes
    assert isinstance(head.fc_cls, MMDetNormedLinear) and head.fc_cls.out_features == k + 2
    model.train()
    data = model.data_preprocessor(batch(k), True)
    loss, _ = model.parse_losses(model(**data, mode="loss"))
    loss.backward()
    assert torch.isfinite(loss) and head.fc_cls.weight.grad is not None
