"""The weighted sigmoid BCE of EQL, EQLv2 and the federated loss at several sizes (one row block, fewer rows than
columns, several blocks of ``BLOCK_ELEMENTS``) against the element-wise formula, float64."""

import pytest
import torch

from detbalance.losses import eqlv2_loss, equalization_loss
from detbalance.losses._base import check_batch
from detbalance.losses._rowwise import BLOCK_ELEMENTS, ColumnWeights, sigmoid_bce
from detbalance.losses.eqlv2 import eqlv2_gradient_statistics

# (rows, columns): one block, fewer rows than columns, several blocks
SIZES = {"one-block": (40, 9), "wide": (6, 9), "many-blocks": (BLOCK_ELEMENTS // 64 + 50, 64)}


def _problem(rows, columns, seed, ignored=True):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, columns, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, columns + 1, (rows,), generator=gen)  # label `columns`: no positive in the row
    if ignored:
        labels[torch.rand(rows, generator=gen) < 0.2] = -1
    return logits, labels, gen


def _reference(x, labels, neg, fg_neg, pos, sample_weight):
    """Per-row sum_j w_ij BCE(x_ij, y_ij), the element weights spelled out, ignored rows 0, times sample weights."""
    rows, columns = x.shape
    y = torch.zeros_like(x)
    has_positive = (labels >= 0) & (labels < columns)
    y[has_positive.nonzero().flatten(), labels[has_positive]] = 1.0
    w = torch.ones_like(x)
    if neg is not None:
        w = w * neg[None, :]
    if fg_neg is not None:
        w = torch.where(has_positive[:, None] & (y == 0), fg_neg[None, :].expand_as(x), w)
    w = torch.where(y == 1, torch.ones_like(x) if pos is None else pos[None, :].expand_as(x), w)
    bce = -(y * torch.log(torch.sigmoid(x)) + (1 - y) * torch.log(1 - torch.sigmoid(x)))
    r = (labels != -1).to(x.dtype) * (1.0 if sample_weight is None else sample_weight)
    grad = r[:, None] * w * (torch.sigmoid(x.detach()) - y)
    statistics = torch.stack([(-grad).clamp(min=0).sum(0), grad.clamp(min=0).sum(0)])
    return (w * bce).sum(1) * r, statistics


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize(
    "case", ["neg+pos", "fg-neg", "all-three", "same-neg-pos", "plain", "kept-weighted", "kept", "kept-fg-neg"]
)
def test_sigmoid_bce_matches_elementwise_formula(size, reduction, case):
    rows, columns = SIZES[size]
    x, labels, gen = _problem(rows, columns, 3, ignored=not case.startswith("kept"))
    neg = torch.rand(columns, generator=gen, dtype=torch.float64)
    pos = 1 + torch.rand(columns, generator=gen, dtype=torch.float64)
    weights = {
        "neg+pos": ColumnWeights(neg=neg, pos=pos),
        "fg-neg": ColumnWeights(fg_neg=(neg > 0.3).double()),
        "all-three": ColumnWeights(neg=neg, fg_neg=(neg > 0.3).double(), pos=pos),
        "same-neg-pos": ColumnWeights(neg=neg, pos=neg),
        "kept-fg-neg": ColumnWeights(neg=neg, fg_neg=(neg > 0.3).double()),
        "plain": ColumnWeights(),
        "kept-weighted": ColumnWeights(neg=neg, pos=pos),
        "kept": ColumnWeights(neg=neg, pos=pos),
    }[case]
    sample_weight = torch.rand(rows, generator=gen, dtype=torch.float64) if case == "kept-weighted" else None
    valid = labels != -1
    with_statistics = True  # also with fg_neg: the kernel weighs every negative element by its own weight

    x1 = x.clone().requires_grad_()
    batch = check_batch(
        x1,
        labels,
        extra_columns=0,
        layout="[R, C]",
        sample_weight=sample_weight,
        ignore_index=-1,
        reduction=reduction,
        normalizer=None,
    )
    loss, statistics = sigmoid_bce(batch, weights=weights, with_statistics=with_statistics)
    x2 = x.clone().requires_grad_()
    per_row, ref_statistics = _reference(x2, labels, *weights, sample_weight)
    count = valid.sum() if sample_weight is None else (valid & (sample_weight > 0)).sum()
    ref = {"none": per_row, "sum": per_row.sum(), "mean": per_row.sum() / count}[reduction]
    torch.testing.assert_close(loss, ref, rtol=1e-10, atol=1e-12)
    upstream = torch.rand(ref.shape, generator=gen, dtype=torch.float64)
    (loss * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)
    if with_statistics:
        torch.testing.assert_close(statistics, ref_statistics, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("size", SIZES)
def test_eqlv2_and_eql_agree_at_every_size(size):
    """EQLv2 (objectness column weighing 1) and EQL (rare classes unweighted in foreground rows) through the
    public functions, value, gradient and EQLv2's statistics, at every size."""
    rows, columns = SIZES[size]
    x, labels, gen = _problem(rows, columns, 5)
    ratio = torch.rand(columns - 1, generator=gen, dtype=torch.float64) * 2
    neg_w = torch.sigmoid(12.0 * (ratio - 0.8))
    pos_w = 1 + 4.0 * (1 - neg_w)
    one = torch.ones(1, dtype=torch.float64)
    neg, pos = torch.cat([neg_w, one]), torch.cat([pos_w, one])
    eqlv2_labels = labels.clamp(max=columns - 1).masked_fill(labels == -1, -1)  # background = column K
    x1 = x.clone().requires_grad_()
    loss = eqlv2_loss(x1, eqlv2_labels, ratio, reduction="sum")
    x2 = x.clone().requires_grad_()
    per_row, statistics = _reference(x2, eqlv2_labels, neg, None, pos, None)
    torch.testing.assert_close(loss, per_row.sum(), rtol=1e-10, atol=1e-12)
    loss.backward()
    per_row.sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)
    pos_grad, neg_grad = eqlv2_gradient_statistics(x, eqlv2_labels, ratio)
    torch.testing.assert_close(torch.stack([pos_grad, neg_grad]), statistics[:, :-1], rtol=1e-10, atol=1e-10)

    freq = torch.rand(columns, generator=gen, dtype=torch.float64) * 0.01
    x3 = x.clone().requires_grad_()
    loss = equalization_loss(x3, labels, freq, lambda_=0.004, reduction="none")
    x4 = x.clone().requires_grad_()
    ref, _ = _reference(x4, labels, None, (freq >= 0.004).double(), None, None)
    torch.testing.assert_close(loss, ref, rtol=1e-10, atol=1e-12)
    loss.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(x3.grad, x4.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("freq_power", [0.5, 0.0])
@pytest.mark.parametrize("num_sampled", [7, 50])
def test_federated_with_room_for_every_class_trains_present_and_sampleable_classes(freq_power, num_sampled):
    """num_sampled > K: the classes trained on are the present ones and every class with a sampling probability
    > 0 (count > 0, or any count with freq_power 0), as every draw of federated_classes gives them."""
    from detbalance.losses import federated_loss
    from detbalance.losses.federated import federated_classes

    columns = 6
    x, labels, gen = _problem(30, columns, 7)
    labels[labels == 4] = columns  # class 4 absent; its count is 0
    counts = torch.tensor([50.0, 0.0, 7.0, 3.0, 0.0, 1.0], dtype=torch.float64)
    trained = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    trained[labels[(labels >= 0) & (labels < columns)]] = 1.0  # a present class is trained whatever its count
    if freq_power == 0.0:
        trained[:] = 1.0
    for seed in range(3):  # every draw trains on the same classes
        drawn = federated_classes(
            labels,
            counts,
            num_sampled=num_sampled,
            freq_power=freq_power,
            generator=torch.Generator().manual_seed(seed),
        )
        mask = torch.zeros(columns + 1, dtype=torch.float64)
        mask[drawn] = 1.0
        torch.testing.assert_close(mask[:columns], trained)
    x1 = x.clone().requires_grad_()
    loss = federated_loss(
        x1,
        labels,
        counts,
        num_sampled=num_sampled,
        freq_power=freq_power,
        reduction="sum",
        generator=torch.Generator().manual_seed(0),
    )
    x2 = x.clone().requires_grad_()
    per_row, _ = _reference(x2, labels, trained, None, trained, None)
    torch.testing.assert_close(loss, per_row.sum(), rtol=1e-10, atol=1e-12)
    loss.backward()
    per_row.sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-10, atol=1e-12)
