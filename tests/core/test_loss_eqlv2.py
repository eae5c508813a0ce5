"""eqlv2_loss / EQLv2Loss against MMDetection's EQLV2Loss and the paper's formula (float64), and its state."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from detbalance.losses import EQLv2Loss, eqlv2_loss
from detbalance.losses.eqlv2 import eqlv2_gradient_statistics

K = 5


def _mmdet_losses():
    import mmdet.models.losses as losses
    return losses


def _batch(rows=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, K, generator=generator, dtype=torch.float64) * 2
    labels = torch.randint(0, K + 1, (rows,), generator=generator)
    return logits, labels


def test_matches_mmdet_eqlv2_loss_and_state_over_steps():
    losses = _mmdet_losses()
    # MMDetection's EQLV2Loss takes K + 1 columns, the last one for background with weight 1 whose gradient
    # statistics are dropped; ours takes the K foreground columns. So: ours = mmdet - (background column term),
    # the gradients of the K foreground columns are equal, and so is the state after each backward.
    reference = losses.EQLV2Loss(num_classes=K).double()
    ours = EQLv2Loss(K).double()
    for step in range(4):
        logits, labels = _batch(seed=step)
        background_logit = torch.randn(logits.shape[0], 1, dtype=torch.float64)
        x_ref = torch.cat([logits, background_logit], dim=1).requires_grad_(True)
        x_ours = logits.clone().requires_grad_(True)

        loss_ref = reference(x_ref, labels)
        background_term = F.binary_cross_entropy_with_logits(
            x_ref.detach()[:, K], (labels == K).double(), reduction="sum") / labels.shape[0]
        loss_ours = ours(x_ours, labels)
        torch.testing.assert_close(loss_ours, loss_ref.detach() - background_term, rtol=1e-6, atol=1e-6)

        loss_ref.backward()
        loss_ours.backward()
        torch.testing.assert_close(x_ours.grad, x_ref.grad[:, :K], rtol=1e-6, atol=1e-6)
        for name in ("pos_grad", "neg_grad", "pos_neg"):
            torch.testing.assert_close(getattr(ours, name), getattr(reference, name), rtol=1e-6, atol=1e-9)
    assert not torch.allclose(ours.pos_neg, torch.full((K,), 100.0, dtype=torch.float64))  # weights moved


def test_function_matches_paper_formula():
    logits, labels = _batch()
    pos_neg = torch.tensor([0.05, 0.4, 0.8, 1.1, 3.0], dtype=torch.float64)
    gamma, mu, alpha = 12.0, 0.8, 4.0
    neg_w = 1 / (1 + torch.exp(-gamma * (pos_neg - mu)))  # Tan et al. 2021, eq. (6)-(8)
    pos_w = 1 + alpha * (1 - neg_w)
    target = torch.zeros(labels.shape[0], K + 1, dtype=torch.float64)
    target[torch.arange(labels.shape[0]), labels] = 1
    target = target[:, :K]

    def reference(x):
        weight = pos_w * target + neg_w * (1 - target)
        return (F.binary_cross_entropy_with_logits(x, target, reduction="none") * weight).sum() / x.shape[0]

    x1 = logits.clone().requires_grad_(True)
    x2 = logits.clone().requires_grad_(True)
    ours, ref = eqlv2_loss(x1, labels, pos_neg), reference(x2)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-6, atol=1e-6)
    # the collected statistics are the weighted gradient magnitudes of the summed loss
    pos, neg = eqlv2_gradient_statistics(logits, labels, pos_neg)
    grad = (x2.grad * logits.shape[0]).abs()
    torch.testing.assert_close(pos, (grad * target).sum(0))
    torch.testing.assert_close(neg, (grad * (1 - target)).sum(0))


def test_sample_weights_and_ignored_rows_enter_loss_and_statistics():
    logits, labels = _batch()
    labels[3] = -1
    weight = torch.rand(labels.shape[0], dtype=torch.float64)
    weight[5] = 0.0
    keep = (labels != -1) & (weight > 0)
    module = EQLv2Loss(K).double()
    x = logits.clone().requires_grad_(True)
    loss = module(x, labels, sample_weight=weight, normalizer=4.0)
    per_row = eqlv2_loss(logits, labels, torch.full((K,), 100.0), reduction="none")
    torch.testing.assert_close(loss, (per_row * weight).sum() / 4.0)
    loss.backward()
    pos, neg = eqlv2_gradient_statistics(logits[keep], labels[keep], torch.full((K,), 100.0),
                                         sample_weight=weight[keep])
    torch.testing.assert_close(module.pos_grad, pos)
    torch.testing.assert_close(module.neg_grad, neg)


def test_state_changes_only_on_backward():
    module = EQLv2Loss(K)
    initial = {k: v.clone() for k, v in module.state_dict().items()}
    logits, labels = _batch()
    logits = logits.float().requires_grad_(True)
    module(logits, labels)  # forward without backward
    with torch.no_grad():
        module(logits, labels)
    module(logits.detach(), labels).item()  # logits without grad
    empty = torch.zeros(0, K, requires_grad=True)
    module(empty, labels[:0]).backward()  # nothing seen: ratio kept
    for name, value in module.state_dict().items():
        assert torch.equal(value, initial[name]), name
    module(logits, labels).backward()
    assert (module.pos_grad > 0).any() and (module.neg_grad > 0).all()
    torch.testing.assert_close(module.pos_neg, module.pos_grad / (module.neg_grad + 1e-10))


def test_state_dict_round_trip():
    module = EQLv2Loss(K)
    for step in range(2):
        logits, labels = _batch(seed=step)
        module(logits.float().requires_grad_(True), labels).backward()
    state = module.state_dict()
    assert set(state) == {"pos_grad", "neg_grad", "pos_neg"}
    restored = EQLv2Loss(K)
    restored.load_state_dict(state)
    for name in state:
        assert torch.equal(getattr(restored, name), getattr(module, name))
    logits, labels = _batch(seed=9)
    assert torch.equal(restored(logits.float(), labels), module(logits.float(), labels))


def test_statistics_stay_non_negative_when_a_class_only_has_positives():
    """neg_grad of a class seen only as a positive is 0, not -1 ulp (it is a total minus the positive terms)."""
    module = EQLv2Loss(16)
    labels = torch.tensor([-1, 6])
    for step in range(3):
        g = torch.Generator().manual_seed(332 + step)
        logits = (torch.randn(2, 16, generator=g, dtype=torch.float64) * 0.3).float().requires_grad_(True)
        module(logits, labels).backward()
    assert bool((module.neg_grad >= 0).all()) and bool((module.pos_grad >= 0).all())
