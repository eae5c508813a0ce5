"""Checkpoint and resume with the frameworks' own checkpointers, and loading checkpoints across box heads.

Resume: N steps, save, a fresh model (built from another seed, so every value must come from the checkpoint),
load, M more steps; the result is bit-exact with N + M uninterrupted steps (parameters, batch-norm statistics,
optimizer momentum and the loss buffers). Both frameworks draw the RPN anchor and RoI samples from torch's
global RNG, so the RNG state at the checkpoint is saved with it and restored on resume (as a resumed run
would need to reproduce the same samples); without that the parameters would follow other samples.

Across heads: a checkpoint of a plain head (the framework's softmax cross-entropy) loads into a detbalance head
and back with the checkpointers' non-strict loading: keys whose shape differs (the classifier when the loss
needs another number of logits) and the loss buffers missing on one side are reported and left at their
initial values; everything else is loaded. MMEngine's strict loading refuses, naming the keys.
"""

from __future__ import annotations

import logging

import pytest
import rel_helpers as H
import torch

import detbalance.detectron2  # noqa: F401  (detectron2 v0.6 shims, before any detectron2 import)

N, M = 2, 2


def _sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9, weight_decay=1e-4)


def _momentum(optimizer) -> dict:
    return {i: s["momentum_buffer"].clone() for i, s in optimizer.state_dict()["state"].items()}


def _assert_momentum_equal(got: dict, want: dict) -> None:
    assert set(got) == set(want) and want
    for i in want:
        assert torch.equal(got[i], want[i]), f"momentum buffer {i}"


def _assert_changed(state: dict, initial: dict) -> None:
    """Training moved the loss buffers away from their initial values (else equality would prove nothing)."""
    buffers = [k for k in state if k.rsplit(".", 1)[-1] in ("pos_grad", "cum_samples")]
    assert buffers
    for k in buffers:
        assert not torch.equal(state[k], initial[k]), k


# ------------------------------------------------------------------------------------------------ detectron2
def _d2_steps(model, optimizer, steps) -> None:
    for step in steps:
        losses = H.d2_step(model, H.d2_batch(seed=step), optimizer, iteration=step)
        assert all(torch.isfinite(v) for v in losses.values()), losses


@pytest.mark.slow
@pytest.mark.parametrize("loss", H.STATEFUL)
def test_detectron2_resume_is_bit_exact(loss, tmp_path):
    from detectron2.checkpoint import DetectionCheckpointer

    cfg = H.d2_cfg(loss)
    torch.manual_seed(0)
    straight = H.d2_build(cfg)
    initial = {k: v.clone() for k, v in straight.state_dict().items()}
    optimizer = _sgd(straight)
    _d2_steps(straight, optimizer, range(N + M))
    want, want_momentum = straight.state_dict(), _momentum(optimizer)
    _assert_changed(want, initial)

    torch.manual_seed(0)
    first = H.d2_build(cfg)
    optimizer = _sgd(first)
    _d2_steps(first, optimizer, range(N))
    DetectionCheckpointer(first, save_dir=str(tmp_path), optimizer=optimizer).save(
        "model_partial", iteration=N - 1, torch_rng_state=torch.get_rng_state()
    )

    torch.manual_seed(1)
    resumed = H.d2_build(cfg)
    assert not torch.equal(
        resumed.state_dict()["proposal_generator.rpn_head.conv.weight"], want["proposal_generator.rpn_head.conv.weight"]
    )
    optimizer = _sgd(resumed)
    checkpointer = DetectionCheckpointer(resumed, save_dir=str(tmp_path), optimizer=optimizer)
    assert checkpointer.has_checkpoint()
    extra = checkpointer.resume_or_load("", resume=True)
    assert extra["iteration"] == N - 1
    torch.set_rng_state(extra["torch_rng_state"])
    _d2_steps(resumed, optimizer, range(N, N + M))

    H.assert_state_equal(resumed.state_dict(), want, f"detectron2 {loss} resumed")
    _assert_momentum_equal(_momentum(optimizer), want_momentum)


def _d2_cross_load(source, target, tmp_path, caplog):
    """Save ``source`` with DetectionCheckpointer and load it into ``target``; return the warnings logged."""
    from detectron2.checkpoint import DetectionCheckpointer

    DetectionCheckpointer(source, save_dir=str(tmp_path)).save("source")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        DetectionCheckpointer(target).load(str(tmp_path / "source.pth"))
    return caplog.text


