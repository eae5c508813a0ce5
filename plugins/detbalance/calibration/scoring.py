"""The one place where test-time scores are calibrated, for both frameworks.

Both adapters score boxes through their loss module (``predict_probs`` in Detectron2, ``get_activation`` in
MMDetection); with calibration they call ``calibration(loss, logits)`` instead of ``loss.predict_scores(logits)``.
:class:`ScoreCalibration` holds the settings; :func:`build_calibration` makes one from the settings a config names
(``method``, ``gamma``, ``file``) and the training statistics.

Methods (``method`` of a config):

====================  =========================================================================================
``""``                off: the loss's own ``predict_scores``
``"norcal"``          :func:`~detbalance.calibration.norcal_scores` (softmax heads: ``WeightedCrossEntropyLoss``)
``"logit_adjust"``    :func:`~detbalance.calibration.logit_adjust` on the class logits, then the loss's own scores
                      (any head; the counterpart of NorCal for the sigmoid family)
``"thresholds"``      the calibration file's score calibration, then its per-class thresholds
                      (:func:`~detbalance.calibration.apply_thresholds`)
====================  =========================================================================================

Class counts ``n_c`` are training image counts: from the calibration file, else the weights file or statistics.
"""

from __future__ import annotations

import os
from typing import Any

from torch import Tensor, nn

from .._checks import check_int
from ..losses import WeightedCrossEntropyLoss
from ..weights import FORMAT as WEIGHTS_FORMAT
from ..weights import load_weights
from ._checks import NORCAL_ON, NORCAL_VARIANTS, check_choice, check_counts, check_gamma, check_thresholds
from .file import FORMAT as CALIBRATION_FORMAT
from .file import SCORE_METHODS, CalibrationFile, load_calibration, read_format
from .logit_adjust import logit_adjust
from .norcal import norcal_scores
from .thresholds import apply_thresholds

__all__ = ["METHODS", "SOFTMAX_LOSSES", "ScoreCalibration", "build_calibration"]

#: Values of a config's calibration ``method``.
METHODS = ("", "norcal", "logit_adjust", "thresholds")
#: Loss modules whose test-time scores are a softmax over ``K + 1`` logits (background last): NorCal's domain.
SOFTMAX_LOSSES = (WeightedCrossEntropyLoss,)


