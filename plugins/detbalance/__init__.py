"""detbalance: class-imbalanced object detection for Detectron2 and MMDetection 3.x.

The top-level package is framework-free. Framework adapters live in ``detbalance.mmdet`` and
``detbalance.detectron2`` and are imported explicitly (importing them registers their components).
"""

__version__ = "0.1.0"
