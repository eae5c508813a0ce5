"""A loss built without its class statistics, for a model that only predicts.

Test-time scores (``predict_scores``) use no class statistics, and the statistics a loss learns while training
(EQLv2's gradient sums, Seesaw's counts) are buffers restored from the checkpoint. So a detector can be built for
inference (Detectron2's ``DefaultPredictor``, MMDetection's ``init_detector``) where the weights file or the
training set it was trained from is not available. :func:`without_statistics` builds such a loss: placeholder
statistics (one instance in one image per class), and a training ``forward`` raises the error that loading
the real statistics raised, so it can never train on the placeholders.

Example:
    >>> import torch
    >>> from detbalance.losses import ClassBalancedFocalLoss
    >>> loss = without_statistics(ClassBalancedFocalLoss, 3, FileNotFoundError("weights file w.json does not exist"))
    >>> loss.predict_scores(torch.zeros(2, loss.num_logits)).shape
    torch.Size([2, 4])
    >>> loss(torch.zeros(2, loss.num_logits), torch.tensor([0, 3]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: weights file w.json does not exist; ClassBalancedFocalLoss was built without its class ...
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Any

from torch import nn

__all__ = ["without_statistics"]


def _placeholder(num_classes: int) -> SimpleNamespace:
    """What ``from_stats`` reads (``ClassStats`` and ``WeightsFile`` attributes): 1 instance, 1 image, weight 1."""
    stats = SimpleNamespace(
        class_names=[f"class{c}" for c in range(num_classes)],
        instance_counts=[1] * num_classes,
        image_counts=[1] * num_classes,
        num_images=1,
    )
    return SimpleNamespace(stats=stats, weights=[1.0] * num_classes, background_weight=1.0)


def _refuse_training(error: Exception, module: nn.Module, args: tuple) -> None:
    if module.training:
        raise type(error)(
            f"{error}; {type(module).__name__} was built without its class statistics (for inference:"
            " test-time scores need none), and training needs them"
        )


def without_statistics(loss_cls: Any, num_classes: int, error: Exception, **settings) -> nn.Module:
    """``loss_cls.from_stats(num_classes, placeholders, **settings)`` that raises ``error`` (its type, its message
    and why) at its first training forward; evaluation-mode calls and ``predict_scores`` work."""
    module = loss_cls.from_stats(num_classes, _placeholder(num_classes), **settings)
    module.register_forward_pre_hook(partial(_refuse_training, error))
    return module
