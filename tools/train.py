#!/usr/bin/env python
"""Train a detector with MMDetection 3.x and a detbalance loss (the options of MMDetection's tools/train.py).

Examples:
    python tools/train.py configs/mmdet/faster-rcnn_r50_fpn_1x_coco_seesaw.py --work-dir work_dirs/seesaw
    python tools/train.py configs/mmdet/tiny/faster-rcnn_r18_fpn_tiny_eqlv2.py \\
        --cfg-options data_root=data/shapes/ train_cfg.max_epochs=2
    python tools/train.py CONFIG --resume                      # latest checkpoint of the work dir
    torchrun --nproc_per_node 8 tools/train.py CONFIG --launcher pytorch

Exit status: 0 on success, 2 on bad input (missing config, --cfg-options key not in the config, a model that does
not build); nothing is written then. The logic lives in detbalance.mmdet.cli.
"""

import sys

from detbalance.cli_warnings import quiet_third_party_warnings

quiet_third_party_warnings()  # before MMDetection is imported

from detbalance.mmdet.cli import train_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(train_main())
