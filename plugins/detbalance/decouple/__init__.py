"""Decoupled classifier re-training (cRT, Kang et al., ICLR 2020), framework-free parts.

Stage 2 starts from a detector trained end to end (stage 1), freezes every parameter but the box classifier's
(optionally the box regressor's too), keeps every normalisation layer's statistics as trained, re-initialises the
classifier (or keeps it) and trains it briefly with class-balanced or repeat-factor sampling and any loss. The
adapters (:mod:`detbalance.detectron2.decouple`, :mod:`detbalance.mmdet.decouple`) name the framework's modules.
"""

from .freeze import (
    TRAINED_PARTS,
    check_trained_part,
    classes_of_regressor,
    freeze_all_but,
    init_classifier,
    normalisation_layers,
)

__all__ = [
    "TRAINED_PARTS",
    "check_trained_part",
    "classes_of_regressor",
    "freeze_all_but",
    "init_classifier",
    "normalisation_layers",
]
