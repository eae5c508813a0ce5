"""class_balanced_focal_loss against an independent float64 transcription of Cui et al.'s reference code.

The reference (richardaecn/class-balanced-loss, ``src/cifar_main.py``) computes, in TensorFlow:

* ``weights = (1 - beta) / (1 - beta ** n)``, then ``weights / sum(weights) * K`` (``main``);
* each example's weight is its label's class weight, tiled over the K columns (``_tower_fn``);
* ``focal_loss``: ``sigmoid_cross_entropy_with_logits`` times the modulator
  ``exp(-gamma * z * x - gamma * log1p(exp(-x)))``, times the weight, summed over every element and divided by
  ``reduce_sum(labels)``, the number of positive labels, which is its number of examples (one positive each).

Written out below from those lines (not from detbalance's helpers). detbalance's loss is the reference's
divided by the mean weight of a training instance ``w_bar = sum(n * w) / sum(n)`` (a constant: an average
instance weighs 1); detection adds background rows (all-zero target), which the reference has no weight for:
they weigh ``background_weight`` (times ``w_bar`` in the reference's scale), and 'mean' divides by the number of
examples, the proposals (see the loss docstring).
"""

from __future__ import annotations

import math

import pytest
import torch

from detbalance.losses import ClassBalancedFocalLoss, class_balanced_focal_loss, sigmoid_scores
from detbalance.losses.cb_focal import class_balanced_weights

K = 4
COUNTS = [1000, 100, 10, 1]


def reference_weights(counts, beta):
    """``main`` of cifar_main.py: effective number per class, inverse, normalised to sum to K."""
    effective = [1.0 - beta**n for n in counts]
    raw = [(1.0 - beta) / e for e in effective]
    return [w / sum(raw) * len(counts) for w in raw]


def mean_instance_weight(counts, beta):
    weights = reference_weights(counts, beta)
    return sum(n * w for n, w in zip(counts, weights)) / sum(counts)


def reference_loss(logits, labels, counts, beta, gamma, background_row_weight=0.0):
    """``_tower_fn`` + ``focal_loss`` of cifar_main.py in float64; background rows (label K) have an all-zero
    target and the weight ``background_row_weight``."""
    k = logits.shape[1]
    weights = reference_weights(counts, beta)
    per_class = torch.tensor(weights + [background_row_weight], dtype=torch.float64)
    z = torch.zeros(labels.shape[0], k + 1, dtype=torch.float64)
    z[torch.arange(labels.shape[0]), labels] = 1.0
    z = z[:, :k]  # one-hot labels; background rows all zero
    alpha = (per_class[labels])[:, None].expand(-1, k)
    x = logits
    # tf.nn.sigmoid_cross_entropy_with_logits: max(x, 0) - x * z + log(1 + exp(-|x|))
    cross_entropy = torch.clamp(x, min=0) - x * z + torch.log1p(torch.exp(-x.abs()))
    modulator = 1.0 if gamma == 0.0 else torch.exp(-gamma * z * x - gamma * torch.log1p(torch.exp(-x)))
    total = (alpha * modulator * cross_entropy).sum()
    return total / labels.shape[0]  # the reference's reduce_sum(labels): one positive per example


def _batch(seed=0, rows=12):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, K, generator=g, dtype=torch.float64) * 2
    labels = torch.randint(0, K + 1, (rows,), generator=g)
    labels[:5] = K  # background-heavy, as after RoI sampling
    labels[5:9] = torch.arange(K)
    return logits, labels


