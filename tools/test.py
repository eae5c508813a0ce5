#!/usr/bin/env python
"""Test an MMDetection 3.x checkpoint: COCO metrics, then detbalance's per-class report with APr/APc/APf.

Examples:
    python tools/test.py configs/mmdet/faster-rcnn_r50_fpn_1x_coco_seesaw.py work_dirs/seesaw/epoch_12.pth
    python tools/test.py CONFIG CHECKPOINT --out results.bbox.json --cfg-options test_dataloader.batch_size=4

Exit status: 0 on success, 2 on bad input (missing config or checkpoint, --cfg-options key not in the config,
a model that does not build). The logic lives in detbalance.mmdet.cli.
"""

import sys

from detbalance.cli_warnings import quiet_third_party_warnings

quiet_third_party_warnings()  # before MMDetection is imported

from detbalance.mmdet.cli import test_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(test_main())
