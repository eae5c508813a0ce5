"""The box classifier layer of ``BalancedFastRCNNOutputLayers``: linear (detectron2's) or normalised linear.

Config node (added by :func:`add_classifier_config`, which :func:`detbalance.detectron2.add_detbalance_config`
calls)::

    DETBALANCE.CLS_PREDICTOR:
      TYPE: "Linear"        # "NormedLinear": the cosine classifier of the Seesaw paper (detbalance.layers)
      TEMPERATURE: 20.0     # NormedLinear only: the scale of the cosine similarities

The Seesaw paper and MMDetection's Seesaw configs train the loss with ``NormedLinear`` at temperature 20
(``configs/detectron2/faster_rcnn_R_50_FPN_1x_seesaw_normed.yaml``); any detbalance loss can use it.
"""

from __future__ import annotations

from detectron2.config import CfgNode
from torch import nn

from ..layers import SEESAW_TEMPERATURE, NormedLinear

__all__ = ["CLS_PREDICTORS", "add_classifier_config", "build_classifier"]

CLS_PREDICTORS = ("Linear", "NormedLinear")


def add_classifier_config(cfg: CfgNode) -> None:
    """Add ``DETBALANCE.CLS_PREDICTOR`` (module docstring) to ``cfg`` in place; a no-op if present."""
    if "CLS_PREDICTOR" in cfg.DETBALANCE:
        return
    cfg.DETBALANCE.CLS_PREDICTOR = CfgNode({"TYPE": "Linear", "TEMPERATURE": SEESAW_TEMPERATURE})


def build_classifier(kind: str, temperature: float, in_features: int, num_logits: int) -> nn.Linear:
    """The classifier ``kind`` (``DETBALANCE.CLS_PREDICTOR.TYPE``) with ``num_logits`` outputs."""
    if kind not in CLS_PREDICTORS:
        raise ValueError(f"DETBALANCE.CLS_PREDICTOR.TYPE={kind!r}; expected one of {CLS_PREDICTORS}")
    if kind == "Linear":
        layer = nn.Linear(in_features, num_logits)
        nn.init.normal_(layer.weight, std=0.01)  # detectron2's FastRCNNOutputLayers initialisation
        return layer
    try:
        return NormedLinear(in_features, num_logits, temperature=temperature)
    except ValueError as e:
        raise ValueError(f"DETBALANCE.CLS_PREDICTOR.TEMPERATURE: {e}") from e
