"""MMDetection: a plain ``CrossEntropyLoss`` model loads into ``DBWeightedCrossEntropyLoss`` and is calibrated by
the ``calibration=`` loss argument only; its detections become exactly those of NorCal's reference scores;
thresholds and bad arguments."""

from __future__ import annotations

import copy

import mmcv.ops  # noqa: F401  (compiled ops: `make setup` builds them; their absence is an error)
import pytest
import torch
from cal_helpers import (
    IMAGE_COUNTS,
    MMDET_TINY_CONFIG,
    NAMES,
    NUM_CLASSES,
    SIZE,
    boxes_and_labels,
    reference_norcal_probs,
    write_weights,
)
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData

import detbalance.mmdet  # noqa: F401  (registers the DB* components)
from detbalance.calibration import CalibrationFile, save_calibration

register_all_modules(init_default_scope=True)
pytestmark = pytest.mark.slow  # a few training steps of a tiny Faster R-CNN


def plain_cfg() -> Config:
    cfg = Config.fromfile(str(MMDET_TINY_CONFIG))
    # the LVIS protocol: (nearly) every detection kept, no per-image cap in play
    cfg.model.test_cfg.rcnn.update(score_thr=0.001, max_per_img=1000)
    return cfg


def batch(seed: int, training: bool = True) -> dict:
    inputs, samples = [], []
    for i, (image, boxes, labels) in enumerate(boxes_and_labels(2, seed)):
        sample = DetDataSample(
            metainfo=dict(
                img_id=i, img_path=f"{i}.png", ori_shape=(SIZE, SIZE), img_shape=(SIZE, SIZE), scale_factor=(1.0, 1.0)
            )
        )
        sample.gt_instances = InstanceData(bboxes=boxes, labels=labels)
        inputs.append(image.to(torch.uint8))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture(scope="module")
