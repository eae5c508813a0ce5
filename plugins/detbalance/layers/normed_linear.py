"""A normalised ("cosine") linear classifier, the one the Seesaw loss is published with.

.. math::

    z = \\tau \\, \\frac{x}{\\lVert x \\rVert^{p} + \\epsilon} \\, \\Big(\\frac{W}{\\lVert W \\rVert^{p} + \\epsilon}\\Big)^{\\top} + b

Each feature row and each class weight row is divided by its L2 norm (to the power ``p``) before the product, and
the product is scaled by the temperature ``tau``. Wang et al., "Seesaw Loss for Long-Tailed Instance
Segmentation" (CVPR 2021), train their best LVIS rows with it and tau = 20 (MMDetection's
``configs/seesaw_loss/*`` set ``cls_predictor_cfg=dict(type='NormedLinear', tempearture=20)``); detbalance's
``NormedLinear`` computes what MMDetection's ``mmdet.models.layers.NormedLinear`` computes, with the argument
spelt ``temperature``. Weights start from N(0, 0.01), the bias at 0, as there.

Shapes: ``x`` is ``[R, C]``; the output ``[R, L]`` for ``out_features = L``.

Example:
    >>> import torch
    >>> layer = NormedLinear(4, 3, temperature=20.0)
    >>> z = layer(torch.randn(5, 4))
    >>> z.shape, bool(z.abs().max() <= 20.0 + 1e-4)
    (torch.Size([5, 3]), True)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NormedLinear", "SEESAW_TEMPERATURE"]

#: The temperature of the Seesaw paper's and MMDetection's Seesaw configs.
SEESAW_TEMPERATURE = 20.0


class NormedLinear(nn.Linear):
    """Linear layer on L2-normalised inputs and weight rows, scaled by ``temperature`` (module docstring).

    Args:
        in_features, out_features, bias: as ``nn.Linear``.
        temperature: the scale ``tau`` > 0.
        power: the exponent ``p`` of the norms (1: plain L2 normalisation).
        eps: added to the norms.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        temperature: float = SEESAW_TEMPERATURE,
        power: float = 1.0,
        eps: float = 1e-6,
    ):
        for name, value in (("temperature", temperature), ("power", power), ("eps", eps)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}={value!r}; expected a finite number > 0")
        super().__init__(in_features, out_features, bias=bias)
        self.temperature = float(temperature)
        self.power = float(power)
        self.eps = float(eps)
        nn.init.normal_(self.weight, mean=0.0, std=0.01)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight / (self.weight.norm(dim=1, keepdim=True).pow(self.power) + self.eps)
        x = x / (x.norm(dim=1, keepdim=True).pow(self.power) + self.eps)
        return F.linear(x * self.temperature, weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temperature={self.temperature:g}, power={self.power:g}"