def _value_and_grad(fn, logits):
    logits = logits.detach().clone().requires_grad_(True)
    value = fn(logits)
    (grad,) = torch.autograd.grad(value.sum(), logits)
    return value.detach(), grad


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("beta", [0.0, 0.9, 0.999])
def test_foreground_batch_equals_reference(gamma, beta):
    """Only foreground rows, as in the reference's image classification: no detection choice is involved."""
    logits, _ = _batch()
    labels = torch.tensor([0, 1, 2, 3, 0, 0, 1, 3, 2, 0, 1, 0])
    ours = _value_and_grad(lambda x: class_balanced_focal_loss(x, labels, COUNTS, beta=beta, gamma=gamma), logits)
    scale = 1.0 / mean_instance_weight(COUNTS, beta)
    ref = _value_and_grad(lambda x: scale * reference_loss(x, labels, COUNTS, beta, gamma), logits)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("background_weight", [1.0, 0.3, 0.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_detection_batch_equals_reference_with_background_rows(background_weight, seed):
    logits, labels = _batch(seed)
    ours = _value_and_grad(
        lambda x: class_balanced_focal_loss(
            x, labels, COUNTS, beta=0.999, gamma=2.0, background_weight=background_weight
        ),
        logits,
    )
    w_bar = mean_instance_weight(COUNTS, 0.999)
    ref = _value_and_grad(
        lambda x: reference_loss(x, labels, COUNTS, 0.999, 2.0, background_weight * w_bar) / w_bar, logits
    )
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_module_equals_reference_over_several_steps():
    """The module holds no state: several batches give the reference's value and gradient each time."""
    module = ClassBalancedFocalLoss(K, COUNTS, beta=0.99, gamma=1.5)
    for seed in range(3):
        logits, labels = _batch(seed)
        ours = _value_and_grad(lambda x: module(x, labels), logits)
        w_bar = mean_instance_weight(COUNTS, 0.99)
        ref = _value_and_grad(lambda x: reference_loss(x, labels, COUNTS, 0.99, 1.5, w_bar) / w_bar, logits)
        torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_mean_divides_by_the_proposals_and_normalizer_replaces_them():
    logits, labels = _batch()
    labels[0] = -1  # ignored
    summed = class_balanced_focal_loss(logits, labels, COUNTS, reduction="sum")
    kept = labels.shape[0] - 1
    assert class_balanced_focal_loss(logits, labels, COUNTS).item() == pytest.approx(summed.item() / kept)
    assert class_balanced_focal_loss(logits, labels, COUNTS, normalizer=7.0).item() == pytest.approx(
        summed.item() / 7.0
    )
    # a sample weight of 0 removes the row from the loss and from the count
    weight = torch.ones(labels.shape[0], dtype=torch.float64)
    weight[5] = 0.0  # a foreground row
    rows = class_balanced_focal_loss(logits, labels, COUNTS, sample_weight=weight, reduction="none")
    assert rows[5].item() == 0.0
    mean = class_balanced_focal_loss(logits, labels, COUNTS, sample_weight=weight)
    assert mean.item() == pytest.approx(rows.sum().item() / (kept - 1))


def test_an_average_instance_and_a_background_row_weigh_one():
    """The reference's class ratios, rescaled so that the training instances' mean weight is 1, as every proposal
    weighs in the unweighted loss; a background row weighs ``background_weight`` (1): the class weights move loss
    between foreground classes, not from background to foreground."""
    counts, beta = [1500, 753, 378, 189, 95, 48, 24, 12], 0.999
    assert mean_instance_weight(counts, beta) == pytest.approx(0.1524, abs=1e-4)  # the reference's scale
    k = len(counts)
    logits = torch.zeros(k + 1, k, dtype=torch.float64)
    labels = torch.arange(k + 1)  # one row per class, then a background row
    rows = class_balanced_focal_loss(logits, labels, counts, beta=beta, reduction="none")
    negative, positive = 0.5**2 * math.log(2.0), 0.5**2 * math.log(2.0)  # every p = 0.5
    unweighted = torch.tensor([positive + (k - 1) * negative] * k + [k * negative], dtype=torch.float64)
    omega = rows / unweighted
    assert omega[k].item() == pytest.approx(1.0)
    mean_instance = sum(n * w for n, w in zip(counts, omega[:k].tolist())) / sum(counts)
    assert mean_instance == pytest.approx(1.0)
    ratios = [w / reference_weights(counts, beta)[0] for w in reference_weights(counts, beta)]
    assert (omega[:k] / omega[0]).tolist() == pytest.approx(ratios)


def test_initial_loss_at_the_reference_bias():
    """At the reference's initial bias -log(K - 1) every probability is 1/K: a foreground row costs the positive
    element plus K - 1 negatives, a background row K negatives; here the mean over four proposals."""
    counts = [1500, 753, 378, 189, 95, 48, 24, 12]
    k = len(counts)
    module = ClassBalancedFocalLoss(k, counts, beta=0.999)
    bias = module.initial_bias()
    assert bias.tolist() == pytest.approx([-math.log(k - 1)] * k)
    logits = bias.to(torch.float64).expand(4, k)
    labels = torch.tensor([0, 7, k, k])
    p = 1.0 / k
    positive, negative = (1 - p) ** 2 * -math.log(p), p**2 * -math.log(1 - p)
    w = [c / mean_instance_weight(counts, 0.999) for c in reference_weights(counts, 0.999)]
    row = positive + (k - 1) * negative
    want = (w[0] * row + w[7] * row + 2 * k * negative) / 4
    assert module(logits, labels).item() == pytest.approx(want, rel=1e-6)


def test_gradcheck_with_background_and_sample_weights():
    logits, labels = _batch()
    weight = torch.rand(labels.shape[0], dtype=torch.float64) + 0.1
    assert torch.autograd.gradcheck(
        lambda x: class_balanced_focal_loss(x, labels, COUNTS, beta=0.99, sample_weight=weight),
        (logits.requires_grad_(),),
    )


def test_weights_follow_cui_formula():
    counts, beta = [5000, 300, 12, 1], 0.999
    got = class_balanced_weights(counts, beta)
    assert got.tolist() == pytest.approx(reference_weights(counts, beta), rel=1e-12)
    assert got.sum().item() == pytest.approx(len(counts))
    assert got.argmax().item() == 3  # the rarest class weighs most
    # beta -> 1 approaches inverse frequency, beta = 0 gives equal weights
    inverse = [1 / n for n in counts]
    near_one = class_balanced_weights(counts, 1 - 1e-9)
    assert near_one.tolist() == pytest.approx([w * 4 / sum(inverse) for w in inverse], rel=1e-4)
    assert class_balanced_weights(counts, 0.0).tolist() == [1.0] * 4


def test_bad_settings_raise_naming_the_value():
    with pytest.raises(ValueError, match="background_weight"):
        ClassBalancedFocalLoss(K, COUNTS, background_weight=-1.0)
    with pytest.raises(ValueError, match=r"classes \[1\] have 0 samples"):
        ClassBalancedFocalLoss(K, [3, 0, 2, 1])
    with pytest.raises(ValueError, match="beta"):
        ClassBalancedFocalLoss(K, COUNTS, beta=1.0)


def test_module_state_and_scores():
    module = ClassBalancedFocalLoss(K, [10, 20, 30, 40], beta=0.9, gamma=1.0)
    assert module.num_logits == K and module.state_dict() == {}
    logits = torch.randn(3, K)
    scores = module.predict_scores(logits)
    torch.testing.assert_close(scores, sigmoid_scores(logits))
    torch.testing.assert_close(scores[:, K], 1 - torch.sigmoid(logits).amax(dim=1))
    assert "beta=0.9" in repr(module)
