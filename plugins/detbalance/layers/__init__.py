"""Framework-free layers of the balanced heads: :class:`NormedLinear`, the cosine classifier of the Seesaw paper
(Detectron2: ``DETBALANCE.CLS_PREDICTOR``; MMDetection: its own ``NormedLinear`` as ``cls_predictor_cfg``)."""

from .normed_linear import SEESAW_TEMPERATURE, NormedLinear

__all__ = ["NormedLinear", "SEESAW_TEMPERATURE"]
