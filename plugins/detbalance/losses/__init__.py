"""Framework-free classification losses for class-imbalanced detection (torch only).

Shape letters: ``R`` proposals, ``K`` foreground classes; ``labels[R]`` are int64 in ``[0, K]`` where ``K`` is
background, or ``ignore_index`` (default -1) for proposals left out everywhere.

Each loss is a function doing the work and an ``nn.Module`` storing its settings (and state, for EQLv2 and
Seesaw) and delegating to it:

=============================  ============================  =============  ==================
function                       module                        logit columns  test-time scores
=============================  ============================  =============  ==================
``weighted_cross_entropy``     ``WeightedCrossEntropyLoss``  K + 1          ``softmax_scores``
``class_balanced_focal_loss``  ``ClassBalancedFocalLoss``    K              ``sigmoid_scores``
``equalization_loss``          ``EqualizationLoss``          K              ``sigmoid_scores``
``eqlv2_loss``                 ``EQLv2Loss``                 K              ``sigmoid_scores``
``seesaw_loss``                ``SeesawLoss``                K + 2          ``seesaw_scores``
``federated_loss``             ``FederatedLoss``             K              ``sigmoid_scores``
=============================  ============================  =============  ==================

Every function is ``name(logits, labels, <statistics>, *, <hyper-parameters>, sample_weight=None,
ignore_index=-1, reduction='mean', normalizer=None)``; ``reduction='none'`` gives ``[R]`` (0 for ignored
proposals), 'mean' divides by ``normalizer`` when given (MMDetection's ``avg_factor``) or by the loss's own
denominator. Empty input (no proposal, or all ignored) gives ``logits.sum() * 0``, keeping the graph. Losses are
computed in float32 (float64 for float64 logits), also under autocast. Bad input raises ``ValueError`` naming
the value and what was expected; that includes NaN or infinite logits, which would otherwise turn into NaN
weights silently (the check tests the computed loss and only then searches the logits for the first bad
entry; one host synchronisation per call on an accelerator).

Every module has ``num_logits``, ``predict_scores``, ``class_accuracy`` and a ``from_stats`` class method;
:data:`LOSSES` maps each module's name to its class.
"""
from .activations import seesaw_scores, sigmoid_scores, softmax_scores
from .cb_focal import ClassBalancedFocalLoss, class_balanced_focal_loss, class_balanced_weights
from .eql import EqualizationLoss, equalization_loss
from .eqlv2 import EQLv2Loss, eqlv2_loss
from .federated import FederatedLoss, federated_classes, federated_loss
from .seesaw import SeesawLoss, seesaw_loss
from .weighted_ce import WeightedCrossEntropyLoss, weighted_cross_entropy

LOSSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (WeightedCrossEntropyLoss, ClassBalancedFocalLoss, EqualizationLoss, EQLv2Loss, SeesawLoss,
                FederatedLoss)
}

__all__ = [
    "weighted_cross_entropy", "class_balanced_focal_loss", "class_balanced_weights", "equalization_loss",
    "eqlv2_loss", "seesaw_loss", "federated_loss", "federated_classes",
    "WeightedCrossEntropyLoss", "ClassBalancedFocalLoss", "EqualizationLoss", "EQLv2Loss", "SeesawLoss",
    "FederatedLoss", "LOSSES", "softmax_scores", "sigmoid_scores", "seesaw_scores",
]
