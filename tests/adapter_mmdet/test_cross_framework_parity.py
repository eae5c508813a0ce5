"""One normalisation in both frameworks: the same batch (logits, labels, per-box weights, statistics) gives the same
``loss_cls``, gradient and loss state through Detectron2's ``BalancedFastRCNNOutputLayers.losses`` and
MMDetection's ``Shared2FCBBoxHead.loss``, for every loss, over several steps; a box of weight 0 is left out of
the denominator in both."""

from __future__ import annotations

import mmcv.ops  # noqa: F401,E402  (compiled ops: `make setup` builds them; their absence is an error)
import pytest
import torch
from detectron2.layers import ShapeSpec  # noqa: E402
from detectron2.structures import Boxes, Instances  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402

from detbalance import losses as core  # noqa: E402
from detbalance.detectron2 import BalancedFastRCNNOutputLayers, get_config  # noqa: E402
from helpers import D2_TINY_CONFIG as D2_TINY

K = 8  # the tiny detectron2 config's NUM_CLASSES
PER_IMAGE = 16
CHANNELS = 16


def build_pair(name: str, weights_path: str):
    """The Detectron2 predictor and the MMDetection bbox head for loss ``name``, statistics from one file."""
    cfg = get_config(D2_TINY, ["DETBALANCE.LOSS", name, "DETBALANCE.WEIGHTS_FILE", weights_path])
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == K
    d2 = BalancedFastRCNNOutputLayers(cfg, ShapeSpec(channels=CHANNELS))
    loss_cls = dict(type=f"DB{name}", num_classes=K)
    stats_arg = MODELS.get(f"DB{name}").stats_arg
    if stats_arg is not None:
        loss_cls[stats_arg] = weights_path
    mm = MODELS.build(
        dict(
            type="Shared2FCBBoxHead",
            in_channels=CHANNELS,
            fc_out_channels=32,
            roi_feat_size=7,
            num_classes=K,
            bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0] * 4, target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=loss_cls,
            loss_bbox=dict(type="L1Loss", loss_weight=1.0),
        )
    )
    if name in ("FederatedLoss", "BAGSLoss"):  # same class / "others" sampling in both
        mm.loss_cls.core.generator.set_state(d2.cls_loss.generator.get_state())
    return d2, mm


def step_batch(step: int):
    """Two images of labelled proposals; image 0's foreground boxes weigh 0, 2, 1, ... (0 drops a box)."""
    g = torch.Generator().manual_seed(100 + step)
    proposals, weights = [], []
    for i in range(2):
        p = Instances((128, 128))
        xy = torch.rand(PER_IMAGE, 2, generator=g) * 80
        p.proposal_boxes = Boxes(torch.cat([xy, xy + 8 + torch.rand(PER_IMAGE, 2, generator=g) * 30], dim=1))
        p.gt_boxes = Boxes(p.proposal_boxes.tensor + torch.randn(PER_IMAGE, 4, generator=g))
        labels = torch.randint(0, K + 1, (PER_IMAGE,), generator=g)
        labels[:6] = K  # background-heavy, as after RoI sampling
        p.gt_classes = labels
        box_weight = torch.tensor([0.0, 2.0, 1.0, 0.5] * (PER_IMAGE // 4))
        if i == 0:
            p.gt_weights = box_weight
        proposals.append(p)
        foreground = labels < K
        weights.append(torch.where(foreground, box_weight, torch.ones(PER_IMAGE)) if i == 0 else torch.ones(PER_IMAGE))
    return proposals, torch.cat(weights), g


@pytest.mark.parametrize("name", sorted(core.LOSSES))
def test_same_batch_same_loss_cls_in_detectron2_and_mmdetection(name, weights_file):
    d2, mm = build_pair(name, str(weights_file(K)))
    d2.train()
    mm.train()
    for step in range(3):
        proposals, label_weights, g = step_batch(step)
        labels = torch.cat([p.gt_classes for p in proposals])
        rows = labels.shape[0]
        assert bool((label_weights == 0).any())  # the denominator test needs a removed box
        logits = torch.randn(rows, d2.cls_loss.num_logits, generator=g, dtype=torch.float64) * 2
        deltas = torch.randn(rows, 4 * K, generator=g)

        x_d2 = logits.clone().requires_grad_(True)
        with EventStorage(step):
            loss_d2 = d2.losses((x_d2, deltas), proposals)["loss_cls"]
        x_mm = logits.clone().requires_grad_(True)
        rois = torch.cat(
            [
                torch.cat([torch.full((PER_IMAGE, 1), float(i)), p.proposal_boxes.tensor], dim=1)
                for i, p in enumerate(proposals)
            ]
        )
        out = mm.loss(x_mm, deltas, rois, labels, label_weights, torch.zeros(rows, 4), torch.ones(rows, 4))
        loss_mm = out["loss_cls"]

        torch.testing.assert_close(loss_d2, loss_mm, rtol=1e-6, atol=1e-9)
        if name not in ("SeesawLoss", "FederatedLoss", "BAGSLoss"):  # a further call would move counts / sampler
            # the denominator: non-ignored proposals with weight > 0 (MMDetection's avg_factor), not R
            total = d2.cls_loss(logits, labels, sample_weight=label_weights, reduction_override="sum")
            torch.testing.assert_close(loss_d2.detach(), total / int((label_weights > 0).sum()), rtol=1e-6, atol=1e-9)
        loss_d2.backward()
        loss_mm.backward()
        torch.testing.assert_close(x_d2.grad, x_mm.grad, rtol=1e-6, atol=1e-9)
        for key, value in d2.cls_loss.state_dict().items():
            torch.testing.assert_close(value, mm.loss_cls.core.state_dict()[key], rtol=1e-6, atol=1e-9)
