"""Resumable runs of the benchmark matrix: one cached record per (framework, method, seed, data version).

Each run trains the method's model (the demo's Faster R-CNN unless the row names another, e.g. RetinaNet or
Cascade R-CNN) through the demo's runners (:mod:`dbbench.demo.detectron2_runner`, ``mmdet_runner``) on the
split of :mod:`dbbench.data.longtail` its method names, writes the test detections of the LVIS protocol
(score >= 1e-4, at most 300 per image) to ``<work_dir>/<data version>/<framework>/<method>/seed<n>/results.json``
and evaluates them with :func:`detbalance.evaluation.lvis_protocol.evaluate_large_vocabulary`. The record,
``<results_dir>/runs/<data version>/<framework>__<method>__seed<n>.json``, holds the model, the metrics, the
time and the machine. A run whose record exists with the same definition hash (method row, schedule, protocol)
is skipped; detections that exist without a record are evaluated without training again. Every trained model is kept
(``model_final.pth``) for the post-hoc calibration rows (:mod:`.posthoc`), which re-predict their base method's
model instead of training. After every run ``<results_dir>/summary.json`` is rewritten from the records. The
building blocks of one run (settings, definition hash, run spec, training once) are in :mod:`.runs`.
"""

from __future__ import annotations

import json
from pathlib import Path

from detbalance.evaluation.lvis_protocol import evaluate_large_vocabulary

from ..demo.files import write_json
from .methods import FRAMEWORKS, Method, get_method, pending
from .posthoc import calibrate_row
from .runs import BenchmarkSettings, prepare_version, run_definition, run_spec, train_once
from .summary import load_summary, record_path

__all__ = ["run_matrix"]


def run_matrix(settings: BenchmarkSettings, frameworks, methods, seeds, log=print) -> list[dict]:
    """Run every (framework, method, seed) not cached yet; returns the records of this call's jobs.

    Methods that :func:`~dbbench.benchmark.methods.pending` refuses are logged and skipped.
    """
    bad = [f for f in frameworks if f not in FRAMEWORKS]
    if bad or not frameworks:
        raise ValueError(f"frameworks={list(frameworks)}; expected one or more of {FRAMEWORKS}")
    methods = [get_method(m) if isinstance(m, str) else m for m in methods]
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds={list(seeds)}; expected one or more integers >= 0")
    dataset, weights_file = prepare_version(settings)
    test_gt = json.loads(dataset.split("test")[0].read_text(encoding="utf-8"))
    groups = [c["frequency"] for c in dataset.categories]
    done = []

    def run_and_record(tag: str, framework: str, method: Method, seed: int, *, need_checkpoint: bool = False) -> None:
        definition = run_definition(method, settings, weights_file)
        record = _run_one(
            settings, dataset, weights_file, test_gt, groups, framework, method, seed, definition, need_checkpoint
        )
        path = record_path(settings.results_dir, dataset.version, framework, method.key, seed, settings.regime)
        write_json(path, record, indent=1)
        write_json(
            Path(settings.results_dir) / "summary.json",
            load_summary(settings.results_dir, settings.spec),
            indent=1,
        )
        lvis = record["metrics"]
        log(
            f"{tag}: {record['seconds']:.0f} s; LVIS protocol AP {lvis['AP']:.1f} APr {lvis['APr']:.1f} "
            f"APc {lvis['APc']:.1f} APf {lvis['APf']:.1f}"
        )
        done.append(record)

    jobs = [(f, m, s) for f in frameworks for m in methods for s in seeds]
    regime = "" if settings.regime == "scratch" else f" ({settings.regime})"
    for i, (framework, method, seed) in enumerate(jobs, start=1):
        tag = f"[{i}/{len(jobs)}] {framework} {method.key} seed {seed}{regime}"
        reason = pending(method, framework, settings.regime)
        if reason is not None:
            log(f"{tag}: skipped ({reason})")
            continue
        definition = run_definition(method, settings, weights_file)
        path = record_path(settings.results_dir, dataset.version, framework, method.key, seed, settings.regime)
        if path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("definition") == definition:
            log(f"{tag}: cached ({path})")
            continue
        if method.calibrate is not None or method.decouple is not None:
            # the base's saved model first: a base run without one (recorded before the runners saved checkpoints)
            # trains again, and its record is rewritten from that training, so it describes the calibrated model
            base = get_method(method.base)
            if not run_spec(settings, dataset, weights_file, framework, base, seed).checkpoint.is_file():
                base_tag = f"{tag}: base {base.key} (no saved model)"
                run_and_record(base_tag, framework, base, seed, need_checkpoint=True)
        run_and_record(tag, framework, method, seed)
    return done


def _run_one(
    settings, dataset, weights_file, test_gt, groups, framework, method, seed, definition, need_checkpoint=False
) -> dict:
    if method.calibrate is not None:
        trained, results, extra = calibrate_row(settings, dataset, weights_file, framework, method, seed, definition)
    else:
        spec = run_spec(settings, dataset, weights_file, framework, method, seed)
        trained = train_once(settings, spec, definition, need_checkpoint=need_checkpoint)
        results, extra = json.loads(spec.results_json.read_text(encoding="utf-8")), {}
        if method.decouple is not None:  # the stage-2 time is the record's; stage 1's is its base's record
            base = get_method(method.base)
            base_spec = run_spec(settings, dataset, weights_file, framework, base, seed)
            stage1 = json.loads((base_spec.work_dir / "trained.json").read_text(encoding="utf-8"))
            extra = {
                "decouple": {
                    "base": base.key,
                    "trained": method.decouple,
                    "iters": spec.schedule.iters,
                    "stage1_iters": settings.schedule.iters,
                    "stage1_seconds": stage1["seconds"],
                }
            }
    views = evaluate_large_vocabulary(test_gt, results, groups)
    return {
        "framework": framework,
        "method": method.key,
        "regime": settings.regime,
        "model": method.model,
        "seed": seed,
        "data_version": dataset.version,
        "definition": definition,
        "seconds": trained["seconds"],
        "machine": trained["machine"],
        "train": trained["train"],
        "metrics": {k: views["lvis"][k] for k in ("AP", "APr", "APc", "APf")},
        "AP50": views["lvis"]["AP50"],
        "cap100": views["cap100"],
        "ap_fixed": views["ap_fixed"],
        "ap_pool": views["ap_pool"],
        "ece": views["ece"],
        "per_class_ap": views["per_class_ap"],
        "num_detections": views["num_lvis_detections"],
        **extra,
    }
