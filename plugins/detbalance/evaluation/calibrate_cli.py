"""Fit a post-hoc calibration (NorCal / logit-adjustment gamma, per-class thresholds) on validation detections.

Inputs are COCO json files: the validation ground truth, the model's validation results (detectron2
COCOEvaluator's coco_instances_results.json, mmdet CocoMetric's <prefix>.bbox.json) and the training statistics
(a detbalance weights file: image counts per class, r/c/f groups). A results json holds one score per box, not the
row of class scores NorCal renormalises, so gamma is fitted from results the framework made at each candidate
gamma by a config change (DETBALANCE.CALIBRATION.GAMMA, or loss_cls.calibration.gamma), given as
--gamma-results GAMMA=PATH; the uncalibrated --results count as gamma 0. The chosen gamma maximises --metric
(apr: mean AP of the rare classes under the LVIS protocol, 300 detections per image; or ap). Per-class thresholds
(--thresholds f1, or --target-precision P) are fitted on the chosen detections. The calibration file is written
atomically and a per-class before/after table is printed (AP, precision, recall at the threshold, r/c/f).

Example:
    for g in 0.25 0.5 1.0; do  # the framework's test script, once per gamma (detectron2 shown)
      python tools/train_net.py --eval-only ... DETBALANCE.CALIBRATION.METHOD norcal \\
          DETBALANCE.CALIBRATION.GAMMA $g OUTPUT_DIR out/g$g
    done
    detbalance-calibrate --gt val.json --weights weights.json --results out/plain/coco_instances_results.json \\
        --gamma-results 0.25=out/g0.25/coco_instances_results.json 0.5=... 1.0=... --thresholds f1 \\
        -o calibration.json
    # then: DETBALANCE.CALIBRATION.METHOD thresholds DETBALANCE.CALIBRATION.FILE calibration.json
    #   or: DETBALANCE.CALIBRATION.METHOD norcal DETBALANCE.CALIBRATION.FILE calibration.json

Exit status: 0 on success, 2 on bad input (nothing is written).

Entry point of ``detbalance-calibrate`` and ``tools/calibrate.py``.
"""

from __future__ import annotations

import argparse
import math
import sys

from detbalance.calibration import save_calibration
from detbalance.weights import load_weights

from .calibration_fit import FIT_METRICS, fit_calibration, format_fit
from .coco_eval import load_json
from .lvis_protocol import LVIS_SCORE_THRESHOLD

__all__ = ["main", "parse_args"]


def _gamma_results(text: str) -> tuple[float, str]:
    gamma, sep, path = text.partition("=")
    try:
        value = float(gamma)
    except ValueError:
        value = math.nan
    if not sep or not path or not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}; expected GAMMA=PATH with GAMMA a number >= 0")
    return value, path


def parse_args(argv=None, prog: str = "detbalance-calibrate") -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--gt", required=True, help="COCO ground-truth json of the validation split")
    parser.add_argument("--weights", required=True, help="detbalance weights file of the training set")
    parser.add_argument("--results", required=True, help="the uncalibrated model's COCO results on --gt")
    parser.add_argument(
        "--gamma-results",
        nargs="+",
        type=_gamma_results,
        default=[],
        metavar="GAMMA=PATH",
        help="COCO results made with calibration --method at GAMMA; fits gamma when given",
    )
    parser.add_argument(
        "--method",
        default="norcal",
        choices=("norcal", "logit_adjust"),
        help="how --gamma-results were scored (default norcal)",
    )
    parser.add_argument("--metric", default="apr", choices=FIT_METRICS, help="what gamma maximises (default apr)")
    parser.add_argument(
        "--score-thr",
        type=float,
        default=LVIS_SCORE_THRESHOLD,
        help=f"lowest score the LVIS protocol keeps when gamma is evaluated (default "
        f"{LVIS_SCORE_THRESHOLD:g}; 0.05: the frameworks' default test threshold)",
    )
    rule = parser.add_mutually_exclusive_group()
    rule.add_argument("--thresholds", choices=("f1",), help="fit per-class thresholds maximising F1")
    rule.add_argument("--target-precision", type=float, help="fit per-class thresholds reaching this precision")
    parser.add_argument(
        "--default-threshold",
        type=float,
        default=0.05,
        help="threshold of classes the validation set cannot fit (default 0.05)",
    )
    parser.add_argument(
        "--report-thr",
        type=float,
        default=0.05,
        help="score threshold of the table's precision/recall without thresholds (default 0.05)",
    )
    parser.add_argument("-o", "--output", required=True, help="calibration file to write")
    args = parser.parse_args(argv)
    gammas = [g for g, _ in args.gamma_results]
    if len(set(gammas)) != len(gammas):
        parser.error(f"--gamma-results gammas {gammas} must be distinct")
    if not args.gamma_results and args.thresholds is None and args.target_precision is None:
        parser.error("nothing to fit: expected --gamma-results and/or --thresholds/--target-precision")
    return args


def main(argv=None, prog: str = "detbalance-calibrate") -> int:
    """Fit, print the table and write the file; returns the exit status (2 on bad input, nothing written)."""
    args = parse_args(argv, prog)
    objective = "precision" if args.target_precision is not None else args.thresholds
    try:
        gt = load_json(args.gt, "ground-truth")
        weights = load_weights(args.weights)
        baseline = load_json(args.results, "results")
        by_gamma = {g: load_json(path, f"results at gamma={g}") for g, path in args.gamma_results}
        fit = fit_calibration(
            gt,
            baseline,
            by_gamma,
            weights_file=weights,
            method=args.method,
            metric=args.metric,
            score_threshold=args.score_thr,
            objective=objective,
            target=args.target_precision,
            default_threshold=args.default_threshold,
            report_threshold=args.report_thr,
            source={
                "gt": args.gt,
                "weights": args.weights,
                "results": args.results,
                "gamma_results": {str(g): p for g, p in args.gamma_results},
            },
        )
        save_calibration(args.output, fit.calibration)
    except (ValueError, FileNotFoundError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(format_fit(fit))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
