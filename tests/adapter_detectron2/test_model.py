"""Real detectron2 models built from the yaml configs train one step and predict on CPU, for every loss."""

from __future__ import annotations

import pytest
import torch
from d2_helpers import (
    NUM_CLASSES,
    PER_LOSS_CONFIGS,
    SIGMOID_LOSSES,
    random_proposals,
    synthetic_batch,
    tiny_cfg,
    write_weights_file,
)
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from detbalance.detectron2 import BalancedFastRCNNOutputLayers, BalancedROIHeads, get_config
from detbalance.losses import (
    LOSSES,
    bags_groups,
    bags_scores,
    objectness_sigmoid_scores,
    seesaw_scores,
    sigmoid_scores,
    softmax_scores,
)
from helpers import INSTANCE_COUNTS

ACTIVATIONS = {
    "WeightedCrossEntropyLoss": softmax_scores,
    "SeesawLoss": seesaw_scores,
    **{name: sigmoid_scores for name in SIGMOID_LOSSES},
    "EQLv2Loss": objectness_sigmoid_scores,
    "BAGSLoss": lambda logits: bags_scores(logits, bags_groups(INSTANCE_COUNTS)),  # the weights file's counts
}
NUM_LOGITS = {
    "WeightedCrossEntropyLoss": NUM_CLASSES + 1,
    "SeesawLoss": NUM_CLASSES + 2,
    **{name: NUM_CLASSES for name in SIGMOID_LOSSES},
    "EQLv2Loss": NUM_CLASSES + 1,
    "BAGSLoss": NUM_CLASSES + 1 + 5,  # 5 groups: background and the paper's 4 bins
}


def train_step_and_predict(model):
    """One training step in EventStorage, then eval-mode inference with the classifier logits captured."""
    inputs = synthetic_batch()
    predictor = model.roi_heads.box_predictor
    with EventStorage(0) as storage:
        model.train()
        losses = model(inputs)
        sum(losses.values()).backward()
    logged = storage.latest()
    captured = []
    handle = predictor.register_forward_hook(lambda module, args, output: captured.append(output[0].detach()))
    model.eval()
    with torch.no_grad():
        outputs = model(inputs)
    handle.remove()
    return losses, logged, torch.cat(captured), outputs


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.slow
def test_tiny_model_trains_and_predicts(loss, weights_file):
    # the per-loss yaml's node at tiny scale (test_config checks nothing else differs); every detection kept:
    # sigmoid heads start at their prior (0.001 for EQL), below the default test threshold after one step
    cfg = tiny_cfg(loss, opts=("MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0"))
    cfg.DETBALANCE = get_config(PER_LOSS_CONFIGS[loss], ["DETBALANCE.WEIGHTS_FILE", str(weights_file)]).DETBALANCE
    model = build_model(cfg)
    assert isinstance(model.roi_heads, BalancedROIHeads)
    predictor = model.roi_heads.box_predictor
    assert isinstance(predictor, BalancedFastRCNNOutputLayers) and type(predictor.cls_loss).__name__ == loss
    assert predictor.cls_score.out_features == predictor.cls_loss.num_logits == NUM_LOGITS[loss]

    losses, logged, logits, outputs = train_step_and_predict(model)
    assert set(losses) == {"loss_cls", "loss_box_reg", "loss_rpn_cls", "loss_rpn_loc"}
    assert all(torch.isfinite(v) for v in losses.values()), losses
    assert float(losses["loss_cls"].detach()) > 0
    assert float(predictor.cls_score.weight.grad.abs().sum()) > 0
    assert "fast_rcnn/cls_accuracy" in logged

    # Detections are scored with the activation the loss trained, in detectron2's [R, K + 1] layout.
    assert logits.shape[1] == NUM_LOGITS[loss]
    expected = ACTIVATIONS[loss](logits)[:, :NUM_CLASSES].flatten()
    for output in outputs:
        det = output["instances"]
        assert det.image_size == (128, 128) and len(det) > 0
        assert int(det.pred_classes.max()) < NUM_CLASSES
        gap = (det.scores[:, None] - expected[None, :]).abs().amin(dim=1)
        assert float(gap.max()) < 1e-5


