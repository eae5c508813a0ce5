"""What every loss module shares: stored settings, the logit layout, accuracy, and reading class statistics.

A loss module stores ``num_classes`` (K), ``reduction`` and ``ignore_index``; its ``forward`` checks the column
count against K and delegates to the matching function. ``from_stats`` class methods read a
``detbalance.weights.ClassStats`` (attributes ``class_names``, ``instance_counts``, ``image_counts``,
``num_images``) or an object carrying one as ``.stats`` (a ``WeightsFile``), by attribute name only.
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
from torch import Tensor, nn

from .._checks import check_int
from ._validate import check_columns, check_num_classes, check_reduction
from .activations import score_accuracy


class ClassificationLoss(nn.Module):
    """Base of the loss modules; subclasses set ``extra_columns``/``layout`` and implement ``predict_scores``."""

    extra_columns: int = 0
    layout: str = "[R, K]"
    #: Buffers holding training state (running counts, accumulated gradient sums). Casting the module
    #: (``.half()``, ``.to(torch.bfloat16)``) moves them to the new device but never narrows them below float32
    #: (see :meth:`_apply`); integer buffers are never cast by torch.
    state_buffers: tuple[str, ...] = ()
    #: Probability the K class columns start at (bias ``-log((1 - p) / p)``); None: bias 0. Sigmoid losses set it
    #: in their constructor from their reference's initialisation or the ``prior_prob`` argument.
    prior_prob: float | None = None

    def __init__(self, num_classes: int, *, reduction: str = "mean", ignore_index: int = -1) -> None:
        super().__init__()
        self.num_classes = check_num_classes(num_classes)
        self.reduction = check_reduction(reduction)
        ignore_index = check_int("ignore_index", ignore_index)
        if 0 <= ignore_index <= num_classes:
            raise ValueError(f"ignore_index must be an int outside [0, {num_classes}], got {ignore_index!r}")
        self.ignore_index = ignore_index

    def _apply(self, fn, recurse: bool = True):
        """``nn.Module._apply`` (behind ``.to``/``.half``/``.cuda``...) that keeps :attr:`state_buffers` exact: a
        conversion to a float type narrower than float32 leaves such a buffer in its dtype, with its values, on the
        device the conversion chose."""
        before = {name: cast(Tensor, self._buffers[name]) for name in self.state_buffers}
        super()._apply(fn, recurse)
        for name, original in before.items():
            converted = cast(Tensor, self._buffers[name])
            narrowed = converted.dtype != original.dtype and (
                not converted.is_floating_point() or torch.finfo(converted.dtype).bits < 32
            )
            if narrowed:
                self._buffers[name] = original.to(device=converted.device)
        return self

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        """Refuse training state that does not fit, naming the entry: another shape (a checkpoint trained for
        another number of classes) or values that are not finite and >= 0. A missing entry is left to the
        framework's loader (reported as missing, the state keeps its initial values)."""
        for name in self.state_buffers:
            saved = state_dict.get(prefix + name)
            if saved is None:
                continue
            expected = tuple(cast(Tensor, self._buffers[name]).shape)
            if tuple(saved.shape) != expected:
                raise ValueError(
                    f"checkpoint entry {prefix}{name} has shape {tuple(saved.shape)}, expected {expected} "
                    f"({type(self).__name__} with num_classes={self.num_classes})"
                )
            bad = ~torch.isfinite(saved.double()) | (saved < 0)
            if bool(bad.any()):
                index = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"checkpoint entry {prefix}{name} holds {saved[index].item()} at index {index}, "
                    "expected finite values >= 0"
                )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    @property
    def num_logits(self) -> int:
        """Number of columns the classifier must output for this loss."""
        return self.num_classes + self.extra_columns

    def initial_bias(self) -> Tensor:
        """Initial bias ``[num_logits]`` of the classifier this loss trains (float32, on the CPU).

        ``-log((1 - p) / p)`` on the K class columns when :attr:`prior_prob` ``p`` is set, 0 elsewhere (extra
        columns, softmax losses). Both framework adapters copy it into the classifier's bias when they build it.
        """
        bias = torch.zeros(self.num_logits)
        if self.prior_prob is not None:
            bias[: self.num_classes] = -math.log((1.0 - self.prior_prob) / self.prior_prob)
        return bias

    def _reduction(self, reduction_override: str | None) -> str:
        return self.reduction if reduction_override is None else check_reduction(reduction_override)

    def _check_columns(self, logits: Tensor) -> None:
        check_columns(logits, self.num_logits, self.num_classes, self.layout)

    def predict_scores(self, logits: Tensor) -> Tensor:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    @torch.no_grad()
    def class_accuracy(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Percent of non-ignored proposals whose arg-max of :meth:`predict_scores` equals the label."""
        self._check_columns(logits)
        return score_accuracy(self.predict_scores(logits), labels, self.ignore_index)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, reduction={self.reduction!r}, ignore_index={self.ignore_index}"


def class_stats(stats: Any, num_classes: int) -> Any:
    """Return the ClassStats inside ``stats`` (itself or its ``.stats``) after checking it describes K classes."""
    inner = getattr(stats, "stats", stats)
    missing = [
        name for name in ("class_names", "instance_counts", "image_counts", "num_images") if not hasattr(inner, name)
    ]
    if missing:
        raise ValueError(
            f"stats must be a ClassStats or a WeightsFile holding one; {type(stats).__name__} lacks {missing}"
        )
    if len(inner.class_names) != num_classes:
        raise ValueError(f"stats describe {len(inner.class_names)} classes but num_classes={num_classes}")
    return inner


def weights_with_background(weights_file: Any, num_classes: int) -> list[float]:
    """``weights[K] + [background_weight]`` from a WeightsFile (after checking its statistics match K)."""
    class_stats(weights_file, num_classes)
    if not hasattr(weights_file, "weights") or not hasattr(weights_file, "background_weight"):
        raise ValueError(
            f"class weights need a WeightsFile (with .weights and .background_weight), got "
            f"{type(weights_file).__name__}"
        )
    weights = [float(w) for w in weights_file.weights]
    if len(weights) != num_classes:
        raise ValueError(f"the weights file holds {len(weights)} class weights but num_classes={num_classes}")
    return weights + [float(weights_file.background_weight)]
