"""Detector models the benchmark can train, beyond the tiny Faster R-CNN of the demo: one tiny CPU config per
framework and the comparisons (rows) each model is benchmarked for.

A model names its head kind (``"box"``: Faster/Mask/Cascade R-CNN, any loss of ``detbalance.losses.LOSSES``;
``"dense"``: RetinaNet/FCOS/ATSS, the losses of :func:`detbalance.losses.dense_head_losses`) and its config in
each framework, relative to the shipped ``configs/`` folder (``detbalance.demo.config_files.CONFIG_ROOT``;
``None`` where the framework has no such yaml/py config here). In the configs the loss is selected as
everywhere: ``DETBALANCE.LOSS`` (Detectron2) or the ``loss_cls`` of each box/dense head (MMDetection).
:data:`HEAD_ROWS` lists the comparisons, as (model, loss) pairs where ``"ce"`` is the framework's own softmax
cross-entropy box head.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..demo.config_files import CONFIG_ROOT

__all__ = ["BenchmarkModel", "MODELS", "HEAD_ROWS", "get_model", "config_path"]


@dataclass(frozen=True)
class BenchmarkModel:
    """One detector: ``key``, readable ``label``, head kind, tiny config per framework, whether it needs masks."""

    key: str
    label: str
    head: str
    detectron2: Optional[str]
    mmdet: Optional[str]
    masks: bool = False


MODELS: dict[str, BenchmarkModel] = {m.key: m for m in (
    BenchmarkModel("faster_rcnn", "Faster R-CNN R18-FPN", "box", "detectron2/faster_rcnn_R_18_FPN_tiny_cpu.yaml",
                   "mmdet/tiny/faster-rcnn_r18_fpn_tiny.py"),
    BenchmarkModel("mask_rcnn", "Mask R-CNN R18-FPN", "box", "detectron2/heads/mask_rcnn_R_18_FPN_tiny_cpu.yaml",
                   "mmdet/tiny/mask-rcnn_r18_fpn_tiny_eqlv2.py", masks=True),
    BenchmarkModel("cascade_rcnn", "Cascade R-CNN R18-FPN", "box",
                   "detectron2/heads/cascade_rcnn_R_18_FPN_tiny_cpu.yaml",
                   "mmdet/tiny/cascade-rcnn_r18_fpn_tiny_seesaw.py"),
    BenchmarkModel("retinanet", "RetinaNet R18-FPN", "dense", "detectron2/heads/retinanet_R_18_FPN_tiny_cpu.yaml",
                   "mmdet/tiny/retinanet_r18_fpn_tiny_efl.py"),
    BenchmarkModel("fcos", "FCOS R18-FPN", "dense", None, "mmdet/tiny/fcos_r18_fpn_tiny_efl.py"),
    BenchmarkModel("atss", "ATSS R18-FPN", "dense", None, "mmdet/tiny/atss_r18_fpn_tiny_efl.py"),
)}

#: The head comparisons: RetinaNet with the focal loss vs Equalized Focal Loss, Cascade R-CNN with softmax CE vs
#: the balanced losses of the Faster R-CNN matrix (its best one is read from the results).
HEAD_ROWS: tuple[tuple[str, str], ...] = (
    ("retinanet", "FocalLoss"),
    ("retinanet", "EqualizedFocalLoss"),
    ("cascade_rcnn", "ce"),
    ("cascade_rcnn", "SeesawLoss"),
    ("cascade_rcnn", "EQLv2Loss"),
    ("cascade_rcnn", "WeightedCrossEntropyLoss"),
)


def get_model(key: str) -> BenchmarkModel:
    if key not in MODELS:
        raise ValueError(f"unknown model {key!r}; expected one of {list(MODELS)}")
    return MODELS[key]


def config_path(key: str, framework: str, root: Path = CONFIG_ROOT) -> Path:
    """The tiny config of model ``key`` in ``framework`` (``"detectron2"`` or ``"mmdet"``)."""
    model = get_model(key)
    if framework not in ("detectron2", "mmdet"):
        raise ValueError(f"framework={framework!r}; expected 'detectron2' or 'mmdet'")
    relative = getattr(model, framework)
    if relative is None:
        raise ValueError(f"model {key!r} has no {framework} config here; it exists in "
                         f"{[f for f in ('detectron2', 'mmdet') if getattr(model, f)]}")
    return root / relative
