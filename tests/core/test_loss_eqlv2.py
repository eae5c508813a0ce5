"""eqlv2_loss / EQLv2Loss (K + 1 outputs, objectness last) against a float64 transcription of the official code
(tztztztztz/eqlv2 ``mmdet/models/losses/eqlv2.py``) and MMDetection's EQLV2Loss, over several steps, values,
gradients and state; the objectness column's effect on test scores; the former K-column checkpoint layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from detbalance.losses import EQLv2Loss, eqlv2_loss
from detbalance.losses.eqlv2 import eqlv2_gradient_statistics

K = 5


class OfficialEQLv2:
    """Independent float64 transcription of the official EQLv2 (Tan et al., CVPR 2021), single process.

    ``cls_score[n, K + 1]`` (last column objectness), ``label[n]`` in ``[0, K]``. First call: every weight 1.
    Later: ``neg_w = [f(pos_neg), 1]``, ``pos_w = 1 + alpha (1 - neg_w)``, ``f(x) = 1 / (1 + exp(-gamma (x - mu)))``.
    Loss: ``sum(BCE * w) / n``. Statistics of the step (collected in forward): ``|grad| * target * w`` and
    ``|grad| * (1 - target) * w`` summed over rows, objectness column dropped.
    """

    def __init__(self, num_classes, gamma=12.0, mu=0.8, alpha=4.0):
        self.num_classes, self.gamma, self.mu, self.alpha = num_classes, gamma, mu, alpha
        self.pos_grad = self.neg_grad = self.pos_neg = None

    def __call__(self, cls_score, label):
        n, c = cls_score.shape
        target = torch.zeros(n, c, dtype=cls_score.dtype)
        target[torch.arange(n), label] = 1.0
        if self.pos_grad is None:
            self.pos_grad = torch.zeros(self.num_classes, dtype=cls_score.dtype)
            self.neg_grad = torch.zeros(self.num_classes, dtype=cls_score.dtype)
            neg_w = torch.ones(n, c, dtype=cls_score.dtype)
            pos_w = torch.ones(n, c, dtype=cls_score.dtype)
        else:
            mapped = 1.0 / (1.0 + torch.exp(-self.gamma * (self.pos_neg - self.mu)))
            neg_w = torch.cat([mapped, torch.ones(1, dtype=cls_score.dtype)]).expand(n, c)
            pos_w = (1.0 + self.alpha * (1.0 - neg_w)).expand(n, c)
        weight = pos_w * target + neg_w * (1.0 - target)
        loss = (F.binary_cross_entropy_with_logits(cls_score, target, reduction="none") * weight).sum() / n
        prob = torch.sigmoid(cls_score.detach())
        grad = (target * (prob - 1.0) + (1.0 - target) * prob).abs()
        self.pos_grad = self.pos_grad + (grad * target * weight).sum(0)[:-1]
        self.neg_grad = self.neg_grad + (grad * (1.0 - target) * weight).sum(0)[:-1]
        self.pos_neg = self.pos_grad / (self.neg_grad + 1e-10)
        return loss

    @staticmethod
    def scores(cls_score):
        prob = torch.sigmoid(cls_score)
        out = prob.clone()
        out[:, :-1] = prob[:, :-1] * (1.0 - prob[:, -1:])
        return out


def _batch(rows=16, seed=0, classes=K):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, classes + 1, generator=generator, dtype=torch.float64) * 2
    labels = torch.randint(0, classes + 1, (rows,), generator=generator)
    return logits, labels


def test_num_logits_is_k_plus_one():
    assert EQLv2Loss(K).num_logits == K + 1
    assert EQLv2Loss(1203).num_logits == 1204


def test_matches_official_code_over_steps():
    """Values, gradients and accumulated statistics equal the official code's, step after step (float64)."""
    reference = OfficialEQLv2(K)
    ours = EQLv2Loss(K).double()
    for step in range(5):
        logits, labels = _batch(seed=step)
        if step == 2:
            labels[labels == 3] = K  # class 3 absent from a step: its ratio must keep its history
        x_ref = logits.clone().requires_grad_(True)
        x_ours = logits.clone().requires_grad_(True)
        loss_ref, loss_ours = reference(x_ref, labels), ours(x_ours, labels)
        torch.testing.assert_close(loss_ours, loss_ref, rtol=1e-10, atol=1e-12)
        loss_ref.backward()
        loss_ours.backward()
        torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.pos_grad, reference.pos_grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.neg_grad, reference.neg_grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.pos_neg, reference.pos_neg, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.predict_scores(logits), reference.scores(logits), rtol=1e-12, atol=1e-14)
    # the weights moved away from 1 and differ between classes
    assert float(ours.pos_neg.max() - ours.pos_neg.min()) > 0.05


