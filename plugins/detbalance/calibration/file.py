"""The versioned calibration file: how a trained model's scores are calibrated at test time.

Written by ``tools/calibrate.py`` (or :func:`save_calibration`), read by both frameworks through
``DETBALANCE.CALIBRATION.FILE`` / ``loss_cls=dict(calibration=dict(file=...))``. Layout (JSON, ``version`` 1)::

    {"format": "detbalance-calibration", "version": 1,
     "class_names": [...], "class_counts": [...],            # training images per class (NorCal's n_c)
     "method": "norcal", "gamma": 0.6,                        # "" (scores as trained), "norcal", "logit_adjust"
     "norcal": {"on": "probs", "renorm": true, "variant": "power"},
     "thresholds": [...] | null, "threshold_rule": {"objective": "f1"} | {"objective": "precision", "target": 0.9},
     "fit": {...}}                                            # how it was fitted (free-form record)

Per-class lists follow the model's contiguous label order, as in the weights file
(:mod:`detbalance.weights.file`), and are written atomically by the same writer.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..weights.file import write_text_atomic
from ._checks import NORCAL_ON, NORCAL_VARIANTS, check_gamma
from .thresholds import OBJECTIVES

__all__ = [
    "FORMAT",
    "VERSION",
    "SCORE_METHODS",
    "CalibrationFile",
    "save_calibration",
    "load_calibration",
    "read_format",
]

FORMAT = "detbalance-calibration"
VERSION = 1
#: Score calibrations a file can hold ("" = the head's scores as trained).
SCORE_METHODS = ("", "norcal", "logit_adjust")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(kw_only=True)
class CalibrationFile:
    """Contents of a calibration file (module docstring). ``class_counts`` and ``gamma`` are None only with
    ``method=""``; ``thresholds`` and ``threshold_rule`` are both None or both set."""

    version: int = VERSION
    class_names: list[str]
    class_counts: list[int] | None = None
    method: str = ""
    gamma: float | None = None
    on: str = "probs"
    renorm: bool = True
    variant: str = "power"
    thresholds: list[float] | None = None
    threshold_rule: dict | None = None
    fit: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def problems(self) -> list[tuple[str, str]]:
        """``(field, message)`` for everything inconsistent; empty when the contents are valid."""
        out = []
        names = self.class_names
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            return [("class_names", "expected a non-empty list of non-empty strings")]
        k = len(names)
        if self.version != VERSION:
            out.append(("version", f"unsupported version {self.version!r}, expected {VERSION}"))
        if self.method not in SCORE_METHODS:
            out.append(("method", f"unknown method {self.method!r}, expected one of {list(SCORE_METHODS)}"))
        elif self.method == "":
            if self.gamma is not None:
                out.append(("gamma", f"is {self.gamma!r} but method is '' (scores as trained); expected null"))
        else:
            try:
                check_gamma(self.gamma, self.variant if self.variant in NORCAL_VARIANTS else "power")
            except ValueError as e:
                out.append(("gamma", str(e)))
            if self.class_counts is None:
                out.append(("class_counts", f"is missing; method {self.method!r} needs the training image counts"))
        if self.class_counts is not None:
            counts = self.class_counts
            if not isinstance(counts, list) or len(counts) != k:
                out.append(("class_counts", f"expected a list of {k} counts (one per class name)"))
            else:
                bad = [
                    (i, c)
                    for i, c in enumerate(counts)
                    if not (isinstance(c, int) and not isinstance(c, bool) and c > 0)
                ]
                if bad:
                    out.append(("class_counts", f"expected integers > 0, got {bad[0][1]!r} at index {bad[0][0]}"))
        if self.on not in NORCAL_ON:
            out.append(("norcal.on", f"is {self.on!r}, expected one of {list(NORCAL_ON)}"))
        if not isinstance(self.renorm, bool):
            out.append(("norcal.renorm", f"is {self.renorm!r}, expected true or false"))
        if self.variant not in NORCAL_VARIANTS:
            out.append(("norcal.variant", f"is {self.variant!r}, expected one of {list(NORCAL_VARIANTS)}"))
        if (self.thresholds is None) != (self.threshold_rule is None):
            out.append(("threshold_rule", "thresholds and threshold_rule must both be set or both be null"))
        if self.thresholds is not None:
            t = self.thresholds
            if not isinstance(t, list) or len(t) != k:
                out.append(("thresholds", f"expected a list of {k} numbers (one per class name)"))
            else:
                bad = [(i, v) for i, v in enumerate(t) if not (_is_number(v) and 0 <= v <= 1)]
                if bad:
                    out.append(("thresholds", f"expected numbers in [0, 1], got {bad[0][1]!r} at index {bad[0][0]}"))
        rule = self.threshold_rule
        if rule is not None and (not isinstance(rule, dict) or rule.get("objective") not in OBJECTIVES):
            out.append(("threshold_rule", f"is {rule!r}, expected {{'objective': one of {list(OBJECTIVES)}}}"))
        if not isinstance(self.fit, dict):
            out.append(("fit", f"expected an object, got {type(self.fit).__name__}"))
        return out

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "version": self.version,
            "class_names": list(self.class_names),
            "class_counts": None if self.class_counts is None else [int(c) for c in self.class_counts],
            "method": self.method,
            "gamma": None if self.gamma is None else float(self.gamma),
            "norcal": {"on": self.on, "renorm": self.renorm, "variant": self.variant},
            "thresholds": None if self.thresholds is None else [float(t) for t in self.thresholds],
            "threshold_rule": self.threshold_rule,
            "fit": self.fit,
        }


def _raise(path, problems: list[tuple[str, str]]) -> None:
    field_name, message = problems[0]
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    raise ValueError(f"{path}: field '{field_name}' {message}{more}")


def save_calibration(path: str | os.PathLike, cf: CalibrationFile) -> None:
    """Validate ``cf`` and write it to ``path`` atomically (one member per line, lists on one line)."""
    problems = cf.problems()
    if problems:
        _raise(path, problems)
    members = [
        f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False, ensure_ascii=False)}" for k, v in cf.to_json().items()
    ]
    write_text_atomic(path, "{\n" + ",\n".join(members) + "\n}\n")


def read_format(path: str | os.PathLike) -> tuple[str | None, dict]:
    """``(format field, parsed json)`` of a detbalance file; ValueError for a missing file or invalid json."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"file {path} does not exist; expected a detbalance calibration or weights file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    return (data.get("format") if isinstance(data, dict) else None), data


