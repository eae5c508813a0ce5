#!/usr/bin/env python
"""Per-class statistics and loss weights of a detection training set.

Examples:
    python tools/compute_weights.py --voc ../shared/data/bccd/BCCD --scheme sqrt_inverse -o bccd_weights.json
    python tools/compute_weights.py --coco lvis_v1_train.json --scheme effective_number --max-ratio 10 \\
        --rfs-threshold 0.001 --plot lvis.png -o lvis_weights.json
    python tools/compute_weights.py --mmdet-config configs/my_config.py -o weights.json
    python tools/compute_weights.py --register-coco my_train train.json images/ -o weights.json

Run with --help for all options. The logic lives in detbalance.cli.compute_weights (compute_weights_file).
"""

from __future__ import annotations

import sys

from detbalance.cli.compute_weights import main

if __name__ == "__main__":
    sys.exit(main())