def plain_model():
    """MMDetection's own softmax CrossEntropyLoss head, trained for a few steps."""
    torch.manual_seed(0)
    cfg = plain_cfg()
    assert cfg.model.roi_head.bbox_head.loss_cls.type == "CrossEntropyLoss"
    model = MODELS.build(cfg.model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    for step in range(3):
        losses = model(**model.data_preprocessor(batch(step), True), mode="loss")
        loss, _ = model.parse_losses(losses)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def calibrated(plain_model, calibration):
    cfg = plain_cfg()
    cfg.model.roi_head.bbox_head.loss_cls = dict(
        type="DBWeightedCrossEntropyLoss", num_classes=NUM_CLASSES, calibration=calibration
    )
    model = MODELS.build(cfg.model)
    model.load_state_dict(copy.deepcopy(plain_model.state_dict()), strict=True)
    return model.eval()


def predict(model, seed: int, spy: dict | None = None):
    head = model.roi_head.bbox_head
    if spy is not None:
        original = head.predict_by_feat

        def predict_by_feat(**kwargs):
            spy.update(kwargs)
            return original(**kwargs)

        head.predict_by_feat = predict_by_feat
    with torch.no_grad():
        return model(**model.data_preprocessor(batch(seed, training=False), False), mode="predict")


def test_norcal_by_config_changes_the_detections_as_predicted(plain_model, tmp_path):
    weights = write_weights(tmp_path / "weights.json")
    model = calibrated(plain_model, dict(method="norcal", gamma=1.0, file=str(weights)))
    spy = {}
    got = predict(model, 10, spy)
    plain = predict(plain_model, 10)
    # prediction: MMDetection's own softmax head fed log(reference NorCal probabilities) -> those scores
    target = tuple(reference_norcal_probs(s, IMAGE_COUNTS, 1.0).log().float() for s in spy["cls_scores"])
    with torch.no_grad():
        expected = plain_model.roi_head.bbox_head.predict_by_feat(**{**spy, "cls_scores": target})
    for g, e, p in zip(got, expected, plain):
        g, p = g.pred_instances, p.pred_instances
        assert len(g) == len(e) > 0
        torch.testing.assert_close(g.scores, e.scores, rtol=1e-5, atol=1e-6)
        assert torch.equal(g.labels, e.labels)
        torch.testing.assert_close(g.bboxes, e.bboxes)
        # the rarer half of the classes takes a larger share of the image's detection scores
        assert rare_share(g.labels, g.scores) > rare_share(p.labels, p.scores)


def rare_share(labels, scores) -> float:
    return float(scores[labels >= NUM_CLASSES // 2].sum() / scores.sum())


def test_calibration_off_reproduces_the_plain_model(plain_model):
    for g, p in zip(predict(calibrated(plain_model, None), 11), predict(plain_model, 11)):
        torch.testing.assert_close(g.pred_instances.scores, p.pred_instances.scores)
        assert torch.equal(g.pred_instances.labels, p.pred_instances.labels)


def test_thresholds_by_config(plain_model, tmp_path):
    thresholds = [0.12, 0.12, 0.12, 0.12, 1.0, 0.0, 0.0, 0.0]
    path = tmp_path / "calibration.json"
    save_calibration(
        path,
        CalibrationFile(
            class_names=NAMES, thresholds=thresholds, threshold_rule={"objective": "precision", "target": 0.9}
        ),
    )
    model = calibrated(plain_model, dict(method="thresholds", file=str(path)))
    for g, p in zip(predict(model, 12), predict(plain_model, 12)):
        g, p = g.pred_instances, p.pred_instances
        assert (g.scores >= torch.tensor(thresholds)[g.labels]).all()
        assert len(g) == int((p.scores >= torch.tensor(thresholds)[p.labels]).sum())


@pytest.mark.parametrize(
    "calibration,match",
    [
        (dict(method="platt"), r"loss_cls.calibration: calibration method='platt'"),
        (dict(method="norcal", gamma=-1.0, file="w"), r"gamma=-1\.0; expected a finite number >= 0"),
        (dict(method="norcal", gama=0.5), r"unknown keys \['gama'\]"),
        (dict(method="thresholds", file="missing.json"), r"missing\.json does not exist"),
    ],
)
def test_bad_calibration_argument_fails_at_build(tmp_path, calibration, match):
    if calibration.get("file") == "w":
        calibration["file"] = str(write_weights(tmp_path / "weights.json"))
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type="DBWeightedCrossEntropyLoss", num_classes=NUM_CLASSES, calibration=calibration))


def test_sigmoid_loss_with_logit_adjustment(tmp_path):
    weights = write_weights(tmp_path / "weights.json")
    loss = MODELS.build(
        dict(
            type="DBClassBalancedFocalLoss",
            num_classes=NUM_CLASSES,
            samples_per_class=str(weights),
            calibration=dict(method="logit_adjust", gamma=0.5, file=str(weights)),
        )
    )
    logits = torch.randn(5, loss.get_cls_channels(NUM_CLASSES), dtype=torch.float64)
    shift = torch.tensor([0.5 * torch.log(torch.tensor(float(n))).item() for n in IMAGE_COUNTS], dtype=torch.float64)
    torch.testing.assert_close(
        loss.eval().get_activation(logits)[:, :NUM_CLASSES], torch.sigmoid(logits[:, :NUM_CLASSES] - shift)
    )
    # while training (Cascade R-CNN refines boxes with it) the scores stay those the loss trains
    torch.testing.assert_close(
        loss.train().get_activation(logits)[:, :NUM_CLASSES], torch.sigmoid(logits[:, :NUM_CLASSES])
    )
    with pytest.raises(ValueError, match=r"the loss is ClassBalancedFocalLoss"):  # refused when built
        MODELS.build(
            dict(
                type="DBClassBalancedFocalLoss",
                num_classes=NUM_CLASSES,
                samples_per_class=str(weights),
                calibration=dict(method="norcal", gamma=0.5, file=str(weights)),
            )
        )
