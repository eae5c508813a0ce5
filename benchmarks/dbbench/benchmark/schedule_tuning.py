"""The fine-tuning schedule of the pretrained regime, chosen on the validation split.

A pretrained backbone needs neither the from-scratch schedule's length nor its learning rate. Before any run of the
pretrained regime's matrix, :func:`tune_pretrained_schedule` trains the baseline (softmax CE, seed
:data:`~.tuning.TUNING_SEED`) in each framework with every candidate of :data:`SCHEDULE_GRID` (fixed before any of
them ran), predicts the **validation** split with each model and keeps the candidate with the best validation AP
over all classes (LVIS protocol), averaged over the frameworks (ties: the shorter, then the smaller learning rate).
AP of the baseline, not APr: the schedule is the regime's, the same for every method, and must not be chosen for a
rare-class result. The test split chooses nothing. The choice, every candidate's validation AP/APr/APc/APf and
training time go to ``<results>/tuning/pretrained_schedule.json``; :data:`~.runner.PRETRAINED_SCHEDULE` must be it
(the candidate equal to it trains in the matrix's own work folder, so its run is the matrix's CE seed-0 run).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from ..training.files import write_json
from ..training.schedule import Schedule
from .methods import BASELINE, get_method
from .runs import (
    PRETRAINED_SCHEDULE,
    format_metric,
    prepare_version,
    run_definition,
    run_spec,
    train_and_validate,
)
from .tuning import TUNING_SEED

__all__ = [
    "SCHEDULE_GRID",
    "SCHEDULE_METRIC",
    "schedule_tag",
    "choose_schedule",
    "schedule_path",
    "tune_pretrained_schedule",
]

#: The candidates: the from-scratch schedule's 2000 iterations and half of it, at its learning rate 0.005 (twice
#: detectron2's 0.02 per 16 images scaled to batch 2; 0.01 diverged within the first hundred iterations in
#: Detectron2); SGD, batch 2, warm-up and steps as always.
SCHEDULE_GRID: tuple[Schedule, ...] = (Schedule(iters=1000), Schedule(iters=2000))
#: What the schedule maximises on the validation split: the baseline's AP over all classes (module docstring).
SCHEDULE_METRIC = "AP"


def schedule_tag(schedule: Schedule) -> str:
    return f"it{schedule.iters}-lr{schedule.base_lr:g}"


def schedule_path(results_dir: str | Path) -> Path:
    return Path(results_dir) / "tuning" / "pretrained_schedule.json"


def choose_schedule(val_metric: dict[str, dict[str, float]], grid=SCHEDULE_GRID) -> Schedule:
    """The candidate of ``grid`` with the best mean of ``val_metric[framework][tag]`` over the frameworks (ties:
    fewer iterations, then the smaller learning rate)."""
    tags = [schedule_tag(s) for s in grid]
    if not val_metric or any(sorted(by_tag) != sorted(tags) for by_tag in val_metric.values()):
        raise ValueError(f"val_metric={val_metric!r}; expected a number for each of {tags} in every framework")
    if any(v is None or math.isnan(v) for by_tag in val_metric.values() for v in by_tag.values()):
        raise ValueError(f"val_metric={val_metric!r}; expected a finite number at every candidate")
    mean = {t: sum(by_tag[t] for by_tag in val_metric.values()) / len(val_metric) for t in tags}
    return max(grid, key=lambda s: (mean[schedule_tag(s)], -s.iters, -s.base_lr))


def tune_pretrained_schedule(settings, frameworks, log=print) -> dict:
    """Train and validate every candidate of :data:`SCHEDULE_GRID` in ``frameworks`` (cached), write
    :func:`schedule_path` and return its content (module docstring)."""
    if settings.regime != "pretrained":
        raise ValueError(f"regime={settings.regime!r}; expected 'pretrained' (the schedule tuned is that regime's)")
    dataset, weights_file = prepare_version(settings)
    method = get_method(BASELINE)
    val: dict[str, dict[str, dict]] = {}
    seconds: dict[str, dict[str, float]] = {}
    for framework in frameworks:
        for schedule in SCHEDULE_GRID:
            tag = schedule_tag(schedule)
            candidate = dataclasses.replace(settings, schedule=schedule)
            spec = run_spec(candidate, dataset, weights_file, framework, method, TUNING_SEED)
            if schedule != PRETRAINED_SCHEDULE:  # a candidate that is not the matrix's schedule trains aside
                spec = dataclasses.replace(spec, work_dir=spec.work_dir.parent / f"seed{TUNING_SEED}-{tag}")
            definition = run_definition(method, candidate, weights_file)
            train_seconds, metrics = train_and_validate(candidate, dataset, spec, definition)
            seconds.setdefault(framework, {})[tag] = train_seconds
            val.setdefault(framework, {})[tag] = metrics
            log(
                f"tune {framework} {method.key} ({tag}, {train_seconds:.0f} s training): val AP "
                f"{format_metric(metrics['AP'])} APr {format_metric(metrics['APr'])}"
            )
    chosen = choose_schedule({fw: {t: m[SCHEDULE_METRIC] for t, m in by.items()} for fw, by in val.items()})
    out = {
        "data_version": dataset.version,
        "regime": "pretrained",
        "base": method.key,
        "seed": TUNING_SEED,
        "grid": {schedule_tag(s): dataclasses.asdict(s) for s in SCHEDULE_GRID},
        "split": "val",
        "metric": f"{SCHEDULE_METRIC} (LVIS protocol) of {method.key}, mean over frameworks",
        "val": val,
        "train_seconds": seconds,
        "chosen": schedule_tag(chosen),
        "schedule": dataclasses.asdict(chosen),
    }
    write_json(schedule_path(settings.results_dir), out, indent=1)
    log(f"tune: pretrained schedule {schedule_tag(chosen)} -> {schedule_path(settings.results_dir)}")
    return out
