"""The detectors of the benchmark beyond the default Faster R-CNN, and the head comparisons it runs with them.

The models (tiny CPU config per framework, head kind) are those of :mod:`dbbench.training.models`: the runners
build them. The comparisons are rows of the method table (:data:`dbbench.benchmark.methods.METHODS`, field
``model``); :data:`HEAD_ROWS` lists them as (model, loss) pairs, the loss named as in ``detbalance.losses``, or
``"ce"`` / ``"FocalLoss"`` for the framework's own softmax cross-entropy / sigmoid focal loss of the model.
"""

from __future__ import annotations

from ..training.models import DEFAULT_MODEL, MODELS, config_path, get_model, loss_setting
from .methods import METHODS

__all__ = ["MODELS", "HEAD_ROWS", "get_model", "config_path"]

HEAD_ROWS: tuple[tuple[str, str], ...] = tuple(
    (m.model, loss_setting(m.loss).loss or MODELS[m.model].own_loss)
    for m in METHODS.values()
    if m.model != DEFAULT_MODEL and m.calibrate is None
)
