"""Detectron2: a plain softmax-CE model (StandardROIHeads) loads into BalancedROIHeads and is calibrated by a
config change only; its detections become exactly those of NorCal's reference scores; thresholds and bad
configs."""

from __future__ import annotations

import copy

import pytest
import torch

from detbalance.detectron2 import _compat  # noqa: F401  (before any detectron2 import)

# isort: split
from cal_helpers import (
    D2_TINY_CONFIG,
    IMAGE_COUNTS,
    NAMES,
    NUM_CLASSES,
    SIZE,
    boxes_and_labels,
    reference_norcal_probs,
    write_weights,
)
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from detbalance.calibration import CalibrationFile, save_calibration
from detbalance.detectron2 import get_config

pytestmark = pytest.mark.slow  # a few training steps of a tiny Faster R-CNN

SMALL = [
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "32",
    "MODEL.RPN.POST_NMS_TOPK_TEST",
    "32",
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN",
    "200",
    "MODEL.RPN.PRE_NMS_TOPK_TEST",
    "200",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "32",
    "MODEL.ROI_BOX_HEAD.FC_DIM",
    "64",
    "MODEL.FPN.OUT_CHANNELS",
    "32",
    # the LVIS protocol: (nearly) every detection kept, no per-image cap in play
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
    "0.001",
    "TEST.DETECTIONS_PER_IMAGE",
    "1000",
]


def batch(seed: int, training: bool = True) -> list[dict]:
    out = []
    for image, boxes, labels in boxes_and_labels(2, seed):
        item = {"image": image, "height": SIZE, "width": SIZE}
        if training:
            item["instances"] = Instances((SIZE, SIZE), gt_boxes=Boxes(boxes), gt_classes=labels)
        out.append(item)
    return out


