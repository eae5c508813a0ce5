"""Post-hoc calibration of trained detectors (torch only): NorCal, logit adjustment, per-class thresholds.

A long-tailed detector ranks rare-class boxes reasonably but scores them too low; these rescale the test-time
scores with the training class frequencies, without retraining:

- :func:`norcal_scores` (Pan et al., NeurIPS 2021) for softmax heads, its three modes and two variants;
- :func:`logit_adjust` (Menon et al., ICLR 2021) for any head, the counterpart for the sigmoid family;
- :func:`fit_thresholds` / :func:`apply_thresholds`: per-class score thresholds fitted on a validation set;
- :class:`CalibrationFile`: the versioned calibration file (:func:`save_calibration`, :func:`load_calibration`);
- :class:`ScoreCalibration` / :func:`build_calibration`: the one place both frameworks' heads score through.
"""

from .file import FORMAT, SCORE_METHODS, VERSION, CalibrationFile, load_calibration, save_calibration
from .logit_adjust import logit_adjust, logit_shift
from .norcal import norcal_factors, norcal_scores
from .scoring import METHODS, SOFTMAX_LOSSES, ScoreCalibration, build_calibration
from .thresholds import OBJECTIVES, ThresholdFit, apply_thresholds, fit_thresholds

__all__ = [
    "FORMAT",
    "VERSION",
    "SCORE_METHODS",
    "METHODS",
    "OBJECTIVES",
    "SOFTMAX_LOSSES",
    "CalibrationFile",
    "load_calibration",
    "save_calibration",
    "logit_adjust",
    "logit_shift",
    "norcal_factors",
    "norcal_scores",
    "ScoreCalibration",
    "build_calibration",
    "ThresholdFit",
    "apply_thresholds",
    "fit_thresholds",
]
