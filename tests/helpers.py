"""Helpers shared by every test folder: repository paths, the reference data (skip or fail), one long-tailed
weights file and the two config builders (a Detectron2 yaml with a loss, an MMDetection config with its
statistics file).

Imported as ``helpers`` (``tests/`` is on ``sys.path`` through its ``conftest.py``). Framework imports stay inside
the functions that need them, so that the framework-free tests never import Detectron2 or MMDetection.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from detbalance.weights import ClassStats, WeightsFile, compute_class_weights, frequency_groups, save_weights

REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS = REPO_ROOT / "tools"
CONFIGS = REPO_ROOT / "configs"
D2_CONFIGS = CONFIGS / "detectron2"
MMDET_CONFIGS = CONFIGS / "mmdet"
D2_TINY_CONFIG = D2_CONFIGS / "faster_rcnn_R_18_FPN_tiny_cpu.yaml"
MMDET_TINY_CONFIG = MMDET_CONFIGS / "tiny" / "faster-rcnn_r18_fpn_tiny.py"
#: The read-only reference data beside the checkout (``DETBALANCE_SHARED_DATA`` points elsewhere).
SHARED_DATA = Path(os.environ.get("DETBALANCE_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
#: Set to 1 (``.ci/run`` does) where the reference data must be present: its absence fails instead of skipping.
REQUIRE_SHARED_ENV = "DETBALANCE_REQUIRE_SHARED"

NUM_CLASSES = 8  # the tiny configs'
#: Long-tailed statistics of the tiny configs' 8 classes (instances halve from class to class).
INSTANCE_COUNTS = [1500, 753, 378, 189, 95, 48, 24, 12]
IMAGE_COUNTS = [700, 500, 300, 150, 80, 40, 20, 10]
NUM_IMAGES = 1169


def shared_path(*parts: str) -> Path:
    """``SHARED_DATA/<parts>``; where it is absent the test skips, or fails when ``DETBALANCE_REQUIRE_SHARED=1``.

    The one place that decides what a missing piece of reference data means.
    """
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"reference data {path} is absent (set DETBALANCE_SHARED_DATA to the data folder)"
        if os.environ.get(REQUIRE_SHARED_ENV) == "1":
            pytest.fail(f"{message}; {REQUIRE_SHARED_ENV}=1 requires it")
        pytest.skip(message)
    return path


def long_tail_stats(num_classes: int = NUM_CLASSES) -> ClassStats:
    """Statistics of ``num_classes`` classes named ``class<i>``, the 8-class long tail repeated beyond 8."""
    return ClassStats(
        [f"class{c}" for c in range(num_classes)],
        [INSTANCE_COUNTS[c % 8] for c in range(num_classes)],
        [IMAGE_COUNTS[c % 8] for c in range(num_classes)],
        NUM_IMAGES,
    )


def long_tail_weights(num_classes: int = NUM_CLASSES, background_weight: float = 1.0) -> WeightsFile:
    """A valid weights file of :func:`long_tail_stats` with 1/sqrt(frequency) weights."""
    stats = long_tail_stats(num_classes)
    weights = compute_class_weights(stats.instance_counts, "sqrt_inverse")
    return WeightsFile(
        stats=stats,
        scheme="sqrt_inverse",
        weights=[float(w) for w in weights],
        background_weight=background_weight,
        groups=frequency_groups(stats.image_counts),
    )


def write_weights_file(path: Path, num_classes: int = NUM_CLASSES, background_weight: float = 1.0) -> Path:
    """Write :func:`long_tail_weights` to ``path``; returns ``path``."""
    save_weights(path, long_tail_weights(num_classes, background_weight))
    return path


def d2_config(path: Path, loss: str, weights_file: Path | None = None, opts=()):
    """The Detectron2 config ``path`` with ``DETBALANCE.LOSS`` set to ``loss`` and, when given, ``weights_file``,
    then the extra ``opts`` (a flat key/value list)."""
    from detbalance.detectron2 import get_config

    extra = ["DETBALANCE.LOSS", loss]
    if weights_file is not None:
        extra += ["DETBALANCE.WEIGHTS_FILE", str(weights_file)]
    return get_config(path, extra + list(opts))


def mmdet_config(path: Path, weights_file: Path | None = None, **loss_settings):
    """The MMDetection config ``path`` with every ``loss_cls`` whose statistics argument names a file pointed at
    ``weights_file``, and ``loss_settings`` applied to it (heads in ``model.bbox_head`` or the RoI head's, one or a
    cascade list). Statistics written inline, or left None, stay as the config has them."""
    from mmdet.registry import MODELS
    from mmengine.config import Config

    import detbalance.mmdet  # noqa: F401  (registers the DB* components)

    cfg = Config.fromfile(str(path))
    heads = cfg.model.get("bbox_head") or cfg.model.roi_head.bbox_head
    for head in heads if isinstance(heads, list) else [heads]:
        loss = head.loss_cls
        stats_arg = getattr(MODELS.get(loss.type), "stats_arg", None)
        if stats_arg is not None and weights_file is not None and isinstance(loss.get(stats_arg), str):
            loss[stats_arg] = str(weights_file)
        loss.update(loss_settings)
    return cfg
