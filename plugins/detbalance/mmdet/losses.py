"""The ``detbalance.losses`` classification losses registered in ``mmdet.registry.MODELS``.

Naming: every registered component is ``"DB"`` + the name of the class it wraps — the core loss for losses
(``DBSeesawLoss`` wraps ``detbalance.losses.SeesawLoss``), the MMDetection class it extends otherwise
(``DBCocoDataset``, ``DBStandardRoIHead``). The prefix keeps them apart from MMDetection's own ``SeesawLoss``,
``EQLV2Loss`` and ``FocalLoss``.

Every loss takes ``num_classes`` (K foreground classes; MMDetection does not pass it to losses, so give the bbox
head's value — a different value is a build error naming both numbers), its statistics argument (a list, or the
path of a weights file from ``tools/compute_weights.py``), the core loss's hyper-parameters, ``reduction`` and
``loss_weight``. Use it as the ``loss_cls`` of a ``BBoxHead`` in a DB RoI head (``DBStandardRoIHead``,
``DBCascadeRoIHead``), which starts the classifier at the loss's initial bias and applies per-box weights::

    custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
    model = dict(roi_head=dict(type='DBStandardRoIHead', bbox_head=dict(loss_cls=dict(
        _delete_=True, type='DBClassBalancedFocalLoss', num_classes=80,
        samples_per_class='work_dirs/coco_weights.json', beta=0.999, gamma=2.0))))

======================================  ==========================  =============================================
registered name                         statistics argument         classifier columns / test-time scores
======================================  ==========================  =============================================
``DBWeightedCrossEntropyLoss``          ``class_weight`` (K + 1 or  K + 1, softmax
                                        file; optional)
``DBClassBalancedFocalLoss``            ``samples_per_class`` (K)   K, sigmoid
``DBEqualizationLoss``                  ``class_freq`` (K)          K, sigmoid
``DBEQLv2Loss``                         none (running state)        K + 1, sigmoid with objectness last
``DBSeesawLoss``                        none (running state)        K + 2, MMDetection's seesaw activation
``DBFederatedLoss``                     ``image_counts`` (K)        K, sigmoid
``DBBAGSLoss``                          ``samples_per_class`` (K)   K + 1 + G, softmax within each group
======================================  ==========================  =============================================

Each class names its row of :data:`detbalance.losses.LOSS_TABLE` (``spec``); its arguments are generated from it
(:class:`~detbalance.mmdet._loss_base.DBLossBase`): the core loss module's (``ignore_index`` aside; same names,
same defaults, read from the core signature) plus ``loss_weight`` and ``calibration``, and it names its
statistics argument in ``stats_arg`` (``None`` for the stateful losses). The sigmoid losses take ``prior_prob``,
the probability their classifier's class logits start at (``None``: the reference value of the loss, see
``initial_bias`` of the core loss); ``DBStandardRoIHead`` and ``DBCascadeRoIHead`` set ``fc_cls.bias`` from it.

Example:
    >>> import torch
    >>> from mmdet.registry import MODELS
    >>> import detbalance.mmdet
    >>> loss = MODELS.build(dict(type='DBClassBalancedFocalLoss', num_classes=3, samples_per_class=[50, 10, 2]))
    >>> loss.get_cls_channels(3)  # sigmoid: one logit per foreground class
    3
    >>> cls_score, labels = torch.zeros(4, 3, requires_grad=True), torch.tensor([0, 2, 3, 3])
    >>> value = loss(cls_score, labels, torch.ones(4), avg_factor=4.0)
    >>> value.backward()
    >>> loss.get_activation(cls_score).shape  # K foreground scores + background column
    torch.Size([4, 4])
"""

from __future__ import annotations

from mmdet.registry import MODELS

from detbalance.losses import LOSS_TABLE

from ._loss_base import DBLossBase

__all__ = [
    "DBWeightedCrossEntropyLoss",
    "DBClassBalancedFocalLoss",
    "DBEqualizationLoss",
    "DBEQLv2Loss",
    "DBSeesawLoss",
    "DBFederatedLoss",
    "DBBAGSLoss",
]


@MODELS.register_module()
class DBWeightedCrossEntropyLoss(DBLossBase):
    """Softmax cross-entropy with per-class weights (``detbalance.losses.WeightedCrossEntropyLoss``).

    ``class_weight``: K + 1 weights (background last), a weights file (its class weights and background weight)
    or ``None`` (unweighted). With the default ``denominator='proposals'`` it gives the values of MMDetection's
    ``CrossEntropyLoss(class_weight=...)`` when both get the same ``avg_factor`` (``BBoxHead.loss`` passes the
    number of proposals with a label weight > 0); without ``avg_factor`` MMDetection's divides by all R rows, ours
    by that count, so they differ when a label weight is 0. With ``denominator='weights'`` the summed weights
    replace ``avg_factor``.
    """

    spec = LOSS_TABLE["WeightedCrossEntropyLoss"]

    @classmethod
    def stats_length(cls, num_classes: int) -> int:
        """K + 1: the background weight comes last."""
        return num_classes + 1

    def normalizer(self, avg_factor: float | None) -> float | None:
        """``avg_factor``; None with ``denominator='weights'``, whose core loss divides by the summed weights."""
        return None if self.core.denominator == "weights" else avg_factor


@MODELS.register_module()
class DBClassBalancedFocalLoss(DBLossBase):
    """Class-balanced focal loss (``detbalance.losses.ClassBalancedFocalLoss``).

    ``samples_per_class``: K instance counts or a weights file; ``prior_prob=None``: 1/K, as the reference code.
    """

    spec = LOSS_TABLE["ClassBalancedFocalLoss"]


@MODELS.register_module()
class DBEqualizationLoss(DBLossBase):
    """Equalization loss (``detbalance.losses.EqualizationLoss``).

    ``class_freq``: K image fractions or a weights file (its image counts / number of images).
    """

    spec = LOSS_TABLE["EqualizationLoss"]


@MODELS.register_module()
class DBEQLv2Loss(DBLossBase):
    """EQLv2 (``detbalance.losses.EQLv2Loss``): K + 1 logits (objectness last); gradient statistics are running
    state."""

    spec = LOSS_TABLE["EQLv2Loss"]


@MODELS.register_module()
class DBSeesawLoss(DBLossBase):
    """Seesaw loss (``detbalance.losses.SeesawLoss``): K + 2 logits; cumulative counts are running state."""

    spec = LOSS_TABLE["SeesawLoss"]


@MODELS.register_module()
class DBFederatedLoss(DBLossBase):
    """Federated loss (``detbalance.losses.FederatedLoss``).

    ``image_counts``: K per-class image counts or a weights file; ``seed=None`` draws one from torch's generator.
    """

    spec = LOSS_TABLE["FederatedLoss"]


@MODELS.register_module()
class DBBAGSLoss(DBLossBase):
    """Balanced group softmax (``detbalance.losses.BAGSLoss``).

    ``samples_per_class``: K instance counts or a weights file, which group the classes by ``bin_edges``;
    K + 1 + G logits (G = len(bin_edges) + 2); ``seed=None`` draws one from torch's generator.
    """

    spec = LOSS_TABLE["BAGSLoss"]