def test_matches_mmdet_eqlv2_loss_over_steps():
    import mmdet.models.losses as losses

    reference = losses.EQLV2Loss(num_classes=K).double()
    ours = EQLv2Loss(K).double()
    for step in range(4):
        logits, labels = _batch(seed=10 + step)
        x_ref = logits.clone().requires_grad_(True)
        x_ours = logits.clone().requires_grad_(True)
        loss_ref, loss_ours = reference(x_ref, labels), ours(x_ours, labels)
        torch.testing.assert_close(loss_ours, loss_ref, rtol=1e-9, atol=1e-12)
        loss_ref.backward()
        loss_ours.backward()
        torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-9, atol=1e-12)
        for name in ("pos_grad", "neg_grad", "pos_neg"):
            torch.testing.assert_close(getattr(ours, name), getattr(reference, name), rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(ours.predict_scores(logits), reference.get_activation(logits.clone()))


def test_gradcheck_and_statistics_are_gradient_magnitudes():
    logits, labels = _batch(rows=7)
    pos_neg = torch.tensor([0.05, 0.4, 0.8, 1.1, 3.0], dtype=torch.float64)
    x = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: eqlv2_loss(t, labels, pos_neg), (x,))
    eqlv2_loss(x, labels, pos_neg, reduction="sum").backward()
    pos, neg = eqlv2_gradient_statistics(logits, labels, pos_neg)
    target = F.one_hot(labels, K + 1).double()
    grad = x.grad.abs()[:, :K]  # objectness column: no statistics
    torch.testing.assert_close(pos, (grad * target[:, :K]).sum(0))
    torch.testing.assert_close(neg, (grad * (1 - target[:, :K])).sum(0))


def test_objectness_column_has_weight_one():
    """The objectness logit is a BCE with target 1 on background rows and weight 1 whatever the class ratios."""
    logits, labels = _batch(rows=9)
    target = (labels == K).double()
    for pos_neg in ([0.0, 0.01, 3.0, 0.5, 0.9], [100.0] * K):
        x = logits.clone().requires_grad_(True)
        eqlv2_loss(x, labels, torch.tensor(pos_neg, dtype=torch.float64), reduction="sum").backward()
        torch.testing.assert_close(x.grad[:, K], torch.sigmoid(logits[:, K]) - target)


def test_sample_weights_and_ignored_rows_enter_loss_and_statistics():
    logits, labels = _batch()
    labels[3] = -1
    weight = torch.rand(labels.shape[0], dtype=torch.float64)
    weight[5] = 0.0
    keep = (labels != -1) & (weight > 0)
    module = EQLv2Loss(K).double()
    x = logits.clone().requires_grad_(True)
    loss = module(x, labels, sample_weight=weight)
    per_row = eqlv2_loss(logits, labels, torch.full((K,), 100.0), reduction="none")
    torch.testing.assert_close(loss, (per_row * weight).sum() / keep.sum())  # rows with weight 0 not counted
    loss.backward()
    pos, neg = eqlv2_gradient_statistics(
        logits[keep], labels[keep], torch.full((K,), 100.0), sample_weight=weight[keep]
    )
    torch.testing.assert_close(module.pos_grad, pos)
    torch.testing.assert_close(module.neg_grad, neg)
    torch.testing.assert_close(EQLv2Loss(K).double()(logits, labels, normalizer=4.0), per_row.sum() / 4.0)


