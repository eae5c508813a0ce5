"""The ``detbalance.losses`` classification losses registered in ``mmdet.registry.MODELS``.

Naming: every registered component is ``"DB"`` + the name of the class it wraps — the core loss for losses
(``DBSeesawLoss`` wraps ``detbalance.losses.SeesawLoss``), the MMDetection class it extends otherwise
(``DBCocoDataset``, ``DBStandardRoIHead``). The prefix keeps them apart from MMDetection's own ``SeesawLoss``,
``EQLV2Loss`` and ``FocalLoss``.

Every loss takes ``num_classes`` (K foreground classes; MMDetection does not pass it to losses, so give the bbox
head's value — a different value is a build error naming both numbers), its statistics argument (a list, or the
path of a weights file from ``tools/compute_weights.py``), the core loss's hyper-parameters, ``reduction`` and
``loss_weight``. Use it as the ``loss_cls`` of a ``BBoxHead``::

    custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
    model = dict(roi_head=dict(bbox_head=dict(loss_cls=dict(
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
======================================  ==========================  =============================================

Each class names its statistics argument in ``stats_arg`` (``None`` for the stateful losses). The sigmoid
losses take ``prior_prob``, the probability their classifier's class logits start at (``None``: the reference
value of the loss, see ``initial_bias`` of the core loss); the adapter sets ``fc_cls.bias`` from it.

Example:
    >>> import torch
    >>> from mmdet.registry import MODELS
from torch import Tensor
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

import os
from typing import Optional

from mmdet.registry import MODELS

from detbalance import losses as core
from detbalance.losses.without_statistics import without_statistics

from ._loss_base import MMDetLossAdapter, StatsArg, check_length, is_weights_path

__all__ = ["DBWeightedCrossEntropyLoss", "DBClassBalancedFocalLoss", "DBEqualizationLoss", "DBEQLv2Loss",
           "DBSeesawLoss", "DBFederatedLoss"]


def _from_file(core_cls: type, num_classes: int, path: StatsArg, **settings):
    """Core module from a weights file; a file that is not here builds it for inference only (``init_detector``
    needs no statistics): its first training step raises ``FileNotFoundError`` naming the file."""
    if not os.path.isfile(path):
        return without_statistics(core_cls, num_classes, FileNotFoundError(f"weights file {path} does not exist"),
                                  **settings)
    return core_cls.from_stats(num_classes, MMDetLossAdapter.load_weights_file(path, num_classes), **settings)


def _counts_loss(owner: type, core_cls: type, arg: str, num_classes: int, stats: StatsArg, **settings):
    """Core module from an inline per-class list (length K) or from a weights file's statistics."""
    if is_weights_path(stats):
        return _from_file(core_cls, num_classes, stats, **settings)
    check_length(owner.__name__, arg, stats, num_classes, num_classes)
    return core_cls(num_classes, stats, **settings)


@MODELS.register_module()
class DBWeightedCrossEntropyLoss(MMDetLossAdapter):
    """Softmax cross-entropy with per-class weights (``detbalance.losses.WeightedCrossEntropyLoss``).

    With the default ``denominator='proposals'`` it gives the values of MMDetection's
    ``CrossEntropyLoss(class_weight=...)`` when both get the same ``avg_factor`` (``BBoxHead.loss`` passes the
    number of proposals with a label weight > 0); without ``avg_factor`` MMDetection's divides by all R rows,
    ours by that count, so they differ when a label weight is 0.

    Args:
        num_classes: K, the bbox head's ``num_classes``.
        class_weight: K + 1 weights (background last), the path of a weights file (its class weights and
            background weight), or ``None`` for unweighted cross-entropy.
        denominator: of the mean: ``'proposals'`` (``avg_factor``, the number of proposals with a label
            weight > 0) or ``'weights'`` (the summed class and label weights, as ``F.cross_entropy(weight=)``;
            ``avg_factor`` is then not used).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        loss_weight: multiplier of the loss.
        calibration: test-time score calibration (:mod:`detbalance.mmdet.calibration`); None: off.
    """

    stats_arg = "class_weight"

    def __init__(self, num_classes: int, class_weight: Optional[StatsArg] = None, *,
                 denominator: str = "proposals", reduction: str = "mean", loss_weight: float = 1.0,
                 calibration: Optional[dict] = None):
        if is_weights_path(class_weight):
            module = _from_file(
                core.WeightedCrossEntropyLoss, num_classes, class_weight, denominator=denominator,
                reduction=reduction)
        else:
            if class_weight is not None:
                check_length(type(self).__name__, "class_weight", class_weight, num_classes + 1, num_classes)
            module = core.WeightedCrossEntropyLoss(num_classes, class_weight, denominator=denominator,
                                                   reduction=reduction)
        super().__init__(module, loss_weight, calibration)

    def forward(self, cls_score: Tensor, labels: Tensor, label_weights: Optional[Tensor] = None,
                avg_factor: Optional[float] = None, reduction_override: Optional[str] = None) -> Tensor:
        """As :meth:`MMDetLossAdapter.forward`; with ``denominator='weights'`` the summed weights replace
        ``avg_factor``."""
        if self.core.denominator == "weights":
            avg_factor = None
        return super().forward(cls_score, labels, label_weights, avg_factor, reduction_override)


