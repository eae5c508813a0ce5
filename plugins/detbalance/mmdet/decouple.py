"""Decoupled classifier re-training (cRT) in MMDetection 3.x: ``DBDecoupleHook``.

Stage 2 is a config on the stage-1 config (``_base_``) with ``load_from`` the stage-1 checkpoint, a short schedule,
a balanced sampler (``DBRepeatFactorSampler``) and the hook::

    custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
    load_from = 'work_dirs/ce/model_final.pth'
    custom_hooks = [dict(type='DBDecoupleHook', train='classifier', reinit_classifier=True)]

(``configs/mmdet/tiny/faster-rcnn_r18_fpn_tiny_crt.py``; ``tools/train.py CONFIG --decouple STAGE1.pth`` adds
``load_from`` and the hook to any config and checks the checkpoint first). Before training the hook freezes every
parameter but the box classifiers' (``train='classifier+regressor'``: and the box regressors'), keeps every
normalisation layer in eval mode on every iteration (the features stay exactly stage 1's) and, unless the run
resumes a stage-2 checkpoint, re-initialises the classifiers (``reinit_classifier=False`` keeps stage 1's). A
Cascade R-CNN trains every stage's classifier.
"""

from __future__ import annotations

import os
import re

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..decouple import check_trained_part, classes_of_regressor, freeze_all_but, init_classifier, normalisation_layers

__all__ = ["DBDecoupleHook", "check_stage1_checkpoint", "trained_patterns"]

_CLASSIFIER = r"(^|\.)bbox_head(\.\d+)?\.fc_cls$"
_REGRESSOR = r"(^|\.)bbox_head(\.\d+)?\.fc_reg$"


def trained_patterns(part: str) -> list[str]:
    check_trained_part(part, "train")
    return [_CLASSIFIER] if part == "classifier" else [_CLASSIFIER, _REGRESSOR]


@HOOKS.register_module()
class DBDecoupleHook(Hook):
    """Stage 2 of decoupled training (module docstring).

    Args:
        train: ``"classifier"`` or ``"classifier+regressor"``.
        reinit_classifier: re-initialise the classifiers before a fresh stage 2 (not on a resume).
    """

    priority = "VERY_HIGH"

    def __init__(self, train: str = "classifier", reinit_classifier: bool = True):
        self.patterns = trained_patterns(train)
        if not isinstance(reinit_classifier, bool):
            raise ValueError(f"reinit_classifier={reinit_classifier!r}; expected True or False")
        self.reinit_classifier = reinit_classifier
        self.trained: list[str] = []

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        self.trained = freeze_all_but(model, self.patterns)
        if self.reinit_classifier and runner.iter == 0:
            for name, module in model.named_modules():
                if re.search(_CLASSIFIER, name):
                    head = model.get_submodule(name.rsplit(".", 1)[0])
                    core = getattr(getattr(head, "loss_cls", None), "core", None)  # a DB* loss's core module
                    bias = None if core is None else core.initial_bias()
                    init_classifier(module, None if bias is None else bias.to(module.weight))
        self._keep_statistics(model)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._keep_statistics(self._model(runner))

    @staticmethod
    def _keep_statistics(model) -> None:
        for layer in normalisation_layers(model):
            layer.eval()


def check_stage1_checkpoint(path: str, num_classes: int) -> None:
    """Refuse a missing stage-1 checkpoint or one of another number of classes than ``num_classes`` (the box
    head's), read from its class-specific box regressor."""
    if not path or not os.path.isfile(path):
        raise ValueError(f"stage-1 checkpoint {path!r} does not exist; expected a trained model")
    state = torch.load(path, map_location="cpu", weights_only=False)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    keys = [k for k in state if re.search(r"bbox_head(\.0)?\.fc_reg\.weight$", k)]
    if not keys:
        raise ValueError(f"stage-1 checkpoint {path!r} has no bbox_head.fc_reg.weight; expected a two-stage detector")
    found = classes_of_regressor(state[keys[0]], keys[0])
    if found != num_classes:
        raise ValueError(
            f"stage-1 checkpoint {path!r} has {found} classes ({keys[0]}: {tuple(state[keys[0]].shape)}); expected "
            f"num_classes={num_classes} (model.roi_head.bbox_head.num_classes)"
        )
