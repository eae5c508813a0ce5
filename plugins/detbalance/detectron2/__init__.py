"""Detectron2 adapter for detbalance. Importing it applies the detectron2 v0.6 compatibility shims first.

Then it registers ``BalancedROIHeads`` and ``BalancedCascadeROIHeads`` in detectron2's ``ROI_HEADS_REGISTRY`` and
``BalancedRetinaNet`` in its ``META_ARCH_REGISTRY`` (``BalancedFCOS``, like detectron2's FCOS, is for LazyConfig),
and the ImageNet-pretrained EfficientNet-Lite0 backbones ``build_efficientnet_lite0_backbone`` and
``build_efficientnet_lite0_fpn_backbone`` in its ``BACKBONE_REGISTRY``.
Usage::

    from detbalance.detectron2 import get_config      # get_cfg() + add_detbalance_config() + yaml with model_zoo://
    cfg = get_config("configs/detectron2/faster_rcnn_R_50_FPN_1x_seesaw.yaml")
    model = detectron2.modeling.build_model(cfg)
"""

from . import _compat  # noqa: F401  (must run before any detectron2 import)

# isort: split
from .cascade import BalancedCascadeROIHeads
from .config import HYPER_PARAMETER_KEYS, add_detbalance_config, get_config
from .efficientnet import (
    EfficientNetLiteBackbone,
    build_efficientnet_lite0_backbone,
    build_efficientnet_lite0_fpn_backbone,
)
from .fast_rcnn import BalancedFastRCNNOutputLayers
from .fcos import BalancedFCOS
from .loss_builder import build_classification_loss, load_class_statistics
from .mapper import WeightedDatasetMapper
from .retinanet import BalancedRetinaNet, build_dense_classification_loss
from .roi_heads import BalancedROIHeads
from .sampling import build_repeat_factor_sampler

__all__ = [
    "HYPER_PARAMETER_KEYS",
    "add_detbalance_config",
    "get_config",
    "BalancedFastRCNNOutputLayers",
    "BalancedROIHeads",
    "BalancedCascadeROIHeads",
    "BalancedRetinaNet",
    "BalancedFCOS",
    "build_dense_classification_loss",
    "build_classification_loss",
    "load_class_statistics",
    "WeightedDatasetMapper",
    "build_repeat_factor_sampler",
    "EfficientNetLiteBackbone",
    "build_efficientnet_lite0_backbone",
    "build_efficientnet_lite0_fpn_backbone",
]
