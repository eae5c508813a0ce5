"""``make demo``: the benchmark at the size of one short job — CE and one balanced loss on the LVIS-like set.

Two Detectron2 runs by default (softmax CE and Seesaw, seed 0, the benchmark's schedule and protocol) in a
results folder of their own, so the demo always trains, then the benchmark's tables of those runs. About 14
minutes on 2 idle cores (about 6.5 minutes per run plus 40 s to generate the data on first use).

``quick=True`` trains each run for :data:`QUICK_ITERS` iterations: a check that data, training, prediction,
evaluation and tables run end to end, whose numbers compare nothing; the demo says so before and after.
"""

from __future__ import annotations

from pathlib import Path

from ..data.longtail import LongTailSpec
from ..demo import Schedule
from .render import plot_primary, results_markdown
from .runner import BENCHMARK_SCHEDULE, BenchmarkSettings, run_matrix
from .summary import load_summary

__all__ = ["DEMO_METHODS", "QUICK_ITERS", "QUICK_NOTICE", "run_short_demo"]

DEMO_METHODS = ("ce", "seesaw")
QUICK_ITERS = 100
QUICK_NOTICE = (
    f"--quick only checks that the pipeline runs end to end: {QUICK_ITERS} iterations train nothing "
    "meaningful, so its numbers say nothing about any loss. Run without --quick to compare."
)


def run_short_demo(
    out_dir: str | Path,
    *,
    frameworks=("detectron2",),
    methods=DEMO_METHODS,
    seeds=(0,),
    quick: bool = False,
    device: str = "cpu",
    cache_dir: Path | None = None,
    progress: bool = True,
    spec: LongTailSpec | None = None,
    log=print,
) -> dict:
    """Train and evaluate ``methods`` (benchmark keys) in ``out_dir``; returns the summary it prints.

    ``spec``: the data (default: the benchmark's ``LongTailSpec()``; tests pass a tiny one).
    """
    out = Path(out_dir) / ("quick" if quick else "full")  # a quick run never replaces a full run's record
    schedule = Schedule(iters=QUICK_ITERS, warmup_iters=10) if quick else BENCHMARK_SCHEDULE
    spec = LongTailSpec() if spec is None else spec
    settings = BenchmarkSettings(
        results_dir=out / "results",
        work_dir=out / "work",
        spec=spec,
        schedule=schedule,
        device=device,
        cache_dir=cache_dir,
        progress=progress,
    )
    if quick:
        log(QUICK_NOTICE)
    run_matrix(settings, list(frameworks), list(methods), list(seeds), log=log)
    summary = load_summary(settings.results_dir, spec)
    plot = plot_primary(summary, out / "apr.png")
    log("\n" + results_markdown(summary).replace("results/apr.png", str(plot)))
    if quick:
        log(QUICK_NOTICE)
    return summary
