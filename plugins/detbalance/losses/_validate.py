"""Eager input validation and the shared reduction step of the core losses.

Shape letters (used by every loss in this package):

* ``R``: number of proposals (rows of ``logits``),
* ``K``: number of foreground classes; a label equal to ``K`` is background,
* ``ignore_index``: a label value outside ``[0, K]`` that excludes a proposal everywhere.

Every check raises :class:`ValueError` naming the offending value and the expected one. Shape and dtype checks
read no tensor contents. The value checks are kept cheap, since at small scale (hundreds of proposals, a few
classes) a loss costs a few dozen tensor operations and each extra one shows:

* statistics (class weights, counts, frequencies) are checked when a loss module is built, not at every call;
  the loss functions check the statistics they are given;
* labels are checked with one reduction (their minimum and maximum) read back once; only when that range
  leaves room for a bad label is the exact search for the first one run;
* the loss is checked once, by reading its sum back (a sum of finite values is finite unless it overflows, and
  then the exact search finds nothing and the loss is returned as it is); the logits themselves are searched
  only when the loss is not finite (:func:`check_finite_loss`);
* sample weights, when given, are checked with one read-back of their minimum and sum.

So a call reads tensor contents back twice (labels, loss; three times with sample weights), i.e. synchronises
with an accelerator that often; that cost buys a clear error instead of a silent NaN several iterations later.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .._checks import check_int

REDUCTIONS = ("none", "mean", "sum")

Statistic = Tensor | Sequence[float]
Normalizer = float | int | Tensor


def compute_dtype(logits: Tensor) -> torch.dtype:
    """float64 for float64 logits, float32 for everything else (float16/bfloat16 under autocast included)."""
    return torch.float64 if logits.dtype == torch.float64 else torch.float32


def check_logits(logits: Tensor, extra_columns: int, layout: str) -> tuple[Tensor, int]:
    """Validate the shape and dtype of ``logits[R, K + extra_columns]``; return them in the compute dtype and ``K``.

    Their values are checked afterwards on the loss, by :func:`check_finite_loss`.
    """
    if not isinstance(logits, Tensor):
        raise ValueError(f"logits must be a torch.Tensor of shape {layout}, got {type(logits).__name__}")
    if logits.dim() != 2:
        raise ValueError(f"logits must be 2-D with shape {layout}, got shape {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise ValueError(f"logits must be a floating tensor, got dtype {logits.dtype}")
    num_classes = logits.shape[1] - extra_columns
    if num_classes < 1:
        raise ValueError(f"logits must have at least {extra_columns + 1} columns ({layout}), got {logits.shape[1]}")
    return logits.to(compute_dtype(logits)), num_classes


def check_finite_loss(loss: Tensor, logits: Tensor) -> Tensor:
    """Return ``loss`` unchanged; raise naming the first NaN/inf logit when the loss is not finite because of one.

    NaN or +-inf logits would turn into a NaN loss (or NaN gradients) that poisons the weights silently. In every
    loss here a logit that has a gradient also reaches the loss value (ignored rows are computed and multiplied
    by 0, and ``0 * nan`` is NaN), so testing the loss (a scalar or ``[R]``) finds bad logits without a separate
    pass over all of them; a logit the loss never reads (e.g. a class logit of a background row in Seesaw) gets a
    zero gradient and is not reported. A loss that is not finite for another reason (e.g. overflowing sample
    weights) is returned as it is.
    """
    if math.isfinite((loss if loss.dim() == 0 else loss.detach().sum()).item()):
        return loss
    finite = torch.isfinite(logits.detach())
    if not bool(finite.all()):
        row, col = (~finite).nonzero()[0].tolist()
        raise ValueError(f"logits must be finite, got {logits[row, col].item()} at row {row}, column {col}")
    return loss


def check_labels(labels: Tensor, num_rows: int, num_classes: int, ignore_index: int) -> Tensor:
    """Validate int64 ``labels[R]`` in ``[0, K]`` or ``ignore_index``; return the boolean mask of kept rows."""
    check_labels_kept(labels, num_rows, num_classes, ignore_index)
    return labels != ignore_index


def check_labels_kept(labels: Tensor, num_rows: int, num_classes: int, ignore_index: int) -> bool:
    """Validate ``labels`` as :func:`check_labels`; return whether every row is kept (R > 0, none ignored).

    One reduction decides: when the smallest label is >= 0 (or is ``ignore_index = -1``) and the largest <= K,
    every label is valid; otherwise the labels are searched for the first bad one.
    """
    if type(ignore_index) is not int:  # a plain int passes as it is; anything else goes through the full check
        ignore_index = check_int("ignore_index", ignore_index)
    if 0 <= ignore_index <= num_classes:
        raise ValueError(f"ignore_index must lie outside the label range [0, {num_classes}], got {ignore_index}")
    if not isinstance(labels, Tensor):
        raise ValueError(f"labels must be a torch.Tensor of shape [R], got {type(labels).__name__}")
    if labels.dtype != torch.int64:
        raise ValueError(f"labels must have dtype torch.int64, got {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != num_rows:
        raise ValueError(f"labels must have shape [R] = [{num_rows}], got {tuple(labels.shape)}")
    if num_rows == 0:
        return False
    low, high = (int(bound) for bound in torch.aminmax(labels))
    if (low >= 0 or low == ignore_index == -1) and high <= num_classes:
        return low >= 0
    bad = (labels != ignore_index) & ((labels < 0) | (labels > num_classes))
    if bool(bad.any()):
        position = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"labels must lie in [0, {num_classes}] ({num_classes} = background) or equal "
            f"ignore_index={ignore_index}, got {int(labels[position])} at position {position}"
        )
    return False


def check_sample_weight(sample_weight: Tensor | None, num_rows: int, like: Tensor) -> Tensor | None:
    """Validate an optional finite, non-negative ``sample_weight[R]``; return it in ``like``'s dtype/device."""
    if sample_weight is None:
        return None
    if not isinstance(sample_weight, Tensor):
        raise ValueError(f"sample_weight must be a torch.Tensor of shape [R], got {type(sample_weight).__name__}")
    if sample_weight.dim() != 1 or sample_weight.shape[0] != num_rows:
        raise ValueError(f"sample_weight must have shape [R] = [{num_rows}], got {tuple(sample_weight.shape)}")
    sample_weight = sample_weight.to(dtype=like.dtype, device=like.device)
    if sample_weight.numel() == 0:
        return sample_weight
    # one read-back: all weights are finite and >= 0 when the smallest is >= 0 and the sum is finite
    low, total = torch.stack([sample_weight.min(), sample_weight.sum()]).tolist()
    if low >= 0 and math.isfinite(total):
        return sample_weight
    bad = ~torch.isfinite(sample_weight) | (sample_weight < 0)
    if bool(bad.any()):
        position = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"sample_weight must be finite and >= 0, got {sample_weight[position].item()} at position {position}"
        )
    return sample_weight


