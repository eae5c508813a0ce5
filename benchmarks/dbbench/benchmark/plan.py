"""The matrix's protocol as a list of jobs: screen every method, then more seeds where they decide the result.

First the repeat threshold of the tuned RFS row is chosen on the validation split (:mod:`.tuning`, cached; in the
pretrained regime then the fine-tuning schedule, :mod:`.schedule_tuning`, and the length of the tuned decoupled
row's stage 2, :mod:`.decouple_tuning`). Then
phases, per framework, in this order (each job a ``(framework, method key, seed)``):

1. **Screen**: every loss and sampling row of the demo's model (:data:`~.methods.METHODS` without a post-hoc
   calibration or another model) and MMDetection's own losses, with seed :data:`SCREEN_SEED`.
2. **Seeds**: CE, the oracle, the :data:`BEST` detbalance methods with the highest screened APr (LVIS protocol,
   mean over the seeds recorded) and MMDetection's own losses, with :data:`SEEDS`. Which rows get more seeds is
   the only choice made from test numbers, and it changes no number of any row.
3. **Calibration**: every post-hoc calibration row for each seed its base has by then (no training; a row
   re-predicts its base's saved model with gamma chosen on the validation split).
4. **Heads**: the rows of the other models (RetinaNet, Cascade R-CNN, FCOS, ATSS), seed :data:`SCREEN_SEED`.

:func:`plan_jobs` lists the jobs not recorded yet; phase 2 depends on the screen, so a plan made before the screen
has finished names only the rows it already knows (CE, the oracle, MMDetection's own). :func:`run_plan` (``make
benchmark``) therefore makes the plan again from the records after every job.
"""

from __future__ import annotations

import dataclasses

from ..data.longtail import data_version
from ..training.models import DEFAULT_MODEL
from .decouple_tuning import tune_decouple_fraction
from .methods import (
    BASELINE,
    DECOUPLE_TUNED_FRACTION,
    FRAMEWORKS,
    METHODS,
    ORACLE,
    RFS_TUNED_THRESHOLD,
    Method,
    pending,
)
from .runner import run_matrix
from .runs import REGIME_SCHEDULES, BenchmarkSettings
from .schedule_tuning import tune_pretrained_schedule
from .summary import load_summary, record_path
from .tuning import tune_rfs_threshold

__all__ = ["BEST", "SCREEN_SEED", "SEEDS", "plan_jobs", "run_plan", "screened_best"]

SCREEN_SEED = 0
SEEDS = (0, 1, 2)
#: How many detbalance methods (besides CE and the oracle) get all of :data:`SEEDS`.
BEST = 3


def _trained_rows(framework: str, regime: str = "scratch") -> list[Method]:
    return [
        m
        for m in METHODS.values()
        if m.model == DEFAULT_MODEL and m.calibrate is None and pending(m, framework, regime) is None
    ]


def screened_best(summary: dict, framework: str, count: int = BEST, regime: str = "scratch") -> list[str]:
    """The ``count`` detbalance rows of ``framework`` in ``regime`` (not CE, the oracle or MMDetection's own
    losses) with the highest mean APr over their recorded seeds, best first (ties: table order)."""
    candidates = [
        m.key for m in _trained_rows(framework, regime) if m.key not in (BASELINE, ORACLE) and m.mmdet_loss is None
    ]
    apr: dict[str, list[float]] = {}
    for run in summary["runs"]:
        if run.get("regime", "scratch") == regime and run["framework"] == framework and run["method"] in candidates:
            apr.setdefault(run["method"], []).append(run["metrics"]["APr"])
    ranked = sorted(apr, key=lambda k: (-sum(apr[k]) / len(apr[k]), candidates.index(k)))
    return ranked[:count]


