"""``DBLossBase``: MMDetection's calling convention around a ``detbalance.losses`` module, built from its row of
:data:`detbalance.losses.LOSS_TABLE`.

Each registered ``DB<name>`` loss is a subclass naming its table row (``spec = LOSS_TABLE["<name>"]``). Its
arguments are generated from that row: the core loss's own (same names, same defaults, read from the core
signature; ``ignore_index`` aside), its statistics argument ``stats_arg`` (a list or the path of a weights
file), and the keyword arguments of :meth:`DBLossBase._setup` (``loss_weight``, ``calibration``; the dense losses
``use_sigmoid``, ``loss_weight``). ``inspect.signature`` of a subclass shows them; a missing or unknown argument
is a ``TypeError`` naming the class.

MMDetection's ``BBoxHead`` calls its classification loss as
``loss_cls(cls_score, labels, label_weights, avg_factor=..., reduction_override=...)`` and asks the loss, through
``custom_cls_channels`` / ``custom_activation`` / ``custom_accuracy``, for the classifier's output channels
(``get_cls_channels``), the test-time activation (``get_activation``, used by ``predict``) and the logged accuracy
(``get_accuracy``). :class:`DBLossBase` answers all of these by delegating to the core module it holds:

============================  =====================================================
MMDetection                   ``detbalance.losses`` module
============================  =====================================================
``cls_score`` [R, C]          ``logits``
``labels`` [R]                ``labels`` (K = background)
``label_weights`` [R]         ``sample_weight``
``avg_factor``                ``normalizer``
``reduction_override``        ``reduction_override``
``get_cls_channels(K)``       ``num_logits`` (after checking K)
``get_activation(cls_score)`` ``predict_scores(logits)`` -> [R, K + 1]
``get_accuracy(...)``         ``{"acc": class_accuracy(logits, labels)}``
``loss_weight``               multiplies the returned loss (MMDetection's convention)
``fc_cls.bias`` at build      ``initial_bias()`` (see below)
============================  =====================================================

Initial classifier bias: every loss module names the bias its classifier starts from (``initial_bias``: 0 for
softmax losses, each sigmoid loss's reference prior). The DB RoI heads (``DBStandardRoIHead``,
``DBCascadeRoIHead``) hand each bbox head's classifier ``fc_cls`` to its loss (:meth:`DBLossBase.attach_classifier`)
right after building the head; the loss keeps a weak reference to it and copies ``initial_bias()`` into its bias,
then again in :meth:`DBLossBase.init_weights`, which mmengine calls after the head's own ``init_cfg`` (bias 0). In
MMDetection's own RoI heads, or a head that names its classifier otherwise, the classifier keeps its own bias.

Statistics arguments (class weights, counts) are given either inline as a list or as the path of a weights file
written by ``tools/compute_weights.py``; a path is read with :func:`detbalance.weights.load_weights`, which checks
its class count against ``num_classes`` and raises ``ValueError`` naming both numbers. A path where no file is
builds the loss for inference only (``init_detector`` needs no statistics,
:mod:`detbalance.losses.statistics_source`): its first training step raises ``FileNotFoundError`` naming the file.
"""

from __future__ import annotations

import inspect
import os
import warnings
import weakref
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from detbalance.losses import LossSpec
from detbalance.losses.statistics_source import build_from_statistics, missing_weights_file
from detbalance.weights import load_weights

from .calibration import calibration_from_config

__all__ = ["DBLossBase", "StatsArg", "is_weights_path"]

#: A statistics argument in a config: a list of numbers or the path of a weights file.
StatsArg = Sequence[float] | str | os.PathLike


def is_weights_path(value: object) -> bool:
    """True when a statistics argument names a weights file rather than listing the numbers."""
    return isinstance(value, (str, os.PathLike))


def check_length(owner: str, arg: str, values: Sequence[float], expected: int, num_classes: int) -> None:
    """Raise ``ValueError`` naming both numbers when an inline statistics list has the wrong length."""
    if len(values) != expected:
        raise ValueError(
            f"{owner}: {arg} has {len(values)} entries but num_classes={num_classes} needs {expected}; "
            f"give one entry per class of the bbox head (or the path of a weights file)"
        )


