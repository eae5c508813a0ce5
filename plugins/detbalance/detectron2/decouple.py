"""Decoupled classifier re-training (cRT) in Detectron2: stage 2 of a model trained end to end.

Config node (added by :func:`add_decouple_config`, which :func:`detbalance.detectron2.add_detbalance_config`
calls)::

    DETBALANCE.DECOUPLE:
      ENABLED: False             # True: MODEL.WEIGHTS is the stage-1 model; only TRAIN's layers learn
      TRAIN: "classifier"        # or "classifier+regressor" (box_predictor.cls_score, and .bbox_pred)
      REINIT_CLASSIFIER: True    # False: keep the stage-1 classifier as the starting point

Stage 2 is an ordinary detectron2 training with ``MODEL.WEIGHTS`` the stage-1 checkpoint (detectron2's own, or
detbalance's with any loss), a short ``SOLVER.MAX_ITER``, a balanced sampler through detectron2's own config
(``DATALOADER.SAMPLER_TRAIN: "RepeatFactorTrainingSampler"``, ``DATALOADER.REPEAT_THRESHOLD``) and any head and loss
(``MODEL.ROI_HEADS.NAME: "BalancedROIHeads"`` + ``DETBALANCE.LOSS``). ``tools/train_net.py --decouple STAGE1.pth``
sets ``ENABLED`` and ``MODEL.WEIGHTS`` and checks the checkpoint first (exit status 2 for a missing file or a
checkpoint of another number of classes). :func:`freeze_for_decoupling` (after ``build_model``, before the
optimizer) freezes every parameter but the trained layers' and every BatchNorm (``FrozenBatchNorm2d``: the
features stay exactly stage 1's); :func:`reinit_classifiers` (after the weights are loaded, not on a resume)
re-initialises the classifiers. A Cascade R-CNN trains the classifier of every stage.
"""

from __future__ import annotations

import os

import torch
from detectron2.config import CfgNode
from detectron2.layers import FrozenBatchNorm2d
from torch import nn

from ..decouple import check_trained_part, classes_of_regressor, freeze_all_but, init_classifier

__all__ = [
    "add_decouple_config",
    "trained_patterns",
    "freeze_for_decoupling",
    "reinit_classifiers",
    "check_stage1_checkpoint",
]

_CLASSIFIER = r"(^|\.)box_predictor(\.\d+)?\.cls_score$"
_REGRESSOR = r"(^|\.)box_predictor(\.\d+)?\.bbox_pred$"


def add_decouple_config(cfg: CfgNode) -> None:
    """Add ``DETBALANCE.DECOUPLE`` (module docstring) to ``cfg`` in place; a no-op if present."""
    if "DECOUPLE" in cfg.DETBALANCE:
        return
    cfg.DETBALANCE.DECOUPLE = CfgNode({"ENABLED": False, "TRAIN": "classifier", "REINIT_CLASSIFIER": True})


def trained_patterns(part: str) -> list[str]:
    """The module-name patterns of ``DETBALANCE.DECOUPLE.TRAIN``."""
    check_trained_part(part, "DETBALANCE.DECOUPLE.TRAIN")
    return [_CLASSIFIER] if part == "classifier" else [_CLASSIFIER, _REGRESSOR]


def freeze_for_decoupling(cfg: CfgNode, model: nn.Module) -> list[str]:
    """Freeze ``model`` for stage 2 (module docstring); returns the trained parameters' names."""
    trained = freeze_all_but(model, trained_patterns(cfg.DETBALANCE.DECOUPLE.TRAIN))
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, FrozenBatchNorm2d.convert_frozen_batchnorm(child))
    return trained


def reinit_classifiers(model: nn.Module) -> list[str]:
    """Re-initialise every box classifier of ``model`` as built: a detbalance predictor's bias is its loss's
    ``initial_bias()``, detectron2's own classifier's zero. Returns the re-initialised modules' names."""
    import re

    names = []
    for name, module in model.named_modules():
        if re.search(_CLASSIFIER, name):
            predictor = model.get_submodule(name.rsplit(".", 1)[0])
            loss = getattr(predictor, "cls_loss", None)
            init_classifier(module, None if loss is None else loss.initial_bias().to(module.weight))
            names.append(name)
    return names


def check_stage1_checkpoint(path: str, num_classes: int) -> None:
    """Refuse a missing stage-1 checkpoint or one of another number of classes than ``num_classes``
    (``MODEL.ROI_HEADS.NUM_CLASSES``), read from its class-specific box regressor."""
    if not path or not os.path.isfile(path):
        raise ValueError(f"stage-1 checkpoint {path!r} does not exist; expected a trained model (MODEL.WEIGHTS)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    state = state.get("model", state) if isinstance(state, dict) else state
    keys = [
        k
        for k in state
        if k.endswith("box_predictor.bbox_pred.weight") or k.endswith("box_predictor.0.bbox_pred.weight")
    ]
    if not keys:
        raise ValueError(
            f"stage-1 checkpoint {path!r} has no box_predictor.bbox_pred.weight; expected a two-stage detector"
        )
    found = classes_of_regressor(state[keys[0]], keys[0])
    if found != num_classes:
        raise ValueError(
            f"stage-1 checkpoint {path!r} has {found} classes ({keys[0]}: {tuple(state[keys[0]].shape)}); expected "
            f"MODEL.ROI_HEADS.NUM_CLASSES={num_classes}"
        )
