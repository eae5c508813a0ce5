"""Framework-free classification losses for class-imbalanced detection (torch only).

Shape letters: ``R`` proposals, ``K`` foreground classes; ``labels[R]`` are int64 in ``[0, K]`` where ``K`` is
background, or ``ignore_index`` (default -1) for proposals left out everywhere.

Each loss is a function doing the work and an ``nn.Module`` storing its settings (and state, for EQLv2 and
Seesaw) and delegating to it:

=============================  ============================  =============  =============================
function                       module                        logit columns  test-time scores
=============================  ============================  =============  =============================
``weighted_cross_entropy``     ``WeightedCrossEntropyLoss``  K + 1          ``softmax_scores``
``class_balanced_focal_loss``  ``ClassBalancedFocalLoss``    K              ``sigmoid_scores``
``equalization_loss``          ``EqualizationLoss``          K              ``sigmoid_scores``
``eqlv2_loss``                 ``EQLv2Loss``                 K + 1          ``objectness_sigmoid_scores``
``seesaw_loss``                ``SeesawLoss``                K + 2          ``seesaw_scores``
``federated_loss``             ``FederatedLoss``             K              ``sigmoid_scores``
``bags_loss``                  ``BAGSLoss``                  K + 1 + G      ``bags_scores``
=============================  ============================  =============  =============================

BAGS (balanced group softmax) has G = len(bin_edges) + 2 groups: K class logits, background, then one "others"
logit per group (:mod:`.bags`).

Every function is ``name(logits, labels, <statistics>, *, <hyper-parameters>, sample_weight=None,
ignore_index=-1, reduction='mean', normalizer=None)``; ``reduction='none'`` gives ``[R]`` (0 for ignored
proposals), 'mean' divides by ``normalizer`` when given (MMDetection's ``avg_factor``) or by the loss's own
denominator. Empty input (no proposal, or all ignored) gives 0, keeping the graph. Losses are computed in float32
(float64 for float64 logits), also under autocast. Bad input raises ``ValueError`` naming the value and what was
expected; that includes NaN or infinite logits, which would otherwise turn into NaN weights silently. Shapes and
settings are checked first; the values (labels, sample weights, the loss for the logits) are read back once, at
the end of the call: one synchronisation with an accelerator, which :func:`set_value_checks` switches off
(Seesaw's foreground rows, the federated loss's class draw and BAGS's draw read back what they compute).
Statistics are checked when a module is built.

A loss is read in three files: its own module, :mod:`._base` (input checks, reduction, the module base class)
and, for the losses computed per row with a closed-form gradient (the sigmoid losses and BAGS), :mod:`._rowwise`.

Every module has ``num_logits``, ``predict_scores``, ``class_accuracy``, ``initial_bias`` (the classifier bias
both framework adapters start from: each sigmoid loss's reference prior) and a ``from_stats`` class method;
:data:`LOSSES` maps each module's name to its class; :data:`LOSS_TABLE` (:mod:`.table`) adds the statistic each
needs and its hyper-parameters, whose defaults live in the module's signature.

Losses for the classification branch of dense (one-stage) heads, which score every anchor with K sigmoid
logits, live in :data:`DENSE_LOSSES`; a dense head also takes the K-column (sigmoid) losses of :data:`LOSSES`
(:func:`dense_head_losses`, :func:`check_dense_head_loss`):

===========================  ========================  =============  ==================
function                     module                    logit columns  test-time scores
===========================  ========================  =============  ==================
``focal_loss``               ``FocalLoss``             K              ``sigmoid_scores``
``equalized_focal_loss``     ``EqualizedFocalLoss``    K              ``sigmoid_scores``
===========================  ========================  =============  ==================
"""

from ._base import set_value_checks, value_checks_enabled
from .activations import objectness_sigmoid_scores, seesaw_scores, sigmoid_scores, softmax_scores
from .bags import BAGSLoss, bags_groups, bags_loss, bags_scores
from .cb_focal import ClassBalancedFocalLoss, class_balanced_focal_loss, class_balanced_weights
from .efl import EqualizedFocalLoss, equalized_focal_loss
from .eql import EqualizationLoss, equalization_loss
from .eqlv2 import EQLv2Loss, eqlv2_loss
from .federated import FederatedLoss, federated_classes, federated_loss
from .focal import FocalLoss, alpha_from_weights, focal_loss
from .heads import check_box_head_loss, check_dense_head_loss, dense_head_losses
from .seesaw import SeesawLoss, seesaw_loss
from .table import DENSE_LOSSES, LOSS_TABLE, LOSSES, LossSpec
from .weighted_ce import WeightedCrossEntropyLoss, weighted_cross_entropy

__all__ = [
    "weighted_cross_entropy",
    "class_balanced_focal_loss",
    "class_balanced_weights",
    "equalization_loss",
    "eqlv2_loss",
    "seesaw_loss",
    "federated_loss",
    "federated_classes",
    "bags_loss",
    "bags_groups",
    "bags_scores",
    "WeightedCrossEntropyLoss",
    "ClassBalancedFocalLoss",
    "EqualizationLoss",
    "EQLv2Loss",
    "SeesawLoss",
    "FederatedLoss",
    "BAGSLoss",
    "LOSSES",
    "softmax_scores",
    "sigmoid_scores",
    "objectness_sigmoid_scores",
    "seesaw_scores",
    "focal_loss",
    "alpha_from_weights",
    "equalized_focal_loss",
    "FocalLoss",
    "EqualizedFocalLoss",
    "DENSE_LOSSES",
    "dense_head_losses",
    "check_dense_head_loss",
    "check_box_head_loss",
    "LOSS_TABLE",
    "LossSpec",
    "set_value_checks",
    "value_checks_enabled",
]