class DBLossBase(nn.Module):
    """Base of the registered ``DB*`` losses: holds a core loss module and speaks MMDetection's protocol.

    A subclass sets ``spec``, its row of ``LOSS_TABLE``, and is named ``"DB" + spec.name``; its arguments are
    generated from the row (module docstring). No arithmetic on losses happens here besides ``loss_weight``.
    """

    #: The row of ``LOSS_TABLE`` the subclass adapts.
    spec: ClassVar[LossSpec]
    #: The argument taking the statistics (``spec.stats_arg``); None for losses that learn them while training.
    stats_arg: ClassVar[str | None] = None
    #: ``BBoxHead`` sizes ``fc_cls`` with ``get_cls_channels`` and scores boxes in ``predict`` with
    #: ``get_activation``.
    custom_cls_channels = True
    #: ``BBoxHead.loss`` logs ``get_accuracy``; ``refine_bboxes`` (Cascade R-CNN) uses ``get_activation``.
    custom_activation = True
    #: Dense heads (e.g. ``FCOSHead``) log ``get_accuracy`` when this is set.
    custom_accuracy = True
    #: Set by the DB dense heads (:mod:`.dense_heads`), which give a K-column loss K sigmoid channels:
    #: ``get_activation`` then leaves out the background column.
    serves_dense_head = False

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        spec = cls.__dict__.get("spec")
        if spec is None:  # an intermediate base
            return
        if cls.__name__ != f"DB{spec.name}":
            raise TypeError(f"{cls.__name__} adapts {spec.name}; expected the name DB{spec.name}")
        cls.stats_arg = spec.stats_arg
        cls.__signature__ = _signature(cls)  # what inspect.signature shows and __init__ binds

    def __init__(self, *args: Any, **arguments: Any) -> None:
        """Takes the arguments of ``inspect.signature(type(self))`` (module docstring)."""
        try:
            bound = type(self).__signature__.bind(*args, **arguments)
        except TypeError as error:  # a missing or unknown argument, named by the class as Python does
            raise TypeError(f"{type(self).__name__}.__init__() {error}") from None
        bound.apply_defaults()
        settings = dict(bound.arguments)
        num_classes = settings.pop("num_classes")
        stats = settings.pop(self.stats_arg) if self.stats_arg is not None else None
        adapter = {parameter.name: settings.pop(parameter.name) for parameter in _setup_parameters(type(self))}
        self._setup(self._core(num_classes, stats, settings), **adapter)

    def _setup(self, core: nn.Module, *, loss_weight: float = 1.0, calibration: dict | None = None) -> None:
        """Hold ``core``; the keyword arguments are those every subclass adds to its core loss's.

        Args:
            loss_weight: multiplier of the returned loss, as in every MMDetection loss.
            calibration: test-time score calibration settings (:mod:`detbalance.mmdet.calibration`); None: off.
        """
        nn.Module.__init__(self)
        self.core = core
        self.loss_weight = float(loss_weight)
        self.calibration = calibration_from_config(calibration, core)
        self._classifier = None  # weak reference to the head's fc_cls (see the module docstring)

    @classmethod
    def _core(cls, num_classes: int, stats: Any, settings: dict) -> nn.Module:
        """The core module: from ``num_classes`` alone (trained statistics), a weights file or inline values."""
        spec = cls.spec
        if spec.stats_arg is None:
            return spec.cls(num_classes, **settings)
        if is_weights_path(stats):
            path = os.fspath(stats)
            return build_from_statistics(
                spec.cls, num_classes, settings, missing_weights_file(path), lambda: load_weights(path, num_classes)
            )
        if stats is not None:
            check_length(cls.__name__, spec.stats_arg, stats, cls.stats_length(num_classes), num_classes)
        return cls._core_from_values(num_classes, stats, settings)

    @classmethod
    def stats_length(cls, num_classes: int) -> int:
        """Entries of an inline statistics list: one per class."""
        return num_classes

    @classmethod
    def _core_from_values(cls, num_classes: int, values: Sequence[float] | None, settings: dict) -> nn.Module:
        """The core module from inline statistics (None where the loss makes them optional)."""
        return cls.spec.cls(num_classes, values, **settings)

    @property
    def num_classes(self) -> int:
        """Foreground classes K the loss was built for."""
        return self.core.num_classes

    def get_cls_channels(self, num_classes: int) -> int:
        """Classifier output channels for the bbox head's ``num_classes`` (must equal the loss's)."""
        if num_classes != self.num_classes:
            raise ValueError(
                f"{type(self).__name__} was built with num_classes={self.num_classes} but the bbox head has "
                f"num_classes={num_classes}; set loss_cls.num_classes to the bbox head's num_classes"
            )
        return self.core.num_logits

    def attach_classifier(self, classifier: nn.Module | None) -> None:
        """Start the head's classifier at the core loss's ``initial_bias()`` (now and in :meth:`init_weights`); a
        classifier that is not a ``Linear`` with a bias and ``num_logits`` outputs keeps its own bias."""
        if (
            isinstance(classifier, nn.Linear)
            and classifier.bias is not None
            and classifier.out_features == self.core.num_logits
        ):
            self._classifier = weakref.ref(classifier)
            self.init_weights()

    def init_weights(self) -> None:
        """Copy ``initial_bias()`` into the classifier's bias; mmengine calls it after the head's ``init_cfg``.

        Without a classifier (a box head in MMDetection's own RoI heads) a loss whose initial bias is not 0 warns:
        the classifier then starts at the head's bias 0, not at the loss's reference prior.
        """
        classifier = None if self._classifier is None else self._classifier()
        if classifier is not None:
            with torch.no_grad():
                classifier.bias.copy_(self.core.initial_bias())
        elif not self.serves_dense_head and bool(self.core.initial_bias().ne(0).any()):
            warnings.warn(
                f"{type(self).__name__}: the box classifier starts at its head's bias 0, not at the loss's initial "
                f"bias (class probability {self.core.prior_prob}); expected roi_head type DBStandardRoIHead or "
                f"DBCascadeRoIHead, which start it there"
            )

    def __getstate__(self) -> dict:
        # the classifier reference is not part of the loss: copies and pickles leave it out
        state = self.__dict__.copy()
        state["_classifier"] = None
        return state

    def get_activation(self, cls_score: Tensor) -> Tensor:
        """Scores [R, K + 1] matching the training loss (background column last); calibrated in eval mode only
        (Cascade R-CNN also calls it while training, to refine boxes between stages). In a dense head
        (:attr:`serves_dense_head`) the K class scores [R, K] it ranks, without the background column."""
        scores = self.core.predict_scores(cls_score) if self.training else self.calibration(self.core, cls_score)
        return scores[:, : self.num_classes] if self.serves_dense_head else scores

    def get_accuracy(self, cls_score: Tensor, labels: Tensor) -> dict:
        """Classification accuracy in percent, logged by ``BBoxHead.loss`` as ``acc``."""
        return {"acc": self.core.class_accuracy(cls_score, labels)}

    def normalizer(self, avg_factor: float | None) -> float | None:
        """What divides the summed loss for ``reduction='mean'``: MMDetection's ``avg_factor``."""
        return avg_factor

    def forward(
        self,
        cls_score: Tensor,
        labels: Tensor,
        label_weights: Tensor | None = None,
        avg_factor: float | None = None,
        reduction_override: str | None = None,
    ) -> Tensor:
        """Loss in MMDetection's calling convention.

        Args:
            cls_score: logits [R, C] with C = ``get_cls_channels(K)``.
            labels: int64 [R] in [0, K], K = background.
            label_weights: optional per-proposal weights [R] (``BBoxHead`` passes its label weights, which
                also carry per-box annotation weights when :class:`DBStandardRoIHead` is used).
            avg_factor: divides the summed loss when the reduction is ``"mean"`` (:meth:`normalizer`).
            reduction_override: ``"none"``, ``"mean"`` or ``"sum"``, overriding the configured reduction.
        """
        loss = self.core(
            cls_score,
            labels,
            sample_weight=label_weights,
            normalizer=self.normalizer(avg_factor),
            reduction_override=reduction_override,
        )
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}"


def _setup_parameters(cls: type[DBLossBase]) -> list[inspect.Parameter]:
    """The keyword arguments of ``cls._setup`` (after ``core``)."""
    return list(inspect.signature(cls._setup).parameters.values())[2:]


def _signature(cls: type[DBLossBase]) -> inspect.Signature:
    """``(num_classes, <stats_arg>, *, <the core loss's other arguments but ignore_index>, <_setup's>)``.

    The statistics argument is the core ``__init__``'s where it has one by that name (its default too), else
    (the dense ``FocalLoss``, whose core takes the alphas it computes) an optional argument of its own.
    """
    spec = cls.spec
    num_classes = next(iter(inspect.signature(spec.cls).parameters.values()))
    core = spec.parameters()
    parameters = [num_classes]
    if spec.stats_arg is not None:
        stats = core.get(spec.stats_arg) or inspect.Parameter(
            spec.stats_arg, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None
        )
        parameters.append(stats.replace(annotation="StatsArg"))
    parameters += [
        parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for name, parameter in core.items()
        if name not in (spec.stats_arg, "ignore_index")
    ]
    return inspect.Signature([*parameters, *_setup_parameters(cls)])