@pytest.fixture(scope="module")
def plain_model():
    """detectron2's own StandardROIHeads + FastRCNNOutputLayers (softmax CE), trained for a few steps."""
    torch.manual_seed(0)
    cfg = get_config(D2_TINY_CONFIG, SMALL + ["MODEL.ROI_HEADS.NAME", "StandardROIHeads"])
    model = build_model(cfg)
    assert type(model.roi_heads.box_predictor).__name__ == "FastRCNNOutputLayers"
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    for step in range(3):
        with EventStorage(step):
            loss = sum(model(batch(step)).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def calibrated(plain_model, opts):
    """BalancedROIHeads with softmax CE and ``opts``, holding the plain model's checkpoint (strict load)."""
    cfg = get_config(D2_TINY_CONFIG, SMALL + ["DETBALANCE.LOSS", "WeightedCrossEntropyLoss"] + opts)
    model = build_model(cfg)
    model.load_state_dict(copy.deepcopy(plain_model.state_dict()), strict=True)
    return model.eval()


def run(model, inputs, spy: dict | None = None):
    predictor = model.roi_heads.box_predictor
    if spy is not None:
        original = predictor.inference

        def inference(predictions, proposals):
            spy["predictions"], spy["proposals"] = predictions, proposals
            return original(predictions, proposals)

        predictor.inference = inference
    with torch.no_grad():
        return model.inference(inputs, do_postprocess=False)


def test_norcal_by_config_changes_the_detections_as_predicted(plain_model, tmp_path):
    weights = write_weights(tmp_path / "weights.json")
    model = calibrated(
        plain_model,
        [
            "DETBALANCE.WEIGHTS_FILE",
            str(weights),
            "DETBALANCE.CALIBRATION.METHOD",
            "norcal",
            "DETBALANCE.CALIBRATION.GAMMA",
            "1.0",
        ],
    )
    inputs = batch(10, training=False)
    spy = {}
    got = run(model, inputs, spy)
    plain = run(plain_model, inputs)
    # prediction: detectron2's own softmax inference fed log(reference NorCal probabilities) -> those scores
    logits, deltas = spy["predictions"]
    target = reference_norcal_probs(logits, IMAGE_COUNTS, 1.0).log().float()
    with torch.no_grad():
        expected, _ = plain_model.roi_heads.box_predictor.inference((target, deltas), spy["proposals"])
    for g, e, p in zip(got, expected, plain):
        assert len(g) == len(e) > 0
        torch.testing.assert_close(g.scores, e.scores, rtol=1e-5, atol=1e-6)
        assert torch.equal(g.pred_classes, e.pred_classes)
        torch.testing.assert_close(g.pred_boxes.tensor, e.pred_boxes.tensor)
        # the rarer half of the classes takes a larger share of the image's detection scores
        assert rare_share(g.pred_classes, g.scores) > rare_share(p.pred_classes, p.scores)


def rare_share(labels, scores) -> float:
    return float(scores[labels >= NUM_CLASSES // 2].sum() / scores.sum())


def test_calibration_off_reproduces_the_plain_model(plain_model):
    model = calibrated(plain_model, [])
    inputs = batch(11, training=False)
    for g, p in zip(run(model, inputs), run(plain_model, inputs)):
        torch.testing.assert_close(g.scores, p.scores)
        assert torch.equal(g.pred_classes, p.pred_classes)


def test_thresholds_by_config(plain_model, tmp_path):
    thresholds = [0.12, 0.12, 0.12, 0.12, 1.0, 0.0, 0.0, 0.0]
    path = tmp_path / "calibration.json"
    save_calibration(
        path, CalibrationFile(class_names=NAMES, thresholds=thresholds, threshold_rule={"objective": "f1"})
    )
    model = calibrated(
        plain_model, ["DETBALANCE.CALIBRATION.METHOD", "thresholds", "DETBALANCE.CALIBRATION.FILE", str(path)]
    )
    inputs = batch(12, training=False)
    plain = run(plain_model, inputs)
    for g, p in zip(run(model, inputs), plain):
        limit = torch.tensor(thresholds)[g.pred_classes]
        assert (g.scores >= limit).all()
        kept = p.scores >= torch.tensor(thresholds)[p.pred_classes]
        assert len(g) == int(kept.sum())  # exactly the plain detections above their class threshold


@pytest.mark.parametrize(
    "opts,match",
    [
        (["DETBALANCE.CALIBRATION.METHOD", "platt"], r"DETBALANCE.CALIBRATION: calibration method='platt'"),
        (
            ["DETBALANCE.CALIBRATION.METHOD", "norcal", "DETBALANCE.CALIBRATION.GAMMA", "-0.5"],
            r"gamma=-0\.5; expected a finite number >= 0",
        ),
        (["DETBALANCE.CALIBRATION.GAMMA", "0.5"], r"method is '' \(off\)"),
        (
            [
                "DETBALANCE.LOSS",
                "EQLv2Loss",
                "DETBALANCE.CALIBRATION.METHOD",
                "norcal",
                "DETBALANCE.CALIBRATION.GAMMA",
                "0.5",
            ],
            r"the loss is EQLv2Loss, expected one of \['WeightedCrossEntropyLoss'\]",
        ),
    ],
)
def test_bad_config_fails_at_build(tmp_path, opts, match):
    weights = write_weights(tmp_path / "weights.json")
    cfg = get_config(D2_TINY_CONFIG, SMALL + ["DETBALANCE.WEIGHTS_FILE", str(weights)] + opts)
    with pytest.raises(ValueError, match=match):
        build_model(cfg)


def test_a_calibration_file_for_another_k_fails_at_build(tmp_path):
    path = tmp_path / "calibration.json"
    save_calibration(
        path, CalibrationFile(class_names=NAMES[:3], class_counts=IMAGE_COUNTS[:3], method="norcal", gamma=0.5)
    )
    cfg = get_config(
        D2_TINY_CONFIG, SMALL + ["DETBALANCE.CALIBRATION.METHOD", "norcal", "DETBALANCE.CALIBRATION.FILE", str(path)]
    )
    with pytest.raises(ValueError, match=r"has 3 classes but the model has num_classes=8"):
        build_model(cfg)
    assert NUM_CLASSES == 8
