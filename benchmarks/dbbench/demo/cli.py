"""Long-tailed detection demo: CE baseline vs rows of the method table, per-class AP with APr/APc/APf and deltas.

Examples:
    python tools/demo.py                                   # default: Detectron2, CE / weighted CE / seesaw
    python tools/demo.py --quick --framework mmdet         # about 2 minutes
    python tools/demo.py --framework both --seeds 0 1 2 --oracle
    python tools/demo.py --data ../shared/data/bccd --iters 3000 --losses ce,wce,seesaw
    python tools/demo.py --methods ce,rfs,rfs-seesaw       # the benchmark's rows: repeat-factor sampling

Outputs in --out: <framework>_table.txt, <framework>_ap.png, results.json, weights.json/.png/.txt, runs/.
Entry point of ``tools/demo.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from detbalance.cli_warnings import quiet_third_party_warnings

from ..data import SyntheticSpec
from ..training.runners import FRAMEWORKS
from ..training.schedule import Schedule
from .methods import demo_methods, parse_methods
from .pipeline import DemoSettings, run_demo

__all__ = ["build_parser", "settings_from_args", "main"]

DEFAULT_METHODS = "ce,wce,seesaw"
QUICK = {"iters": 150, "methods": "ce,wce"}


def _methods_help() -> str:
    everywhere = demo_methods(FRAMEWORKS)
    only = "".join(
        f"; with --framework {f} also {','.join(k for k in demo_methods((f,)) if k not in everywhere)}"
        for f in FRAMEWORKS
        if set(demo_methods((f,))) - set(everywhere)
    )
    return (
        f"comma-separated rows of the method table (tools/benchmark.py list), those trained end to end from scratch: "
        f"{','.join(everywhere)}{only}; 'ce' (baseline) is always run (default: {DEFAULT_METHODS}; --quick: "
        f"{QUICK['methods']})"
    )


def build_parser(prog: str = "demo.py") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--framework",
        choices=(*FRAMEWORKS, "both"),
        default="detectron2",
        help="framework(s) to train in (default: detectron2; 'both' doubles the time)",
    )
    p.add_argument("--methods", "--losses", dest="methods", default=None, help=_methods_help())
    p.add_argument("--iters", type=int, default=None, help="training iterations per run (default 1200; --quick 150)")
    p.add_argument("--seeds", "--seed", type=int, nargs="+", default=[0], help="one run per seed (default: 0)")
    p.add_argument("--quick", action="store_true", help="a short smoke run (~2 minutes on 2 cores)")
    p.add_argument(
        "--oracle",
        action="store_true",
        help="also train CE on a class-balanced synthetic train set of the same size and report the "
        "fraction of the rare-class AP gap each loss closes",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="a COCO folder (train.json, train/, test.json, test/) or a Pascal VOC folder instead of the synthetic set",
    )
    p.add_argument(
        "--imbalance-ratio",
        type=float,
        default=SyntheticSpec.imbalance_ratio,
        help="synthetic set: head/rarest train instances",
    )
    p.add_argument(
        "--head-instances",
        type=int,
        default=SyntheticSpec.head_instances,
        help="synthetic set: train instances of the most frequent class",
    )
    p.add_argument("--num-classes", type=int, default=SyntheticSpec.num_classes, help="synthetic set: classes")
    p.add_argument("--batch-size", type=int, default=Schedule.batch_size)
    p.add_argument("--lr", type=float, default=Schedule.base_lr, help="base learning rate")
    p.add_argument("--cache-dir", type=Path, default=None, help="synthetic data cache (default ~/.cache/detbalance)")
    p.add_argument("--out", type=Path, default=Path("work_dirs/demo"), help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def settings_from_args(args: argparse.Namespace) -> DemoSettings:
    methods = args.methods or (QUICK["methods"] if args.quick else DEFAULT_METHODS)
    iters = args.iters if args.iters is not None else (QUICK["iters"] if args.quick else Schedule.iters)
    frameworks = FRAMEWORKS if args.framework == "both" else (args.framework,)
    return DemoSettings(
        frameworks=frameworks,
        methods=tuple(parse_methods(methods, frameworks)),
        seeds=tuple(dict.fromkeys(args.seeds)),
        schedule=Schedule(iters=iters, batch_size=args.batch_size, base_lr=args.lr),
        out_dir=args.out,
        synthetic=SyntheticSpec(
            num_classes=args.num_classes, head_instances=args.head_instances, imbalance_ratio=args.imbalance_ratio
        ),
        data_path=args.data,
        oracle=args.oracle,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
    )


def main(argv=None, prog: str = "demo.py") -> int:
    """Parse ``argv``, run the demo; returns the exit status (2 on bad settings)."""
    args = build_parser(prog).parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValueError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    quiet_third_party_warnings()
    run_demo(settings)
    return 0
