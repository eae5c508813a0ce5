"""A model built for inference only (Detectron2's ``DefaultPredictor``, MMDetection's ``init_detector``) needs
neither the weights file nor the training set: a trained model's checkpoint is loaded into a model whose weights
file is gone and whose training datasets are not registered, predicts, and holds the stateful losses'
statistics from the checkpoint; training such a model fails at its first step, naming what is missing."""

from __future__ import annotations

import numpy as np
import pytest
import rel_helpers as H
import torch

import detbalance.detectron2  # noqa: F401  (detectron2 v0.6 shims, before any detectron2 import)

LOSSES = ("ClassBalancedFocalLoss", "SeesawLoss")  # a loss reading the weights file, a stateful loss


def _trained_d2(loss: str, weights: str, out) -> tuple[str, dict]:
    from detectron2.checkpoint import DetectionCheckpointer

    model = H.d2_build(H.d2_cfg(loss, weights))
    H.d2_step(model, H.d2_batch(seed=1), torch.optim.SGD(model.parameters(), lr=0.01))
    DetectionCheckpointer(model, save_dir=str(out)).save("trained")
    return str(out / "trained.pth"), H.loss_buffers(model)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.slow
def test_detectron2_default_predictor_needs_neither_file_nor_data(loss, tmp_path):
    from detectron2.engine import DefaultPredictor

    weights = H.write_weights(tmp_path / "weights.json")
    checkpoint, trained_state = _trained_d2(loss, str(weights), tmp_path)
    weights.unlink()  # the weights file is gone; DATASETS.TRAIN names a set this process never registered
    cfg = H.d2_cfg(loss, weights)
    cfg.merge_from_list(
        ["DATASETS.TRAIN", "('train_set_of_another_machine',)", "MODEL.WEIGHTS", checkpoint, "MODEL.DEVICE", "cpu"]
    )
    predictor = DefaultPredictor(cfg)
    image = np.random.default_rng(0).integers(0, 255, (H.SIZE, H.SIZE, 3), dtype=np.uint8)
    instances = predictor(image)["instances"]
    assert instances.scores.shape == instances.pred_classes.shape
    state = H.loss_buffers(predictor.model)
    assert set(state) == set(trained_state)
    for name, value in trained_state.items():  # the statistics learnt in training come from the checkpoint
        assert torch.equal(state[name], value), name

    with pytest.raises(FileNotFoundError, match=r"weights file .*weights.json does not exist; .*training needs"):
        H.d2_step(predictor.model, H.d2_batch(seed=2))
    if loss in H.STATEFUL:  # without a weights file it reads no statistics at all
        return
    cfg.merge_from_list(["DETBALANCE.WEIGHTS_FILE", ""])
    with pytest.raises(ValueError, match=r"'train_set_of_another_machine'\] are not registered"):
        H.d2_step(H.d2_build(cfg), H.d2_batch(seed=2))


def test_detectron2_build_still_refuses_a_file_that_does_not_fit(tmp_path):
    weights = H.write_weights(tmp_path / "three.json", num_classes=3)
    with pytest.raises(ValueError, match=r"describes 3 classes, expected 8"):
        H.d2_build(H.d2_cfg("ClassBalancedFocalLoss", weights))


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.slow
def test_mmdet_init_detector_needs_no_weights_file(loss, tmp_path):
    from mmdet.apis import init_detector
    from mmengine.config import Config

    weights = H.write_weights(tmp_path / "weights.json")
    model_cfg = H.mmdet_model_cfg(loss, weights)
    model = H.mmdet_build(model_cfg)
    H.mmdet_step(model, H.mmdet_batch(seed=1), torch.optim.SGD(model.parameters(), lr=0.01))
    trained_state = H.loss_buffers(model)
    torch.save({"state_dict": model.state_dict(), "meta": {}}, tmp_path / "trained.pth")
    weights.unlink()

    config = Config.fromfile(str(H.MMDET_TINY_CONFIG))
    config.model = model_cfg
    detector = init_detector(config, str(tmp_path / "trained.pth"), device="cpu")
    results = detector.test_step(H.mmdet_batch(seed=2))
    assert len(results) == 2 and results[0].pred_instances.scores.ndim == 1
    state = H.loss_buffers(detector)
    assert set(state) == set(trained_state)
    for name, value in trained_state.items():
        assert torch.equal(state[name], value), name

    if H.MMDET_STATS_ARG[loss] is not None:
        with pytest.raises(FileNotFoundError, match=r"weights file .*weights.json does not exist; .*training needs"):
            H.mmdet_step(H.mmdet_build(model_cfg), H.mmdet_batch(seed=2))


def test_detectron2_registered_dataset_without_its_files_defers_the_error():
    from detbalance.detectron2 import build_classification_loss

    # detectron2 registers coco_2017_train; its json is not on this machine
    loss = build_classification_loss("ClassBalancedFocalLoss", 80, dataset_names=["coco_2017_train"])
    loss.eval()
    loss(torch.zeros(2, loss.num_logits), torch.tensor([0, 80]))  # evaluation works
    loss.train()
    with pytest.raises(FileNotFoundError, match=r"instances_train2017.json.*training needs them"):
        loss(torch.zeros(2, loss.num_logits), torch.tensor([0, 80]))
