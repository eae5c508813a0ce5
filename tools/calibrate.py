#!/usr/bin/env python
"""Fit a post-hoc calibration (NorCal / logit-adjustment gamma, per-class thresholds) on validation detections.

See ``detbalance-calibrate --help``; the logic lives in detbalance.evaluation.calibrate_cli (console script:
detbalance-calibrate). Exit status: 0 on success, 2 on bad input (nothing is written).
"""

import sys

from detbalance.evaluation import calibrate_cli


def main(argv=None) -> int:
    return calibrate_cli.main(argv, prog="calibrate")


if __name__ == "__main__":
    sys.exit(main())