def test_state_changes_only_on_backward():
    module = EQLv2Loss(K)
    initial = {k: v.clone() for k, v in module.state_dict().items()}
    logits, labels = _batch()
    logits = logits.float().requires_grad_(True)
    module(logits, labels)  # forward without backward
    with torch.no_grad():
        module(logits, labels)
    module(logits.detach(), labels).item()  # logits without grad
    empty = torch.zeros(0, K + 1, requires_grad=True)
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


def test_state_of_the_former_k_column_layout_is_refused():
    old = EQLv2Loss(K).state_dict()
    old._metadata[""]["version"] = 1  # what the K-column EQLv2Loss saved (nn.Module's default version)
    with pytest.raises(
        ValueError,
        match=rf"K = {K} outputs, weight shape \({K}, C\).*"
        rf"K \+ 1 = {K + 1} outputs, weight shape \({K + 1}, C\)",
    ):
        EQLv2Loss(K).load_state_dict(old)
    nested = torch.nn.ModuleDict({"cls_loss": EQLv2Loss(K)})
    state = nested.state_dict()
    state._metadata["cls_loss"]["version"] = 1
    with pytest.raises(ValueError, match="cls_loss.pos_grad"):
        nested.load_state_dict(state)


def test_statistics_stay_non_negative_when_a_class_only_has_positives():
    """neg_grad of a class seen only as a positive is 0, not -1 ulp (it is a total minus the positive terms)."""
    module = EQLv2Loss(16)
    labels = torch.tensor([-1, 6])
    for step in range(3):
        g = torch.Generator().manual_seed(332 + step)
        logits = (torch.randn(2, 17, generator=g, dtype=torch.float64) * 0.3).float().requires_grad_(True)
        module(logits, labels).backward()
    assert bool((module.neg_grad >= 0).all()) and bool((module.pos_grad >= 0).all())


def test_background_only_steps_lower_the_score_of_a_class_without_positives():
    """A class whose pos/neg ratio is 0 gets a negative weight f(0) ~ 7e-5: background rows barely move its own
    logit. Its test score still falls, through the objectness column; a K-column head could not do that."""
    torch.manual_seed(0)
    rare = 1
    loss_fn = EQLv2Loss(3)
    loss_fn.neg_grad[rare] = 1.0  # pos_grad 0: ratio 0
    loss_fn.pos_neg.copy_(loss_fn.pos_grad / (loss_fn.neg_grad + 1e-10))
    assert loss_fn.pos_neg[rare].item() == 0.0
    classifier = torch.nn.Linear(8, loss_fn.num_logits)
    with torch.no_grad():
        classifier.weight.normal_(std=0.01)
        classifier.bias.copy_(loss_fn.initial_bias())
        classifier.bias[rare] = 2.0  # the rare class starts confident
    optimizer = torch.optim.SGD(classifier.parameters(), lr=0.5)
    probe = torch.randn(64, 8)

    def rare_scores():
        with torch.no_grad():
            logits = classifier(probe)
            return loss_fn.predict_scores(logits)[:, rare].mean().item(), torch.sigmoid(logits[:, rare]).mean().item()

    score_before, class_prob_before = rare_scores()
    for _ in range(30):
        optimizer.zero_grad()
        loss_fn(classifier(torch.randn(32, 8)), torch.full((32,), 3)).backward()
        optimizer.step()
    score_after, class_prob_after = rare_scores()
    assert loss_fn.pos_neg[rare].item() == 0.0
    assert class_prob_after > 0.99 * class_prob_before  # sigmoid(x_c) alone (the K-column score) hardly moves
    assert score_after < 0.5 * score_before  # the test score falls
