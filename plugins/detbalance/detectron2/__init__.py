"""Detectron2 adapter for detbalance. Importing it applies the detectron2 v0.6 compatibility shims first."""
from . import _compat  # noqa: F401  (must run before any detectron2 import)
