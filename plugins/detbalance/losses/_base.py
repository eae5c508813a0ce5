"""What every loss shares: checking a call's input, reducing its per-proposal loss, and the module base class.

Shape letters: ``R`` proposals (rows of ``logits``), ``K`` foreground classes; a label equal to ``K`` is
background and ``ignore_index`` (outside ``[0, K]``) leaves a proposal out everywhere.

Every check raises :class:`ValueError` naming the offending value and the expected one. Checks of shapes, dtypes
and settings read no tensor contents and always run. The checks of tensor values (labels in range, sample weights
finite and >= 0, a tensor ``normalizer`` finite and >= 0, logits finite) are deferred to the end of the call
and read back once, in one small tensor (:func:`reduce_rows`): the loss is computed with out-of-range labels
treated as background, then that one read-back decides; only when it finds a bad value is the exact search for
the first one run. The loss's sum stands for the logits: every logit that has a gradient reaches it (ignored
rows are computed and multiplied by 0, and ``0 * nan`` is NaN), so a NaN or infinite logit makes it non-finite.

:func:`set_value_checks` switches those value checks off (they are on by default), and with them every host
synchronisation they cost; statistics handed to a loss function or module are then not searched for bad values
either.
Unchecked bad input gives undefined values (an out-of-range label counts as background, a NaN logit a NaN
loss) instead of an error.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, NamedTuple, cast

import torch
import torch.distributed as dist
from torch import Tensor, nn

REDUCTIONS = ("none", "mean", "sum")
Statistic = Tensor | Sequence[float]
Normalizer = float | int | Tensor

_value_checks = True


def set_value_checks(enabled: bool) -> None:
    """Switch the loss checks that read tensor values back to the host on (the default) or off.

    Off, a loss call synchronises with an accelerator only where its own computation needs a value (Seesaw's
    foreground rows, the federated loss's class draw, BAGS's draw of "others"), never for a check.

    Example:
        >>> import torch
        >>> from detbalance.losses import focal_loss, set_value_checks
        >>> set_value_checks(False)
        >>> focal_loss(torch.tensor([[float("nan")]]), torch.tensor([0]))  # no error: a NaN loss
        tensor(nan)
        >>> set_value_checks(True)
    """
    global _value_checks
    if not isinstance(enabled, bool):
        raise ValueError(f"enabled must be a bool, got {enabled!r}")
    _value_checks = enabled


def value_checks_enabled() -> bool:
    """Whether the losses check tensor values (:func:`set_value_checks`)."""
    return _value_checks


def check_logits(logits: Tensor, *, extra_columns: int, layout: str) -> tuple[Tensor, int]:
    """``logits[R, K + extra_columns]`` in the compute dtype (float64 for float64 logits, float32 for any other,
    float16/bfloat16 under autocast included), and K, after checking their shape and dtype."""
    if not isinstance(logits, Tensor):
        raise ValueError(f"logits must be a torch.Tensor of shape {layout}, got {type(logits).__name__}")
    if logits.dim() != 2:
        raise ValueError(f"logits must be 2-D with shape {layout}, got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be a floating tensor, got dtype {logits.dtype}")
    num_classes = logits.shape[1] - extra_columns
    if num_classes < 1:
        raise ValueError(f"logits must have at least {extra_columns + 1} columns ({layout}), got {logits.shape[1]}")
    return logits.to(torch.float64 if logits.dtype == torch.float64 else torch.float32), num_classes


def check_columns(logits: Tensor, *, expected: int, num_classes: int, layout: str) -> None:
    """Check that the classifier produced the column count the loss was built for."""
    if logits.dim() != 2 or logits.shape[1] != expected:
        raise ValueError(
            f"logits must have shape {layout} = [R, {expected}] for num_classes={num_classes}, "
            f"got {tuple(logits.shape)}"
        )


def check_number(
    value: float,
    name: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float after checking it is a finite number in the interval described by ``low``/``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if (value <= low if low_open else value < low) or (value >= high if high_open else value > high):
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return float(value)


def check_integer(value: int, name: str, *, minimum: int | None = None) -> int:
    """``value`` as an int after checking it is an integer (not a bool), at least ``minimum`` when given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (minimum is not None and value < minimum):
        raise ValueError(f"{name}={value!r}; expected an integer{'' if minimum is None else f' >= {minimum}'}")
    return int(value)