def _d2_plain_cfg():
    cfg = H.d2_cfg("WeightedCrossEntropyLoss")
    cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"  # detectron2's FastRCNNOutputLayers with softmax CE
    return cfg


# EQLv2's classifier has K + 1 outputs (objectness last), the plain head's shape: only Seesaw's differs.
@pytest.mark.parametrize("loss", ["SeesawLoss"])
@pytest.mark.slow
def test_detectron2_plain_head_checkpoint_into_stateful_head_and_back(loss, tmp_path, caplog):
    torch.manual_seed(0)
    plain = H.d2_build(_d2_plain_cfg())
    torch.manual_seed(1)
    balanced = H.d2_build(H.d2_cfg(loss))
    before = {k: v.clone() for k, v in balanced.state_dict().items()}
    cls_loss = balanced.roi_heads.box_predictor.cls_loss
    buffers = [f"roi_heads.box_predictor.cls_loss.{name}" for name, _ in cls_loss.named_buffers()]
    assert buffers

    log = _d2_cross_load(plain, balanced, tmp_path, caplog)
    got, plain_state = balanced.state_dict(), plain.state_dict()
    # the classifier has K + 2 rows, the plain one K + 1: skipped, reported
    assert "roi_heads.box_predictor.cls_score.weight" in log and "incompatible shapes" in log
    for name in ("roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.cls_score.bias", *buffers):
        assert torch.equal(got[name], before[name]), name
    for name in buffers:  # missing in the plain checkpoint: reported, left at the initial value
        assert name.rsplit(".", 1)[-1] in log
    for name, value in plain_state.items():
        if not name.startswith("roi_heads.box_predictor.cls_score"):
            assert torch.equal(got[name], value), name
    losses = H.d2_step(balanced, H.d2_batch())
    assert all(torch.isfinite(v) for v in losses.values()), losses

    # back: the detbalance checkpoint (with trained buffers) into a fresh plain model
    torch.manual_seed(2)
    plain_again = H.d2_build(_d2_plain_cfg())
    before_plain = {k: v.clone() for k, v in plain_again.state_dict().items()}
    log = _d2_cross_load(balanced, plain_again, tmp_path, caplog)
    assert "incompatible shapes" in log and "cls_loss" in log  # buffers reported as unused keys
    got = plain_again.state_dict()
    assert torch.equal(
        got["roi_heads.box_predictor.cls_score.weight"], before_plain["roi_heads.box_predictor.cls_score.weight"]
    )
    assert torch.equal(
        got["roi_heads.box_predictor.bbox_pred.weight"],
        balanced.state_dict()["roi_heads.box_predictor.bbox_pred.weight"],
    )


@pytest.mark.slow
def test_detectron2_plain_head_and_weighted_ce_head_checkpoints_are_interchangeable(tmp_path, caplog):
    # Same K + 1 softmax classifier and no persistent loss state: every key loads, nothing is reported.
    weights = H.write_weights(tmp_path / "w.json")
    torch.manual_seed(0)
    plain = H.d2_build(_d2_plain_cfg())
    torch.manual_seed(1)
    weighted = H.d2_build(H.d2_cfg("WeightedCrossEntropyLoss", weights))
    log = _d2_cross_load(plain, weighted, tmp_path, caplog)
    assert "not found" not in log and "incompatible" not in log and "not used" not in log, log
    H.assert_state_equal(weighted.state_dict(), plain.state_dict(), "plain -> weighted CE")
    inputs = H.d2_batch()
    plain.eval(), weighted.eval()
    with torch.no_grad():
        for a, b in zip(plain(inputs), weighted(inputs)):
            assert torch.equal(a["instances"].scores, b["instances"].scores)


# ----------------------------------------------------------------------------------------------- MMDetection
def _mmdet_steps(model, optimizer, steps) -> None:
    for step in steps:
        log_vars = H.mmdet_step(model, H.mmdet_batch(seed=step), optimizer)
        assert all(torch.isfinite(v) for v in log_vars.values()), log_vars


