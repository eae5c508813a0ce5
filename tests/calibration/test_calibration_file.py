"""The calibration file (versioned, atomically written, validated) and build_calibration's rules."""

from __future__ import annotations

import json

import pytest
import torch
from cal_helpers import reference_norcal_probs

from detbalance.calibration import (
    CalibrationFile,
    ScoreCalibration,
    build_calibration,
    load_calibration,
    norcal_scores,
    save_calibration,
)
from detbalance.losses import EQLv2Loss, WeightedCrossEntropyLoss
from detbalance.weights import ClassStats, WeightsFile, save_weights

NAMES = ["a", "b", "c"]
COUNTS = [100, 10, 2]


def contents(**changes) -> CalibrationFile:
    values = dict(
        class_names=NAMES,
        class_counts=COUNTS,
        method="norcal",
        gamma=0.5,
        thresholds=[0.1, 0.2, 0.3],
        threshold_rule={"objective": "f1"},
        fit={"metric": "apr"},
    )
    values.update(changes)
    return CalibrationFile(**values)


def weights(tmp_path, image_counts=(100, 10, 2)):
    path = tmp_path / "weights.json"
    stats = ClassStats(NAMES, [2 * n for n in image_counts], list(image_counts), 150)
    save_weights(path, WeightsFile(stats=stats, scheme="uniform", weights=[1.0] * 3, groups=["f", "c", "r"]))
    return path


def test_round_trip_and_atomic_write(tmp_path):
    path = tmp_path / "calibration.json"
    save_calibration(path, contents())
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.json"]  # no temporary file left
    data = json.loads(path.read_text())
    assert data["format"] == "detbalance-calibration" and data["version"] == 1
    assert load_calibration(path, num_classes=3) == contents()


@pytest.mark.parametrize(
    "changes,match",
    [
        (dict(gamma=-0.5), r"field 'gamma' gamma=-0\.5; expected a finite number >= 0"),
        (dict(thresholds=[0.1, 1.2, 0.3]), r"field 'thresholds' expected numbers in \[0, 1\], got 1\.2 at index 1"),
        (dict(method="platt"), r"field 'method' unknown method 'platt'"),
        (dict(class_counts=[100, 0, 2]), r"field 'class_counts' expected integers > 0, got 0 at index 1"),
        (dict(thresholds=None), r"field 'threshold_rule' thresholds and threshold_rule must both be set"),
    ],
)
def test_invalid_contents_are_refused_and_nothing_is_written(tmp_path, changes, match):
    path = tmp_path / "calibration.json"
    with pytest.raises(ValueError, match=match):
        save_calibration(path, contents(**changes))
    assert not any(tmp_path.iterdir())


def test_load_refuses_another_k_version_or_format(tmp_path):
    path = tmp_path / "calibration.json"
    save_calibration(path, contents())
    with pytest.raises(ValueError, match=r"has 3 classes but the model has num_classes=8"):
        load_calibration(path, num_classes=8)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "version": 2}))
    with pytest.raises(ValueError, match=r"field 'version' is 2, this detbalance reads version 1"):
        load_calibration(path)
    with pytest.raises(ValueError, match=r"field 'format' is 'detbalance-weights'"):
        load_calibration(weights(tmp_path))


def test_build_from_a_weights_file_uses_image_counts(tmp_path):
    calibration = build_calibration("norcal", 3, gamma=0.7, file=weights(tmp_path))
    x = torch.randn(4, 4, dtype=torch.float64)
    # the image counts of the file, as NorCal divides each class probability by n_c ** gamma and renormalises
    torch.testing.assert_close(calibration(WeightedCrossEntropyLoss(3), x), reference_norcal_probs(x, COUNTS, 0.7))


def test_build_from_a_calibration_file(tmp_path):
    path = tmp_path / "calibration.json"
    save_calibration(path, contents(on="exps", renorm=False))
    fitted = build_calibration("norcal", 3, file=path)  # gamma, counts and options of the file, no thresholds
    assert (fitted.gamma, fitted.on, fitted.renorm, fitted.thresholds) == (0.5, "exps", False, None)
    applied = build_calibration("thresholds", 3, file=path)
    assert applied.thresholds.tolist() == [0.1, 0.2, 0.3] and applied.method == "norcal"
    x = torch.randn(6, 4, dtype=torch.float64)
    expected = norcal_scores(x, COUNTS, 0.5, on="exps", renorm=False)
    expected[:, :3] = torch.where(
        expected[:, :3] >= torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64), expected[:, :3], 0
    )
    torch.testing.assert_close(applied(WeightedCrossEntropyLoss(3), x), expected)


def test_checkpoints_never_carry_calibration_state():
    calibration = ScoreCalibration(3, "logit_adjust", class_counts=COUNTS, gamma=1.0, thresholds=[0.1] * 3)
    assert calibration.state_dict() == {}


@pytest.mark.parametrize(
    "method,kwargs,match",
    [
        ("platt", {}, r"calibration method='platt'; expected one of \['', 'norcal', 'logit_adjust', 'thresholds'\]"),
        ("norcal", dict(gamma=-1.0), r"gamma=-1\.0; expected a finite number >= 0"),
        ("norcal", dict(gamma=0.5), r"needs class counts"),
        ("norcal", {}, r"needs gamma"),
        ("", dict(gamma=0.5), r"method is '' \(off\)"),
        ("thresholds", {}, r"needs a calibration file with thresholds"),
    ],
)
def test_build_refuses_bad_settings(tmp_path, method, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_calibration(method, 3, **kwargs)


def test_build_refuses_a_zero_count_a_wrong_k_and_gamma_with_thresholds(tmp_path):
    with pytest.raises(ValueError, match=r"class 'c' has training image count 0"):
        build_calibration("norcal", 3, gamma=0.5, file=weights(tmp_path, (100, 10, 0)))
    with pytest.raises(ValueError, match=r"has 3 classes but the model has num_classes=4"):
        build_calibration("norcal", 4, gamma=0.5, file=weights(tmp_path))
    path = tmp_path / "calibration.json"
    save_calibration(path, contents())
    with pytest.raises(ValueError, match=r"gamma=0\.3 given with method 'thresholds'"):
        build_calibration("thresholds", 3, gamma=0.3, file=path)


def test_norcal_refuses_a_sigmoid_head():
    calibration = ScoreCalibration(3, "norcal", class_counts=COUNTS, gamma=0.5)
    with pytest.raises(ValueError, match=r"the loss is EQLv2Loss, expected one of \['WeightedCrossEntropyLoss'\]"):
        calibration(EQLv2Loss(3), torch.zeros(2, EQLv2Loss(3).num_logits))