class ScoreCalibration(nn.Module):
    """Calibrated test-time scores ``[R, K + 1]`` of a detbalance loss module; identity with ``method=""``.

    Args:
        num_classes: K.
        method: ``""``, ``"norcal"`` or ``"logit_adjust"`` (the score calibration).
        class_counts: ``K`` training image counts (> 0); required by, and only accepted with, a method.
        gamma: NorCal's / logit adjustment's exponent (``beta`` for NorCal's ``class_balanced`` variant);
            required by, and only accepted with, a method.
        on, renorm, variant: NorCal's options (:func:`~detbalance.calibration.norcal_scores`).
        thresholds: optional ``K`` per-class score thresholds in [0, 1], applied after the score calibration.

    Counts and thresholds are non-persistent buffers: a checkpoint never carries them, the config decides.

    Example:
        >>> import torch
        >>> from detbalance.losses import WeightedCrossEntropyLoss
        >>> calibration = ScoreCalibration(2, "norcal", class_counts=[100, 1], gamma=0.5)
        >>> calibration(WeightedCrossEntropyLoss(2), torch.tensor([[2.0, 2.0, 0.0]])).argmax(dim=1).item()
        1
    """

    def __init__(
        self,
        num_classes: int,
        method: str = "",
        *,
        class_counts=None,
        gamma: float | None = None,
        on: str = "probs",
        renorm: bool = True,
        variant: str = "power",
        thresholds=None,
    ) -> None:
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, minimum=1)
        self.method = check_choice("calibration method", method, SCORE_METHODS)
        self.on = check_choice("on", on, NORCAL_ON)
        self.variant = check_choice("variant", variant, NORCAL_VARIANTS)
        if not isinstance(renorm, bool):
            raise ValueError(f"renorm={renorm!r}; expected True or False")
        self.renorm = renorm
        if method == "":
            if class_counts is not None or gamma is not None:
                raise ValueError(
                    f"class_counts/gamma={gamma!r} given with calibration method ''; expected none "
                    f"(or a method from {list(SCORE_METHODS[1:])})"
                )
            self.gamma = None
            counts = None
        else:
            if class_counts is None or gamma is None:
                raise ValueError(
                    f"calibration method {method!r} needs class_counts and gamma, got "
                    f"class_counts={'None' if class_counts is None else 'given'}, gamma={gamma!r}"
                )
            self.gamma = check_gamma(gamma, variant if method == "norcal" else "power")
            counts = check_counts(class_counts)
            if counts.numel() != num_classes:
                raise ValueError(f"class_counts has {counts.numel()} entries; expected num_classes={num_classes}")
        self.register_buffer("class_counts", counts, persistent=False)
        t = None if thresholds is None else check_thresholds(thresholds, num_classes)
        self.register_buffer("thresholds", t, persistent=False)

    @property
    def active(self) -> bool:
        """False when the scores are the loss's own (no method, no thresholds)."""
        return self.method != "" or self.thresholds is not None

    def check_loss(self, loss: nn.Module) -> nn.Module:
        """Return ``loss`` after checking this calibration can score it (its K; a softmax head for NorCal).

        The adapters call it when the model is built, so that a mismatch fails then rather than at test time.
        """
        if getattr(loss, "num_classes", None) != self.num_classes:
            raise ValueError(
                f"the calibration is for num_classes={self.num_classes} but the loss "
                f"{type(loss).__name__} has num_classes={getattr(loss, 'num_classes', None)}"
            )
        if self.method == "norcal" and not isinstance(loss, SOFTMAX_LOSSES):
            raise ValueError(
                f"calibration method 'norcal' rescales softmax scores; the loss is "
                f"{type(loss).__name__}, expected one of {[c.__name__ for c in SOFTMAX_LOSSES]} "
                "(use method 'logit_adjust' for other heads)"
            )
        return loss

    def forward(self, loss: nn.Module, logits: Tensor) -> Tensor:
        """``scores[R, K + 1]`` of ``loss`` (its ``predict_scores``), calibrated; ``logits`` as the loss takes."""
        self.check_loss(loss)
        if self.method == "norcal":
            scores = norcal_scores(
                logits, self.class_counts, self.gamma, on=self.on, renorm=self.renorm, variant=self.variant
            )
        elif self.method == "logit_adjust":
            scores = loss.predict_scores(logit_adjust(logits, self.class_counts, self.gamma))
        else:
            scores = loss.predict_scores(logits)
        return scores if self.thresholds is None else apply_thresholds(scores, self.thresholds)

    def extra_repr(self) -> str:
        text = f"num_classes={self.num_classes}, method={self.method!r}"
        if self.method:
            text += f", gamma={self.gamma}"
        if self.method == "norcal":
            text += f", on={self.on!r}, renorm={self.renorm}, variant={self.variant!r}"
        return text + (", thresholds=per class" if self.thresholds is not None else "")


def _image_counts(stats: Any, num_classes: int, source: str) -> list[int]:
    inner = getattr(stats, "stats", stats)
    counts = getattr(inner, "image_counts", None)
    names = getattr(inner, "class_names", None)
    if counts is None or names is None:
        raise ValueError(f"{source}: expected class statistics with image_counts, got {type(stats).__name__}")
    if len(counts) != num_classes:
        raise ValueError(f"{source} describes {len(counts)} classes; expected num_classes={num_classes}")
    zero = [n for n, c in zip(names, counts) if c <= 0]
    if zero:
        raise ValueError(
            f"{source}: class {zero[0]!r} has training image count 0; expected > 0 for every class "
            "(calibration divides by a power of it)"
        )
    return list(counts)


