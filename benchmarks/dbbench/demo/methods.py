"""The rows of the method table (:data:`dbbench.benchmark.methods.METHODS`) the demo runs, and the list a user
names them with.

The demo trains each row end to end on its own data, from random initialisation (:data:`REGIME`), and compares it
with CE: it runs a row that trains a model of its own (no post-hoc calibration, no decoupled stage 2 on another
row's model), trains the default Faster R-CNN, trains on the train split (the oracle is ``--oracle``), and exists
in that regime in every framework asked for (:func:`~dbbench.benchmark.methods.pending`).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..benchmark.methods import BASELINE, METHODS, Method, get_method, pending
from ..training.models import DEFAULT_MODEL

__all__ = ["REGIME", "refusal", "demo_methods", "check_demo_method", "parse_methods"]

#: How every demo run starts: from random initialisation.
REGIME = "scratch"


def refusal(method: Method, frameworks: Sequence[str]) -> str | None:
    """Why the demo cannot run ``method`` in every one of ``frameworks``; ``None`` when it can."""
    if method.calibrate is not None:
        return f"it calibrates the trained model of {method.base!r} (calibrate={method.calibrate!r})"
    if method.decouple is not None:
        return f"it re-trains the {method.decouple} of the model of {method.base!r} (decouple={method.decouple!r})"
    if method.model != DEFAULT_MODEL:
        return f"it trains model {method.model!r}, the demo {DEFAULT_MODEL!r}"
    if method.train_split != "train":
        return f"it trains on the split {method.train_split!r} (the oracle: --oracle)"
    for framework in frameworks:
        reason = pending(method, framework, REGIME)
        if reason is not None:
            return reason
    return None


def demo_methods(frameworks: Sequence[str]) -> list[str]:
    """The keys of the rows the demo runs in ``frameworks``, in the table's order."""
    return [key for key, method in METHODS.items() if refusal(method, frameworks) is None]


def check_demo_method(method: Method, frameworks: Sequence[str]) -> None:
    """Raise ``ValueError`` naming ``method``, why, and the rows the demo runs unless it runs ``method``."""
    reason = refusal(method, frameworks)
    if reason is not None:
        raise ValueError(
            f"method {method.key!r} cannot run in the demo: {reason}; expected a row the demo trains end to end in "
            f"{list(frameworks)}, one of {demo_methods(frameworks)}"
        )


def parse_methods(text: str, frameworks: Sequence[str]) -> list[Method]:
    """``"ce,wce,rfs"`` -> rows, the baseline first (added when missing), duplicates removed; each one the demo runs
    in ``frameworks``."""
    keys = [k.strip() for k in text.split(",") if k.strip()]
    rows = []
    for key in [BASELINE] + [k for k in dict.fromkeys(keys) if k != BASELINE]:
        if key not in METHODS:
            raise ValueError(f"unknown method {key!r}; expected a comma-separated list of {demo_methods(frameworks)}")
        method = get_method(key)
        check_demo_method(method, frameworks)
        rows.append(method)
    return rows
