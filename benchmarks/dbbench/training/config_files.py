"""Where the configs shipped with detbalance are: ``detbalance/configs`` inside the installed package.

In a wheel the repository's ``configs/`` folder is package data under that name; in a checkout (editable install)
``plugins/detbalance/configs`` is a link to ``configs/``. Either way the runners find their tiny configs through the
installed package, without knowing where the checkout is.
"""

from __future__ import annotations

from pathlib import Path

import detbalance

__all__ = ["CONFIG_ROOT", "D2_TINY_CONFIG", "MMDET_TINY_DIR"]

#: ``configs/`` as shipped with the package (detectron2/, mmdet/).
CONFIG_ROOT = Path(detbalance.__file__).resolve().parent / "configs"
#: the ResNet-18 Faster R-CNN for 2 CPU cores, on the model zoo's R50-FPN config.
D2_TINY_CONFIG = CONFIG_ROOT / "detectron2" / "faster_rcnn_R_18_FPN_tiny_cpu.yaml"
#: the tiny MMDetection configs, one per loss.
MMDET_TINY_DIR = CONFIG_ROOT / "mmdet" / "tiny"
