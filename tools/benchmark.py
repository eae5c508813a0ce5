#!/usr/bin/env python
"""The long-tail benchmark: run the matrix (resumable) and regenerate the results tables from results/.

Examples:
    python tools/benchmark.py run --frameworks detectron2 --methods ce,oracle --seeds 0
    python tools/benchmark.py run --regime pretrained --methods ce   # ImageNet-pretrained backbone, fine-tuned
    python tools/benchmark.py run --plan                          # make benchmark: the protocol's pending jobs
    python tools/benchmark.py run --tune                          # the repeat threshold, chosen on the val split
    python tools/benchmark.py run --tune stage2 --regime pretrained  # the length of cRT's stage 2, on the val split
    python tools/benchmark.py plan                                # what --plan would run now, one job a line
    python tools/benchmark.py run --device cuda                   # every runnable method, seed 0, on a GPU
    python tools/benchmark.py results                             # README/RESULTS.md blocks + plot, from results/
    python tools/benchmark.py list                                # the method table and what is still pending
    python tools/benchmark.py demo [--quick]                      # make demo: CE and the best recipe, one seed

A finished (framework, method, seed, data version) run is never trained again: its record lives in
results/runs/<data version>/, its detections in work_dirs/benchmark/. The logic is in dbbench.benchmark (benchmarks/, next to the package: not
installed with it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
README_BLOCK, RESULTS_BLOCK, CALIBRATION_BLOCK = "benchmark-results", "benchmark-runs", "calibration-results"
#: README blocks of the pretrained regime's tables and of both regimes side by side.
PRETRAINED_BLOCK, REGIMES_BLOCK = "benchmark-results-pretrained", "benchmark-regimes"
RECOMMEND_BLOCK = "which-method"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="benchmark.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train and evaluate every (framework, method, seed) not cached yet")
    run.add_argument("--frameworks", nargs="+", default=["detectron2", "mmdet"])
    run.add_argument("--methods", default=None, help="comma-separated keys of the method table (default: all)")
    run.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0")
    run.add_argument(
        "--plan",
        action="store_true",
        help="run the protocol's pending jobs instead (screen, 3 seeds of CE/oracle/best three/MMDetection's own, "
        "calibration, heads; dbbench.benchmark.plan), planning again after each; not with --methods/--seeds",
    )
    run.add_argument(
        "--tune",
        nargs="?",
        const="",
        choices=("", "rfs", "schedule", "stage2"),
        default=None,
        help="train and validate a tuning grid's candidates instead: 'rfs' the repeat threshold "
        "(dbbench.benchmark.tuning, results/tuning/rfs_threshold.json; scratch); 'schedule' the fine-tuning "
        "schedule (dbbench.benchmark.schedule_tuning, results/tuning/pretrained_schedule.json; pretrained); "
        "'stage2' the length of the tuned decoupled row's stage 2 (dbbench.benchmark.decouple_tuning, "
        "results/tuning/decouple_fraction.json; pretrained); alone, the regime's first ('rfs' or 'schedule'); "
        "not with --methods/--seeds/--plan",
    )
    run.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    run.add_argument(
        "--regime",
        choices=("scratch", "pretrained"),
        default="scratch",
        help="how the backbone starts: random initialisation (default) or ImageNet-pretrained EfficientNet-Lite0",
    )
    run.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads per run (default 2; 1 is faster while other jobs load the CPU)",
    )
    run.add_argument("--results", type=Path, default=REPO / "results")
    run.add_argument("--work-dir", type=Path, default=REPO / "work_dirs" / "benchmark")
    run.add_argument("--cache-dir", type=Path, default=None, help="data cache (default ~/.cache/detbalance)")
    run.add_argument("--no-progress", action="store_true")
    res = sub.add_parser("results", help="rewrite results/summary.json, the README/docs/RESULTS.md blocks and the plot")
    res.add_argument("--results", type=Path, default=REPO / "results")
    res.add_argument("--readme", type=Path, default=REPO / "README.md")
    res.add_argument("--results-md", type=Path, default=REPO / "RESULTS.md")
    res.add_argument("--docs", type=Path, default=REPO / "docs")
    demo = sub.add_parser(
        "demo", help="the short main job: CE and the benchmark's best recipe (results/summary.json) in Detectron2"
    )
    demo.add_argument(
        "--quick",
        action="store_true",
        help="only check that the pipeline runs (100 iterations; the numbers compare nothing)",
    )
    demo.add_argument("--frameworks", nargs="+", default=["detectron2"])
    demo.add_argument("--methods", default=None, help="default: ce and the best recipe of results/summary.json")
    demo.add_argument("--regime", choices=("scratch", "pretrained"), default="pretrained")
    demo.add_argument("--results", type=Path, default=REPO / "results")
    demo.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    demo.add_argument("--out", type=Path, default=REPO / "work_dirs" / "demo-benchmark")
    demo.add_argument("--cache-dir", type=Path, default=None)
    demo.add_argument("--no-progress", action="store_true")
    sub.add_parser("list", help="print the method table")
    plan = sub.add_parser("plan", help="print the protocol's pending jobs, one 'framework method seed' a line")
    plan.add_argument("--frameworks", nargs="+", default=["detectron2", "mmdet"])
    plan.add_argument("--regime", choices=("scratch", "pretrained"), default="scratch")
    plan.add_argument("--results", type=Path, default=REPO / "results")
    return p


def write_results(results_dir: Path, readme: Path, results_md: Path, docs: Path = REPO / "docs") -> None:
    """summary.json from the run records, then from summary.json: the README's recommendation and short table, the
    full tables of docs/benchmark.md, the calibration table of docs/evaluation.md, RESULTS.md's run list and the
    plot."""
    from dbbench.benchmark.demo import PRIMARY_REGIME
    from dbbench.benchmark.recommend import recommendation_markdown
    from dbbench.benchmark.render import (
        calibration_markdown,
        plot_primary,
        regimes_markdown,
        replace_block,
        results_markdown,
        runs_markdown,
    )
    from dbbench.benchmark.summary import load_summary
    from dbbench.data.longtail import LongTailSpec
    from dbbench.training.files import write_json, write_text

    spec = LongTailSpec()
    summary = load_summary(results_dir, spec)
    write_json(results_dir / "summary.json", summary, indent=1)
    blocks = {
        readme: {
            RECOMMEND_BLOCK: recommendation_markdown(summary, PRIMARY_REGIME),
            REGIMES_BLOCK: regimes_markdown(summary),
        },
        docs / "benchmark.md": {
            REGIMES_BLOCK: regimes_markdown(summary),
            PRETRAINED_BLOCK: results_markdown(summary, regime="pretrained"),
            README_BLOCK: results_markdown(summary),
        },
        docs / "evaluation.md": {CALIBRATION_BLOCK: calibration_markdown(summary)},
        results_md: {RESULTS_BLOCK: runs_markdown(summary)},
    }
    for path, by_name in blocks.items():
        text = path.read_text(encoding="utf-8")
        for name, body in by_name.items():
            text = replace_block(text, name, body)
        write_text(path, text)
    plot_primary(summary, results_dir / "apr.png")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("run", "demo") and args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # mmengine picks a GPU by itself whenever it sees one
    from dbbench.benchmark import METHODS, pending

    if args.command == "list":
        key_width = max(len(key) for key in METHODS)
        label_width = max(len(m.label) for m in METHODS.values())
        for m in METHODS.values():
            states = [
                f"{f} {r}: {pending(m, f, r) or 'ready'}"
                for r in ("scratch", "pretrained")
                for f in ("detectron2", "mmdet")
            ]
            print(f"{m.key:{key_width}s}  {m.label:{label_width}s}  {'; '.join(states)}")
        return 0
    if args.command == "results":
        write_results(args.results, args.readme, args.results_md, args.docs)
        print(f"wrote {args.results / 'summary.json'}, {args.results / 'apr.png'}, {args.readme}, {args.results_md}")
        return 0
    if args.command == "demo":
        from dbbench.benchmark.demo import load_reference, run_short_demo

        try:
            run_short_demo(
                args.out,
                reference=load_reference(args.results / "summary.json") if args.methods is None else None,
                regime=args.regime,
                frameworks=args.frameworks,
                methods=None if args.methods is None else [k.strip() for k in args.methods.split(",")],
                quick=args.quick,
                device=args.device,
                cache_dir=args.cache_dir,
                progress=not args.no_progress,
            )
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if args.command == "plan":
        from dbbench.benchmark.plan import plan_jobs
        from dbbench.benchmark.summary import load_summary
        from dbbench.data.longtail import LongTailSpec

        try:
            jobs = plan_jobs(load_summary(args.results, LongTailSpec()), args.frameworks, args.regime)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for job in jobs:
            print(*job)
        return 0
    from dbbench.benchmark.plan import run_plan
    from dbbench.benchmark.runner import run_matrix
    from dbbench.benchmark.runs import BenchmarkSettings

    tune = args.tune
    if tune == "":
        tune = "schedule" if args.regime == "pretrained" else "rfs"
    if (args.plan or tune) and (args.methods is not None or args.seeds is not None or args.plan == bool(tune)):
        print(
            "error: --plan and --tune choose the methods and seeds themselves; expected one of them, and no "
            "--methods/--seeds",
            file=sys.stderr,
        )
        return 2
    methods = [k.strip() for k in args.methods.split(",")] if args.methods else list(METHODS)
    seeds = [0] if args.seeds is None else list(dict.fromkeys(args.seeds))
    try:
        settings = BenchmarkSettings(
            results_dir=args.results,
            work_dir=args.work_dir,
            device=args.device,
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
            threads=args.threads,
            regime=args.regime,
        )
        if tune == "schedule":
            from dbbench.benchmark.schedule_tuning import tune_pretrained_schedule

            tune_pretrained_schedule(settings, args.frameworks)
        elif tune == "stage2":
            from dbbench.benchmark.decouple_tuning import tune_decouple_fraction

            tune_decouple_fraction(settings, args.frameworks)
        elif tune == "rfs":
            from dbbench.benchmark.tuning import tune_rfs_threshold

            tune_rfs_threshold(settings, args.frameworks)
        elif args.plan:
            run_plan(settings, args.frameworks)
        else:
            run_matrix(settings, args.frameworks, methods, seeds)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