@pytest.mark.slow
@pytest.mark.parametrize("loss", H.STATEFUL)
def test_mmdet_resume_is_bit_exact(loss, tmp_path):
    from mmengine.runner.checkpoint import get_state_dict, load_checkpoint, save_checkpoint, weights_to_cpu

    cfg = H.mmdet_model_cfg(loss)
    torch.manual_seed(0)
    straight = H.mmdet_build(cfg)
    initial = {k: v.clone() for k, v in straight.state_dict().items()}
    optimizer = _sgd(straight)
    _mmdet_steps(straight, optimizer, range(N + M))
    want, want_momentum = straight.state_dict(), _momentum(optimizer)
    _assert_changed(want, initial)

    torch.manual_seed(0)
    first = H.mmdet_build(cfg)
    optimizer = _sgd(first)
    _mmdet_steps(first, optimizer, range(N))
    path = tmp_path / "iter_2.pth"
    save_checkpoint(
        dict(
            meta=dict(iter=N),
            state_dict=weights_to_cpu(get_state_dict(first)),
            optimizer=optimizer.state_dict(),
            torch_rng_state=torch.get_rng_state(),
        ),
        str(path),
    )

    torch.manual_seed(1)
    resumed = H.mmdet_build(cfg)
    optimizer = _sgd(resumed)
    checkpoint = load_checkpoint(resumed, str(path), map_location="cpu", strict=True)
    optimizer.load_state_dict(checkpoint["optimizer"])
    assert checkpoint["meta"]["iter"] == N
    torch.set_rng_state(checkpoint["torch_rng_state"])
    _mmdet_steps(resumed, optimizer, range(N, N + M))

    H.assert_state_equal(resumed.state_dict(), want, f"mmdet {loss} resumed")
    _assert_momentum_equal(_momentum(optimizer), want_momentum)


@pytest.mark.parametrize("loss", ["SeesawLoss"])  # EQLv2's K + 1 classifier has the plain head's shape
@pytest.mark.slow
def test_mmdet_plain_head_checkpoint_into_stateful_head_and_back(loss, tmp_path, caplog):
    from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint

    logger = logging.getLogger("rel_checkpoint")
    torch.manual_seed(0)
    plain = H.mmdet_build(H.mmdet_model_cfg(None))  # MMDetection's CrossEntropyLoss, K + 1 logits
    save_checkpoint(dict(state_dict=plain.state_dict()), str(tmp_path / "plain.pth"))
    torch.manual_seed(1)
    balanced = H.mmdet_build(H.mmdet_model_cfg(loss))
    before = {k: v.clone() for k, v in balanced.state_dict().items()}
    buffers = [k for k in before if ".loss_cls.core." in k]
    assert buffers

    with pytest.raises(RuntimeError) as err:  # strict: refused, naming what differs
        load_checkpoint(balanced, str(tmp_path / "plain.pth"), map_location="cpu", strict=True, logger=logger)
    assert "size mismatch for roi_head.bbox_head.fc_cls.weight" in str(err.value)
    assert all(name in str(err.value) for name in buffers)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rel_checkpoint"):
        load_checkpoint(balanced, str(tmp_path / "plain.pth"), map_location="cpu", strict=False, logger=logger)
    assert "size mismatch for roi_head.bbox_head.fc_cls.weight" in caplog.text
    assert all(name in caplog.text for name in buffers)
    got = balanced.state_dict()
    for name in ("roi_head.bbox_head.fc_cls.weight", "roi_head.bbox_head.fc_cls.bias", *buffers):
        assert torch.equal(got[name], before[name]), name
    for name, value in plain.state_dict().items():
        if not name.startswith("roi_head.bbox_head.fc_cls"):
            assert torch.equal(got[name], value), name
    log_vars = H.mmdet_step(balanced, H.mmdet_batch())
    assert all(torch.isfinite(v) for v in log_vars.values()), log_vars

    # back: the detbalance checkpoint (trained buffers) into a fresh plain model
    save_checkpoint(dict(state_dict=balanced.state_dict()), str(tmp_path / "balanced.pth"))
    torch.manual_seed(2)
    plain_again = H.mmdet_build(H.mmdet_model_cfg(None))
    before_plain = {k: v.clone() for k, v in plain_again.state_dict().items()}
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rel_checkpoint"):
        load_checkpoint(plain_again, str(tmp_path / "balanced.pth"), map_location="cpu", logger=logger)
    assert "unexpected key in source state_dict" in caplog.text
    assert all(name in caplog.text for name in buffers)
    got = plain_again.state_dict()
    assert torch.equal(got["roi_head.bbox_head.fc_cls.weight"], before_plain["roi_head.bbox_head.fc_cls.weight"])
    assert torch.equal(
        got["roi_head.bbox_head.fc_reg.weight"], balanced.state_dict()["roi_head.bbox_head.fc_reg.weight"]
    )
