r"""Balanced Group Softmax (Li et al., "Overcoming Classifier Imbalance for Long-tail Object Detection with Balanced
Group Softmax", CVPR 2020), as its reference code (FishYuLi/BalancedGroupSoftmax, ``GSBBoxHeadWith0``).

Class ``c`` with :math:`n_c` training instances is in group :math:`1 + |\{e \in \text{bin\_edges} : e \le n_c\}|`
(the paper's edges 10, 100, 1000: groups (0, 10), [10, 100), [100, 1000), [1000, inf), as ``get_cate_gs`` of
``tools/lvis_analyse.py``); group 0 holds the background alone. With G = len(bin_edges) + 2 groups the classifier
outputs ``logits[R, K + 1 + G]``: the K class logits (class ``c`` in column ``c``), the background logit (column
K), then one "others" logit per group (column ``K + 1 + g``; group 0's is its "foreground" logit). Each group has
its own softmax over its "others" column and its members' columns; an empty group keeps its "others" column.

The reference lays the columns out per group instead (``pred_slice``: [background, foreground], then for each
group [others, its classes in class order]): a fixed permutation of the classifier's outputs, the same model. The
class logits come first here, as in every detbalance head, so that logit adjustment (:mod:`detbalance.calibration`)
moves them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._base import (
    Batch,
    ClassificationLoss,
    Normalizer,
    Statistic,
    as_statistic,
    check_batch,
    check_columns,
    check_integer,
    check_logits,
    check_number,
    class_stats,
    reduce_rows,
)
from ._rowwise import row_blocks, row_loss

#: The paper's bin edges of the training instance counts.
BIN_EDGES = (10, 100, 1000)


def check_bin_edges(bin_edges: Sequence[float]) -> tuple[float, ...]:
    """``bin_edges`` as floats after checking they are finite, > 0 and strictly increasing."""
    try:
        edges = tuple(bin_edges)
    except TypeError:
        raise ValueError(f"bin_edges must be a sequence of numbers, got {bin_edges!r}") from None
    for edge in edges:
        if isinstance(edge, bool) or not isinstance(edge, (int, float)) or not 0 < edge < math.inf:
            raise ValueError(f"bin_edges must hold finite numbers > 0, got {edge!r} in {bin_edges!r}")
    for low, high in zip(edges, edges[1:]):
        if high <= low:
            raise ValueError(f"bin_edges must be strictly increasing, got {high!r} after {low!r} in {bin_edges!r}")
    return tuple(float(edge) for edge in edges)


def bags_groups(samples_per_class: Statistic, bin_edges: Sequence[float] = BIN_EDGES) -> Tensor:
    """Group of each class, 1 + the number of bin edges <= its instance count: int64 ``[K]`` in ``[1, G - 1]``.

    Example:
        >>> bags_groups([1500, 95, 12, 0, 10]).tolist()
        [4, 2, 2, 1, 2]
    """
    device = samples_per_class.device if isinstance(samples_per_class, Tensor) else None
    like = torch.empty(0, dtype=torch.float64, device=device)
    counts = as_statistic(samples_per_class, "samples_per_class", length=None, like=like)
    edges = counts.new_tensor(check_bin_edges(bin_edges))
    return 1 + torch.bucketize(counts, edges, right=True) if edges.numel() else torch.ones_like(counts).long()


def _check_groups(class_group: Tensor, num_groups: int, what: str) -> None:
    """Raise naming the first group of ``class_group`` outside ``[1, num_groups - 1]``."""
    bad = (class_group < 1) | (class_group >= num_groups)
    if bool(bad.any()):
        index = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{what} holds {class_group[index].item()} at index {index}, expected groups in [1, {num_groups - 1}] "
            f"(G = {num_groups} groups)"
        )


class _Columns(NamedTuple):
    """Where each group's columns are in ``logits[R, K + 1 + G]``."""

    group: Tensor  # [K + 1 + G] group of each column: the classes', 0 (background), then 0 .. G-1 ("others")
    order: Tensor  # [K + 1 + G] the columns group after group, in column order within a group
    inverse: Tensor  # [K + 1 + G] position of each column in `order`
    sizes: list[int]  # [G] columns of each group


