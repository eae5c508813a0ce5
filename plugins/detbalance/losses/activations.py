"""Test-time class scores matching each training loss: an index of the score functions, each defined with the
loss it belongs to.

A head trained with a sigmoid loss but scored with a softmax (or the reverse) produces detections whose scores
mean nothing, silently. Each loss therefore names its activation; ``predict_scores`` of every loss module calls
one of the functions below. All of them return ``scores[R, K + 1]``: foreground class probabilities in columns
``0..K-1`` and a background column last, the layout both Detectron2 and MMDetection feed to NMS (which drops the
last column). Scores are computed in float32 (float64 for float64 logits).

===============================  =====================  =========================================================
function                         logits                 scores
===============================  =====================  =========================================================
:func:`softmax_scores`           ``[R, K + 1]``         ``softmax(logits)`` (background logit last)
:func:`sigmoid_scores`           ``[R, K]``             ``sigmoid`` per class, background ``1 - max_j p_j``
:func:`objectness_sigmoid_scores` ``[R, K + 1]``        ``sigmoid(x_c) * (1 - sigmoid(x_bg))``, background
                                                        ``sigmoid(x_bg)`` (EQLv2)
:func:`seesaw_scores`            ``[R, K + 2]``         ``softmax(classes) * p_obj``, background ``1 - p_obj``
:func:`bags_scores`              ``[R, K + 1 + G]``     each group's softmax, class times group 0's foreground
===============================  =====================  =========================================================

Example:
    >>> import torch
    >>> sigmoid_scores(torch.zeros(2, 3)).tolist()
    [[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5]]
"""

from __future__ import annotations

from ._rowwise import sigmoid_scores
from .bags import bags_scores
from .eqlv2 import objectness_sigmoid_scores
from .seesaw import seesaw_scores
from .weighted_ce import softmax_scores

__all__ = ["softmax_scores", "sigmoid_scores", "objectness_sigmoid_scores", "seesaw_scores", "bags_scores"]