def check_prior_prob(prior_prob: float) -> float:
    """A prior probability of the positive class, in the open interval (0, 1)."""
    return check_number(prior_prob, "prior_prob", low=0.0, high=1.0, low_open=True, high_open=True)


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def as_statistic(values: Statistic, name: str, *, length: int | None, like: Tensor | None = None) -> Tensor:
    """A per-class statistic: ``length`` (any when None) finite numbers >= 0, as a 1-D tensor in ``like``'s dtype
    and device (float32 on the CPU without ``like``); its values are searched only with value checks on."""
    if isinstance(values, Tensor):
        tensor = values.detach()
    else:
        try:
            tensor = torch.as_tensor(values, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"{name} must be a sequence of {length} numbers: {error}") from None
    if tensor.dim() != 1 or (length is not None and tensor.shape[0] != length):
        raise ValueError(f"{name} must have shape [{'K' if length is None else length}], got {tuple(tensor.shape)}")
    tensor = tensor.to(torch.float32) if like is None else tensor.to(dtype=like.dtype, device=like.device)
    if _value_checks:
        _raise_at_first(~torch.isfinite(tensor) | (tensor < 0), tensor, f"{name} must be finite and >= 0", "index")
    return tensor


def _raise_at_first(bad: Tensor, values: Tensor, message: str, where: str) -> None:
    """Raise ``message`` with the first value of ``values[R]`` marked by ``bad``, if any."""
    if bool(bad.any()):
        position = int(bad.nonzero()[0, 0])
        raise ValueError(f"{message}, got {values[position].item()} at {where} {position}")


class Batch(NamedTuple):
    """One call's input after its shape checks (:func:`check_batch`); tensors on the logits' device."""

    x: Tensor  # [R, C] logits in the compute dtype
    labels: Tensor  # [R] as given
    classes: Tensor  # [R] labels in [0, K]; ignored rows (and out-of-range labels) as K
    num_classes: int  # K
    valid: Tensor  # [R] bool, rows not ignored
    row_weight: Tensor  # [R] sample weight of the kept rows (1 without), 0 for ignored rows, in x's dtype
    sample_weight: Tensor | None  # [R] as given, in x's dtype
    normalizer: Tensor | None  # 0-dim, in x's dtype
    reduction: str
    ignore_index: int