def _columns(class_group: Tensor, num_groups: int, device: torch.device) -> _Columns:
    class_group = class_group.to(device)
    group = torch.cat([class_group, class_group.new_zeros(1), torch.arange(num_groups, device=device)])
    order = torch.argsort(group, stable=True)
    return _Columns(group, order, torch.argsort(order), torch.bincount(group, minlength=num_groups).tolist())


def _group_softmax_kernel(
    x: Tensor, *, columns: _Columns, target: Tensor, weight: Tensor, need_grad: bool
) -> tuple[Tensor, Tensor | None, None]:
    r"""For :class:`~._rowwise.RowLoss`: :math:`\ell_i = \sum_g w_{ig} (\log \sum_{j \in g} e^{x_{ij}} -
    x_{i, t_{ig}})` of ``x[R, C]`` with ``target[R, G]`` (a column of each group) and ``weight[R, G]``; its
    gradient :math:`w_{i, g(j)}\, p_{ij} - \sum_g w_{ig} [j = t_{ig}]`, :math:`p` the softmax within the group.
    Each row block is laid out group after group (``columns.order``) and its gradient put back in column order."""
    log_norm = x.new_empty(x.shape[0], len(columns.sizes))
    grad = torch.empty_like(x) if need_grad else None
    for rows in row_blocks(x):
        grouped = x[rows].index_select(1, columns.order)
        for g, z in enumerate(grouped.split(columns.sizes, dim=1)):
            top = z.amax(dim=1, keepdim=True)
            sums = z.sub_(top).exp_().sum(dim=1, keepdim=True)
            log_norm[rows, g] = sums.log().add_(top).squeeze(1)
            if grad is not None:
                z.mul_(weight[rows, g, None] / sums)
        if grad is not None:
            torch.index_select(grouped, 1, columns.inverse, out=grad[rows])
    per_row = (weight * (log_norm - x.gather(1, target))).sum(dim=1)
    if grad is not None:
        grad.scatter_add_(1, target, -weight)  # the targets of a row lie in different groups
    return per_row, grad, None


def _chosen_rows(
    own: Tensor, *, counted: Tensor, num_counted: int, ratio: float, generator: torch.Generator | None
) -> Tensor:
    """``[R, G]`` rows each group's term averages over (:func:`bags_loss`'s :math:`S_g`), as the reference's
    ``_remap_labels``/``_sample_others``. The draw gives the counted rows, in order, the values of one random
    permutation per group (on ``generator``'s device, else the rows'); a group takes its others by increasing
    value. Rows left out change no other row's draw."""
    rows, num_groups = own.shape
    mine = own[:, 1:] & counted[:, None]
    others = counted[:, None] & ~own[:, 1:]
    quota = (mine.sum(dim=0).to(torch.float64) * ratio).floor()
    device = generator.device if generator is not None else own.device
    perms = [torch.randperm(num_counted, generator=generator, device=device) for _ in range(num_groups - 1)]
    keys = torch.stack(perms).to(own.device)  # [G - 1, counted rows]
    if num_counted != rows:
        spread = torch.full((num_groups - 1, rows), num_counted, dtype=torch.int64, device=own.device)
        keys = spread.masked_scatter_(counted.expand_as(spread), keys)
    keys = keys.masked_fill_(~others.t(), num_counted)  # every row outside the others: the spare value
    # rank of each other row among the others, by key: a count of the others' keys up to its own
    taken = torch.zeros(num_groups - 1, num_counted + 1, dtype=torch.int64, device=own.device).scatter_(1, keys, 1)
    rank = taken.cumsum(dim=1).gather(1, keys).t() - 1
    return torch.cat([counted[:, None], mine | (others & (rank < quota))], dim=1)


