"""MMDetection calling convention around a ``detbalance.losses`` module.

MMDetection's ``BBoxHead`` calls its classification loss as
``loss_cls(cls_score, labels, label_weights, avg_factor=..., reduction_override=...)`` and asks the loss, through
``custom_cls_channels`` / ``custom_activation`` / ``custom_accuracy``, for the classifier's output channels
(``get_cls_channels``), the test-time activation (``get_activation``, used by ``predict``) and the logged accuracy
(``get_accuracy``). :class:`MMDetLossAdapter` answers all of these by delegating to the core module it holds:

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
softmax losses, each sigmoid loss's reference prior). MMDetection's ``BBoxHead`` builds its classifier
``fc_cls`` right after asking ``get_cls_channels``, and its ``init_weights`` later re-initialises it from
``init_cfg`` (bias 0). The adapter therefore watches the module registration that follows
``get_cls_channels`` (one process-wide torch module-registration hook, idle unless a ``get_cls_channels`` call is
pending): when it registers ``fc_cls`` with ``num_logits`` outputs, the adapter keeps a weak reference to it
and copies ``initial_bias()`` into its bias, then again in :meth:`MMDetLossAdapter.init_weights`, which mmengine
calls after the head's own ``init_cfg``. A head that names its classifier otherwise keeps its own bias.

Statistics arguments (class weights, counts) are given either inline as a list or as the path of a weights file
written by ``tools/compute_weights.py``; a path is read with :func:`detbalance.weights.load_weights`, which checks
its class count against ``num_classes`` and raises ``ValueError`` naming both numbers.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.modules.module import register_module_module_registration_hook

from detbalance.weights import load_weights

from .calibration import calibration_from_config

__all__ = ["MMDetLossAdapter", "StatsArg", "is_weights_path"]

#: A statistics argument in a config: a list of numbers or the path of a weights file.
StatsArg = Sequence[float] | str | os.PathLike


def is_weights_path(value: object) -> bool:
    """True when a statistics argument names a weights file rather than listing the numbers."""
    return isinstance(value, (str, os.PathLike))


#: Adapters whose ``get_cls_channels`` was just called; the next module registration is their head's classifier.
_PENDING: list = []


def _catch_classifier(parent: nn.Module, name: str, module: nn.Module) -> None:
    """Module-registration hook: hand the module registered right after ``get_cls_channels`` to its adapter."""
    if not _PENDING:
        return
    adapter = _PENDING.pop()()
    _PENDING.clear()
    if (
        adapter is not None
        and name == "fc_cls"
        and isinstance(module, nn.Linear)
        and module.bias is not None
        and module.out_features == adapter.core.num_logits
    ):
        adapter.attach_classifier(module)


register_module_module_registration_hook(_catch_classifier)


def check_length(owner: str, arg: str, values: Sequence[float], expected: int, num_classes: int) -> None:
    """Raise ``ValueError`` naming both numbers when an inline statistics list has the wrong length."""
    if len(values) != expected:
        raise ValueError(
            f"{owner}: {arg} has {len(values)} entries but num_classes={num_classes} needs {expected}; "
            f"give one entry per class of the bbox head (or the path of a weights file)"
        )


class MMDetLossAdapter(nn.Module):
    """Base of the registered ``DB*`` losses: holds a core loss module and speaks MMDetection's protocol.

    Subclasses build the core module in ``__init__`` (inline statistics: the core constructor; a weights file:
    the core ``from_stats``) and pass it here. No arithmetic on losses happens here besides ``loss_weight``.

    Args:
        core: a ``detbalance.losses`` module (has ``num_classes``, ``num_logits``, ``predict_scores``,
            ``class_accuracy`` and the ``forward(logits, labels, sample_weight, normalizer, reduction_override)``
            signature).
        loss_weight: multiplier of the returned loss, as in every MMDetection loss.
        calibration: test-time score calibration settings (:mod:`detbalance.mmdet.calibration`); None: off.
    """

    #: ``BBoxHead`` sizes ``fc_cls`` with ``get_cls_channels`` and scores boxes in ``predict`` with
    #: ``get_activation``.
    custom_cls_channels = True
    #: ``BBoxHead.loss`` logs ``get_accuracy``; ``refine_bboxes`` (Cascade R-CNN) uses ``get_activation``.
    custom_activation = True
    #: Dense heads (e.g. ``FCOSHead``) log ``get_accuracy`` when this is set.
    custom_accuracy = True
    #: Set when a dense head registers the loss (:mod:`.dense_losses`, which also gives that head K sigmoid
    #: channels): ``get_activation`` then leaves out the background column.
    serves_dense_head = False

    def __init__(self, core: nn.Module, loss_weight: float = 1.0, calibration: dict | None = None):
        super().__init__()
        self.core = core
        self.loss_weight = float(loss_weight)
        self.calibration = calibration_from_config(calibration, core)
        self._classifier = None  # weak reference to the head's fc_cls (see the module docstring)

    @property
    def num_classes(self) -> int:
        """Foreground classes K the loss was built for."""
        return self.core.num_classes

    @staticmethod
    def load_weights_file(path: StatsArg, num_classes: int):
        """The ``WeightsFile`` at ``path``, checked against ``num_classes`` (ValueError naming both numbers)."""
        return load_weights(os.fspath(path), num_classes=num_classes)

    def get_cls_channels(self, num_classes: int) -> int:
        """Classifier output channels for the bbox head's ``num_classes`` (must equal the loss's)."""
        if num_classes != self.num_classes:
            raise ValueError(
                f"{type(self).__name__} was built with num_classes={self.num_classes} but the bbox head has "
                f"num_classes={num_classes}; set loss_cls.num_classes to the bbox head's num_classes"
            )
        _PENDING[:] = [weakref.ref(self)]
        return self.core.num_logits

    def attach_classifier(self, classifier: nn.Linear) -> None:
        """Remember the head's classifier and set its bias to the core loss's ``initial_bias()``."""
        self._classifier = weakref.ref(classifier)
        self.init_weights()

    def init_weights(self) -> None:
        """Copy ``initial_bias()`` into the classifier's bias; mmengine calls it after the head's ``init_cfg``."""
        classifier = None if self._classifier is None else self._classifier()
        if classifier is not None:
            with torch.no_grad():
                classifier.bias.copy_(self.core.initial_bias())

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
            avg_factor: divides the summed loss when the reduction is ``"mean"``.
            reduction_override: ``"none"``, ``"mean"`` or ``"sum"``, overriding the configured reduction.
        """
        loss = self.core(
            cls_score, labels, sample_weight=label_weights, normalizer=avg_factor, reduction_override=reduction_override
        )
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight}"