def load_calibration(path: str | os.PathLike, num_classes: int | None = None) -> CalibrationFile:
    """Read and validate a calibration file; ``num_classes`` given: its class count must match.

    Raises:
        ValueError: missing file, invalid JSON, another format or version, an inconsistent field (the message
            names the path and the field), or a class count other than ``num_classes``.
    """
    fmt, data = read_format(path)
    if fmt != FORMAT:
        raise ValueError(
            f"{path}: field 'format' is {fmt!r}, expected {FORMAT!r}; this is not a detbalance calibration file"
        )
    if data.get("version") != VERSION:
        raise ValueError(f"{path}: field 'version' is {data.get('version')!r}, this detbalance reads version {VERSION}")
    missing = [
        k
        for k in ("class_names", "class_counts", "method", "gamma", "norcal", "thresholds", "threshold_rule", "fit")
        if k not in data
    ]
    if missing:
        raise ValueError(f"{path}: field '{missing[0]}' is missing")
    norcal = data["norcal"] if isinstance(data["norcal"], dict) else {}
    cf = CalibrationFile(
        class_names=data["class_names"],
        class_counts=data["class_counts"],
        method=data["method"],
        gamma=data["gamma"],
        on=norcal.get("on"),
        renorm=norcal.get("renorm"),
        variant=norcal.get("variant"),
        thresholds=data["thresholds"],
        threshold_rule=data["threshold_rule"],
        fit=data["fit"],
        version=data["version"],
    )
    problems = cf.problems()
    if problems:
        _raise(path, problems)
    if num_classes is not None and num_classes != cf.num_classes:
        raise ValueError(
            f"{path}: the calibration file has {cf.num_classes} classes but the model has num_classes={num_classes}"
        )
    return cf
