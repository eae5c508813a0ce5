"""Resumable runs of the benchmark matrix: one cached record per (framework, method, seed, data version).

Each run trains the method's model (the default Faster R-CNN unless the row names another, e.g. RetinaNet or
Cascade R-CNN) through the runners of :mod:`dbbench.training` on the split of :mod:`dbbench.data.longtail` its
method names, writes the test detections of the LVIS protocol (score >= 1e-4, at most 300 per image) to
``<work_dir>/<data version>/<framework>/<method>/seed<n>/results.json`` and evaluates them with
:func:`detbalance.evaluation.lvis_protocol.evaluate_large_vocabulary`. The record,
``<results_dir>/runs/<data version>/<framework>__<method>__seed<n>.json``, holds the model, the metrics, the
time and the machine. A run whose record exists with the same definition hash (method row, schedule, protocol)
is skipped. The trainings a call needs are made first, one after the other, by the experiments' one job loop
(:func:`~.jobs.run_jobs`); each leaves its marker ``trained.json``, so that a call stopped half-way trains only
what is left when it runs again, and detections that exist without a record are evaluated without training again.
Then every run is evaluated and recorded, and ``<results_dir>/summary.json`` rewritten from the records after each.
Every trained model is kept (``model_final.pth``) for the post-hoc calibration rows (:mod:`.posthoc`), which
re-predict their base method's model instead of training; a calibrated or decoupled row whose base has no saved
model trains the base first and rewrites its record. The building blocks of one run (settings, definition hash,
run spec, training once) are in :mod:`.runs`.
"""

from __future__ import annotations

import json
from pathlib import Path

from detbalance.evaluation.lvis_protocol import evaluate_large_vocabulary

from ..training.files import write_json
from .jobs import MARKER, Job, fresh_marker, run_jobs, run_name
from .methods import FRAMEWORKS, Method, get_method, pending
from .posthoc import calibrate_row
from .runs import BenchmarkSettings, prepare_version, run_definition, run_spec, train_once
from .summary import load_summary, record_path

__all__ = ["run_matrix"]


def run_matrix(settings: BenchmarkSettings, frameworks, methods, seeds, log=print) -> list[dict]:
    """Run every (framework, method, seed) not cached yet; returns the records of this call's jobs (a base trained
    again for a calibrated or decoupled row included).

    Methods that :func:`~dbbench.benchmark.methods.pending` refuses are logged and skipped.
    """
    bad = [f for f in frameworks if f not in FRAMEWORKS]
    if bad or not frameworks:
        raise ValueError(f"frameworks={list(frameworks)}; expected one or more of {FRAMEWORKS}")
    methods = [get_method(m) if isinstance(m, str) else m for m in methods]
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds={list(seeds)}; expected one or more integers >= 0")
    dataset, weights_file = prepare_version(settings)
    matrix = [(f, m, s) for f in frameworks for m in methods for s in seeds]
    to_record = _to_record(settings, dataset, weights_file, matrix, log)
    run_jobs(_trainings(settings, dataset, weights_file, to_record), progress=settings.progress, log=log)

    test_gt = json.loads(dataset.split("test")[0].read_text(encoding="utf-8"))
    groups = [c["frequency"] for c in dataset.categories]
    done = []
    for framework, method, seed in to_record:
        definition = run_definition(method, settings, weights_file)
        record = _run_one(settings, dataset, weights_file, test_gt, groups, framework, method, seed, definition)
        path = record_path(settings.results_dir, dataset.version, framework, method.key, seed, settings.regime)
        write_json(path, record, indent=1)
        summary = load_summary(settings.results_dir, settings.spec)
        write_json(Path(settings.results_dir) / "summary.json", summary, indent=1)
        lvis = record["metrics"]
        log(
            f"{run_name(framework, method, seed, settings.regime)}: recorded ({record['seconds']:.0f} s); LVIS "
            f"protocol AP {lvis['AP']:.1f} APr {lvis['APr']:.1f} APc {lvis['APc']:.1f} APf {lvis['APf']:.1f}"
        )
        done.append(record)
    return done


def _to_record(settings, dataset, weights_file, matrix, log) -> list[tuple[str, Method, int]]:
    """The (framework, method, seed) of ``matrix`` to record, in order, logging those skipped or cached; a calibrated
    or decoupled row whose base has no saved model comes after its base (the base's record is rewritten from that
    training, so it describes the model the row starts from)."""
    to_record: list[tuple[str, Method, int]] = []
    for framework, method, seed in matrix:
        name = run_name(framework, method, seed, settings.regime)
        reason = pending(method, framework, settings.regime)
        if reason is not None:
            log(f"{name}: skipped ({reason})")
            continue
        definition = run_definition(method, settings, weights_file)
        path = record_path(settings.results_dir, dataset.version, framework, method.key, seed, settings.regime)
        if path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("definition") == definition:
            log(f"{name}: cached ({path})")
            continue
        if method.calibrate is not None or method.decouple is not None:
            base = get_method(method.base)
            missing = not run_spec(settings, dataset, weights_file, framework, base, seed).checkpoint.is_file()
            if missing and (framework, base, seed) not in to_record:
                log(f"{name}: base {base.key} (no saved model) trains first and is recorded again")
                to_record.append((framework, base, seed))
        if (framework, method, seed) not in to_record:  # a base added above, or a repeat
            to_record.append((framework, method, seed))
    return to_record


def _trainings(settings, dataset, weights_file, to_record) -> list[Job]:
    """The trainings ``to_record`` needs, each once: a run's own (a calibrated row's: its base's) where its marker is
    stale, or lacks the checkpoint that a calibrated or decoupled row of ``to_record`` starts from."""
    bases = {(f, m.base, s) for f, m, s in to_record if m.calibrate is not None or m.decouple is not None}
    jobs: dict[Path, Job] = {}
    for framework, method, seed in to_record:
        trained_row = get_method(method.base) if method.calibrate is not None else method
        spec = run_spec(settings, dataset, weights_file, framework, trained_row, seed)
        definition = run_definition(trained_row, settings, weights_file)
        need_checkpoint = method.calibrate is not None or (framework, method.key, seed) in bases
        if spec.work_dir not in jobs and fresh_marker(spec, definition, need_checkpoint=need_checkpoint) is None:
            jobs[spec.work_dir] = Job(trained_row, spec, definition)
    return list(jobs.values())


def _run_one(settings, dataset, weights_file, test_gt, groups, framework, method, seed, definition) -> dict:
    if method.calibrate is not None:
        trained, results, extra = calibrate_row(settings, dataset, weights_file, framework, method, seed, definition)
    else:
        spec = run_spec(settings, dataset, weights_file, framework, method, seed)
        trained = train_once(settings, spec, definition)  # trained by run_matrix's job loop: its marker
        results, extra = json.loads(spec.results_json.read_text(encoding="utf-8")), {}
        if method.decouple is not None:  # the stage-2 time is the record's; stage 1's is its base's record
            base = get_method(method.base)
            base_spec = run_spec(settings, dataset, weights_file, framework, base, seed)
            stage1 = json.loads((base_spec.work_dir / MARKER).read_text(encoding="utf-8"))
            extra = {
                "decouple": {
                    "base": base.key,
                    "trained": method.decouple,
                    "iters": spec.schedule.iters,
                    "stage1_iters": settings.schedule.iters,
                    "stage1_seconds": stage1["seconds"],
                    # absent from markers written before the runners timed their test prediction
                    "stage1_predict_seconds": stage1["train"].get("predict_seconds"),
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