def as_statistic(values: Statistic, name: str, length: int | None, like: Tensor | None = None) -> Tensor:
    """Validate a per-class statistic: ``length`` (any when None) finite, non-negative numbers.

    Returns a 1-D tensor in ``like``'s dtype and device (float32 on the CPU when ``like`` is None).
    """
    if isinstance(values, Tensor):
        tensor = values.detach()
    else:
        try:
            tensor = torch.as_tensor(values, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(f"{name} must be a sequence of {length} numbers: {error}") from None
    if tensor.dim() != 1 or (length is not None and tensor.shape[0] != length):
        raise ValueError(f"{name} must have shape [{'K' if length is None else length}], got {tuple(tensor.shape)}")
    if like is None:
        tensor = tensor.to(torch.float32)
    else:
        tensor = tensor.to(dtype=like.dtype, device=like.device)
    bad = ~torch.isfinite(tensor) | (tensor < 0)
    if bool(bad.any()):
        position = int(bad.nonzero()[0, 0])
        raise ValueError(f"{name} must be finite and >= 0, got {tensor[position].item()} at index {position}")
    return tensor


def check_number(
    value: float,
    name: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Validate a scalar hyper-parameter in the interval described by ``low``/``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must lie in {interval}, got {value}")
    return float(value)


def check_prior_prob(prior_prob: float) -> float:
    """Validate a prior probability of the positive class, in the open interval (0, 1)."""
    return check_number(prior_prob, "prior_prob", low=0.0, high=1.0, low_open=True, high_open=True)


def kept_count(valid: Tensor, sample_weight: Tensor | None) -> Tensor:
    """Default denominator of 'mean': the number of non-ignored proposals whose sample weight is > 0.

    This is MMDetection's ``avg_factor`` in its bbox heads (proposals with a label weight > 0) and Detectron2's
    number of proposals R when no weight is 0, so that both frameworks divide by the same number.
    """
    if sample_weight is None:
        return valid.sum()
    return (valid & (sample_weight > 0)).sum()


def check_num_classes(num_classes: int) -> int:
    return check_int("num_classes", num_classes, minimum=1)


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def check_columns(logits: Tensor, expected: int, num_classes: int, layout: str) -> None:
    """Module-side check that the classifier produced the column count the loss was built for."""
    if logits.dim() != 2 or logits.shape[1] != expected:
        raise ValueError(
            f"logits must have shape {layout} = [R, {expected}] for num_classes={num_classes}, "
            f"got {tuple(logits.shape)}"
        )


def reduce_rows(
    per_row: Tensor,
    valid: Tensor,
    all_kept: bool,
    sample_weight: Tensor | None,
    reduction: str,
    normalizer: Normalizer | None,
    anchor: Tensor,
) -> Tensor:
    """Reduce a per-proposal ``per_row[R]`` whose ignored rows still hold a value: ignored rows weigh 0, the
    others their ``sample_weight`` (1 when None); 'mean' divides by :func:`kept_count` unless ``normalizer`` is
    given (:func:`reduce_loss`). ``all_kept`` (from :func:`check_labels_kept`) without sample weights needs
    no weighting: the sum or mean of ``per_row`` as it is."""
    if all_kept and sample_weight is None:
        if reduction == "mean" and normalizer is None:
            return per_row.mean()
        return reduce_loss(per_row, reduction, normalizer, valid.sum(), anchor)
    row_weight = valid.to(per_row.dtype) if sample_weight is None else valid.to(per_row.dtype) * sample_weight
    return reduce_loss(per_row * row_weight, reduction, normalizer, kept_count(valid, sample_weight), anchor)


def reduce_loss(
    loss: Tensor, reduction: str, normalizer: Normalizer | None, denominator: Tensor, anchor: Tensor
) -> Tensor:
    """Reduce a per-proposal ``loss[R]`` (ignored rows already 0).

    'mean' divides by ``normalizer`` when given (mmdet's ``avg_factor``), else by the loss's default
    ``denominator``. A zero denominator means nothing contributes (every row weighs 0, so the sum is 0); it is
    then clamped to the smallest normal number of the loss's dtype, which leaves that 0 (and its zero gradient)
    without a host synchronisation to test the count. A zero normalizer is clamped to float32's eps, as mmdet
    does, instead of yielding NaN.
    """
    check_reduction(reduction)
    if reduction == "none":
        return loss
    if loss.numel() == 0:
        return anchor.sum() * 0
    total = loss.sum()
    if reduction == "sum":
        return total
    return total / mean_divisor(normalizer, denominator, total)


def mean_divisor(normalizer: Normalizer | None, denominator: Tensor, like: Tensor) -> Tensor:
    """What 'mean' divides by (:func:`reduce_loss`), a 0-dim tensor in ``like``'s dtype: ``normalizer`` when given
    (:func:`normalizer_tensor`), else ``denominator`` clamped to the dtype's smallest normal number."""
    if normalizer is None:
        return denominator.to(like.dtype).clamp(min=torch.finfo(like.dtype).tiny)
    return normalizer_tensor(normalizer, like)


def normalizer_tensor(normalizer: Normalizer, like: Tensor) -> Tensor:
    """The validated ``normalizer`` (a number or a 0-dim tensor, finite, >= 0) as a 0-dim tensor like ``like``,
    clamped to float32's eps."""
    eps = torch.finfo(torch.float32).eps
    if isinstance(normalizer, Tensor):
        if normalizer.numel() != 1:
            raise ValueError(f"normalizer must be a number or a 0-dim tensor, got shape {tuple(normalizer.shape)}")
        value = normalizer.reshape(()).to(dtype=like.dtype, device=like.device)
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"normalizer must be finite and >= 0, got {number}")
        return value.clamp(min=eps)
    number = check_number(normalizer, "normalizer", low=0.0)
    return like.new_tensor(max(number, eps))
