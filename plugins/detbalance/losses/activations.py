"""Test-time class scores matching each training loss.

A head trained with a sigmoid loss but scored with a softmax (or the reverse) produces detections whose scores
mean nothing, silently. Each loss therefore names its activation; ``predict_scores`` of every loss module calls
one of the functions below. All of them return ``scores[R, K + 1]``: foreground class probabilities in columns
``0..K-1`` and a background column last, the layout both Detectron2 and MMDetection feed to NMS (which drops the
last column).

* :func:`softmax_scores` -- ``logits[R, K + 1]`` (background logit last): ``softmax(logits)``.
* :func:`sigmoid_scores` -- ``logits[R, K]``: ``sigmoid(logits)`` per class, background ``1 - max_j p_j``.
* :func:`objectness_sigmoid_scores` -- ``logits[R, K + 1]`` (objectness/background logit last, EQLv2):
  ``sigmoid(x_c) * (1 - sigmoid(x_bg))`` per class, background ``sigmoid(x_bg)``.
* :func:`seesaw_scores` -- ``logits[R, K + 2]`` (Wang et al., CVPR 2021, as in MMDetection's ``SeesawLoss``):
  ``softmax(classes) * p_obj`` and background ``1 - p_obj`` where ``p_obj = softmax(objectness)[0]``.

Scores are computed in float32 (float64 for float64 logits).

Example:
    >>> import torch
    >>> sigmoid_scores(torch.zeros(2, 3)).tolist()
    [[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._validate import compute_dtype


def _as_logits(logits: Tensor, extra_columns: int, layout: str) -> Tensor:
    if not isinstance(logits, Tensor) or logits.dim() != 2 or not logits.is_floating_point():
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"logits must be a 2-D floating tensor {layout}, got {shape}")
    if logits.shape[1] < extra_columns + 1:
        raise ValueError(f"logits must have at least {extra_columns + 1} columns {layout}, got {logits.shape[1]}")
    return logits.to(compute_dtype(logits))


def softmax_scores(logits: Tensor) -> Tensor:
    """Softmax over ``logits[R, K + 1]`` (background last) -> ``scores[R, K + 1]``."""
    return torch.softmax(_as_logits(logits, 1, "[R, K + 1]"), dim=1)


def sigmoid_scores(logits: Tensor) -> Tensor:
    """Per-class sigmoid of ``logits[R, K]`` plus background ``1 - max_j sigmoid(logit_j)`` -> ``[R, K + 1]``."""
    probs = torch.sigmoid(_as_logits(logits, 0, "[R, K]"))
    background = 1.0 - probs.amax(dim=1, keepdim=True) if probs.shape[0] else probs.new_zeros(0, 1)
    return torch.cat([probs, background], dim=1)


def objectness_sigmoid_scores(logits: Tensor) -> Tensor:
    """Scores of ``logits[R, K + 1]`` whose last column is a sigmoid background logit -> ``[R, K + 1]``.

    ``scores[:, c] = sigmoid(x_c) * (1 - sigmoid(x_bg))`` for ``c < K`` and ``scores[:, K] = sigmoid(x_bg)``, as
    the official EQLv2 code (Tan et al., CVPR 2021) and MMDetection's ``EQLV2Loss.get_activation``.
    """
    probs = torch.sigmoid(_as_logits(logits, 1, "[R, K + 1]"))
    background = probs[:, -1:]
    return torch.cat([probs[:, :-1] * (1.0 - background), background], dim=1)


def seesaw_scores(logits: Tensor) -> Tensor:
    """Seesaw scores of ``logits[R, K + 2]`` (K class logits, then 2 objectness logits) -> ``[R, K + 1]``.

    ``scores[:, :K] = softmax(logits[:, :K]) * obj[:, 0]`` and ``scores[:, K] = obj[:, 1]`` where
    ``obj = softmax(logits[:, K:])`` (objectness column 0 = object, column 1 = background).
    """
    logits = _as_logits(logits, 2, "[R, K + 2]")
    classes = torch.softmax(logits[:, :-2], dim=1)
    objectness = torch.softmax(logits[:, -2:], dim=1)
    return torch.cat([classes * objectness[:, :1], objectness[:, 1:]], dim=1)


def score_accuracy(scores: Tensor, labels: Tensor, ignore_index: int = -1) -> Tensor:
    """Percentage of kept proposals whose arg-max score column equals the label (background = column K).

    ``scores[R, K + 1]``, ``labels[R]``; proposals labelled ``ignore_index`` are left out. With no proposal left
    the result is 0, as MMDetection's ``accuracy``.
    """
    keep = labels != ignore_index
    if not bool(keep.any()):
        return scores.new_zeros(())
    correct = scores[keep].argmax(dim=1) == labels[keep]
    return correct.to(scores.dtype).mean() * 100.0
