"""Detectron2 (real, v0.6 as installed by `make setup`) trains and predicts a tiny Faster R-CNN on CPU."""

from __future__ import annotations

import pytest
import torch

from detbalance.detectron2 import _compat  # noqa: F401  (before any detectron2 import)

# isort: split
from detectron2 import model_zoo
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage


def tiny_cfg():
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.PIXEL_STD = [57.4, 57.1, 58.4]
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.BACKBONE.FREEZE_AT = 0
    cfg.MODEL.FPN.OUT_CHANNELS = 64
    cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN = cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = 200
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 50
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 32
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 128
    cfg.INPUT.MIN_SIZE_TEST = 128
    cfg.INPUT.MAX_SIZE_TEST = 128
    return cfg


def batch():
    g = torch.Generator().manual_seed(0)
    image = (torch.rand(3, 128, 128, generator=g) * 255).round()
    image[:, 20:60, 30:70] = 230.0
    image[:, 80:110, 70:120] = 20.0
    inst = Instances((128, 128))
    inst.gt_boxes = Boxes(torch.tensor([[30.0, 20.0, 70.0, 60.0], [70.0, 80.0, 120.0, 110.0]]))
    inst.gt_classes = torch.tensor([0, 2])
    return [{"image": image, "height": 128, "width": 128, "instances": inst}]


@pytest.mark.slow
def test_train_steps_reduce_loss_and_predict():
    model = build_model(tiny_cfg())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    inputs = batch()
    totals = []
    with EventStorage(0):
        model.train()
        for _ in range(6):
            losses = model(inputs)
            total = sum(losses.values())
            assert torch.isfinite(total), losses
            optimizer.zero_grad()
            total.backward()
            optimizer.step()
            totals.append(float(total.detach()))
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"}
    assert totals[-1] < totals[0], totals
    model.eval()
    with torch.no_grad():
        (out,) = model(inputs)
    det = out["instances"]
    assert det.image_size == (128, 128)
    assert det.scores.shape[0] == det.pred_boxes.tensor.shape[0] == det.pred_classes.shape[0]
    assert bool(((det.scores >= 0) & (det.scores <= 1)).all())
    assert det.pred_classes.numel() == 0 or int(det.pred_classes.max()) < 3
