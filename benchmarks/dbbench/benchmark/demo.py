"""``make demo``: the benchmark at the size of one short job — CE and the benchmark's best recipe on the LVIS-like
set, in the primary regime.

The recipe is not written here: :func:`best_recipe` reads it from the committed ``results/summary.json`` (the
trained row, not CE / the oracle / MMDetection's own loss / a post-hoc calibration, with the best mean APr over the
frameworks' seeds in the regime). By default one framework (Detectron2), seed 0, the regime's schedule and the
benchmark's protocol, in a results folder of its own, so the demo always trains. It prints the per-group table
(APr / APc / APf / AP of CE and the recipe, the recipe's lift) and where the recipe sits between CE and the oracle
of the committed results (the demo does not train the oracle), then the benchmark's tables of its runs.

``quick=True`` trains each run for :data:`QUICK_ITERS` iterations: a check that data, training, prediction,
evaluation and tables run end to end, whose numbers compare nothing; the demo says so before and after.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..data.longtail import LongTailSpec
from ..training.schedule import Schedule
from .methods import BASELINE, ORACLE, get_method
from .render import plot_primary, results_markdown
from .runner import run_matrix
from .runs import BenchmarkSettings
from .summary import load_summary, runs_by_method

__all__ = [
    "PRIMARY_REGIME",
    "QUICK_ITERS",
    "QUICK_NOTICE",
    "best_recipe",
    "lift_table",
    "load_reference",
    "run_short_demo",
]

#: The regime the recommendation and the demo come from: users fine-tune pretrained backbones.
PRIMARY_REGIME = "pretrained"
QUICK_ITERS = 100
QUICK_NOTICE = (
    f"--quick only checks that the pipeline runs end to end: {QUICK_ITERS} iterations train nothing "
    "meaningful, so its numbers say nothing about any loss. Run without --quick to compare."
)


def best_recipe(summary: dict, regime: str = PRIMARY_REGIME) -> str:
    """The key of the trained detbalance row of the demo's model with the best APr in ``regime``: the mean over
    the frameworks of each framework's mean over seeds; a row must have runs in every framework of the regime."""
    frameworks = sorted({r["framework"] for r in summary["runs"] if r.get("regime", "scratch") == regime})
    scores = {}
    for method in {r["method"] for r in summary["runs"] if r.get("regime", "scratch") == regime}:
        try:
            row = get_method(method)
        except ValueError:
            continue  # a row no longer in the method table
        if method in (BASELINE, ORACLE) or row.mmdet_loss or row.calibrate or row.model != "faster_rcnn":
            continue
        per_framework = [runs_by_method(summary, regime, fw).get(method, []) for fw in frameworks]
        if frameworks and all(per_framework):
            means = [sum(r["metrics"]["APr"] for r in runs) / len(runs) for runs in per_framework]
            scores[method] = sum(means) / len(means)
    if not scores:
        raise ValueError(
            f"results hold no trained row of regime {regime!r} in every framework it has ({frameworks}); expected "
            "the benchmark's runs (tools/benchmark.py run --regime ...)"
        )
    return max(scores, key=lambda m: (scores[m], m))


def lift_table(runs: dict[str, dict], recipe: str, oracle_apr: float | None) -> str:
    """Per group, CE and ``recipe`` (``runs``: method -> record) and the lift; then where the recipe's APr sits
    between CE's and ``oracle_apr`` (the committed oracle's mean APr; None: not known)."""
    keys = ("APr", "APc", "APf", "AP")
    ce, best = runs[BASELINE]["metrics"], runs[recipe]["metrics"]
    lines = [
        "| | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
        f"| {get_method(BASELINE).label} | " + " | ".join(f"{ce[k]:.1f}" for k in keys) + " |",
        f"| {get_method(recipe).label} | " + " | ".join(f"{best[k]:.1f}" for k in keys) + " |",
        "| lift | " + " | ".join(f"{best[k] - ce[k]:+.1f}" for k in keys) + " |",
    ]
    if oracle_apr is not None and oracle_apr > ce["APr"]:
        closed = (best["APr"] - ce["APr"]) / (oracle_apr - ce["APr"])
        lines += [
            "",
            f"APr: CE {ce['APr']:.1f} -> {get_method(recipe).label} {best['APr']:.1f}, oracle {oracle_apr:.1f} "
            f"(committed results): the recipe closes {closed:.0%} of CE's gap to the oracle.",
        ]
    return "\n".join(lines) + "\n"


def run_short_demo(
    out_dir: str | Path,
    *,
    reference: dict | None = None,
    frameworks=("detectron2",),
    methods=None,
    regime: str = PRIMARY_REGIME,
    seeds=(0,),
    quick: bool = False,
    device: str = "cpu",
    cache_dir: Path | None = None,
    progress: bool = True,
    spec: LongTailSpec | None = None,
    log=print,
) -> dict:
    """Train and evaluate CE and the best recipe of ``reference`` (the committed summary) in ``regime``, in
    ``out_dir``; returns the summary of its runs. ``methods`` (benchmark keys) instead trains those, and then no
    ``reference`` is read.

    ``spec``: the data (default: the benchmark's ``LongTailSpec()``; tests pass a tiny one).
    """
    if (methods is None) == (reference is None):
        raise ValueError("expected either reference (the committed summary, for the best recipe) or methods")
    recipe = best_recipe(reference, regime) if methods is None else None
    methods = [BASELINE, recipe] if methods is None else list(methods)
    out = Path(out_dir) / ("quick" if quick else "full") / regime  # a quick run never replaces a full run's record
    spec = LongTailSpec() if spec is None else spec
    settings = BenchmarkSettings(
        results_dir=out / "results",
        work_dir=out / "work",
        spec=spec,
        device=device,
        cache_dir=cache_dir,
        progress=progress,
        regime=regime,
    )
    if quick:
        # the default warm-up (a quarter of the run): a shorter one lets the pretrained model diverge
        settings = dataclasses.replace(settings, schedule=Schedule(iters=QUICK_ITERS))
        log(QUICK_NOTICE)
    if recipe is not None:
        log(f"demo: CE and the benchmark's best recipe in the {regime} regime (results/summary.json): {recipe}")
    run_matrix(settings, list(frameworks), methods, list(seeds), log=log)
    summary = load_summary(settings.results_dir, spec)
    if reference is not None and recipe is not None:
        for framework in frameworks:
            runs = {m: rs[0] for m, rs in runs_by_method(summary, regime, framework).items() if m in (BASELINE, recipe)}
            oracle = runs_by_method(reference, regime, framework).get(ORACLE, [])
            oracle_apr = sum(r["metrics"]["APr"] for r in oracle) / len(oracle) if oracle else None
            log(
                f"\n**{framework}**, {regime}, LVIS protocol, seed {seeds[0]}:\n\n"
                + lift_table(runs, recipe, oracle_apr)
            )
    plot = plot_primary(summary, out / "apr.png")
    log("\n" + results_markdown(summary, regime=regime).replace("../results/apr.png", str(plot)))
    if quick:
        log(QUICK_NOTICE)
    return summary


def load_reference(path: str | Path) -> dict:
    """The committed summary (``results/summary.json``) the recipe comes from."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"results summary {str(path)!r} does not exist; expected the committed results/summary.json")
    return json.loads(path.read_text(encoding="utf-8"))
