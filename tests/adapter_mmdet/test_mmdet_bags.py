"""Balanced Group Softmax as MMDetection's ``loss_cls`` (``DBBAGSLoss``): parity with the core loss, the bbox head
protocol (channels, activation, accuracy), the tiny Faster R-CNN trained a step and predicting with the groups'
scores, and a model built without its weights file that takes the groups from its checkpoint."""

from __future__ import annotations

import mmcv.ops  # noqa: F401,E402  (compiled ops: `make setup` builds them; their absence is an error)
import pytest
import torch
from mmdet.registry import MODELS  # noqa: E402
from mmengine.config import Config, ConfigDict  # noqa: E402
from mmengine.runner.checkpoint import load_state_dict  # noqa: E402

from detbalance import losses as core  # noqa: E402
from helpers import INSTANCE_COUNTS, MMDET_TINY_CONFIG

K = 8  # the tiny config's
#: groups of INSTANCE_COUNTS (1500 .. 12) with the paper's edges; group 1 (< 10) is empty
GROUPS = [4, 3, 3, 3, 2, 2, 2, 2]
R = 37


def build(**settings):
    return MODELS.build(dict(type="DBBAGSLoss", num_classes=K, **settings))


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(R, K + 6, generator=g, dtype=torch.float64) * 2).requires_grad_()
    labels = torch.randint(0, K + 1, (R,), generator=g)
    labels[:8] = K
    label_weights = torch.rand(R, generator=g, dtype=torch.float64) * 2
    label_weights[3] = 0.0
    return logits, labels, label_weights


@pytest.mark.parametrize("reduction", [None, "mean", "sum", "none"])
@pytest.mark.parametrize("avg_factor", [None, 23.0])
def test_parity_with_core(reduction, avg_factor):
    loss = build(samples_per_class=INSTANCE_COUNTS, others_sample_ratio=0.5, seed=5, loss_weight=2.5)
    logits, labels, label_weights = inputs()
    ref_logits = logits.detach().clone().requires_grad_()
    got = loss(logits, labels, label_weights, avg_factor=avg_factor, reduction_override=reduction)
    want = 2.5 * core.bags_loss(
        ref_logits,
        labels,
        INSTANCE_COUNTS,
        others_sample_ratio=0.5,
        generator=torch.Generator().manual_seed(5),
        sample_weight=label_weights,
        normalizer=avg_factor,
        reduction=reduction or "mean",
    )
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    got.sum().backward()
    want.sum().backward()
    torch.testing.assert_close(logits.grad, ref_logits.grad, rtol=1e-12, atol=1e-12)


def test_bbox_head_protocol(weights_file):
    loss = build(samples_per_class=str(weights_file(K)))
    assert loss.core.class_group.tolist() == GROUPS
    assert loss.get_cls_channels(K) == K + 1 + 5
    logits, labels, _ = inputs(seed=1)
    torch.testing.assert_close(loss.get_activation(logits), core.bags_scores(logits.detach(), torch.tensor(GROUPS)))
    assert 0 <= float(loss.get_accuracy(logits, labels)["acc"]) <= 100
    assert build(samples_per_class=INSTANCE_COUNTS, bin_edges=[50, 500]).get_cls_channels(K) == K + 1 + 4
    with pytest.raises(ValueError, match="samples_per_class has 3 entries but num_classes=8 needs 8"):
        build(samples_per_class=[1, 2, 3])
    with pytest.raises(ValueError, match="strictly increasing, got 10 after 100"):
        build(samples_per_class=INSTANCE_COUNTS, bin_edges=[100, 10])
    with pytest.raises(TypeError, match="DBBAGSLoss.*missing a required argument: 'samples_per_class'"):
        build()


def tiny_model_cfg(samples_per_class, **settings):
    cfg = Config.fromfile(str(MMDET_TINY_CONFIG))
    cfg.model.roi_head.bbox_head.loss_cls = dict(
        type="DBBAGSLoss", num_classes=K, samples_per_class=samples_per_class, **settings
    )
    return cfg.model


@pytest.mark.slow
def test_tiny_faster_rcnn_trains_and_predicts(weights_file, batch):
    model = MODELS.build(tiny_model_cfg(str(weights_file(K))))
    head = model.roi_head.bbox_head
    assert head.fc_cls.out_features == K + 6 and head.loss_cls.core.class_group.tolist() == GROUPS

    model.train()
    losses = model(**model.data_preprocessor(batch(K), True), mode="loss")
    loss, log_vars = model.parse_losses(losses)
    assert torch.isfinite(loss), log_vars
    assert float(losses["loss_cls"].detach()) > 0 and 0 <= float(losses["acc"]) <= 100
    loss.backward()
    grad = head.fc_cls.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(batch(K, seed=1), False), mode="predict")
    assert len(results) == 2
    for result in results:
        pred = result.pred_instances
        assert len(pred.scores) == len(pred.labels) == len(pred.bboxes)
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all() and ((pred.labels >= 0) & (pred.labels < K)).all()


def test_predict_scores_with_the_groups(weights_file):
    head = MODELS.build(tiny_model_cfg(str(weights_file(K)))).eval().roi_head.bbox_head
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(40, 2, generator=g) * 80
    rois = torch.cat([torch.zeros(40, 1), xy, xy + 8 + torch.rand(40, 2, generator=g) * 40], dim=1)
    cls_score = torch.randn(40, head.fc_cls.out_features, generator=g) * 3
    bbox_pred = torch.zeros(40, 4 * K)
    img_meta = dict(img_shape=(128, 128), scale_factor=(1.0, 1.0))
    raw = head.predict_by_feat((rois,), (cls_score,), (bbox_pred,), [img_meta], rcnn_test_cfg=None)[0]
    expected = core.bags_scores(cls_score, torch.tensor(GROUPS))
    torch.testing.assert_close(raw.scores, expected)
    test_cfg = ConfigDict(dict(score_thr=0.0, nms=dict(type="nms", iou_threshold=0.5), max_per_img=100))
    kept = head.predict_by_feat((rois,), (cls_score,), (bbox_pred,), [img_meta], rcnn_test_cfg=test_cfg)[0]
    assert len(kept.scores) > 0
    for score, label in zip(kept.scores, kept.labels):
        assert (expected[:, label] - score).abs().min() < 1e-6


def test_model_without_its_weights_file_takes_the_groups_from_the_checkpoint(weights_file, tmp_path):
    trained = MODELS.build(tiny_model_cfg(str(weights_file(K)), bin_edges=[50, 500]))
    inference = MODELS.build(tiny_model_cfg(str(tmp_path / "absent.json"), bin_edges=[50, 500]))
    loss = inference.roi_head.bbox_head.loss_cls
    assert loss.core.class_group.tolist() == [1] * K  # placeholder statistics
    load_state_dict(inference, trained.state_dict())
    assert loss.core.class_group.tolist() == [3, 3, 2, 2, 2, 1, 1, 1]
    logits, labels, _ = inputs(seed=2)
    logits = logits.detach()[:, : K + 5]
    torch.testing.assert_close(loss.get_activation(logits), trained.roi_head.bbox_head.loss_cls.get_activation(logits))
    with pytest.raises(FileNotFoundError, match="absent.json does not exist"):
        loss(logits, labels)
