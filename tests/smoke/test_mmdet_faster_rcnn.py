"""MMDetection 3.x (real, with mmcv's compiled ops) trains and predicts a tiny Faster R-CNN on CPU."""

from __future__ import annotations

import os

import mmdet
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData

PACKAGED = os.path.join(
    os.path.dirname(mmdet.__file__), ".mim", "configs", "faster_rcnn", "faster-rcnn_r50_fpn_1x_coco.py"
)


def tiny_model_cfg():
    cfg = Config.fromfile(PACKAGED).model
    cfg.backbone.update(depth=18, init_cfg=None, norm_eval=False, frozen_stages=-1)
    cfg.neck.update(in_channels=[64, 128, 256, 512], out_channels=64)
    cfg.rpn_head.update(in_channels=64, feat_channels=64)
    cfg.roi_head.bbox_roi_extractor.out_channels = 64
    cfg.roi_head.bbox_head.update(in_channels=64, fc_out_channels=128, num_classes=3)
    cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=50)
    cfg.train_cfg.rcnn.sampler.num = 32
    cfg.test_cfg.rpn.update(nms_pre=200, max_per_img=50)
    return cfg


def batch():
    g = torch.Generator().manual_seed(0)
    image = (torch.rand(3, 128, 128, generator=g) * 255).to(torch.uint8)
    image[:, 20:60, 30:70] = 230
    image[:, 80:110, 70:120] = 20
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(128, 128),
            ori_shape=(128, 128),
            scale_factor=(1.0, 1.0),
            pad_shape=(128, 128),
            batch_input_shape=(128, 128),
        )
    )
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[30.0, 20.0, 70.0, 60.0], [70.0, 80.0, 120.0, 110.0]]), labels=torch.tensor([0, 2])
    )
    return {"inputs": [image], "data_samples": [sample]}


@pytest.mark.slow
def test_train_steps_reduce_loss_and_predict():
    register_all_modules()
    torch.manual_seed(0)  # proposal sampling is random; the fixed batch makes the loss curve reproducible
    model = MODELS.build(tiny_model_cfg())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    totals = []
    model.train()
    for _ in range(8):
        data = model.data_preprocessor(batch(), True)
        losses = model(**data, mode="loss")
        total, log_vars = model.parse_losses(losses)
        assert torch.isfinite(total), log_vars
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(float(total.detach()))
    assert {"loss_cls", "loss_bbox", "loss_rpn_cls", "loss_rpn_bbox"} <= set(log_vars)
    # single steps are noisy (RoI sampling); the last three steps are on average well below the first
    assert sum(totals[-3:]) / 3 < 0.7 * totals[0], totals
    model.eval()
    with torch.no_grad():
        (result,) = model(**model.data_preprocessor(batch(), False), mode="predict")
    pred = result.pred_instances
    assert pred.bboxes.shape[1] == 4 and pred.bboxes.shape[0] == pred.scores.shape[0] == pred.labels.shape[0]
    assert bool(((pred.scores >= 0) & (pred.scores <= 1)).all())
    assert pred.labels.numel() == 0 or int(pred.labels.max()) < 3


def test_mmcv_compiled_ops_are_used():
    from mmcv.ops import RoIAlign, nms

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    dets, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    feats = torch.arange(16.0).view(1, 1, 4, 4)
    out = RoIAlign((1, 1), spatial_scale=1.0, sampling_ratio=1, aligned=False)(
        feats, torch.tensor([[0, 0, 0, 2, 2]], dtype=torch.float)
    )
    assert out.shape == (1, 1, 1, 1) and out.item() == 5.0  # one sample at the box centre (1, 1): value 4 + 1