def plan_jobs(summary: dict, frameworks=FRAMEWORKS, regime: str = "scratch") -> list[tuple[str, str, int]]:
    """The protocol's jobs (module docstring) of ``regime`` that ``summary`` has no run of yet, in running order."""
    bad = [f for f in frameworks if f not in FRAMEWORKS]
    if bad or not frameworks:
        raise ValueError(f"frameworks={list(frameworks)}; expected one or more of {FRAMEWORKS}")
    done = {(r["framework"], r["method"], r["seed"]) for r in summary["runs"] if r.get("regime", "scratch") == regime}
    jobs: list[tuple[str, str, int]] = []

    def add(framework: str, key: str, seeds) -> None:
        for seed in seeds:
            job = (framework, key, seed)
            if job not in done and job not in jobs:
                jobs.append(job)

    for framework in frameworks:
        trained = _trained_rows(framework, regime)
        for m in trained:
            add(framework, m.key, [SCREEN_SEED])
        screen_done = all((framework, m.key, SCREEN_SEED) in done for m in trained)
        best = screened_best(summary, framework, regime=regime) if screen_done else []
        own = [m.key for m in trained if m.mmdet_loss is not None]
        for key in [BASELINE, ORACLE, *best, *own]:
            add(framework, key, SEEDS)
        seeds_of = {key: {s for f, k, s in [*done, *jobs] if f == framework and k == key} for key in METHODS}
        for m in METHODS.values():
            if m.calibrate is not None and pending(m, framework, regime) is None:
                add(framework, m.key, sorted(seeds_of[m.base]))
        for m in METHODS.values():
            if m.model != DEFAULT_MODEL and pending(m, framework, regime) is None:
                add(framework, m.key, [SCREEN_SEED])
    return jobs


def run_plan(settings: BenchmarkSettings, frameworks=FRAMEWORKS, log=print) -> int:
    """Tune the repeat threshold (:func:`~.tuning.tune_rfs_threshold`, both frameworks, from scratch; cached; in
    the pretrained regime also its schedule and the tuned decoupled row's stage 2, both checked against the tables), then
    run :func:`plan_jobs` of ``settings.regime`` one job at a time, planning again from the records after each;
    returns the number of jobs run. Resumable like :func:`~.runner.run_matrix`: an interrupted plan continues
    where it stopped."""
    scratch = dataclasses.replace(settings, regime="scratch", schedule=REGIME_SCHEDULES["scratch"])
    chosen = tune_rfs_threshold(scratch, FRAMEWORKS, log=log)["chosen"]
    if chosen != RFS_TUNED_THRESHOLD:
        raise ValueError(
            f"the validation split chose repeat threshold {chosen:g}, the method table has RFS_TUNED_THRESHOLD="
            f"{RFS_TUNED_THRESHOLD:g}; expected them equal (set RFS_TUNED_THRESHOLD = {chosen:g})"
        )
    if settings.regime == "pretrained":
        tuned = tune_pretrained_schedule(settings, FRAMEWORKS, log=log)
        if tuned["schedule"] != dataclasses.asdict(REGIME_SCHEDULES["pretrained"]):
            raise ValueError(
                f"the validation split chose the pretrained schedule {tuned['chosen']}, the runner has "
                f"PRETRAINED_SCHEDULE={REGIME_SCHEDULES['pretrained']}; expected them equal"
            )
        fraction = tune_decouple_fraction(settings, FRAMEWORKS, log=log)["chosen"]
        if fraction != DECOUPLE_TUNED_FRACTION:
            raise ValueError(
                f"the validation split chose stage 2 of {fraction:g} of the schedule, the method table has "
                f"DECOUPLE_TUNED_FRACTION={DECOUPLE_TUNED_FRACTION:g}; expected them equal"
            )
    ran = 0
    while True:
        jobs = plan_jobs(load_summary(settings.results_dir, settings.spec), frameworks, settings.regime)
        if not jobs:
            log(f"plan: nothing left to run ({ran} job{'s' if ran != 1 else ''} run now)")
            return ran
        framework, key, seed = jobs[0]
        log(f"plan: {len(jobs)} job{'s' if len(jobs) != 1 else ''} left; next {framework} {key} seed {seed}")
        run_matrix(settings, [framework], [key], [seed], log=log)
        if not record_path(
            settings.results_dir, data_version(settings.spec), framework, key, seed, settings.regime
        ).is_file():
            raise RuntimeError(f"plan: {framework} {key} seed {seed} ran but left no record; stopping")
        ran += 1
