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
``DBBAGSLoss``                          ``samples_per_class`` (K)   K + 1 + G, softmax within each group
======================================  ==========================  =============================================

Each class is generated from :data:`detbalance.losses.LOSS_TABLE`: its arguments are the core loss module's
(``ignore_index`` aside; same names, same defaults, read from the core signature) plus ``loss_weight`` and
``calibration``, and it names its statistics argument in ``stats_arg`` (``None`` for the stateful losses). The
sigmoid losses take ``prior_prob``, the probability their classifier's class logits start at (``None``: the
reference value of the loss, see ``initial_bias`` of the core loss); the adapter sets ``fc_cls.bias`` from it.

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

import inspect
import os

from mmdet.registry import MODELS
from torch import Tensor

from detbalance.losses import LOSS_TABLE, LossSpec
from detbalance.losses.without_statistics import without_statistics

from ._loss_base import MMDetLossAdapter, StatsArg, check_length, is_weights_path

__all__ = [
    "DBWeightedCrossEntropyLoss",
    "DBClassBalancedFocalLoss",
    "DBEqualizationLoss",
    "DBEQLv2Loss",
    "DBSeesawLoss",
    "DBFederatedLoss",
    "DBBAGSLoss",
]

#: Arguments every registered loss adds to those of its core loss (MMDetection's convention, then calibration).
_ADAPTER_PARAMETERS = (
    inspect.Parameter("loss_weight", inspect.Parameter.KEYWORD_ONLY, default=1.0, annotation="float"),
    inspect.Parameter("calibration", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="dict | None"),
)


def _from_file(core_cls: type, num_classes: int, path: StatsArg, **settings):
    """Core module from a weights file; a file that is not here builds it for inference only (``init_detector``
    needs no statistics): its first training step raises ``FileNotFoundError`` naming the file."""
    if not os.path.isfile(path):
        return without_statistics(
            core_cls, num_classes, FileNotFoundError(f"weights file {path} does not exist"), **settings
        )
    return core_cls.from_stats(num_classes, MMDetLossAdapter.load_weights_file(path, num_classes), **settings)


def _core_loss(owner: str, spec: LossSpec, num_classes: int, stats, settings: dict):
    """The core module: from ``num_classes`` alone (trained statistics), a weights file or an inline list."""
    if spec.stats_arg is None:
        return spec.cls(num_classes, **settings)
    if is_weights_path(stats):
        return _from_file(spec.cls, num_classes, stats, **settings)
    if stats is not None:  # class weights carry the background weight last
        expected = num_classes + 1 if spec.statistic == "class weights" else num_classes
        check_length(owner, spec.stats_arg, stats, expected, num_classes)
    return spec.cls(num_classes, stats, **settings)


def _signature(spec: LossSpec) -> inspect.Signature:
    """``(self, num_classes, <core arguments but ignore_index>, *, loss_weight=1.0, calibration=None)``."""
    core = inspect.signature(spec.cls.__init__).parameters
    kept = [p for name, p in core.items() if name != "ignore_index"]
    return inspect.Signature([*kept, *_ADAPTER_PARAMETERS])


def _register(spec: LossSpec, base: type = MMDetLossAdapter) -> type:
    """``DB<name>``: a subclass of ``base`` taking the core loss's arguments, registered in ``MODELS``."""
    signature = _signature(spec)
    name = f"DB{spec.name}"

    def __init__(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as error:  # a missing or unknown argument, named by the class as Python does
            raise TypeError(f"{name}.__init__() {error}") from None
        bound.apply_defaults()
        settings = dict(bound.arguments)
        del settings["self"]
        num_classes, loss_weight, calibration = (settings.pop(k) for k in ("num_classes", "loss_weight", "calibration"))
        stats = settings.pop(spec.stats_arg) if spec.stats_arg is not None else None
        base.__init__(self, _core_loss(name, spec, num_classes, stats, settings), loss_weight, calibration)

    __init__.__signature__ = signature
    __init__.__qualname__ = f"{name}.__init__"
    summary = (spec.cls.__doc__ or spec.name).strip().splitlines()[0]
    statistic = (
        "running state (none to give)"
        if spec.stats_arg is None
        else f"``{spec.stats_arg}``: {spec.statistic}, a list or the path of a weights file"
    )
    doc = (
        f"``detbalance.losses.{spec.name}`` as MMDetection's ``loss_cls``: {summary}\n\n"
        f"Arguments: those of the core loss, same names and defaults (``ignore_index`` aside), plus "
        f"``loss_weight`` and ``calibration``: ``{name}{str(signature).replace('(self, ', '(')}``.\n"
        f"Statistics: {statistic}."
    )
    cls = type(
        name, (base,), {"__init__": __init__, "__doc__": doc, "__module__": __name__, "stats_arg": spec.stats_arg}
    )
    return MODELS.register_module(module=cls)


class _WeightsDenominatorAdapter(MMDetLossAdapter):
    """Weighted cross-entropy: with ``denominator='weights'`` the summed weights replace ``avg_factor``."""

    def forward(
        self,
        cls_score: Tensor,
        labels: Tensor,
        label_weights: Tensor | None = None,
        avg_factor: float | None = None,
        reduction_override: str | None = None,
    ) -> Tensor:
        """As :meth:`MMDetLossAdapter.forward`; with ``denominator='weights'`` the summed weights replace
        ``avg_factor``."""
        if self.core.denominator == "weights":
            avg_factor = None
        return super().forward(cls_score, labels, label_weights, avg_factor, reduction_override)


#: With the default ``denominator='proposals'`` it gives the values of MMDetection's
#: ``CrossEntropyLoss(class_weight=...)`` when both get the same ``avg_factor`` (``BBoxHead.loss`` passes the
#: number of proposals with a label weight > 0); without ``avg_factor`` MMDetection's divides by all R rows, ours
#: by that count, so they differ when a label weight is 0. ``class_weight``: K + 1 weights (background last), a
#: weights file (its class weights and background weight) or ``None`` (unweighted).
DBWeightedCrossEntropyLoss = _register(LOSS_TABLE["WeightedCrossEntropyLoss"], _WeightsDenominatorAdapter)
#: ``samples_per_class``: K instance counts or a weights file; ``prior_prob=None``: 1/K, as the reference code.
DBClassBalancedFocalLoss = _register(LOSS_TABLE["ClassBalancedFocalLoss"])
#: ``class_freq``: K image fractions or a weights file (its image counts / number of images).
DBEqualizationLoss = _register(LOSS_TABLE["EqualizationLoss"])
#: K + 1 logits (objectness last); gradient statistics are running state.
DBEQLv2Loss = _register(LOSS_TABLE["EQLv2Loss"])
#: K + 2 logits; cumulative counts are running state.
DBSeesawLoss = _register(LOSS_TABLE["SeesawLoss"])
#: ``image_counts``: K per-class image counts or a weights file; ``seed=None`` draws one from torch's generator.
DBFederatedLoss = _register(LOSS_TABLE["FederatedLoss"])
#: ``samples_per_class``: K instance counts or a weights file, which group the classes by ``bin_edges``;
#: K + 1 + G logits (G = len(bin_edges) + 2); ``seed=None`` draws one from torch's generator.
DBBAGSLoss = _register(LOSS_TABLE["BAGSLoss"])
