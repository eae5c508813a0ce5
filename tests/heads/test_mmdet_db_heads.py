"""MMDetection: the DB heads in place of process-wide hooks. The DB RoI heads start every stage's classifier at its
loss's initial bias (MMDetection's own RoI heads leave it at the head's, with a warning); the DB dense heads check
the number of classes of their loss when they are built."""

from __future__ import annotations

import mmcv.ops  # noqa: F401  (compiled ops: `make setup` builds them; their absence is an error)
import pytest
import torch
from heads_helpers import MMDET_CONFIGS, NUM_CLASSES
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules

import detbalance.mmdet  # noqa: F401  (registers the DB* components)
from helpers import mmdet_config

register_all_modules(init_default_scope=True)

TINY = MMDET_CONFIGS / "tiny"


def test_every_cascade_stage_starts_at_its_loss_initial_bias(heads_weights_file):
    cfg = mmdet_config(TINY / "cascade-rcnn_r18_fpn_tiny_seesaw.py")
    loss_cls = dict(type="DBEqualizationLoss", num_classes=NUM_CLASSES, class_freq=str(heads_weights_file))
    for head in cfg.model.roi_head.bbox_head:
        head.loss_cls = loss_cls
    model = MODELS.build(cfg.model)
    heads = model.roi_head.bbox_head
    for head in heads:
        torch.testing.assert_close(head.fc_cls.bias.detach(), head.loss_cls.core.initial_bias())
        assert float(head.fc_cls.bias.detach()[0]) < -6  # prior 0.001
    with torch.no_grad():
        for head in heads:
            head.fc_cls.bias.zero_()
    model.init_weights()
    for head in heads:
        torch.testing.assert_close(head.fc_cls.bias.detach(), head.loss_cls.core.initial_bias())


def test_mmdetections_own_roi_head_keeps_its_bias_and_says_so(heads_weights_file):
    cfg = mmdet_config(TINY / "faster-rcnn_r18_fpn_tiny_eql.py", heads_weights_file)
    cfg.model.roi_head.type = "StandardRoIHead"
    model = MODELS.build(cfg.model)
    with pytest.warns(UserWarning, match="DBEqualizationLoss: the box classifier starts at its head's bias 0"):
        model.init_weights()
    assert model.roi_head.bbox_head.fc_cls.bias.eq(0).all()


def test_softmax_loss_in_mmdetections_own_roi_head_does_not_warn(recwarn):
    cfg = mmdet_config(TINY / "faster-rcnn_r18_fpn_tiny_seesaw.py")
    cfg.model.roi_head.type = "StandardRoIHead"
    MODELS.build(cfg.model).init_weights()
    assert not [w for w in recwarn if "box classifier starts" in str(w.message)]


@pytest.mark.parametrize("config", ["retinanet_r18_fpn_tiny_efl.py", "fcos_r18_fpn_tiny_efl.py"])
def test_dense_head_refuses_a_loss_built_for_another_number_of_classes(config):
    cfg = mmdet_config(TINY / config)
    cfg.model.bbox_head.loss_cls.num_classes = NUM_CLASSES + 1
    with pytest.raises(
        ValueError,
        match=rf"loss EqualizedFocalLoss of DB\w+Head \(loss_cls DBEqualizedFocalLoss\) was built for "
        rf"num_classes={NUM_CLASSES + 1}, expected {NUM_CLASSES} \(bbox_head.num_classes\)",
    ):
        MODELS.build(cfg.model)
