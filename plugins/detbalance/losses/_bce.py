"""The weighted sigmoid binary cross-entropy of EQL, EQLv2 and the federated loss, at every size.

Each of these losses is :math:`\\ell_i = \\sum_j w_{ij}\\,\\mathrm{BCE}(x_{ij}, y_{ij})` over ``logits[R, C]`` with a
one-hot target (column ``labels[i]``; none for a label outside ``[0, C)``) and element weights given per column
(:class:`ColumnWeights`). Two computations of the same values and gradients:

* small ``R * C`` (at most :data:`~._rowwise.BLOCK_ELEMENTS`, the temporaries stay in the CPU caches):
  :func:`torch.nn.functional.binary_cross_entropy_with_logits`, one op with its own backward, the one-hot target
  built by one comparison and the weights broadcast or selected by ``torch.where``; nothing is read back, and when
  every row is kept without sample weights 'mean'/'sum' is that op's own sum. A Python ``autograd.Function`` and
  the row indices of the foreground would cost more than the loss itself there.
* larger: :class:`~._rowwise.RowLoss` with :func:`~._rowwise.bce_kernel`, which keeps one ``[R, C]`` tensor for
  backward instead of the element-wise op's temporaries (memory and time of the LVIS scale).

EQLv2's statistics, ``[2, C]`` sums :math:`\\sum_i r_i w_{ij} |\\sigma(x_{ij}) - y_{ij}|` over the positive (row
0) and negative (row 1) elements, are the magnitudes of the gradient of the un-reduced weighted loss w.r.t. the
logits, :math:`r_i w_{ij} (\\sigma(x_{ij}) - y_{ij})`, computed in closed form in the forward pass.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ._rowwise import BLOCK_ELEMENTS, BCEWeights, RowLoss, bce_kernel, foreground
from ._validate import Normalizer, normalizer_tensor, reduce_rows


class ColumnWeights(NamedTuple):
    """Element weights of :func:`sigmoid_bce` by column (None: 1 everywhere).

    Attributes:
        neg: ``[C]`` weight of the negative elements of each column.
        fg_neg: ``[C]`` weight of the negative elements of the rows with a positive (overrides ``neg`` there).
        pos: ``[C]`` weight of the positive element of each column.
    """

    neg: Tensor | None = None
    fg_neg: Tensor | None = None
    pos: Tensor | None = None


def one_hot(labels: Tensor, columns: int) -> Tensor:
    """``[R, columns]`` boolean one-hot targets of validated ``labels[R]``: True at ``(i, labels[i])``, False
    elsewhere (a row whose label is negative or ``columns`` or more, e.g. background or ``ignore_index``, is all
    False). One comparison, no read-back."""
    return labels[:, None] == torch.arange(columns, device=labels.device)


def _element_weight(hot: Tensor, weights: ColumnWeights) -> Tensor | None:
    """``[R, C]`` element weights, ``[C]`` when they are the same in every row, or None (all 1)."""
    neg, fg_neg, pos = weights
    weight = neg
    if fg_neg is not None:
        # a row with a positive has one True: xor with it marks that row's negative elements only
        weight = torch.where(hot.any(dim=1, keepdim=True) ^ hot, fg_neg, 1.0 if weight is None else weight)
    positive = pos if pos is not None else (None if weight is None else 1.0)  # None: 1, as every element
    if positive is not None and not (pos is neg and fg_neg is None):  # the same weights on both: nothing to select
        weight = torch.where(hot, positive, 1.0 if weight is None else weight)
    return weight


def _statistics(x: Tensor, targets: Tensor, weight: Tensor | None, row_weight: Tensor | None) -> Tensor:
    """``[2, C]`` gradient statistics (module docstring) from the closed-form gradient ``(sigmoid(x) - y) w``."""
    signed = torch.sigmoid(x.detach()).sub_(targets)
    if weight is not None:
        signed.mul_(weight)
    # w >= 0: the gradient is <= 0 on the positive elements and >= 0 on the negative ones
    both = torch.stack([signed.neg(), signed]).clamp_min_(0.0)  # [2, R, C]
    if row_weight is not None:
        both.mul_(row_weight[:, None])  # element-wise, not a matmul: autocast leaves it in x's dtype
    return both.sum(dim=1)


def sigmoid_bce(
    x: Tensor,
    labels: Tensor,
    valid: Tensor,
    all_kept: bool,
    weights: ColumnWeights,
    sample_weight: Tensor | None,
    reduction: str,
    normalizer: Normalizer | None,
    with_statistics: bool = False,
) -> tuple[Tensor, Tensor]:
    """``(loss, statistics)``: the weighted BCE of ``x[R, C]`` reduced as :func:`~._validate.reduce_rows` (ignored
    rows weigh 0, kept rows their sample weight) and, when ``with_statistics``, its ``[2, C]`` gradient statistics
    (else an empty tensor).

    ``labels`` and ``valid`` (kept rows; ``all_kept``: every row) are validated; a label in ``[0, C)`` is the
    positive column of its row.
    """
    needs_row_weight = with_statistics and not (all_kept and sample_weight is None)
    row_weight = None
    if needs_row_weight:
        row_weight = valid.to(x.dtype) if sample_weight is None else valid.to(x.dtype) * sample_weight
    if x.numel() > BLOCK_ELEMENTS:
        fg_rows, fg_labels = foreground(labels, valid, x.shape[1])
        if with_statistics and row_weight is None:
            row_weight = x.new_ones(x.shape[0])
        neg, fg_neg, pos = weights
        kernel_weights = BCEWeights(
            neg_weight=neg,
            fg_neg_weight=fg_neg,
            pos_weight=None if pos is None else pos[fg_labels],
            row_weight=row_weight,
        )
        per_row, statistics = RowLoss.apply(x, bce_kernel, fg_rows, fg_labels, kernel_weights)
        return reduce_rows(per_row, valid, all_kept, sample_weight, reduction, normalizer, x), statistics

    hot = one_hot(labels, x.shape[1])
    targets = hot.to(x.dtype)
    weight = _element_weight(hot, weights)
    statistics = _statistics(x, targets, weight, row_weight) if with_statistics else x.new_empty(0)
    if all_kept and sample_weight is None and reduction != "none":
        total = F.binary_cross_entropy_with_logits(x, targets, weight, reduction="sum")
        if reduction == "mean":
            total = total / (x.shape[0] if normalizer is None else normalizer_tensor(normalizer, total))
        return total, statistics
    per_row = F.binary_cross_entropy_with_logits(x, targets, weight, reduction="none").sum(dim=1)
    return reduce_rows(per_row, valid, all_kept, sample_weight, reduction, normalizer, x), statistics


__all__ = ["ColumnWeights", "one_hot", "sigmoid_bce"]