def _loss(batch: Batch, *, columns: _Columns, ratio: float, generator: torch.Generator | None) -> Tensor:
    """:func:`bags_loss` of a checked batch given the groups' columns. The draw's size, the number of counted
    proposals, is read back."""
    num_classes, classes = batch.num_classes, batch.classes
    groups = torch.arange(batch.x.shape[1] - num_classes - 1, device=batch.x.device)
    own = columns.group[classes][:, None] == groups  # [R, G]: the group of each row's label (background: 0)
    target = torch.where(own, classes[:, None], num_classes + 1 + groups)  # the label or the group's "others"
    counted = batch.row_weight > 0
    num_counted = int(counted.sum())
    chosen = _chosen_rows(own, counted=counted, num_counted=num_counted, ratio=ratio, generator=generator)
    chosen = chosen.to(batch.x.dtype)
    # group g's sum over S_g divided by |S_g| (at least 1: the reference's avg_factor), as N / |S_g| per row
    weight = chosen * (num_counted / chosen.sum(dim=0).clamp(min=1.0))
    kernel = partial(_group_softmax_kernel, columns=columns, target=target, weight=weight)
    return reduce_rows(row_loss(batch.x, kernel)[0], batch)


def bags_loss(
    logits: Tensor,
    labels: Tensor,
    samples_per_class: Statistic,
    *,
    bin_edges: Sequence[float] = BIN_EDGES,
    others_sample_ratio: float = 8.0,
    generator: torch.Generator | None = None,
    sample_weight: Tensor | None = None,
    ignore_index: int = -1,
    reduction: str = "mean",
    normalizer: Normalizer | None = None,
) -> Tensor:
    r"""Sum over the groups of a softmax cross-entropy within each group, "others" as the target of outsiders.

    Li et al., CVPR 2020, as ``GSBBoxHeadWith0.loss`` of the reference code. For group :math:`g` (columns: its
    "others" logit and its members', see the module docstring) and proposal :math:`i`:

    .. math::

        L = \sum_{g=0}^{G-1} \frac{1}{|S_g|} \sum_{i \in S_g} s_i
            \Big(\log \sum_{j \in g} e^{x_{ij}} - x_{i, t_g(i)}\Big), \qquad
        t_g(i) = \begin{cases} y_i & y_i \in g \\ \text{others}_g & \text{otherwise} \end{cases}

    where :math:`S_0` holds every proposal and :math:`S_g` (:math:`g \ge 1`) the proposals of a class of
    :math:`g` plus ``floor(others_sample_ratio * their number)`` others drawn at random without replacement (all of
    them when there are fewer; :math:`S_g` is empty when no proposal belongs to :math:`g`), and :math:`|S_g|`
    is clamped to >= 1. Proposals are the non-ignored ones with a sample weight > 0; :math:`s_i` is that weight.

    Reductions: 'none' gives row :math:`i`'s sum over the groups scaled so that 'mean' is its sum divided by
    :math:`N = |S_0|`: :math:`\ell_i = s_i \sum_{g: i \in S_g} (N / |S_g|)\,\mathrm{CE}_g(i)`; 'sum' is
    :math:`\sum_i \ell_i` and 'mean' :math:`L`. ``normalizer`` (MMDetection's ``avg_factor``, the number
    :math:`N` of proposals with a weight > 0 in its bbox heads) replaces :math:`N` in the division of 'mean'.

    Args:
        logits: ``[R, K + 1 + G]``: K class logits, background, then one "others" logit per group.
        labels: ``[R]`` int64 in ``[0, K]`` (K = background) or ``ignore_index``.
        samples_per_class: ``[K]`` training instance counts (>= 0), which decide the groups.
        bin_edges: strictly increasing edges of the count bins, > 0 (G = len + 2 groups).
        others_sample_ratio: >= 0, "others" proposals drawn per proposal of the group (8 in the reference's config).
        generator: ``torch.Generator`` of the draw (its device is where it runs), or None for the global one.
        sample_weight, ignore_index, reduction, normalizer: see :func:`weighted_cross_entropy`.

    Returns:
        ``[R]`` for 'none', else a scalar; float32 (float64 for float64 logits).

    Example:
        >>> import torch
        >>> logits = torch.randn(4, 3 + 1 + 5, requires_grad=True)  # K = 3, G = 5
        >>> loss = bags_loss(logits, torch.tensor([0, 2, 3, 1]), [5000, 40, 3])
        >>> loss.backward()
    """
    edges = check_bin_edges(bin_edges)
    layout = f"[R, K + 1 + G] (G = {len(edges) + 2} groups)"
    x, _ = check_logits(logits, extra_columns=len(edges) + 3, layout=layout)
    counts = as_statistic(samples_per_class, "samples_per_class", length=None, like=x)
    check_columns(logits, expected=counts.shape[0] + len(edges) + 3, num_classes=counts.shape[0], layout=layout)
    batch = check_batch(
        logits,
        labels,
        extra_columns=len(edges) + 3,
        layout=layout,
        sample_weight=sample_weight,
        ignore_index=ignore_index,
        reduction=reduction,
        normalizer=normalizer,
    )
    ratio = check_number(others_sample_ratio, "others_sample_ratio", low=0.0)
    columns = _columns(bags_groups(counts, edges), len(edges) + 2, x.device)
    return _loss(batch, columns=columns, ratio=ratio, generator=generator)


