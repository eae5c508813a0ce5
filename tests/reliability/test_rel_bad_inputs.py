"""Bad inputs through whole detectors and through the weights file.

* Images without any ground-truth box, alone (every sampled RoI is background) or next to an annotated image,
  through a real training step of both frameworks with every detbalance loss: finite losses and gradients, and
  the stateful losses' statistics only move as the labels allow.
* Malformed weights files through ``detbalance.weights.load_weights`` and through building each framework's
  model: a ``ValueError`` naming the path, the field and the offending value. ``tests/core/test_weights_file.py``
  covers the other fields (missing keys, format, scheme, groups, counts, a negative weight, a JSON syntax
  error) through ``load_weights``; the loss functions' own tensor checks are in
  ``tests/core/test_loss_common.py``.
"""

from __future__ import annotations

import json
import math

import pytest
import rel_helpers as H
import torch

import detbalance.detectron2  # noqa: F401  (detectron2 v0.6 shims, before any detectron2 import)
from detbalance.weights import load_weights

K = H.NUM_CLASSES


# --------------------------------------------------------------------------------- images without boxes
def _finite(values: dict) -> bool:
    return all(bool(torch.isfinite(torch.as_tensor(v)).all()) for v in values.values())


def _check_state_after_background_only(before: dict, after: dict) -> None:
    """A step whose RoIs are all background adds no Seesaw count and no EQLv2 positive gradient."""
    for name, value in after.items():
        if name.endswith(("cum_samples", "pos_grad")):
            assert torch.equal(value, before[name]), name
        assert bool(torch.isfinite(value.float()).all()), name


@pytest.mark.parametrize("loss", H.LOSS_NAMES)
@pytest.mark.slow
def test_detectron2_images_without_boxes_train(loss, tmp_path):
    weights = H.write_weights(tmp_path / "w.json")
    torch.manual_seed(0)
    model = H.d2_build(H.d2_cfg(loss, weights))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    predictor = model.roi_heads.box_predictor

    mixed = H.d2_step(model, H.d2_batch(2, seed=1, empty=(0,)), optimizer)
    assert _finite(mixed), mixed
    assert float(mixed["loss_cls"]) > 0

    before = H.loss_buffers(model)
    captured = []
    handle = predictor.cls_loss.register_forward_hook(lambda m, args, out: captured.append(args[1]))
    losses = H.d2_step(model, H.d2_batch(2, seed=2, empty=(0, 1)))
    handle.remove()
    assert len(captured[0]) > 0 and bool((captured[0] == K).all())  # every RoI is background
    assert _finite(losses), losses
    assert float(losses["loss_box_reg"]) == 0.0
    assert torch.isfinite(predictor.cls_score.weight.grad).all()
    _check_state_after_background_only(before, H.loss_buffers(model))


@pytest.mark.parametrize("loss", H.LOSS_NAMES)
@pytest.mark.slow
def test_mmdet_images_without_boxes_train(loss, tmp_path):
    weights = H.write_weights(tmp_path / "w.json")
    torch.manual_seed(0)
    model = H.mmdet_build(H.mmdet_model_cfg(loss, weights))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    bbox_head = model.roi_head.bbox_head

    mixed = H.mmdet_step(model, H.mmdet_batch(2, seed=1, empty=(0,)), optimizer)
    assert _finite(mixed), mixed
    assert float(mixed["loss_cls"]) > 0

    before = H.loss_buffers(model)
    captured = []
    handle = bbox_head.loss_cls.register_forward_hook(lambda m, args, out: captured.append(args[1]))
    log_vars = H.mmdet_step(model, H.mmdet_batch(2, seed=2, empty=(0, 1)))
    handle.remove()
    assert len(captured[0]) > 0 and bool((captured[0] == K).all())  # every RoI is background
    assert _finite(log_vars), log_vars
    assert float(log_vars["loss_bbox"]) == 0.0
    assert torch.isfinite(bbox_head.fc_cls.weight.grad).all()
    _check_state_after_background_only(before, H.loss_buffers(model))


# --------------------------------------------------------------------------------- malformed weights files
def _set_weights(values):
    return lambda d: d.update(weights=values)


class Text:
    """An edit of the valid file's text (the other edits change its parsed JSON object in place)."""

    def __init__(self, edit):
        self.edit = edit


