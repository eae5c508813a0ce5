"""Dataset statistics (per-class instance and image counts) from COCO/LVIS json and Pascal VOC xml.

Framework-free; the Detectron2 and MMDetection registries are read by ``detbalance.detectron2.stats`` and
``detbalance.mmdet.stats``, which return the same :class:`DatasetStats`.
"""

from .coco import read_coco
from .summary import BoxIssue, DatasetStats, degenerate_boxes, summarize, zero_area_issues
from .voc import read_voc

__all__ = ["BoxIssue", "DatasetStats", "degenerate_boxes", "read_coco", "read_voc", "summarize", "zero_area_issues"]
