"""weighted_cross_entropy against torch's F.cross_entropy (float64, values and gradients), both denominators."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from detbalance.losses import WeightedCrossEntropyLoss, softmax_scores, weighted_cross_entropy

K = 5


def _batch(rows=12):
    logits = torch.randn(rows, K + 1, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, K + 1, (rows,))
    labels[[1, 7]] = -1
    weight = torch.rand(K + 1, dtype=torch.float64) * 3 + 0.1
    return logits, labels, weight


def _value_and_grad(fn, logits):
    logits = logits.detach().clone().requires_grad_(True)
    value = fn(logits)
    (grad,) = torch.autograd.grad(value.sum(), logits)
    return value.detach(), grad


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [True, False])
def test_matches_torch_cross_entropy(reduction, weighted):
    logits, labels, weight = _batch()
    weight = weight if weighted else None
    ours = _value_and_grad(
        lambda x: weighted_cross_entropy(x, labels, weight, reduction=reduction, denominator="weights"), logits
    )
    ref = _value_and_grad(
        lambda x: F.cross_entropy(x, labels, weight=weight, ignore_index=-1, reduction=reduction), logits
    )
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)


def test_default_mean_divides_by_the_kept_proposals():
    """'proposals' (default): sum over rows / number of non-ignored rows with a sample weight > 0."""
    logits, labels, weight = _batch()
    sample = torch.rand(labels.shape[0], dtype=torch.float64)
    sample[[0, 4]] = 0.0
    kept = ((labels != -1) & (sample > 0)).sum()
    ours = _value_and_grad(lambda x: weighted_cross_entropy(x, labels, weight, sample_weight=sample), logits)
    ref = _value_and_grad(
        lambda x: (F.cross_entropy(x, labels, weight=weight, ignore_index=-1, reduction="none") * sample).sum() / kept,
        logits,
    )
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    module = WeightedCrossEntropyLoss(K, weight)
    assert module.denominator == "proposals"
    torch.testing.assert_close(module(logits, labels, sample_weight=sample), ours[0])


def test_weights_denominator_divides_by_class_and_sample_weights():
    logits, labels, weight = _batch()
    sample = torch.rand(labels.shape[0], dtype=torch.float64)
    keep = labels != -1
    per_row = F.cross_entropy(logits, labels, weight=weight, ignore_index=-1, reduction="none") * sample
    denominator = (weight[labels[keep]] * sample[keep]).sum()
    ours = _value_and_grad(
        lambda x: weighted_cross_entropy(x, labels, weight, sample_weight=sample, denominator="weights"), logits
    )
    ref = _value_and_grad(
        lambda x: (
            (F.cross_entropy(x, labels, weight=weight, ignore_index=-1, reduction="none") * sample).sum() / denominator
        ),
        logits,
    )
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    module = WeightedCrossEntropyLoss(K, weight, denominator="weights")
    torch.testing.assert_close(module(logits, labels, sample_weight=sample), ours[0])
    # normalizer replaces the default count (MMDetection's avg_factor: loss.sum() / avg_factor)
    torch.testing.assert_close(
        weighted_cross_entropy(logits, labels, weight, sample_weight=sample, normalizer=7), per_row.sum() / 7
    )
    with pytest.raises(ValueError, match="normalizer=7 replaces the 'proposals' count"):
        weighted_cross_entropy(logits, labels, weight, normalizer=7, denominator="weights")
    with pytest.raises(ValueError, match="denominator must be one of .*got 'sum_w'"):
        WeightedCrossEntropyLoss(K, weight, denominator="sum_w")


def test_zero_class_weights_give_zero_not_nan():
    logits, labels, _ = _batch()
    loss = weighted_cross_entropy(logits, labels, torch.zeros(K + 1, dtype=torch.float64))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad.abs().sum() == 0


def test_module_scores_with_softmax():
    module = WeightedCrossEntropyLoss(K)
    logits = torch.randn(3, K + 1)
    torch.testing.assert_close(module.predict_scores(logits), torch.softmax(logits, dim=1))
    torch.testing.assert_close(softmax_scores(logits).sum(dim=1), torch.ones(3))
    assert module.class_weight is None and "class_weight" not in module.state_dict()
    weighted = WeightedCrossEntropyLoss(K, [1.0] * (K + 1))
    assert "class_weight" not in weighted.state_dict()  # configuration, not training state
