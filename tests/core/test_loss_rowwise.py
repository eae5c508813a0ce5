"""The closed-form-gradient kernels (``RowLoss``) and the log-domain Seesaw against the element-wise formulas."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F

import detbalance.losses._rowwise as rowwise
from detbalance.losses import (
    EQLv2Loss,
    class_balanced_focal_loss,
    eqlv2_loss,
    equalization_loss,
    federated_classes,
    federated_loss,
    seesaw_loss,
    weighted_cross_entropy,
)
from detbalance.losses._rowwise import ColumnWeights, RowLoss, bce_kernel, focal_kernel
from detbalance.losses.eqlv2 import eqlv2_gradient_statistics

K = 6
R = 24


def _batch(columns: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(R, columns, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, K + 1, (R,), generator=gen)
    labels[[2, 9]] = -1
    labels[[0, 5]] = K
    labels[[1, 3]] = torch.tensor([0, K - 1])
    weight = torch.rand(R, generator=gen, dtype=torch.float64) + 0.25
    return logits, labels, weight


def _one_hot(labels):
    valid = labels != -1
    safe = torch.where(valid, labels, torch.full_like(labels, K))
    return F.one_hot(safe, K + 1)[:, :K].to(torch.float64), valid.to(torch.float64)


# element-wise formulas, each term spelled out ([R, K] tensors), as references
def _ref_class_balanced_weights(counts, beta):
    """Cui et al. 2019: weight 1 / E_n with E_n = (1 - beta^n) / (1 - beta), scaled to sum to K."""
    inverse_effective = [(1.0 - beta) / (1.0 - beta ** float(n)) for n in counts]
    return torch.tensor([w * len(counts) / sum(inverse_effective) for w in inverse_effective], dtype=torch.float64)


def _ref_eqlv2_weights(pos_neg, mu=0.8, gamma=12.0, alpha=4.0):
    """Tan et al. 2021 (official code's defaults): neg_w = 1 / (1 + exp(-gamma (g - mu))),
    pos_w = 1 + alpha (1 - neg_w)."""
    neg_w = 1.0 / (1.0 + torch.exp(-gamma * (pos_neg.to(torch.float64) - mu)))
    return 1.0 + alpha * (1.0 - neg_w), neg_w


def _ref_focal(x, labels, counts, gamma, background_weight, weight):
    """Class weights rescaled so that the mean training instance weighs 1; a background row weighs
    ``background_weight``; 'mean' divides by the kept proposals with a sample weight > 0."""
    target, valid = _one_hot(labels)
    prob = torch.sigmoid(x)
    p_t = prob * target + (1 - prob) * (1 - target)
    per_row = (F.binary_cross_entropy_with_logits(x, target, reduction="none") * (1 - p_t).pow(gamma)).sum(1)
    n = counts.tolist()
    class_weight = _ref_class_balanced_weights(n, 0.99)
    mean_instance_weight = sum(c * w for c, w in zip(n, class_weight.tolist())) / sum(n)
    padded = torch.cat([class_weight / mean_instance_weight, torch.tensor([background_weight], dtype=torch.float64)])
    safe = torch.where(labels == -1, torch.full_like(labels, K), labels)
    kept = ((labels != -1) & (weight > 0)).sum()
    return (per_row * padded[safe] * valid * weight).sum() / kept


def _ref_eql(x, labels, freq, lambda_, weight):
    target, valid = _one_hot(labels)
    is_fg = ((labels >= 0) & (labels < K)).to(x.dtype)[:, None]
    element = 1 - is_fg * (torch.tensor(freq, dtype=x.dtype) < lambda_).to(x.dtype)[None] * (1 - target)
    ce = F.binary_cross_entropy_with_logits(x, target, reduction="none")
    return ((ce * element).sum(1) * valid * weight).sum() / valid.sum()


def _ref_eqlv2(x, labels, pos_neg, weight):
    """K + 1 columns: one-hot target including the objectness column K (1 on background rows), weight 1 there;
    statistics of the K class columns."""
    valid = labels != -1
    target = F.one_hot(torch.where(valid, labels, torch.full_like(labels, K)), K + 1).to(torch.float64)
    valid = valid.to(torch.float64)
    pos_w, neg_w = _ref_eqlv2_weights(pos_neg)
    one = torch.ones(1, dtype=torch.float64)
    pos_w, neg_w = torch.cat([pos_w, one]), torch.cat([neg_w, one])
    element = pos_w[None] * target + neg_w[None] * (1 - target)
    ce = F.binary_cross_entropy_with_logits(x, target, reduction="none")
    grad = (torch.sigmoid(x.detach()) - target).abs() * element * (valid * weight)[:, None]
    loss = ((ce * element).sum(1) * valid * weight).sum() / valid.sum()
    return loss, (grad * target).sum(0)[:K], (grad * (1 - target)).sum(0)[:K]


def _ref_seesaw(x, labels, counts, p, q, eps, weight):
    valid = labels != -1
    safe = torch.where(valid, labels, torch.full_like(labels, K))
    fg = safe < K
    cls_labels = safe.clamp(max=K - 1)
    z, obj = x[:, :K], x[:, K:]
    factor = torch.ones_like(z)
    counts = counts.clamp(min=1)
    ratio = counts[None] / counts[cls_labels][:, None]
    factor = factor * torch.where(ratio < 1, ratio.pow(p), torch.ones_like(ratio))
    scores = torch.softmax(z.detach(), 1)
    ratio = scores / scores.gather(1, cls_labels[:, None]).clamp(min=eps)
    factor = factor * torch.where(ratio > 1, ratio.pow(q), torch.ones_like(ratio))
    off = 1 - F.one_hot(cls_labels, K).to(x.dtype)
    cls = F.cross_entropy(z + factor.log() * off, cls_labels, reduction="none")
    per_row = cls * fg + F.cross_entropy(obj, (~fg).long(), reduction="none")
    return (per_row * valid * weight).sum() / valid.sum()


def _value_and_grad(function, logits):
    x = logits.detach().clone().requires_grad_(True)
    loss = function(x)
    loss.backward()
    return loss.detach(), x.grad


@pytest.fixture(params=[1 << 17, 16], ids=["one-block", "many-blocks"])
def block(request, monkeypatch):
    monkeypatch.setattr(rowwise, "BLOCK_ELEMENTS", request.param)
    return request.param


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 2.5])
def test_focal_matches_elementwise_formula(block, gamma):
    logits, labels, weight = _batch(K)
    counts = torch.tensor([300.0, 40.0, 6.0, 1.0, 9.0, 2.0], dtype=torch.float64)
    ours = _value_and_grad(
        lambda x: class_balanced_focal_loss(
            x, labels, counts, beta=0.99, gamma=gamma, background_weight=0.5, sample_weight=weight
        ),
        logits,
    )
    ref = _value_and_grad(lambda x: _ref_focal(x, labels, counts, gamma, 0.5, weight), logits)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_eql_matches_elementwise_formula(block):
    logits, labels, weight = _batch(K)
    freq = [0.5, 0.1, 0.002, 0.0005, 0.02, 0.001]
    ours = _value_and_grad(lambda x: equalization_loss(x, labels, freq, lambda_=0.01, sample_weight=weight), logits)
    ref = _value_and_grad(lambda x: _ref_eql(x, labels, freq, 0.01, weight), logits)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_eqlv2_loss_and_statistics_match_elementwise_formula(block):
    logits, labels, weight = _batch(K + 1)
    pos_neg = torch.tensor([1.2, 0.8, 0.3, 0.02, 0.9, 0.5], dtype=torch.float64)
    ours = _value_and_grad(lambda x: eqlv2_loss(x, labels, pos_neg, sample_weight=weight), logits)
    ref_loss, ref_pos, ref_neg = _ref_eqlv2(logits, labels, pos_neg, weight)
    ref = _value_and_grad(lambda x: _ref_eqlv2(x, labels, pos_neg, weight)[0], logits)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    pos, neg = eqlv2_gradient_statistics(logits, labels, pos_neg, sample_weight=weight)
    torch.testing.assert_close((pos, neg), (ref_pos, ref_neg), rtol=1e-10, atol=1e-12)


def test_federated_matches_elementwise_formula(block):
    logits, labels, weight = _batch(K)
    counts = [90, 40, 10, 5, 1, 1]
    ours = _value_and_grad(
        lambda x: federated_loss(
            x, labels, counts, num_sampled=4, sample_weight=weight, generator=torch.Generator().manual_seed(3)
        ),
        logits,
    )
    classes = federated_classes(
        labels, torch.tensor(counts, dtype=torch.float64), num_sampled=4, generator=torch.Generator().manual_seed(3)
    )
    mask = torch.zeros(K + 1, dtype=torch.float64).index_fill_(0, classes, 1.0)[:K]

    def ref(x):
        target, valid = _one_hot(labels)
        ce = F.binary_cross_entropy_with_logits(x, target, reduction="none") * mask[None]
        return (ce.sum(1) * valid * weight).sum() / valid.sum()

    torch.testing.assert_close(ours, _value_and_grad(ref, logits), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("p,q", [(0.8, 2.0), (0.0, 2.0), (0.8, 0.0), (1.5, 0.5)])
def test_log_domain_seesaw_matches_exp_space_formula(p, q):
    logits, labels, weight = _batch(K + 2)
    counts = torch.tensor([300.0, 0.0, 6.0, 1.0, 9.0, 2.0], dtype=torch.float64)
    ours = _value_and_grad(lambda x: seesaw_loss(x, labels, counts, p=p, q=q, sample_weight=weight), logits)
    ref = _value_and_grad(lambda x: _ref_seesaw(x, labels, counts, p, q, 1e-2, weight), logits)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_weighted_ce_matches_log_softmax_formula():
    logits, labels, weight = _batch(K + 1)
    class_weight = torch.rand(K + 1, dtype=torch.float64)
    ours = _value_and_grad(
        lambda x: weighted_cross_entropy(x, labels, class_weight, sample_weight=weight, denominator="weights"), logits
    )

    def ref(x):
        valid = labels != -1
        safe = torch.where(valid, labels, torch.zeros_like(labels))
        row_weight = valid * class_weight[safe] * weight
        nll = -F.log_softmax(x, 1).gather(1, safe[:, None]).squeeze(1)
        return (nll * row_weight).sum() / row_weight.sum()

    torch.testing.assert_close(ours, _value_and_grad(ref, logits), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel", ["bce", "bce-fg-weights", "focal"])
def test_rowloss_gradcheck(block, kernel):
    logits, labels, _ = _batch(K)  # background rows (label K) and ignored rows (-1): rows without a positive
    gen = torch.Generator().manual_seed(1)
    column = torch.rand(K, generator=gen, dtype=torch.float64)
    kernel = {
        "bce": partial(
            bce_kernel, labels=labels, weights=ColumnWeights(neg=column, pos=torch.rand(K, dtype=torch.float64))
        ),
        "bce-fg-weights": partial(bce_kernel, labels=labels, weights=ColumnWeights(fg_neg=column)),
        "focal": partial(focal_kernel, labels=labels, gamma=2.0),
    }[kernel]
    assert torch.autograd.gradcheck(lambda x: RowLoss.apply(x, kernel)[0], (logits.requires_grad_(True),))


def _ref_focal_rows(x, labels, gamma):
    """Sigmoid focal loss without alpha per row, each term spelled out: -(1 - p_t)^gamma log p_t."""
    target = F.one_hot(torch.where((labels >= 0) & (labels < K), labels, K), K + 1)[:, :K].to(x.dtype)
    log_p_t = target * F.logsigmoid(x) + (1 - target) * F.logsigmoid(-x)
    one_minus_p_t = target * torch.sigmoid(-x) + (1 - target) * torch.sigmoid(x)
    return (-one_minus_p_t.pow(gamma) * log_p_t).sum(1)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_focal_kernel_equals_the_elementwise_formula_when_saturated(block, gamma):
    logits, labels, _ = _batch(K)  # background rows (label K) and ignored rows (-1) included
    logits = logits * 8  # saturated sigmoids too
    kernel = partial(focal_kernel, labels=labels, gamma=gamma)
    ours = _value_and_grad(lambda x: RowLoss.apply(x, kernel)[0].sum(), logits)
    ref = _value_and_grad(lambda x: _ref_focal_rows(x, labels, gamma).sum(), logits)
    # F.softplus(x) is x above 20, off log(1 + e^x) by < e^-20 per element; the gradient (sigmoid) is exact
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-12, atol=1e-7)
    torch.testing.assert_close(ours[1], ref[1], rtol=1e-12, atol=1e-14)
    assert kernel(logits, need_grad=True)[2] is None and kernel(logits, need_grad=False)[1] is None
    assert torch.autograd.gradcheck(lambda x: RowLoss.apply(x, kernel)[0], (logits.requires_grad_(True),))


def test_second_backward_through_retained_graph_gives_the_same_gradient():
    logits, labels, _ = _batch(K)
    logits.requires_grad_(True)
    loss = class_balanced_focal_loss(logits, labels, [5.0] * K)
    (first,) = torch.autograd.grad(loss, logits, retain_graph=True)
    (second,) = torch.autograd.grad(loss, logits)
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_nan_logit_in_an_ignored_row_still_raises():
    for function, columns in (
        (lambda x, y: weighted_cross_entropy(x, y), K + 1),
        (lambda x, y: equalization_loss(x, y, [0.1] * K), K),
        (lambda x, y: class_balanced_focal_loss(x, y, [5.0] * K), K),
    ):
        logits, labels, _ = _batch(columns)
        logits[2, 1] = float("nan")  # row 2 is ignored
        with pytest.raises(ValueError, match="nan at row 2, column 1"):
            function(logits.float(), labels)


def test_eqlv2_statistics_do_not_pile_up_on_a_reused_leaf():
    logits, labels, _ = _batch(K + 1)
    logits = logits.float().requires_grad_(True)
    module = EQLv2Loss(K)
    module(logits, labels).backward()
    first_pos, first_neg = module.pos_grad.clone(), module.neg_grad.clone()
    second_pos, second_neg = eqlv2_gradient_statistics(logits.detach(), labels, module.pos_neg.clone())
    module(logits, labels).backward()  # the same leaf again: only this step's statistics are added
    torch.testing.assert_close(module.pos_grad, first_pos + second_pos)
    torch.testing.assert_close(module.neg_grad, first_neg + second_neg)


def test_backward_twice_with_retain_graph_accumulates_twice():
    logits, labels, _ = _batch(K)
    once = _value_and_grad(lambda x: equalization_loss(x, labels, [0.1] * K), logits)[1]
    x = logits.detach().clone().requires_grad_(True)
    loss = equalization_loss(x, labels, [0.1] * K)
    loss.backward(retain_graph=True)
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * once, rtol=1e-12, atol=1e-12)