@pytest.mark.parametrize("loss", SIGMOID_LOSSES)
def test_sigmoid_heads_score_with_sigmoid(loss, weights_file):
    predictor = build_model(tiny_cfg(loss, weights_file)).roi_heads.box_predictor
    logits = torch.randn(10, NUM_LOGITS[loss]) * 3
    proposals = random_proposals(num_images=2, per_image=5)
    probs = torch.cat(predictor.predict_probs((logits, None), proposals))
    assert probs.shape == (10, NUM_CLASSES + 1)
    if loss == "EQLv2Loss":  # official EQLv2: sigmoid(x_c) * (1 - sigmoid(x_bg)), objectness logit last
        objectness = torch.sigmoid(logits[:, NUM_CLASSES:])
        torch.testing.assert_close(probs[:, :NUM_CLASSES], torch.sigmoid(logits[:, :NUM_CLASSES]) * (1 - objectness))
        torch.testing.assert_close(probs[:, NUM_CLASSES:], objectness)
        return
    torch.testing.assert_close(probs[:, :NUM_CLASSES], torch.sigmoid(logits))
    assert not torch.allclose(probs, torch.softmax(torch.cat([logits, torch.zeros(10, 1)], 1), 1))


def test_unknown_loss_name_fails_at_build_time():
    with pytest.raises(ValueError, match=r"DETBALANCE.LOSS is 'FocalLoss'.*SeesawLoss"):
        build_model(tiny_cfg("FocalLoss"))


def test_weights_file_class_count_must_match(tmp_path):
    three = write_weights_file(tmp_path / "three.json", num_classes=3)
    for loss in ("WeightedCrossEntropyLoss", "ClassBalancedFocalLoss", "EQLv2Loss"):
        with pytest.raises(ValueError, match=r"describes 3 classes, expected 8 \(MODEL.ROI_HEADS.NUM_CLASSES"):
            build_model(tiny_cfg(loss, three))


@pytest.mark.slow
def test_missing_weights_file_is_named(tmp_path):
    # the model builds (for inference no statistics are needed); training names the missing file
    model = build_model(tiny_cfg("ClassBalancedFocalLoss", tmp_path / "absent.json"))
    with pytest.raises(FileNotFoundError, match="absent.json"):
        train_step_and_predict(model)


def test_statistics_free_losses_need_no_data():
    # DATASETS.TRAIN is the model zoo's coco_2017_train, absent here: EQLv2 and Seesaw never read it.
    for loss in ("EQLv2Loss", "SeesawLoss"):
        assert type(build_model(tiny_cfg(loss)).roi_heads.box_predictor.cls_loss).__name__ == loss


@pytest.mark.parametrize("loss", sorted(PER_LOSS_CONFIGS))
@pytest.mark.slow
def test_full_size_configs_build_and_train(loss, weights_file):
    # The R50-FPN yaml as shipped, with: CPU, no pretrained weights (nothing may be downloaded) and a
    # from-scratch friendly normalisation, the weights file's 8 classes, and fewer proposals per image (the
    # ROI head's cost on CPU; the layers are unchanged).
    cfg = get_config(
        PER_LOSS_CONFIGS[loss],
        [
            "MODEL.DEVICE",
            "cpu",
            "MODEL.WEIGHTS",
            "",
            "MODEL.RESNETS.NORM",
            "BN",
            "MODEL.PIXEL_STD",
            "[57.4, 57.1, 58.4]",
            "MODEL.ROI_HEADS.NUM_CLASSES",
            str(NUM_CLASSES),
            "MODEL.RPN.POST_NMS_TOPK_TRAIN",
            "64",
            "MODEL.RPN.POST_NMS_TOPK_TEST",
            "64",
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
            "64",
            "DETBALANCE.WEIGHTS_FILE",
            str(weights_file),
        ],
    )
    model = build_model(cfg)
    assert model.backbone.bottom_up.stages[-1][0].conv1.weight.shape[1] == 1024  # ResNet-50 res5
    assert model.roi_heads.box_head.output_shape.channels == 1024
    losses, _, logits, outputs = train_step_and_predict(model)
    assert all(torch.isfinite(v) for v in losses.values()), losses
    assert float(model.roi_heads.box_predictor.cls_score.weight.grad.abs().sum()) > 0
    assert logits.shape[1] == NUM_LOGITS[loss] and len(outputs) == 2
