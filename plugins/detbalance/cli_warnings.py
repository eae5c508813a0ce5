"""Keep third-party deprecation noise out of the command-line tools' output.

Detectron2 v0.6, fvcore, mmengine and mmcv emit ``DeprecationWarning``/``FutureWarning``/``UserWarning`` messages
about their own dependencies (``pkg_resources``, ``torch.cuda.amp``, ``torch.meshgrid`` indexing, ...) on every
run; a user cannot act on them and they bury the tool's own lines. :func:`quiet_third_party_warnings` hides those
categories for every module outside detbalance (detbalance's own warnings stay visible) and exports the same
filters through ``PYTHONWARNINGS`` so that spawned ranks and worker processes inherit them.
"""
from __future__ import annotations

import builtins
import os
import warnings

__all__ = ["quiet_third_party_warnings", "THIRD_PARTY_FILTERS"]

#: (action, message regex, category name): what is hidden for modules outside detbalance.
THIRD_PARTY_FILTERS = (
    ("ignore", "", "DeprecationWarning"),
    ("ignore", "", "FutureWarning"),
    ("ignore", "pkg_resources is deprecated", "UserWarning"),
    ("ignore", "torch.meshgrid", "UserWarning"),
)


def quiet_third_party_warnings() -> None:
    """Install the filters of :data:`THIRD_PARTY_FILTERS` here and in ``PYTHONWARNINGS`` for child processes."""
    for action, message, category in THIRD_PARTY_FILTERS:
        warnings.filterwarnings(action, message=message, category=getattr(builtins, category))
    # detbalance's own warnings (e.g. a capped weight ratio) must still reach the user.
    warnings.filterwarnings("default", module=r"detbalance(\..*)?$")
    inherited = [f"{action}::{category}" for action, message, category in THIRD_PARTY_FILTERS if not message]
    current = os.environ.get("PYTHONWARNINGS", "")
    os.environ["PYTHONWARNINGS"] = ",".join([p for p in current.split(",") if p] + inherited)
