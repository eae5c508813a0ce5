"""``results/summary.json``: the benchmark's committed results, built from the per-run records alone.

Schema::

    {"dataset": {"name", "version", "num_classes", "groups": {"r", "c", "f"}, "train_instances",
                 "oracle_instances_per_class", "val_instances_per_class", "test_instances_per_class", "image_size"},
     "primary_metric": PRIMARY_METRIC,
     "protocol": {"max_detections_per_image": 300, "score_threshold": 1e-4, ...},
     "runs": [{"regime", "framework", "method", "seed", "metrics": {"AP", "APr", "APc", "APf"},   # LVIS protocol
               "AP50", "cap100": {...}, "ap_fixed": {..., "k"}, "ap_pool", "ece": {"all", "r", "c", "f"},
               "seconds", "machine", "calibration" (calibration rows only), "model" (records of the head rows
               and later; a record without it trained the default Faster R-CNN), "decouple" (decoupled rows),
               "train" (the runner's summary)}, ...],
     "tuning": {"rfs_threshold": {...},          # choices made on the validation split (benchmark.tuning)
                "pretrained_schedule": {...},    # (benchmark.schedule_tuning)
                "decouple_fraction": {...}}}     # (benchmark.decouple_tuning)

``regime``: ``"scratch"`` (random initialisation) or ``"pretrained"`` (ImageNet-pretrained backbone, fine-tuned).
Runs are sorted by (regime, framework, method, seed); only records of the current data version are included.
"""

from __future__ import annotations

import json
from pathlib import Path

from detbalance.evaluation.lvis_protocol import (
    AP_FIXED_PER_IMAGE,
    FRAMEWORK_MAX_DETS,
    LVIS_MAX_DETS,
    LVIS_SCORE_THRESHOLD,
)
from detbalance.weights import frequency_groups

from ..data.longtail import LongTailSpec, data_version
from ..training.models import REGIMES
from .decouple_tuning import decouple_tuning_path
from .schedule_tuning import schedule_path
from .tuning import tuning_path

__all__ = ["PRIMARY_METRIC", "record_path", "load_records", "build_summary", "load_summary", "runs_by_method"]

#: Pre-registered before any result: the one number the benchmark is judged by; every other view is secondary.
PRIMARY_METRIC = (
    "APr under the LVIS protocol (at most 300 detections per image, score >= 1e-4, mean AP at IoU "
    ".50:.95 over the classes in 1-10 train images), mean +- std over >= 3 seeds"
)
_RUN_KEYS = (
    "framework",
    "method",
    "seed",
    "metrics",
    "AP50",
    "cap100",
    "ap_fixed",
    "ap_pool",
    "ece",
    "seconds",
    "machine",
)
#: Keys only some records have: a post-hoc calibration row's ``calibration`` (method, base, gamma, grid, curve);
#: ``model`` (the detector; records made before the head rows lack it: they trained the default Faster R-CNN); a decoupled
#: row's ``decouple`` (base, trained part, stage-2 and stage-1 iterations, stage-1 seconds and test-prediction
#: seconds); ``train`` (first and final loss, iterations, detections, and since the runners time it the seconds of
#: the test prediction, ``predict_seconds``).
_OPTIONAL_KEYS = ("calibration", "model", "decouple", "train")


def record_path(results_dir, version: str, framework: str, method: str, seed: int, regime: str = "scratch") -> Path:
    """``runs/<version>/<framework>__<method>__seed<n>.json``; a regime other than ``"scratch"`` has its folder
    ``runs/<version>/<regime>/``."""
    if regime not in REGIMES:
        raise ValueError(f"regime={regime!r}; expected one of {REGIMES}")
    folder = Path(results_dir) / "runs" / version
    return (folder if regime == "scratch" else folder / regime) / f"{framework}__{method}__seed{seed}.json"


def load_records(results_dir, version: str) -> list[dict]:
    """The run records of data version ``version`` under ``results_dir`` (every regime; a record made before the
    regimes is ``"scratch"``), sorted by (regime, framework, method, seed)."""
    records = []
    for regime in REGIMES:
        folder = Path(results_dir) / "runs" / version
        folder = folder if regime == "scratch" else folder / regime
        for path in sorted(folder.glob("*.json")):
            record = json.loads(path.read_text(encoding="utf-8"))
            records.append({"regime": "scratch", **record})
    return sorted(records, key=lambda r: (REGIMES.index(r["regime"]), r["framework"], r["method"], r["seed"]))


def build_summary(records: list[dict], spec: LongTailSpec, tuning: dict | None = None) -> dict:
    """The summary of ``records`` (see the module docstring); the dataset block comes from ``spec``, ``tuning``
    (choices made on the validation split, by name) is copied as it is."""
    version = data_version(spec)
    stale = sorted({r.get("data_version") for r in records} - {version})
    if stale:
        raise ValueError(f"records of data version {stale} given; expected only {version}")
    found = frequency_groups(spec.counts)  # every train image holds a class at most once: images = instances
    groups = {g: found.count(g) for g in ("r", "c", "f")}
    return {
        "dataset": {
            "name": "detbalance LVIS-like synthetic shapes",
            "version": version,
            "num_classes": spec.num_classes,
            "groups": groups,
            "train_instances": sum(spec.counts),
            "oracle_instances_per_class": spec.split_counts("train_balanced")[0],
            "val_instances_per_class": spec.val_per_class,
            "test_instances_per_class": spec.test_per_class,
            "image_size": spec.image_size,
        },
        "primary_metric": PRIMARY_METRIC,
        "protocol": {
            "max_detections_per_image": LVIS_MAX_DETS,
            "score_threshold": LVIS_SCORE_THRESHOLD,
            "framework_cap": FRAMEWORK_MAX_DETS,
            "ap_fixed_per_class_per_test_image": AP_FIXED_PER_IMAGE,
        },
        "runs": [
            {
                "regime": r.get("regime", "scratch"),  # records made before the regimes trained from scratch
                **{k: r[k] for k in _RUN_KEYS},
                **{k: r[k] for k in _OPTIONAL_KEYS if k in r},
            }
            for r in records
        ],
        "tuning": dict(tuning or {}),
    }


def load_summary(results_dir, spec: LongTailSpec) -> dict:
    """The summary of the records of ``spec``'s data version under ``results_dir``, with the choices made on the
    validation split where ``results_dir`` holds them for that version: the repeat threshold
    (``tuning.rfs_threshold``), the pretrained regime's schedule (``tuning.pretrained_schedule``) and the length of
    the tuned decoupled row's stage 2 (``tuning.decouple_fraction``)."""
    version = data_version(spec)
    tuning = {}
    for key, path in (
        ("rfs_threshold", tuning_path(results_dir)),
        ("pretrained_schedule", schedule_path(results_dir)),
        ("decouple_fraction", decouple_tuning_path(results_dir)),
    ):
        if path.is_file():
            chosen = json.loads(path.read_text(encoding="utf-8"))
            if chosen.get("data_version") == version:
                tuning[key] = chosen
    return build_summary(load_records(results_dir, version), spec, tuning)


def runs_by_method(summary: dict, regime: str, framework: str | None = None) -> dict[str, list[dict]]:
    """``{method: [run, ...]}`` of ``summary``'s runs in ``regime`` (of ``framework`` only, unless None)."""
    out: dict[str, list[dict]] = {}
    for run in summary["runs"]:
        if run.get("regime", "scratch") == regime and framework in (None, run["framework"]):
            out.setdefault(run["method"], []).append(run)
    return out