def build_calibration(
    method: str,
    num_classes: int,
    *,
    gamma: float | None = None,
    file: str | os.PathLike | None = None,
    stats: Any = None,
) -> ScoreCalibration:
    """A :class:`ScoreCalibration` from a config's settings.

    Args:
        method: one of :data:`METHODS`.
        num_classes: K of the model.
        gamma: the exponent; None takes the one fitted in ``file`` (a calibration file for the same method).
        file: a calibration file (``tools/calibrate.py``) or a weights file (its image counts).
        stats: class statistics (``ClassStats`` or ``WeightsFile``) used for the counts when ``file`` is None.

    ``"norcal"``/``"logit_adjust"`` take counts from ``file`` (else ``stats``) and NorCal's options from a
    calibration file; its thresholds are not applied. ``"thresholds"`` needs a calibration file with thresholds and
    applies it as written (its method, gamma and thresholds); ``gamma`` must then be None. ``""`` accepts neither
    gamma nor file.

    Raises:
        ValueError: an unknown method, gamma < 0, a file for another K, a zero count, a missing or unfit file.
    """
    check_choice("calibration method", method, METHODS)
    if method == "":
        if gamma is not None or file:
            raise ValueError(
                f"calibration gamma={gamma!r}, file={file!r} given but method is '' (off); expected "
                f"a method from {list(METHODS[1:])} or neither setting"
            )
        return ScoreCalibration(num_classes)
    if gamma is not None:
        check_gamma(gamma)  # >= 0 whatever the file says; the variant's own range is checked when built
    contents: CalibrationFile | None = None
    if file:
        fmt, _ = read_format(file)
        if fmt == CALIBRATION_FORMAT:
            contents = load_calibration(file, num_classes)
        elif fmt == WEIGHTS_FORMAT:
            stats = load_weights(file, num_classes)
        else:
            raise ValueError(
                f"{file}: field 'format' is {fmt!r}; expected {CALIBRATION_FORMAT!r} or {WEIGHTS_FORMAT!r}"
            )
    if method == "thresholds":
        if contents is None or contents.thresholds is None:
            raise ValueError(
                f"calibration method 'thresholds' needs a calibration file with thresholds, got file={file!r}"
            )
        if gamma is not None:
            raise ValueError(
                f"calibration gamma={gamma!r} given with method 'thresholds'; expected None: the "
                f"thresholds in {file} were fitted with its own gamma={contents.gamma!r}"
            )
        return ScoreCalibration(
            num_classes,
            contents.method,
            class_counts=contents.class_counts,
            gamma=contents.gamma,
            on=contents.on,
            renorm=contents.renorm,
            variant=contents.variant,
            thresholds=contents.thresholds,
        )
    if contents is not None:
        if gamma is None and contents.method != method:
            raise ValueError(f"{file} holds a gamma for method {contents.method!r}, not {method!r}; give gamma")
        if contents.class_counts is None:
            raise ValueError(f"{file}: field 'class_counts' is null; method {method!r} needs class counts")
        return ScoreCalibration(
            num_classes,
            method,
            class_counts=contents.class_counts,
            gamma=contents.gamma if gamma is None else gamma,
            on=contents.on,
            renorm=contents.renorm,
            variant=contents.variant,
        )
    if gamma is None:
        raise ValueError(
            f"calibration method {method!r} needs gamma (or a calibration file holding a fitted one), got neither"
        )
    if stats is None:
        raise ValueError(
            f"calibration method {method!r} needs class counts: expected a weights or calibration "
            "file, or class statistics, got none"
        )
    counts = _image_counts(stats, num_classes, str(file) if file else "class statistics")
    return ScoreCalibration(num_classes, method, class_counts=counts, gamma=gamma)
