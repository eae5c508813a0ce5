"""A loss built from its class statistics, or for inference only where their source is not here.

Both framework adapters build a statistics loss (class weights, counts, frequencies) from a source named in the
config: a weights file, or (Detectron2) the registered training datasets. A model that only predicts
(Detectron2's ``DefaultPredictor``, MMDetection's ``init_detector``) needs no statistics, so a source that is not
on this machine does not fail the build: :func:`build_from_statistics` builds the loss
:func:`~detbalance.losses.without_statistics.without_statistics`, and its first training step raises the error
that names the missing source. A source that is here but does not fit (another number of classes, a malformed
file) fails the build.

Example:
    >>> from detbalance.losses import ClassBalancedFocalLoss
    >>> missing = missing_weights_file("absent.json")
    >>> missing
    FileNotFoundError('weights file absent.json does not exist')
    >>> loss = build_from_statistics(ClassBalancedFocalLoss, 3, {"beta": 0.9}, missing, load=lambda: None)
    >>> loss.beta, loss.num_classes
    (0.9, 3)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from .without_statistics import without_statistics

__all__ = ["missing_weights_file", "build_from_statistics"]


def missing_weights_file(path: str | os.PathLike) -> FileNotFoundError | None:
    """The error of a weights file that is not at ``path`` (None when it is)."""
    if os.path.isfile(path):
        return None
    return FileNotFoundError(f"weights file {os.fspath(path)} does not exist")


def build_from_statistics(
    loss_cls: Any,
    num_classes: int,
    settings: Mapping[str, Any],
    missing: Exception | None,
    load: Callable[[], Any],
) -> nn.Module:
    """``loss_cls.from_stats(num_classes, load(), **settings)``, or the loss for inference only.

    Args:
        loss_cls: a loss module class with ``from_stats``.
        num_classes: K.
        settings: the loss's keyword arguments (hyper-parameters, ``reduction``...).
        missing: the error of a statistics source that is not here (:func:`missing_weights_file`), or None.
        load: reads the statistics (checking their class count); called only when ``missing`` is None. An
            ``OSError`` it raises (a registered dataset whose files are not on this machine) counts as a missing
            source too.

    Returns:
        The loss; built without its statistics when the source is missing: its first training forward raises
        that error (its type and message).
    """
    if missing is None:
        try:
            statistics = load()
        except OSError as error:
            missing = error
    if missing is not None:
        return without_statistics(loss_cls, num_classes, missing, **settings)
    return loss_cls.from_stats(num_classes, statistics, **settings)