def check_batch(
    logits: Tensor,
    labels: Tensor,
    *,
    extra_columns: int,
    layout: str,
    sample_weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    normalizer: Normalizer | None,
) -> Batch:
    """Check the shapes, dtypes and settings of a call (their values are checked by :func:`reduce_rows`)."""
    x, num_classes = check_logits(logits, extra_columns=extra_columns, layout=layout)
    ignore_index = check_integer(ignore_index, "ignore_index")
    if 0 <= ignore_index <= num_classes:
        raise ValueError(f"ignore_index must lie outside the label range [0, {num_classes}], got {ignore_index}")
    if not isinstance(labels, Tensor):
        raise ValueError(f"labels must be a torch.Tensor of shape [R], got {type(labels).__name__}")
    if labels.dtype != torch.int64:
        raise ValueError(f"labels must have dtype torch.int64, got {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != x.shape[0]:
        raise ValueError(f"labels must have shape [R] = [{x.shape[0]}], got {tuple(labels.shape)}")
    check_reduction(reduction)
    valid = labels != ignore_index
    row_weight = valid.to(x.dtype)
    if sample_weight is not None:
        if not isinstance(sample_weight, Tensor):
            raise ValueError(f"sample_weight must be a torch.Tensor of shape [R], got {type(sample_weight).__name__}")
        if sample_weight.dim() != 1 or sample_weight.shape[0] != x.shape[0]:
            raise ValueError(f"sample_weight must have shape [R] = [{x.shape[0]}], got {tuple(sample_weight.shape)}")
        sample_weight = sample_weight.to(dtype=x.dtype, device=x.device)
        row_weight = row_weight * sample_weight
    if isinstance(normalizer, Tensor):
        if normalizer.numel() != 1:
            raise ValueError(f"normalizer must be a number or a 0-dim tensor, got shape {tuple(normalizer.shape)}")
        normalizer = normalizer.detach().reshape(()).to(dtype=x.dtype, device=x.device)
    elif normalizer is not None:
        normalizer = x.new_tensor(check_number(normalizer, "normalizer", low=0.0))
    classes = torch.where((labels >= 0) & (labels <= num_classes), labels, num_classes)
    return Batch(x, labels, classes, num_classes, valid, row_weight, sample_weight, normalizer, reduction, ignore_index)


def mean_divisor(batch: Batch, denominator: Tensor | None = None) -> Tensor:
    """What 'mean' divides by: the normalizer when given (clamped to float32's eps, as MMDetection), else
    ``denominator`` (default: the kept rows with a weight > 0), clamped to the dtype's smallest normal number so
    that a call where nothing counts gives 0, without reading the count back."""
    if batch.normalizer is not None:
        return batch.normalizer.clamp(min=torch.finfo(torch.float32).eps)
    if denominator is not None:
        count = denominator
    else:
        count = batch.valid.sum() if batch.sample_weight is None else (batch.row_weight > 0).sum()
    return count.to(batch.x.dtype).clamp(min=torch.finfo(batch.x.dtype).tiny)


def reduce_rows(per_row: Tensor, batch: Batch, *, denominator: Tensor | None = None) -> Tensor:
    """Reduce ``per_row[R]`` (any value on ignored rows): rows weigh :attr:`Batch.row_weight`, 'mean' divides by
    :func:`mean_divisor`; then check the call's values with one read-back (module docstring) unless switched off.

    'mean' defaults to the number of non-ignored proposals whose sample weight is > 0: MMDetection's
    ``avg_factor`` in its bbox heads, and Detectron2's number of proposals R when no weight is 0.
    """
    loss = per_row * batch.row_weight
    if batch.reduction != "none":
        loss = loss.sum()
        if batch.reduction == "mean":
            loss = loss / mean_divisor(batch, denominator)
    if _value_checks:
        _check_values(loss, batch)
    return loss


def _check_values(loss: Tensor, batch: Batch) -> None:
    """One read-back of the loss's sum, the labels' minimum and maximum, the sample weights' minimum and sum and
    the normalizer; the exact search for the first bad value runs only when one of them leaves room for it."""
    weight, normalizer, k = batch.sample_weight, batch.normalizer, batch.num_classes
    parts = [loss.detach().sum()]
    if batch.labels.numel():
        parts += list(torch.aminmax(batch.labels))
    if weight is not None and weight.numel():
        parts += [weight.min(), weight.sum()]
    if normalizer is not None:
        parts.append(normalizer)
    values = torch.stack([part.to(loss.dtype) for part in parts]).tolist()
    if batch.labels.numel() and not ((values[1] >= 0 or values[1] == batch.ignore_index == -1) and values[2] <= k):
        message = f"labels must lie in [0, {k}] ({k} = background) or equal ignore_index={batch.ignore_index}"
        _raise_at_first(batch.valid & (batch.labels != batch.classes), batch.labels, message, "position")
    if weight is not None and weight.numel():
        low, total = values[-2:] if normalizer is None else values[-3:-1]
        if not (low >= 0 and math.isfinite(total)):
            bad = ~torch.isfinite(weight) | (weight < 0)
            _raise_at_first(bad, weight, "sample_weight must be finite and >= 0", "position")
    if normalizer is not None and not (math.isfinite(values[-1]) and values[-1] >= 0):
        raise ValueError(f"normalizer must be finite and >= 0, got {values[-1]}")
    if not math.isfinite(values[0]):
        finite = torch.isfinite(batch.x.detach())
        if not bool(finite.all()):
            row, col = (~finite).nonzero()[0].tolist()
            raise ValueError(f"logits must be finite, got {batch.x[row, col].item()} at row {row}, column {col}")


def all_reduce_sum(tensor: Tensor) -> Tensor:
    """``tensor`` summed over all ranks when ``torch.distributed`` is initialized (a collective: every rank calls
    it the same number of times), in a contiguous copy when ``tensor`` is not contiguous; returns the sum."""
    if dist.is_available() and dist.is_initialized():
        tensor = tensor.contiguous()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


class ClassificationLoss(nn.Module):
    """Base of the loss modules: stores ``num_classes`` (K), ``reduction`` and ``ignore_index``; a subclass sets
    ``extra_columns``/``layout``, checks the column count in ``forward`` and delegates to its function.

    ``from_stats`` class methods read a ``detbalance.weights.ClassStats`` (``class_names``, ``instance_counts``,
    ``image_counts``, ``num_images``) or an object carrying one as ``.stats`` (a ``WeightsFile``), by attribute
    name only (:func:`class_stats`).
    """

    extra_columns: int = 0
    layout: str = "[R, K]"
    #: Buffers holding training state. Casting the module (``.half()``, ``.to(torch.bfloat16)``) moves them but
    #: never narrows them below float32 (:meth:`_apply`); integer buffers are never cast by torch.
    state_buffers: tuple[str, ...] = ()
    #: Probability the K class columns start at (bias ``-log((1 - p) / p)``); None: bias 0.
    prior_prob: float | None = None

    def __init__(self, num_classes: int, *, reduction: str = "mean", ignore_index: int = -1) -> None:
        super().__init__()
        self.num_classes = check_integer(num_classes, "num_classes", minimum=1)
        self.reduction = check_reduction(reduction)
        self.ignore_index = check_integer(ignore_index, "ignore_index")
        if 0 <= self.ignore_index <= num_classes:
            raise ValueError(f"ignore_index must be an int outside [0, {num_classes}], got {ignore_index!r}")

    def _apply(self, fn, recurse: bool = True):
        """``nn.Module._apply`` keeping :attr:`state_buffers` at float32 or wider (on the device chosen)."""
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
        """Refuse training state of another shape (another number of classes) or with values not finite and >= 0,
        naming the entry; a missing entry is left to the framework's loader."""
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
        """Initial bias ``[num_logits]`` (float32, CPU) both framework adapters copy into the classifier:
        ``-log((1 - p) / p)`` on the K class columns when :attr:`prior_prob` ``p`` is set, 0 elsewhere."""
        bias = torch.zeros(self.num_logits)
        if self.prior_prob is not None:
            bias[: self.num_classes] = -math.log((1.0 - self.prior_prob) / self.prior_prob)
        return bias

    def _reduction(self, reduction_override: str | None) -> str:
        return self.reduction if reduction_override is None else check_reduction(reduction_override)

    def _check_columns(self, logits: Tensor) -> None:
        check_columns(logits, expected=self.num_logits, num_classes=self.num_classes, layout=self.layout)

    def predict_scores(self, logits: Tensor) -> Tensor:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    @torch.no_grad()
    def class_accuracy(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Percent of non-ignored proposals whose arg-max of :meth:`predict_scores` equals the label (0 without
        any), computed without a read-back."""
        self._check_columns(logits)
        scores = self.predict_scores(logits)
        keep = labels != self.ignore_index
        correct = (scores.argmax(dim=1) == labels) & keep
        return (correct.sum() * 100.0 / keep.sum().clamp(min=1)).to(scores.dtype)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, reduction={self.reduction!r}, ignore_index={self.ignore_index}"


def class_stats(stats: Any, num_classes: int) -> Any:
    """The ClassStats inside ``stats`` (itself or its ``.stats``) after checking it describes K classes."""
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