# name -> (edit, message pattern)
MALFORMED = {
    "truncated": (Text(lambda text: text[: len(text) // 2]), r"not valid JSON: .* at line \d+ column \d+"),
    "empty file": (Text(lambda text: ""), r"not valid JSON: Expecting value at line 1 column 1"),
    "top-level list": (Text(lambda text: "[" + text + "]"), r"field 'format' must be 'detbalance-weights'"),
    "version 2": (lambda d: d.update(version=2), r"field 'version' is 2, this detbalance reads version 1"),
    "version as string": (lambda d: d.update(version="1"), r"field 'version' is '1', this detbalance reads version 1"),
    "version missing": (lambda d: d.pop("version"), r"field 'version' is None"),
    "NaN weight": (
        _set_weights([1.0, 1.0, math.nan] + [1.0] * (K - 3)),
        r"field 'weights' expected a list of finite numbers > 0, got nan at index 2",
    ),
    "infinite weight": (
        _set_weights([math.inf] + [1.0] * (K - 1)),
        r"field 'weights' expected a list of finite numbers > 0, got inf at index 0",
    ),
    "negative weight": (
        _set_weights([1.0] * (K - 1) + [-0.5]),
        r"field 'weights' expected a list of finite numbers > 0, got -0.5 at index 7",
    ),
    "zero weight": (
        _set_weights([1.0, 0.0] + [1.0] * (K - 2)),
        r"field 'weights' expected a list of finite numbers > 0, got 0.0 at index 1",
    ),
    "all-zero weights": (
        _set_weights([0.0] * K),
        r"field 'weights' expected a list of finite numbers > 0, got 0.0 at index 0",
    ),
    "boolean weight": (
        _set_weights([True] + [1.0] * (K - 1)),
        r"field 'weights' expected a list of finite numbers > 0, got True at index 0",
    ),
    "string weight": (
        _set_weights(["1.0"] + [1.0] * (K - 1)),
        r"field 'weights' expected a list of finite numbers > 0, got '1.0' at index 0",
    ),
    "weights not a list": (
        _set_weights({"class0": 1.0}),
        r"field 'weights' expected a list of finite numbers > 0, got dict",
    ),
    "too few weights": (_set_weights([1.0] * (K - 1)), rf"field 'weights' has {K - 1} entries, expected {K}"),
    "too many weights": (_set_weights([1.0] * (K + 1)), rf"field 'weights' has {K + 1} entries, expected {K}"),
    "NaN background weight": (
        lambda d: d.update(background_weight=math.nan),
        r"field 'background_weight' expected a finite number >= 0, got nan",
    ),
    "negative count": (
        lambda d: d["stats"]["instance_counts"].__setitem__(3, -4),
        r"field 'stats.instance_counts' expected a list of integers >= 0, got -4 at index 3",
    ),
}


def _malformed_file(tmp_path, case: str):
    edit, message = MALFORMED[case]
    path = tmp_path / "bad weights.json"
    valid = H.valid_weights_json(K)
    if isinstance(edit, Text):
        path.write_text(edit.edit(json.dumps(valid, indent=2)), encoding="utf-8")
    else:
        edit(valid)
        H.write_raw(path, valid)
    return path, message


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_load_weights_names_the_value(case, tmp_path):
    path, message = _malformed_file(tmp_path, case)
    with pytest.raises(ValueError, match=message) as err:
        load_weights(path)
    assert str(err.value).startswith(f"{path}: ")


def test_weights_file_for_other_class_count_names_both_numbers(tmp_path):
    path = H.write_weights(tmp_path / "five.json", num_classes=5)
    with pytest.raises(ValueError, match=r"five.json: the weights file has 5 classes but the model has num_classes=8"):
        load_weights(path, num_classes=K)


D2_FILE_LOSSES = (
    "WeightedCrossEntropyLoss",
    "ClassBalancedFocalLoss",
    "EqualizationLoss",
    "FederatedLoss",
    "SeesawLoss",
)  # Seesaw reads no statistics, but a file given to it is still checked


@pytest.mark.parametrize(
    "case", ["truncated", "version 2", "NaN weight", "negative weight", "all-zero weights", "too few weights"]
)
@pytest.mark.slow
def test_detectron2_build_refuses_malformed_weights_file(case, tmp_path):
    path, message = _malformed_file(tmp_path, case)
    for loss in D2_FILE_LOSSES:
        with pytest.raises(ValueError, match=message) as err:
            H.d2_build(H.d2_cfg(loss, path))
        assert str(path) in str(err.value), loss


def test_detectron2_build_refuses_weights_file_for_other_class_count(tmp_path):
    path = H.write_weights(tmp_path / "five.json", num_classes=5)
    with pytest.raises(ValueError, match=r"describes 5 classes, expected 8 \(MODEL.ROI_HEADS.NUM_CLASSES"):
        H.d2_build(H.d2_cfg("FederatedLoss", path))


MMDET_FILE_LOSSES = ("WeightedCrossEntropyLoss", "ClassBalancedFocalLoss", "EqualizationLoss", "FederatedLoss")


@pytest.mark.parametrize(
    "case", ["truncated", "version 2", "NaN weight", "negative weight", "all-zero weights", "too few weights"]
)
def test_mmdet_build_refuses_malformed_weights_file(case, tmp_path):
    path, message = _malformed_file(tmp_path, case)
    for loss in MMDET_FILE_LOSSES:
        with pytest.raises(ValueError, match=message) as err:
            H.mmdet_build(H.mmdet_model_cfg(loss, path))
        assert str(path) in str(err.value), loss


def test_mmdet_build_refuses_weights_file_for_other_class_count(tmp_path):
    path = H.write_weights(tmp_path / "five.json", num_classes=5)
    for loss in MMDET_FILE_LOSSES:
        with pytest.raises(ValueError, match=r"the weights file has 5 classes but the model has num_classes=8"):
            H.mmdet_build(H.mmdet_model_cfg(loss, path))
