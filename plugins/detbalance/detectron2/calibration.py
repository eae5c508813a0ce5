"""The ``DETBALANCE.CALIBRATION`` config node: test-time score calibration of ``BalancedROIHeads``.

Config node (added by :func:`detbalance.detectron2.add_detbalance_config`, defaults shown)::

    DETBALANCE:
      CALIBRATION:
        METHOD: ""      # "" (off), "norcal", "logit_adjust", "thresholds"
        GAMMA: None     # gamma >= 0; None: the gamma fitted in FILE
        FILE: ""        # calibration file (tools/calibrate.py) or weights file

Class counts (training images per class) come from FILE, else ``DETBALANCE.WEIGHTS_FILE``, else the statistics
of ``DATASETS.TRAIN``. The maths is :mod:`detbalance.calibration`; this module only reads the config. A model
trained with detectron2's plain ``StandardROIHeads`` (softmax CE) loads into ``BalancedROIHeads`` with
``DETBALANCE.LOSS: "WeightedCrossEntropyLoss"`` unchanged (same ``cls_score`` shape and names), so it is
calibrated by a config change only::

    cfg.MODEL.ROI_HEADS.NAME = "BalancedROIHeads"
    cfg.DETBALANCE.WEIGHTS_FILE = "weights.json"
    cfg.DETBALANCE.CALIBRATION.METHOD = "norcal"
    cfg.DETBALANCE.CALIBRATION.GAMMA = 0.6
"""

from __future__ import annotations

from detectron2.config import CfgNode

from ..calibration import ScoreCalibration, build_calibration
from .loss_builder import load_class_statistics

__all__ = ["add_calibration_config", "calibration_from_config"]


def add_calibration_config(cfg: CfgNode) -> None:
    """Add ``DETBALANCE.CALIBRATION`` (module docstring) to a config that has a ``DETBALANCE`` node."""
    cfg.DETBALANCE.CALIBRATION = CfgNode()
    cfg.DETBALANCE.CALIBRATION.METHOD = ""
    cfg.DETBALANCE.CALIBRATION.GAMMA = None
    cfg.DETBALANCE.CALIBRATION.FILE = ""


def calibration_from_config(cfg: CfgNode) -> ScoreCalibration:
    """The :class:`~detbalance.calibration.ScoreCalibration` the config describes (identity when METHOD is "").

    Raises:
        ValueError: prefixed ``DETBALANCE.CALIBRATION:``, naming the bad value (unknown METHOD, GAMMA < 0, a FILE
            for another NUM_CLASSES, a zero class count, ...).
    """
    node = cfg.DETBALANCE.get("CALIBRATION")
    if node is None:
        return ScoreCalibration(cfg.MODEL.ROI_HEADS.NUM_CLASSES)
    num_classes = cfg.MODEL.ROI_HEADS.NUM_CLASSES
    try:
        stats = None
        if node.METHOD in ("norcal", "logit_adjust") and not node.FILE:
            stats = load_class_statistics(
                num_classes, weights_file=cfg.DETBALANCE.WEIGHTS_FILE or None, dataset_names=tuple(cfg.DATASETS.TRAIN)
            )
        return build_calibration(node.METHOD, num_classes, gamma=node.GAMMA, file=node.FILE or None, stats=stats)
    except ValueError as e:
        raise ValueError(f"DETBALANCE.CALIBRATION: {e}") from None
