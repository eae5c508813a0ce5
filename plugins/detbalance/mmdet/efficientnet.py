"""EfficientNet-Lite0 with ImageNet weights as an MMDetection backbone: ``DBEfficientNetLite``.

Use in a config (``configs/mmdet/tiny/faster-rcnn_efficientnet-lite0_fpn_tiny.py``)::

    custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
    model = dict(
        data_preprocessor=dict(mean=[127.0] * 3, std=[128.0] * 3, bgr_to_rgb=True),  # (x - 127) / 128, RGB
        backbone=dict(_delete_=True, type='DBEfficientNetLite', out_indices=(1, 2, 4, 6), frozen_stages=2),
        neck=dict(in_channels=[24, 40, 112, 320]))

``out_indices``: 0-based stages of :data:`detbalance.backbones.STAGES` whose outputs go to the neck (1, 2, 4, 6:
strides 4/8/16/32, 24/40/112/320 channels). ``frozen_stages``: -1 trains everything, 0 freezes the stem, k the stem
and the first k stages (MMDetection's convention). ``norm_eval``: BatchNorm layers stay in eval mode while training.
``init_cfg``: ``dict(type='Pretrained', checkpoint=...)``, where ``checkpoint`` is a weights file or
:data:`~detbalance.backbones.PRETRAINED_PACKAGE` (the default: the installed package's file); ``None`` starts from
random weights. ``init_weights`` (the Runner calls it) loads the file strictly.
"""

from __future__ import annotations

from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import nn

from ..backbones import PRETRAINED_PACKAGE, STAGES, EfficientNetLite0, frozen_modules, load_pretrained

__all__ = ["DBEfficientNetLite"]


@MODELS.register_module()
class DBEfficientNetLite(BaseModule):
    """MMDetection backbone of :class:`~detbalance.backbones.EfficientNetLite0` (module docstring)."""

    def __init__(
        self,
        out_indices=(1, 2, 4, 6),
        frozen_stages: int = -1,
        norm_eval: bool = True,
        init_cfg: dict | None = dict(type="Pretrained", checkpoint=PRETRAINED_PACKAGE),  # noqa: B006 (read only)
    ):
        if init_cfg is not None and (not isinstance(init_cfg, dict) or init_cfg.get("type") != "Pretrained"):
            raise ValueError(
                f"init_cfg={init_cfg!r}; expected dict(type='Pretrained', checkpoint=<file or "
                f"{PRETRAINED_PACKAGE!r}>) or None"
            )
        super().__init__(init_cfg=None if init_cfg is None else dict(init_cfg))
        out_indices = tuple(out_indices)
        if (
            not out_indices
            or list(out_indices) != sorted(set(out_indices))
            or not all(isinstance(i, int) and 0 <= i < len(STAGES) for i in out_indices)
        ):
            raise ValueError(f"out_indices={out_indices!r}; expected increasing ints in [0, {len(STAGES) - 1}]")
        self.net = EfficientNetLite0(num_classes=None)
        self.out_indices = out_indices
        self.frozen = frozen_modules(self.net, frozen_stages)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self._freeze()

    def init_weights(self) -> None:
        """Load ``init_cfg``'s checkpoint (the installed package's file by default) strictly; random weights
        without one."""
        if self.init_cfg is None:
            return
        checkpoint = self.init_cfg.get("checkpoint", PRETRAINED_PACKAGE)
        load_pretrained(self.net, None if checkpoint == PRETRAINED_PACKAGE else checkpoint)
        self._is_init = True

    def _freeze(self) -> None:
        for module in self.frozen:
            module.eval()
            module.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def forward(self, x):
        return tuple(self.net.forward_stages(x, self.out_indices))
