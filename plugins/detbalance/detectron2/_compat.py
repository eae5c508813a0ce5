"""Detectron2 v0.6 on modern torch, numpy and Pillow: the run-time fallback of the install-time fixes.

detbalance installs detectron2 v0.6 from its PyPI copy (``pb1-detectron2==0.6``), whose sdist lacks the C++/CUDA
sources, so it is built without extensions. ``tools/build/install_detectron2.sh`` writes both fixes below into the
installed detectron2 (a placeholder ``detectron2/_C.py`` and ``Image.BILINEAR`` in its source), so that detectron2
works on its own: its scripts and spawned ranks need no detbalance import. This module applies the same fixes at
run time for a v0.6 installed some other way (e.g. plain ``pip install pb1-detectron2``), and tells whether the
real compiled ops are present (:data:`HAS_COMPILED_OPS`):

1. ``detectron2._C`` — ``detectron2.layers`` does ``from detectron2 import _C`` at import time. When the compiled
   extension is missing we register a placeholder module whose attributes raise :class:`ImportError` naming the
   op (e.g. ``deform_conv_forward``) and why. The standard Faster R-CNN path never reaches it: v0.6 uses
   torchvision's ``roi_align`` and ``nms``. Rotated boxes, deformable convolution and the C++ COCO evaluator do.
   On a detectron2 built with its extensions (e.g. upstream main) the real ``_C`` is used and nothing changes.
2. ``PIL.Image.LINEAR`` — Pillow 10 removed this alias of ``BILINEAR``; detectron2 v0.6 uses it as a default
   argument in ``detectron2/data/transforms/transform.py``. We restore the alias (same value Pillow < 10 had)
   rather than pinning an old Pillow, which other packages in the environment no longer support.

Not shimmed on purpose: numpy 2 removed ``np.bool``/``np.int``/``np.float``, still used by v0.6's mask, sem-seg
and Pascal VOC evaluators. They are not on the box-training path; detbalance evaluates with pycocotools.

Imported automatically by :mod:`detbalance.detectron2`; never by the framework-free core.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

__all__ = ["install", "HAS_COMPILED_OPS"]

_PLACEHOLDER_DOC = (
    "Placeholder for detectron2's compiled extension, installed by detbalance.detectron2._compat because this "
    "detectron2 build has no C++ ops."
)


class _MissingCompiledOps(types.ModuleType):
    """Module standing in for ``detectron2._C``; any attribute access raises a clear ImportError."""

    DETBALANCE_PLACEHOLDER = True  # as in the placeholder file the install script writes

    # Read by detectron2.utils.collect_env (default_setup logs the environment).
    @staticmethod
    def get_compiler_version() -> str:
        return "none: placeholder detectron2._C, no C++ ops"

    get_cuda_version = get_compiler_version

    @staticmethod
    def has_cuda() -> bool:
        return False

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        raise ImportError(
            f"detectron2 C++ op '{name}' is not available: this detectron2 (v0.6 from pb1-detectron2) was built "
            "without its C++ extension. Standard Faster/Mask R-CNN with axis-aligned boxes does not need it; "
            "deformable convolution, rotated boxes and the C++ COCO evaluator do. Install a detectron2 built "
            "from source with its extensions to use them."
        )


def _has_compiled_ops() -> bool:
    spec = importlib.util.find_spec("detectron2")
    if spec is None or not spec.submodule_search_locations:
        return False
    return importlib.util.find_spec("detectron2._C") is not None


def install() -> None:
    """Apply the shims (idempotent). Safe to call before or after ``import detectron2``."""
    try:
        from PIL import Image

        if not hasattr(Image, "LINEAR"):
            Image.LINEAR = Image.BILINEAR
    except ImportError:  # Pillow is a detectron2 dependency; nothing to patch without it.
        pass
    if "detectron2._C" in sys.modules or _has_compiled_ops():
        return
    placeholder = _MissingCompiledOps("detectron2._C", _PLACEHOLDER_DOC)
    sys.modules["detectron2._C"] = placeholder
    detectron2 = importlib.import_module("detectron2")
    detectron2._C = placeholder


install()
#: True when detectron2's real C++ ops are installed (not the install script's or this module's placeholder).
HAS_COMPILED_OPS = not getattr(importlib.import_module("detectron2._C"), "DETBALANCE_PLACEHOLDER", False)
