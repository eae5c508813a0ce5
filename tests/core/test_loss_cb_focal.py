"""class_balanced_focal_loss against torchvision's sigmoid_focal_loss and Cui et al.'s weight formula."""
from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from detbalance.losses import ClassBalancedFocalLoss, class_balanced_focal_loss, sigmoid_scores
from detbalance.losses.cb_focal import class_balanced_weights

K = 4


def _batch(rows=10):
    logits = torch.randn(rows, K, dtype=torch.float64) * 2
    labels = torch.tensor([0, 1, 2, 3, K, K, 1, -1, K, 0][:rows])
    return logits, labels


def _targets(labels):
    keep = labels != -1
    return F.one_hot(labels.clamp(min=0), K + 1)[:, :K].to(torch.float64), keep


def _value_and_grad(fn, logits):
    logits = logits.detach().clone().requires_grad_(True)
    value = fn(logits)
    (grad,) = torch.autograd.grad(value.sum(), logits)
    return value.detach(), grad


@pytest.mark.parametrize("gamma", [0.0, 2.0, 1.5])
def test_equal_weights_match_torchvision_focal_loss(gamma):
    logits, labels = _batch()
    target, keep = _targets(labels)
    for counts, beta in (([50, 50, 50, 50], 0.999), ([1, 20, 300, 4000], 0.0)):  # both give w_c = 1
        ours = _value_and_grad(
            lambda x: class_balanced_focal_loss(x, labels, counts, beta=beta, gamma=gamma), logits)
        ref = _value_and_grad(
            lambda x: sigmoid_focal_loss(x[keep], target[keep], alpha=-1, gamma=gamma, reduction="sum")
            / keep.sum(), logits)
        torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)


def test_weighted_rows_match_torchvision_times_cui_weights():
    logits, labels = _batch()
    target, keep = _targets(labels)
    counts, beta, background_weight = [1000, 100, 10, 1], 0.99, 0.3
    weights = class_balanced_weights(counts, beta)
    row_weight = torch.cat([weights, torch.tensor([background_weight], dtype=torch.float64)])[labels.clamp(min=0)]
    row_weight = row_weight * keep
    ours = _value_and_grad(lambda x: class_balanced_focal_loss(
        x, labels, counts, beta=beta, background_weight=background_weight, reduction="none"), logits)
    ref = _value_and_grad(lambda x: sigmoid_focal_loss(x, target, alpha=-1, gamma=2.0, reduction="none").sum(1)
                          * row_weight, logits)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)


def test_weights_follow_cui_formula():
    counts, beta = [5000, 300, 12, 1], 0.999
    raw = [(1 - beta) / (1 - beta**n) for n in counts]  # Cui et al. 2019, eq. (4): (1 - beta) / (1 - beta^n)
    expected = [w * len(counts) / sum(raw) for w in raw]
    got = class_balanced_weights(counts, beta)
    assert got.tolist() == pytest.approx(expected, rel=1e-12)
    assert got.sum().item() == pytest.approx(len(counts))
    assert got.argmax().item() == 3  # the rarest class weighs most
    # beta -> 1 approaches inverse frequency, beta = 0 gives equal weights
    inverse = [1 / n for n in counts]
    near_one = class_balanced_weights(counts, 1 - 1e-9)
    assert near_one.tolist() == pytest.approx([w * 4 / sum(inverse) for w in inverse], rel=1e-4)
    assert class_balanced_weights(counts, 0.0).tolist() == [1.0] * 4


def test_background_weight_scales_background_rows_only():
    logits, labels = _batch()
    base = class_balanced_focal_loss(logits, labels, [9, 9, 9, 9], reduction="none")
    half = class_balanced_focal_loss(logits, labels, [9, 9, 9, 9], background_weight=0.5, reduction="none")
    background = labels == K
    torch.testing.assert_close(half[background], base[background] * 0.5)
    torch.testing.assert_close(half[~background], base[~background])


def test_module_state_and_scores():
    module = ClassBalancedFocalLoss(K, [10, 20, 30, 40], beta=0.9, gamma=1.0)
    assert module.num_logits == K and module.state_dict() == {}
    logits = torch.randn(3, K)
    scores = module.predict_scores(logits)
    torch.testing.assert_close(scores, sigmoid_scores(logits))
    torch.testing.assert_close(scores[:, K], 1 - torch.sigmoid(logits).amax(dim=1))
    assert "beta=0.9" in repr(module)
