"""Keep third-party deprecation noise out of the command-line tools' output.

Detectron2 v0.6, fvcore, mmengine and mmcv emit ``DeprecationWarning``/``FutureWarning``/``UserWarning`` messages
about their own dependencies (``pkg_resources``, ``torch.cuda.amp``, ``torch.meshgrid`` indexing, ...) on every
run; a user cannot act on them and they bury the tool's own lines. :func:`quiet_third_party_warnings` hides those
categories for every module outside detbalance (detbalance's own warnings stay visible), exports the same
filters through ``PYTHONWARNINGS`` so that spawned ranks and worker processes inherit them, and raises the
level of the loggers in :data:`QUIET_LOGGERS` (e.g. torch's "No CUDA runtime is found" on every CPU run).
"""

from __future__ import annotations

import builtins
import logging
import os
import warnings

__all__ = ["quiet_third_party_warnings", "THIRD_PARTY_FILTERS", "QUIET_LOGGERS"]

#: (action, message regex, category name): what is hidden for modules outside detbalance.
THIRD_PARTY_FILTERS = (
    ("ignore", "", "DeprecationWarning"),
    ("ignore", "", "FutureWarning"),
    ("ignore", "pkg_resources is deprecated", "UserWarning"),
    ("ignore", "torch.meshgrid", "UserWarning"),
)

#: third-party loggers whose warnings are environment notes, not problems of the run: shown from ERROR up.
QUIET_LOGGERS = ("torch.utils.cpp_extension",)


def quiet_third_party_warnings() -> None:
    """Install the filters of :data:`THIRD_PARTY_FILTERS` here and in ``PYTHONWARNINGS`` for child processes."""
    for action, message, category in THIRD_PARTY_FILTERS:
        warnings.filterwarnings(action, message=message, category=getattr(builtins, category))
    # detbalance's own warnings (e.g. a capped weight ratio) must still reach the user.
    warnings.filterwarnings("default", module=r"detbalance(\..*)?$")
    inherited = [f"{action}::{category}" for action, message, category in THIRD_PARTY_FILTERS if not message]
    current = os.environ.get("PYTHONWARNINGS", "")
    os.environ["PYTHONWARNINGS"] = ",".join([p for p in current.split(",") if p] + inherited)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