def bags_scores(logits: Tensor, class_group: Tensor) -> Tensor:
    """Test-time scores ``[R, K + 1]`` of ``logits[R, K + 1 + G]`` given the ``[K]`` groups of the classes.

    As the reference's ``_merge_score``: each group's softmax; class ``c`` scores its probability in its group
    times group 0's "foreground" probability, the background column group 0's background probability ("others"
    probabilities are dropped, so a row does not sum to 1).

    Example:
        >>> import torch
        >>> scores = bags_scores(torch.zeros(1, 3 + 1 + 5), bags_groups([5000, 40, 3]))
        >>> [round(s, 3) for s in scores[0].tolist()]
        [0.25, 0.25, 0.25, 0.5]
    """
    if not isinstance(class_group, Tensor) or class_group.dim() != 1 or class_group.dtype != torch.int64:
        raise ValueError(f"class_group must be an int64 tensor [K], got {class_group!r}")
    num_classes = class_group.shape[0]
    x, extra = check_logits(logits, extra_columns=num_classes, layout="[R, K + 1 + G]")  # extra: 1 + G columns
    _check_groups(class_group, extra - 1, f"class_group (logits [R, K + 1 + G] with K = {num_classes})")
    return _scores(x, columns=_columns(class_group, extra - 1, x.device))


def _scores(x: Tensor, *, columns: _Columns) -> Tensor:
    """:func:`bags_scores` of logits ``x`` in the compute dtype, the groups' columns given."""
    grouped = x.index_select(1, columns.order).split(columns.sizes, dim=1)
    log_norm = torch.stack([z.logsumexp(dim=1) for z in grouped], dim=1)
    probs = (x - log_norm[:, columns.group]).exp()
    num_classes = x.shape[1] - 1 - len(columns.sizes)
    return torch.cat([probs[:, :num_classes] * probs[:, num_classes + 1, None], probs[:, num_classes, None]], dim=1)


