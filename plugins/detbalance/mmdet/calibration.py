"""The ``calibration=`` argument of every registered ``DB*`` loss: test-time score calibration in MMDetection.

::

    loss_cls=dict(type='DBWeightedCrossEntropyLoss', num_classes=8,
                  calibration=dict(method='norcal', gamma=0.6, file='weights.json'))

Keys: ``method`` (``''`` off, ``'norcal'``, ``'logit_adjust'``, ``'thresholds'``), ``gamma`` (>= 0; omitted or
None: the gamma fitted in ``file``), ``file`` (a calibration file from ``tools/calibrate.py`` or a weights file:
the class counts). The maths is :mod:`detbalance.calibration`; ``get_activation`` scores boxes through it.

A model trained with MMDetection's plain ``CrossEntropyLoss`` (softmax, K + 1 channels, background last) loads
into ``DBWeightedCrossEntropyLoss`` without ``class_weight`` unchanged (same ``fc_cls``), so it is calibrated by
this config change only.
"""

from __future__ import annotations

from torch import nn

from ..calibration import ScoreCalibration, build_calibration

__all__ = ["CALIBRATION_KEYS", "calibration_from_config"]

CALIBRATION_KEYS = ("method", "gamma", "file")


def calibration_from_config(calibration: dict | None, core: nn.Module) -> ScoreCalibration:
    """The :class:`~detbalance.calibration.ScoreCalibration` of a loss's ``calibration`` dict (None: off), checked
    against the core loss module ``core`` it will score.

    Raises:
        ValueError: prefixed ``loss_cls.calibration:``, naming an unknown key or a bad value.
    """
    num_classes = core.num_classes
    if calibration is None:
        return ScoreCalibration(num_classes)
    try:
        if not isinstance(calibration, dict):
            raise ValueError(f"expected a dict with keys {list(CALIBRATION_KEYS)}, got {type(calibration).__name__}")
        unknown = sorted(set(calibration) - set(CALIBRATION_KEYS))
        if unknown:
            raise ValueError(f"unknown keys {unknown}; expected keys from {list(CALIBRATION_KEYS)}")
        result = build_calibration(
            calibration.get("method", ""),
            num_classes,
            gamma=calibration.get("gamma"),
            file=calibration.get("file") or None,
        )
        result.check_loss(core)
        return result
    except ValueError as e:
        raise ValueError(f"loss_cls.calibration: {e}") from None
