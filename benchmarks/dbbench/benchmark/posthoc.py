"""Post-hoc calibration rows of the matrix (``Method.calibrate``): no training of their own.

A row calibrates the trained model of its ``base`` method in the same (framework, seed): the base's
``model_final.pth``, trained first with the base's own spec and work folder where it is missing (e.g. runs made
before the runners saved checkpoints; :func:`~dbbench.benchmark.runner.run_matrix` then rewrites the base's
record from that training, so the record describes the model calibrated). The model predicts the **validation** split once per exponent of
:data:`~dbbench.benchmark.methods.GAMMA_GRID` (0: as trained), the calibration set through the framework's own
config path (``DETBALANCE.CALIBRATION`` in Detectron2, ``loss_cls.calibration`` in MMDetection), and
:func:`detbalance.evaluation.calibration_fit.fit_calibration` keeps the exponent with the best validation APr
under the LVIS protocol (ties: the smaller). Only then is the test split predicted, once, at that exponent: the
test split never chooses anything. The record adds ``calibration``: method, base, chosen gamma, the grid and the
validation curve (APr by gamma); its ``seconds`` are the calibration's (validation and test predictions), its
``train`` the base's training summary.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from detbalance.evaluation.calibration_fit import fit_calibration
from detbalance.weights import load_weights

from ..training.files import write_json
from ..training.runners import get_runner
from .jobs import machine_info
from .methods import GAMMA_FIT_METRIC, GAMMA_GRID, get_method
from .runs import run_definition, run_spec, train_once, work_root

__all__ = ["calibrate_row"]


def calibrate_row(
    settings, dataset, weights_file: Path, framework: str, method, seed: int, definition: str
) -> tuple[dict, list[dict], dict]:
    """``(marker, test detections, record fields)`` of calibration row ``method`` (module docstring); cached in
    ``<work>/calibrated.json`` + ``results.json`` under the row's own work folder."""
    base = get_method(method.base)
    base_spec = run_spec(settings, dataset, weights_file, framework, base, seed)
    base_trained = train_once(settings, base_spec, run_definition(base, settings, weights_file), need_checkpoint=True)
    work = work_root(settings, dataset) / framework / method.key / f"seed{seed}"
    marker, results_json = work / "calibrated.json", work / "results.json"
    if marker.is_file() and results_json.is_file():
        cached = json.loads(marker.read_text(encoding="utf-8"))
        if cached.get("definition") == definition:
            return cached, json.loads(results_json.read_text(encoding="utf-8")), {"calibration": cached["calibration"]}
    runner = get_runner(framework)
    start = time.perf_counter()

    def predict(split: str, gamma: float) -> list[dict]:
        json_file, images = dataset.split(split)
        calibration = None if gamma == 0 else (method.calibrate, gamma)
        return runner.predict(base_spec, json_file, images, calibration=calibration, progress=settings.progress)

    val_gt = json.loads(dataset.split("val")[0].read_text(encoding="utf-8"))
    by_gamma = {gamma: predict("val", gamma) for gamma in GAMMA_GRID}
    fit = fit_calibration(
        val_gt,
        by_gamma[0.0],
        {g: r for g, r in by_gamma.items() if g > 0},
        weights_file=load_weights(weights_file, num_classes=len(dataset.categories)),
        method=method.calibrate,
        metric=GAMMA_FIT_METRIC,
    )
    gamma = float(fit.calibration.gamma)
    results = predict("test", gamma)
    write_json(results_json, results)
    calibration = {
        "method": method.calibrate,
        "base": base.key,
        "gamma": gamma,
        "grid": list(GAMMA_GRID),
        "fit_split": "val",
        "fit_metric": "APr (LVIS protocol)",
        "val_curve": {f"{g:g}": None if math.isnan(v) else round(v, 4) for g, v in fit.metric_by_gamma.items()},
    }
    trained = {
        "definition": definition,
        "seconds": round(time.perf_counter() - start, 1),
        "train": base_trained["train"],
        "machine": machine_info(settings.device, settings.threads),
        "calibration": calibration,
    }
    write_json(marker, trained, indent=1)
    return trained, results, {"calibration": calibration}
