"""Balanced Group Softmax (``DETBALANCE.LOSS: "BAGSLoss"``) in Detectron2: the ``DETBALANCE.BAGS`` node, the
classifier it sizes, the tiny model trained a step and scored with the groups' softmax, and a model built for
inference that takes the groups from its checkpoint."""

from __future__ import annotations

import pytest
import torch
from d2_helpers import NUM_CLASSES, TINY_CONFIG, random_proposals, synthetic_batch, tiny_cfg
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from detbalance.detectron2 import BalancedFastRCNNOutputLayers, get_config
from detbalance.losses import BAGSLoss, bags_scores

#: groups of the weights file's counts (1500 .. 12 instances) with the paper's edges; group 1 (< 10) is empty
GROUPS = [4, 3, 3, 3, 2, 2, 2, 2]
#: the same counts with the edges (50, 500)
GROUPS_50_500 = [3, 3, 2, 2, 2, 1, 1, 1]


def test_config_node_sizes_the_classifier(weights_file, tmp_path):
    cfg = tiny_cfg("BAGSLoss", weights_file)
    assert cfg.DETBALANCE.BAGS.BIN_EDGES == (10, 100, 1000) and cfg.DETBALANCE.BAGS.OTHERS_SAMPLE_RATIO == 8.0
    predictor = BalancedFastRCNNOutputLayers(cfg, ShapeSpec(channels=16))
    loss = predictor.cls_loss
    assert isinstance(loss, BAGSLoss) and loss.class_group.tolist() == GROUPS
    assert predictor.cls_score.out_features == loss.num_logits == NUM_CLASSES + 1 + 5
    assert predictor.cls_score.bias.detach().eq(0).all()

    # the edges from a yaml list and from --opts (a tuple)
    yaml = tmp_path / "bags.yaml"
    yaml.write_text(
        f'_BASE_: "{TINY_CONFIG}"\nDETBALANCE:\n  LOSS: "BAGSLoss"\n'
        "  BAGS:\n    BIN_EDGES: [50, 500]\n    OTHERS_SAMPLE_RATIO: 2.0\n"
    )
    cfg = get_config(yaml, ["DETBALANCE.WEIGHTS_FILE", str(weights_file)])
    loss = BalancedFastRCNNOutputLayers(cfg, ShapeSpec(channels=16)).cls_loss
    assert (loss.bin_edges, loss.others_sample_ratio, loss.num_logits) == ((50.0, 500.0), 2.0, NUM_CLASSES + 1 + 4)
    assert loss.class_group.tolist() == GROUPS_50_500
    cfg = tiny_cfg("BAGSLoss", weights_file, ("DETBALANCE.BAGS.BIN_EDGES", "(50, 500)"))
    assert BalancedFastRCNNOutputLayers(cfg, ShapeSpec(channels=16)).cls_loss.class_group.tolist() == GROUPS_50_500
    cfg = tiny_cfg("BAGSLoss", weights_file, ("DETBALANCE.BAGS.BIN_EDGES", "(500, 50)"))
    with pytest.raises(ValueError, match="strictly increasing, got 50 after 500"):
        BalancedFastRCNNOutputLayers(cfg, ShapeSpec(channels=16))


@pytest.mark.slow
def test_tiny_model_trains_and_predicts_with_the_group_scores(weights_file):
    model = build_model(tiny_cfg("BAGSLoss", weights_file, ("MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0")))
    predictor = model.roi_heads.box_predictor
    inputs = synthetic_batch()
    with EventStorage(0) as storage:
        model.train()
        losses = model(inputs)
        sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values()), losses
    assert float(losses["loss_cls"].detach()) > 0
    assert float(predictor.cls_score.weight.grad.abs().sum()) > 0
    assert "fast_rcnn/cls_accuracy" in storage.latest()

    captured = []
    handle = predictor.register_forward_hook(lambda module, args, output: captured.append(output[0].detach()))
    model.eval()
    with torch.no_grad():
        outputs = model(inputs)
    handle.remove()
    logits = torch.cat(captured)
    assert logits.shape[1] == NUM_CLASSES + 6
    expected = bags_scores(logits, torch.tensor(GROUPS))[:, :NUM_CLASSES].flatten()
    for output in outputs:
        det = output["instances"]
        assert len(det) > 0 and int(det.pred_classes.max()) < NUM_CLASSES
        gap = (det.scores[:, None] - expected[None, :]).abs().amin(dim=1)
        assert float(gap.max()) < 1e-5


def test_model_built_for_inference_scores_with_the_checkpoint_groups(weights_file, tmp_path):
    edges = ("DETBALANCE.BAGS.BIN_EDGES", "(50, 500)")
    trained = build_model(tiny_cfg("BAGSLoss", weights_file, edges))
    DetectionCheckpointer(trained, save_dir=str(tmp_path)).save("trained")
    # the weights file is not here: placeholder statistics (every class in group 1) until the checkpoint loads
    inference = build_model(tiny_cfg("BAGSLoss", tmp_path / "absent.json", edges))
    loss = inference.roi_heads.box_predictor.cls_loss
    assert loss.class_group.tolist() == [1] * NUM_CLASSES
    DetectionCheckpointer(inference).load(str(tmp_path / "trained.pth"))
    assert loss.class_group.tolist() == GROUPS_50_500

    logits = torch.randn(6, NUM_CLASSES + 5)
    proposals = random_proposals(num_images=2, per_image=3)
    got = inference.roi_heads.box_predictor.predict_probs((logits, None), proposals)
    want = trained.roi_heads.box_predictor.predict_probs((logits, None), proposals)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    with pytest.raises(FileNotFoundError, match="absent.json does not exist; BAGSLoss was built without"):
        loss(logits, torch.tensor([0, 1, 2, 8, 8, 7]))