@MODELS.register_module()
class DBClassBalancedFocalLoss(MMDetLossAdapter):
    """Class-balanced sigmoid focal loss (``detbalance.losses.ClassBalancedFocalLoss``).

    Args:
        num_classes: K, the bbox head's ``num_classes``.
        samples_per_class: K instance counts, or the path of a weights file (its instance counts).
        beta, gamma, background_weight: the core loss's hyper-parameters.
        prior_prob: initial class probability (None: 1/K, bias -log(K - 1), as the reference code).
        reduction, loss_weight: as in every MMDetection loss.
        calibration: test-time score calibration (:mod:`detbalance.mmdet.calibration`); None: off.
    """

    stats_arg = "samples_per_class"

    def __init__(self, num_classes: int, samples_per_class: StatsArg, *, beta: float = 0.999, gamma: float = 2.0,
                 background_weight: float = 1.0, prior_prob: Optional[float] = None, reduction: str = "mean",
                 loss_weight: float = 1.0, calibration: Optional[dict] = None):
        module = _counts_loss(type(self), core.ClassBalancedFocalLoss, "samples_per_class", num_classes,
                              samples_per_class, beta=beta, gamma=gamma, background_weight=background_weight,
                              prior_prob=prior_prob, reduction=reduction)
        super().__init__(module, loss_weight, calibration)


@MODELS.register_module()
class DBEqualizationLoss(MMDetLossAdapter):
    """Equalization loss (``detbalance.losses.EqualizationLoss``).

    Args:
        num_classes: K, the bbox head's ``num_classes``.
        class_freq: K image fractions, or the path of a weights file (its image counts / number of images).
        lambda_: frequency threshold below which a class is tail.
        prior_prob: initial class probability (0.001 as eql.detectron2).
        reduction, loss_weight: as in every MMDetection loss.
        calibration: test-time score calibration (:mod:`detbalance.mmdet.calibration`); None: off.
    """

    stats_arg = "class_freq"

    def __init__(self, num_classes: int, class_freq: StatsArg, *, lambda_: float = 1.76e-3,
                 prior_prob: float = 0.001, reduction: str = "mean", loss_weight: float = 1.0,
                 calibration: Optional[dict] = None):
        module = _counts_loss(type(self), core.EqualizationLoss, "class_freq", num_classes, class_freq,
                              lambda_=lambda_, prior_prob=prior_prob, reduction=reduction)
        super().__init__(module, loss_weight, calibration)


@MODELS.register_module()
class DBEQLv2Loss(MMDetLossAdapter):
    """Equalization loss v2 (``detbalance.losses.EQLv2Loss``), K + 1 logits (objectness last); gradient
    statistics are running state.

    Args:
        num_classes: K, the bbox head's ``num_classes``.
        mu, gamma, alpha: the core loss's hyper-parameters.
        prior_prob: initial class probability of the K class logits (None: bias 0, as the official code).
        reduction, loss_weight: as in every MMDetection loss.
        calibration: test-time score calibration (:mod:`detbalance.mmdet.calibration`); None: off.
    """

    stats_arg = None

    def __init__(self, num_classes: int, *, mu: float = 0.8, gamma: float = 12.0, alpha: float = 4.0,
                 prior_prob: Optional[float] = None, reduction: str = "mean", loss_weight: float = 1.0,
                 calibration: Optional[dict] = None):
        module = core.EQLv2Loss(num_classes, mu=mu, gamma=gamma, alpha=alpha, prior_prob=prior_prob,
                                reduction=reduction)
        super().__init__(module, loss_weight, calibration)


@MODELS.register_module()
class DBSeesawLoss(MMDetLossAdapter):
    """Seesaw loss (``detbalance.losses.SeesawLoss``), K + 2 logits; cumulative counts are running state.

    Args:
        num_classes: K, the bbox head's ``num_classes``.
        p, q, eps: the core loss's hyper-parameters.
        reduction, loss_weight: as in every MMDetection loss.
        calibration: test-time score calibration (:mod:`detbalance.mmdet.calibration`); None: off.
    """

    stats_arg = None

    def __init__(self, num_classes: int, *, p: float = 0.8, q: float = 2.0, eps: float = 1e-2,
                 reduction: str = "mean", loss_weight: float = 1.0, calibration: Optional[dict] = None):
        module = core.SeesawLoss(num_classes, p=p, q=q, eps=eps, reduction=reduction)
        super().__init__(module, loss_weight, calibration)


@MODELS.register_module()
class DBFederatedLoss(MMDetLossAdapter):
    """Federated loss (``detbalance.losses.FederatedLoss``): sigmoid loss over a sampled class subset.

    Args:
        num_classes: K, the bbox head's ``num_classes``.
        image_counts: K per-class image counts, or the path of a weights file (its image counts).
        num_sampled, freq_power: the core loss's hyper-parameters.
        seed: seed of the loss's class-sampling generator; None draws one from torch's global generator.
        prior_prob: initial class probability (0.01 as Detic).
        reduction, loss_weight: as in every MMDetection loss.
        calibration: test-time score calibration (:mod:`detbalance.mmdet.calibration`); None: off.
    """

    stats_arg = "image_counts"

    def __init__(self, num_classes: int, image_counts: StatsArg, *, num_sampled: int = 50,
                 freq_power: float = 0.5, seed: Optional[int] = None, prior_prob: float = 0.01,
                 reduction: str = "mean", loss_weight: float = 1.0, calibration: Optional[dict] = None):
        module = _counts_loss(type(self), core.FederatedLoss, "image_counts", num_classes, image_counts,
                              num_sampled=num_sampled, freq_power=freq_power, seed=seed, prior_prob=prior_prob,
                              reduction=reduction)
        super().__init__(module, loss_weight, calibration)
