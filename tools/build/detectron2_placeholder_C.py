"""Placeholder for detectron2's compiled extension ``detectron2._C`` (installed by detbalance's
``tools/build/install_detectron2.sh`` into a detectron2 v0.6 built without its C++ sources).

``detectron2.layers`` imports ``_C`` at import time; the standard Faster/Mask R-CNN path with axis-aligned boxes
never calls it (v0.6 uses torchvision's ``roi_align`` and ``nms``). Any op looked up here raises an ImportError
naming it: deformable convolution, rotated boxes and the C++ COCO evaluator need a detectron2 built from source
with its extensions.
"""

#: marks this module as the placeholder (detbalance.detectron2._compat.HAS_COMPILED_OPS reads it).
DETBALANCE_PLACEHOLDER = True


# Read by detectron2.utils.collect_env (default_setup logs the environment).
def get_compiler_version() -> str:
    return "none: placeholder detectron2._C, no C++ ops"


def get_cuda_version() -> str:
    return "none: placeholder detectron2._C, no C++ ops"


def has_cuda() -> bool:
    return False


def __getattr__(name: str):
    if name.startswith("__") and name.endswith("__"):
        raise AttributeError(name)
    raise ImportError(
        f"detectron2 C++ op '{name}' is not available: this detectron2 (v0.6 from pb1-detectron2) was built "
        "without its C++ extension. Standard Faster/Mask R-CNN with axis-aligned boxes does not need it; "
        "deformable convolution, rotated boxes and the C++ COCO evaluator do. Install a detectron2 built "
        "from source with its extensions to use them (e.g. make setup DETECTRON2=main)."
    )
