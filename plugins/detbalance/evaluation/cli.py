"""Per-class evaluation report comparing detection result files on one ground truth.

Prints per-class AP / AP50 / recall for every method, the class mean and APr/APc/APf, deltas to a baseline and,
with --oracle, the fraction of the rare-class AP gap to the balanced-data oracle that each method closes.

Results are COCO results json files (detectron2 COCOEvaluator's coco_instances_results.json, mmdet CocoMetric's
<outfile_prefix>.bbox.json). Several files for one method (comma-separated) are runs, e.g. seeds: values are means
over runs, summary rows show mean ± std.

Example:
    detbalance-report --gt test.json --train-json train.json \\
        --results ce=ce_s0.json,ce_s1.json wce=wce_s0.json,wce_s1.json oracle=bal_s0.json \\
        --baseline ce --oracle oracle --plot per_class_ap.png

Exit status: 0 on success, 2 on bad input (missing file, malformed json, ids not in the ground truth, ...).

Entry point of ``detbalance-report`` and ``tools/eval_report.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from detbalance.weights.file import write_text_atomic

from .plot import plot_report
from .report import METRICS, compare
from .table import format_report

__all__ = ["main", "parse_args"]


def _method(text: str) -> tuple[str, list[str]]:
    name, sep, paths = text.partition("=")
    files = [p for p in paths.split(",") if p]
    if not sep or not name or not files:
        raise argparse.ArgumentTypeError(f"{text!r}; expected NAME=PATH[,PATH...]")
    return name, files


def parse_args(argv=None, prog: str = "detbalance-report") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--gt", required=True, help="COCO ground-truth json of the evaluated split")
    parser.add_argument(
        "--results",
        required=True,
        nargs="+",
        type=_method,
        metavar="NAME=PATH[,PATH...]",
        help="a method's COCO results json file(s); several files are runs (seeds)",
    )
    parser.add_argument("--baseline", help="method the deltas are taken against (default: the first)")
    parser.add_argument("--oracle", help="method trained on a balanced set: report the rare-class gap closed")
    parser.add_argument("--train-json", help="COCO/LVIS train json: class frequencies and r/c/f groups")
    parser.add_argument(
        "--score-thr",
        type=float,
        default=0.0,
        help="evaluate only detections scoring at least this much (default 0: all); 0.05 is the "
        "default test threshold of detectron2 and MMDetection",
    )
    parser.add_argument(
        "--metrics",
        default="ap,ap50,recall",
        help=f"comma-separated tables to print, from {','.join(METRICS)} (default: all)",
    )
    parser.add_argument("--plot", help="write a per-class AP bar chart (.png, .pdf or .svg)")
    parser.add_argument("--json", dest="json_out", help="write the report as json")
    args = parser.parse_args(argv)
    names = [name for name, _ in args.results]
    if len(set(names)) != len(names):
        parser.error(f"--results names {names} must be distinct")
    metrics = [m for m in args.metrics.split(",") if m]
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        parser.error(f"--metrics {args.metrics!r}; expected a comma-separated subset of {list(METRICS)}")
    args.metrics = metrics
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        parser.error(f"--plot {args.plot!r}; expected a path ending in .png, .pdf or .svg")
    return args


def main(argv=None, prog: str = "detbalance-report") -> int:
    """Run the report; ``prog`` names the command in usage and error lines. Returns the exit status."""
    args = parse_args(argv, prog)
    try:
        report = compare(
            args.gt,
            dict(args.results),
            baseline=args.baseline,
            oracle=args.oracle,
            train_json=args.train_json,
            score_threshold=args.score_thr,
        )
    except ValueError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(format_report(report, args.metrics))
    if args.plot:
        print(f"\nplot: {plot_report(report, args.plot)}")
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.json_out, json.dumps(report.to_dict(), indent=1))
        print(f"json: {args.json_out}")
    return 0
