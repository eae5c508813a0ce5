"""Freezing a detector for stage 2 of decoupled training, and re-initialising its classifier.

- :func:`freeze_all_but`: every parameter frozen (``requires_grad=False``) except those of the modules whose
  qualified name matches one of the given regular expressions; a pattern that matches no module is an error.
- :func:`normalisation_layers`: the BatchNorm-like layers whose running statistics must stay as trained (the
  adapters freeze them: Detectron2 turns them into ``FrozenBatchNorm2d``, MMDetection keeps them in eval mode).
- :func:`init_classifier`: the classifier as a freshly built head has it: weights from N(0, 0.01), the bias
  the loss starts from (``initial_bias()`` of a detbalance loss, zeros for the frameworks' softmax CE).
- :func:`classes_of_regressor`: K of a checkpoint, read from its class-specific box regressor (4 K rows).

Example:
    >>> from torch import nn
    >>> model = nn.ModuleDict({"backbone": nn.Linear(4, 4), "head": nn.ModuleDict({"cls": nn.Linear(4, 3)})})
    >>> freeze_all_but(model, [r"(^|\\.)cls$"])
    ['head.cls.bias', 'head.cls.weight']
    >>> model["backbone"].weight.requires_grad
    False
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "TRAINED_PARTS",
    "check_trained_part",
    "freeze_all_but",
    "normalisation_layers",
    "init_classifier",
    "classes_of_regressor",
]

#: What stage 2 trains: the box classifier, or the classifier and the box regressor.
TRAINED_PARTS = ("classifier", "classifier+regressor")


def check_trained_part(part: str, what: str = "trained part") -> str:
    if part not in TRAINED_PARTS:
        raise ValueError(f"{what}={part!r}; expected one of {TRAINED_PARTS}")
    return part


def freeze_all_but(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """Freeze every parameter of ``model`` except those of the modules whose name matches one of ``patterns``
    (``re.search``); returns the names of the trained parameters, sorted."""
    if not patterns:
        raise ValueError("patterns=[]; expected one or more regular expressions naming the trained modules")
    compiled = [re.compile(p) for p in patterns]
    matched: dict[str, list[str]] = {p.pattern: [] for p in compiled}
    for name, _ in model.named_modules():
        for p in compiled:
            if name and p.search(name):
                matched[p.pattern].append(name)
    missing = [p for p, names in matched.items() if not names]
    if missing:
        heads = sorted(n for n, m in model.named_modules() if isinstance(m, nn.Linear))
        raise ValueError(f"no module of the model matches {missing}; expected a pattern naming one of {heads[:12]}")
    trained_modules = {n for names in matched.values() for n in names}
    trained = []
    for name, parameter in model.named_parameters():
        owner = name.rsplit(".", 1)[0]
        keep = any(owner == m or owner.startswith(m + ".") for m in trained_modules)
        parameter.requires_grad_(keep)
        if keep:
            trained.append(name)
    return sorted(trained)


def normalisation_layers(model: nn.Module) -> list[nn.Module]:
    """The BatchNorm / SyncBatchNorm / InstanceNorm layers of ``model`` (the ones that keep running statistics)."""
    return [m for m in model.modules() if isinstance(m, (nn.modules.batchnorm._NormBase))]


def init_classifier(layer: nn.Linear, bias: torch.Tensor | None = None) -> None:
    """Re-initialise ``layer`` as a freshly built box classifier: weights ~ N(0, 0.01), bias ``bias`` (zeros when
    None)."""
    if not isinstance(layer, nn.Linear):
        raise ValueError(f"layer is a {type(layer).__name__}; expected an nn.Linear classifier")
    with torch.no_grad():
        nn.init.normal_(layer.weight, std=0.01)
        if layer.bias is not None:
            if bias is None:
                layer.bias.zero_()
            else:
                if tuple(bias.shape) != tuple(layer.bias.shape):
                    raise ValueError(f"bias of shape {tuple(bias.shape)}; expected {tuple(layer.bias.shape)}")
                layer.bias.copy_(bias)


def classes_of_regressor(weight: torch.Tensor, key: str) -> int:
    """K of a class-specific box regressor whose weight (checkpoint entry ``key``) has 4 K rows."""
    rows = int(weight.shape[0])
    if rows % 4 or rows == 4:
        raise ValueError(
            f"checkpoint entry {key} has {rows} rows; expected 4 K rows of a class-specific box regressor (a "
            "class-agnostic one does not say how many classes the checkpoint has)"
        )
    return rows // 4
