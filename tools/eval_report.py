#!/usr/bin/env python
"""Per-class evaluation report comparing detection result files on one ground truth.

Prints per-class AP / AP50 / recall for every method, the class mean and APr/APc/APf, deltas to a baseline and,
with --oracle, the fraction of the rare-class AP gap to the balanced-data oracle that each method closes.

Results are COCO results json files (detectron2 COCOEvaluator's coco_instances_results.json, mmdet CocoMetric's
<outfile_prefix>.bbox.json). Several files for one method (comma-separated) are runs, e.g. seeds: values are means
over runs, summary rows show mean ± std.

Example:
    python tools/eval_report.py --gt test.json --train-json train.json \\
        --results ce=ce_s0.json,ce_s1.json wce=wce_s0.json,wce_s1.json oracle=bal_s0.json \\
        --baseline ce --oracle oracle --plot per_class_ap.png

Exit status: 0 on success, 2 on bad input (missing file, malformed json, ids not in the ground truth, ...).

The logic lives in detbalance.evaluation.cli (console script: detbalance-report).
"""

import sys

from detbalance.evaluation import cli


def main(argv=None) -> int:
    return cli.main(argv, prog="eval_report")


if __name__ == "__main__":
    sys.exit(main())
