"""seesaw_loss / SeesawLoss against MMDetection's seesaw_ce_loss and SeesawLoss (float64), and its state."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from detbalance.losses import SeesawLoss, seesaw_loss, seesaw_scores

K = 5


def _mmdet_losses():
    """MMDetection's seesaw module (``SeesawLoss``, ``seesaw_ce_loss``), the oracle of these tests."""
    import mmdet.models.losses  # noqa: F401  (registers the package as MMDetection imports it)
    from mmdet.models.losses import seesaw_loss

    return seesaw_loss


def _batch(rows=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, K + 2, generator=generator, dtype=torch.float64) * 2
    labels = torch.randint(0, K + 1, (rows,), generator=generator)
    return logits, labels


def _value_and_grad(fn, logits):
    logits = logits.detach().clone().requires_grad_(True)
    value = fn(logits)
    (grad,) = torch.autograd.grad(value.sum(), logits)
    return value.detach(), grad


@pytest.mark.parametrize("p,q", [(0.8, 2.0), (0.0, 2.0), (0.8, 0.0), (1.5, 0.5)])
def test_class_term_matches_mmdet_seesaw_ce_loss(p, q):
    losses = _mmdet_losses()
    logits, labels = _batch(rows=24)
    cum_samples = torch.tensor([500.0, 3.0, 0.0, 60.0, 7.0], dtype=torch.float64)
    fg = labels < K

    def ours(x):  # per-row loss minus the objectness term = the class term of foreground rows
        objectness = F.cross_entropy(x[:, K:], (labels == K).long(), reduction="none")
        return (seesaw_loss(x, labels, cum_samples, p=p, q=q, reduction="none") - objectness)[fg]

    def reference(x):
        return losses.seesaw_ce_loss(x[fg, :K], labels[fg], None, cum_samples, K, p, q, 1e-2, reduction="none")

    torch.testing.assert_close(_value_and_grad(ours, logits), _value_and_grad(reference, logits), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True])
def test_module_matches_mmdet_seesaw_loss_over_steps(weighted):
    losses = _mmdet_losses()
    reference = losses.SeesawLoss(num_classes=K, p=0.8, q=2.0, eps=1e-2).double()
    ours = SeesawLoss(K, p=0.8, q=2.0, eps=1e-2).double()
    for step in range(3):
        logits, labels = _batch(seed=step)
        # weights on a 1/8 grid: MMDetection casts label weights to float32, exactly here
        weight = torch.randint(0, 9, labels.shape).double() / 8 if weighted else None
        # what MMDetection's bbox heads pass: the number of samples with a weight > 0
        avg_factor = float(labels.shape[0] if weight is None else (weight > 0).sum())
        x_ref = logits.clone().requires_grad_(True)
        x_ours = logits.clone().requires_grad_(True)
        # boxes of weight 0 move no count in ours: the reference sees only the others (their loss terms are 0)
        keep = slice(None) if weight is None else weight > 0
        kept_weight = None if weight is None else weight[keep]
        parts = reference(x_ref[keep], labels[keep], kept_weight, avg_factor=avg_factor)
        loss_ref = parts["loss_cls_classes"] + parts["loss_cls_objectness"]
        loss_ours = ours(x_ours, labels, sample_weight=weight)  # 'mean': by the samples with weight > 0
        torch.testing.assert_close(loss_ours, loss_ref, rtol=1e-6, atol=1e-6)
        loss_ref.backward()
        loss_ours.backward()
        torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(ours.cum_samples.double(), reference.cum_samples[:K])
        # an explicit normalizer is MMDetection's avg_factor (on copies: each call counts the labels again)
        parts = copy.deepcopy(reference)(logits[keep], labels[keep], kept_weight, avg_factor=3.0)
        torch.testing.assert_close(
            copy.deepcopy(ours)(logits, labels, sample_weight=weight, normalizer=3.0),
            parts["loss_cls_classes"] + parts["loss_cls_objectness"],
            rtol=1e-6,
            atol=1e-6,
        )
    torch.testing.assert_close(seesaw_scores(logits), reference.get_activation(logits))


def _paper_reference(logits, labels, cum_samples, p, q, eps):
    """Row-by-row transcription of Wang et al. 2021, eq. (2)-(5), plus the objectness cross-entropy."""
    rows = []
    for x, y in zip(logits, labels.tolist()):
        objectness = -torch.log_softmax(x[K:], 0)[1 if y == K else 0]
        if y == K:
            rows.append(objectness)
            continue
        sigma = torch.softmax(x[:K].detach(), 0)
        denominator = torch.exp(x[y])
        for j in range(K):
            if j == y:
                continue
            n_i, n_j = max(cum_samples[y], 1.0), max(cum_samples[j], 1.0)
            mitigation = (n_j / n_i) ** p if n_j < n_i else 1.0
            ratio = float(sigma[j] / max(float(sigma[y]), eps))
            compensation = ratio**q if ratio > 1 else 1.0
            denominator = denominator + mitigation * compensation * torch.exp(x[j])
        rows.append(-(x[y] - torch.log(denominator)) + objectness)
    return torch.stack(rows)


def test_matches_paper_formula_without_mmdet():
    logits, labels = _batch(rows=10, seed=3)
    cum_samples = [900.0, 20.0, 1.0, 0.0, 150.0]
    ours = _value_and_grad(lambda x: seesaw_loss(x, labels, cum_samples, reduction="none"), logits)
    ref = _value_and_grad(lambda x: _paper_reference(x, labels, cum_samples, 0.8, 2.0, 1e-2), logits)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    assert math.isclose(seesaw_loss(logits, labels, cum_samples).item(), ref[0].sum().item() / 10, rel_tol=1e-9)


def test_counts_foreground_of_kept_rows_before_the_loss():
    module = SeesawLoss(K)
    labels = torch.tensor([0, 0, 3, K, K, -1, 4, 3, 3])
    logits = torch.randn(labels.shape[0], K + 2, dtype=torch.float64)
    loss = module(logits, labels)
    assert module.cum_samples.tolist() == [2, 0, 0, 3, 1]
    assert module.cum_samples.dtype == torch.int64
    torch.testing.assert_close(loss, seesaw_loss(logits, labels, [2, 0, 0, 3, 1]))  # counts updated first
    module.eval()
    module(logits, labels)
    assert module.cum_samples.tolist() == [2, 0, 0, 3, 1]  # evaluation leaves the counts alone
    module.train()
    module(logits[:0], labels[:0])
    assert module.cum_samples.tolist() == [2, 0, 0, 3, 1]
    assert module.double().cum_samples.dtype == torch.int64  # dtype casts keep counts exact


def test_state_dict_round_trip():
    module = SeesawLoss(K)
    for step in range(3):
        logits, labels = _batch(seed=step)
        module(logits.float(), labels)
    state = module.state_dict()
    assert set(state) == {"cum_samples"}
    restored = SeesawLoss(K).eval()
    restored.load_state_dict(state)
    assert torch.equal(restored.cum_samples, module.cum_samples)
    module.eval()
    logits, labels = _batch(seed=11)
    assert torch.equal(restored(logits.float(), labels), module(logits.float(), labels))


def test_scores_follow_objectness():
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0, 0.0, 5.0, -5.0], [0.0, 0.0, 0.0, 0.0, 0.0, -5.0, 5.0]])
    scores = SeesawLoss(K).predict_scores(logits)
    assert scores.shape == (2, K + 1)
    torch.testing.assert_close(scores.sum(dim=1), torch.ones(2))
    assert scores[0].argmax().item() == 0 and scores[1].argmax().item() == K