class BAGSLoss(ClassificationLoss):
    """Module form of :func:`bags_loss` owning its draw's generator; test-time scores: :func:`bags_scores`.

    Buffer (in ``state_dict``): ``class_group[K]``, int64, the group of each class, so that a model built without
    its statistics (for inference) scores with the groups it was trained with, restored from its checkpoint.

    Args:
        num_classes: K (the classifier outputs K + 1 + G logits, G = len(bin_edges) + 2).
        samples_per_class: ``[K]`` training instance counts.
        bin_edges, others_sample_ratio: see :func:`bags_loss` (the paper's 10, 100, 1000 and the reference's 8).
        seed: seed of the module's CPU ``torch.Generator``; None draws it from the global torch generator. The
            generator state is not checkpointed.
        reduction, ignore_index: defaults for :meth:`forward`.

    Example:
        >>> import torch
        >>> loss_fn = BAGSLoss(3, [5000, 40, 3], seed=0)
        >>> loss_fn.num_logits, loss_fn.class_group.tolist()
        (9, [4, 2, 1])
        >>> loss = loss_fn(torch.randn(4, 9), torch.tensor([0, 2, 3, 1]))
        >>> loss_fn.predict_scores(torch.zeros(2, 9)).shape
        torch.Size([2, 4])
    """

    extra_columns = 1 + len(BIN_EDGES) + 2  # the default; an instance's follows its bin_edges
    layout = "[R, K + 1 + G]"
    state_buffers = ("class_group",)
    class_group: Tensor
    samples_per_class: Tensor

    def __init__(
        self,
        num_classes: int,
        samples_per_class: Statistic,
        *,
        bin_edges: Sequence[float] = BIN_EDGES,
        others_sample_ratio: float = 8.0,
        seed: int | None = None,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> None:
        super().__init__(num_classes, reduction=reduction, ignore_index=ignore_index)
        counts = as_statistic(samples_per_class, "samples_per_class", length=num_classes)
        self.bin_edges = check_bin_edges(bin_edges)
        self.num_groups = len(self.bin_edges) + 2
        self.extra_columns = 1 + self.num_groups
        self.layout = f"[R, K + 1 + G] (G = {self.num_groups} groups)"
        self.others_sample_ratio = check_number(others_sample_ratio, "others_sample_ratio", low=0.0)
        self.seed = int(torch.randint(0, 2**62, ())) if seed is None else check_integer(seed, "seed", minimum=0)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.register_buffer("samples_per_class", counts, persistent=False)
        self.register_buffer("class_group", bags_groups(counts, self.bin_edges))
        self._cached: tuple[tuple, _Columns] | None = None

    def _columns(self, device: torch.device) -> _Columns:
        """The groups' columns of ``class_group`` (kept until the buffer is moved, replaced or written to)."""
        key = (self.class_group.data_ptr(), self.class_group._version, device)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, _columns(self.class_group, self.num_groups, device))
        return self._cached[1]

    @classmethod
    def from_stats(
        cls,
        num_classes: int,
        stats: Any,
        *,
        bin_edges: Sequence[float] = BIN_EDGES,
        others_sample_ratio: float = 8.0,
        seed: int | None = None,
        reduction: str = "mean",
        ignore_index: int = -1,
    ) -> BAGSLoss:
        """Build from a ClassStats (or WeightsFile): ``samples_per_class`` = its instance counts."""
        counts = list(class_stats(stats, num_classes).instance_counts)
        return cls(
            num_classes,
            counts,
            bin_edges=bin_edges,
            others_sample_ratio=others_sample_ratio,
            seed=seed,
            reduction=reduction,
            ignore_index=ignore_index,
        )

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        """Refuse a ``class_group`` entry naming a group this module does not have (other ``bin_edges``)."""
        saved = state_dict.get(prefix + "class_group")
        if saved is not None and saved.shape == self.class_group.shape:
            _check_groups(saved, self.num_groups, f"checkpoint entry {prefix}class_group")
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(
        self,
        logits: Tensor,
        labels: Tensor,
        sample_weight: Tensor | None = None,
        normalizer: Normalizer | None = None,
        reduction_override: str | None = None,
    ) -> Tensor:
        self._check_columns(logits)
        batch = check_batch(
            logits,
            labels,
            extra_columns=self.extra_columns,
            layout=self.layout,
            sample_weight=sample_weight,
            ignore_index=self.ignore_index,
            reduction=self._reduction(reduction_override),
            normalizer=normalizer,
        )
        columns = self._columns(batch.x.device)
        return _loss(batch, columns=columns, ratio=self.others_sample_ratio, generator=self.generator)

    def predict_scores(self, logits: Tensor) -> Tensor:
        self._check_columns(logits)
        x, _ = check_logits(logits, extra_columns=self.extra_columns, layout=self.layout)
        return _scores(x, columns=self._columns(x.device))

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, bin_edges={self.bin_edges}, others_sample_ratio={self.others_sample_ratio}, "
            f"seed={self.seed}"
        )


__all__ = ["BIN_EDGES", "bags_groups", "bags_loss", "bags_scores", "BAGSLoss"]
