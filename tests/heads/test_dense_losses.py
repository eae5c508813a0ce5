"""Focal loss with per-class alpha and Equalized Focal Loss against independent transcriptions (float64).

EFL reference: the EqualizedFocalLoss of ModelTC/EOD (Li et al., CVPR 2022), re-written here in its own label
convention (background column 0, dropped) with its statistics read by a gradient hook on the logits, as the
official code does on the head's output.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

from detbalance.losses import (
    DENSE_LOSSES,
    LOSSES,
    EqualizedFocalLoss,
    FocalLoss,
    alpha_from_weights,
    equalized_focal_loss,
    focal_loss,
)
from detbalance.losses.efl import equalized_focal_gradient_statistics

K = 5


def _batch(rows=40, seed=0, ignore=True):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, K, generator=g, dtype=torch.float64) * 2
    # long-tailed labels: class 0 often, class K-1 rarely, background most often
    labels = torch.multinomial(torch.tensor([8.0, 4.0, 2.0, 1.0, 0.5, 20.0]), rows, replacement=True, generator=g)
    if ignore:
        labels[::9] = -1
    return logits, labels


class OfficialEFL:
    """The reference EFL (sigmoid focal loss with gamma_j = gamma_b + s (1 - g_j), weight gamma_j / gamma_b),
    state updated from the gradient of its loss w.r.t. the logits, pos_neg initially 1 and clamped to [0, 1]."""

    def __init__(self, num_classes, gamma=2.0, alpha=0.25, scale=8.0):
        self.k, self.gamma, self.alpha, self.scale = num_classes, gamma, alpha, scale
        self.pos_grad = torch.zeros(num_classes, dtype=torch.float64)
        self.neg_grad = torch.zeros(num_classes, dtype=torch.float64)
        self.pos_neg = torch.ones(num_classes, dtype=torch.float64)

    def loss(self, x, ours_labels, normalizer):
        # official label convention: 0 = background, classes 1..K; -1 ignored
        target_labels = torch.where(ours_labels == self.k, torch.zeros_like(ours_labels), ours_labels + 1)
        n = x.shape[0]
        full = x.new_zeros(n, self.k + 1)
        keep = ours_labels != -1
        full[torch.arange(n)[keep], target_labels[keep]] = 1
        target = full[:, 1:]
        self.mask, self.target = keep, target
        inputs, targets = x[keep], target[keep]
        pred = torch.sigmoid(inputs)
        pred_t = pred * targets + (1 - pred) * (1 - targets)
        dy_gamma = self.gamma + self.scale * (1 - self.pos_neg)
        ff = dy_gamma.view(1, -1).expand_as(inputs)
        wf = ff / self.gamma
        cls_loss = -torch.log(pred_t) * torch.pow(1 - pred_t, ff) * wf
        alpha_t = self.alpha * targets + (1 - self.alpha) * (1 - targets)
        return (alpha_t * cls_loss).sum() / normalizer

    def collect(self, grad):
        # d(loss)/d(logits) of the normalised loss, as the reference's hook on the head's output reads it
        grad = grad.abs()[self.mask]
        target = self.target[self.mask]
        self.pos_grad += (grad * target).sum(0)
        self.neg_grad += (grad * (1 - target)).sum(0)
        self.pos_neg = torch.clamp(self.pos_grad / (self.neg_grad + 1e-10), min=0, max=1)


@pytest.mark.parametrize("given", [True, False], ids=["normalizer", "positives"])
def test_efl_matches_official_value_gradient_and_statistics_over_steps(given):
    reference = OfficialEFL(K)
    ours = EqualizedFocalLoss(K).double()
    for step in range(6):
        logits, labels = _batch(seed=step)
        positives = float(((labels >= 0) & (labels < K)).sum().clamp(min=1))
        # a given normalizer (e.g. mmdet's avg_factor, detectron2's running mean) differs from step to step
        normalizer = positives * (1.0 + step) if given else positives
        x_ref = logits.clone().requires_grad_(True)
        x_ref.register_hook(reference.collect)
        x_ours = logits.clone().requires_grad_(True)
        loss_ref = reference.loss(x_ref, labels, normalizer)
        loss_ours = ours(x_ours, labels, normalizer=normalizer if given else None)
        torch.testing.assert_close(loss_ours, loss_ref, rtol=1e-12, atol=1e-12)
        loss_ref.backward()
        loss_ours.backward()
        torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.pos_grad, reference.pos_grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.neg_grad, reference.neg_grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(ours.pos_neg, reference.pos_neg, rtol=1e-10, atol=1e-12)
    # the tail classes ended with ratios below 1, so their focusing exponent grew
    assert float(ours.pos_neg.min()) < 1.0


def test_efl_statistics_are_gradient_magnitudes_with_sample_weights():
    logits, labels = _batch(seed=11)
    pos_neg = torch.tensor([1.0, 0.7, 0.3, 0.1, 0.0], dtype=torch.float64)
    weight = torch.rand(len(labels), dtype=torch.float64) * 2
    x = logits.clone().requires_grad_(True)
    loss = equalized_focal_loss(x, labels, pos_neg, sample_weight=weight, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    pos, neg = equalized_focal_gradient_statistics(logits, labels, pos_neg, sample_weight=weight)
    target = torch.zeros_like(logits)
    fg = (labels >= 0) & (labels < K)
    target[fg.nonzero().flatten(), labels[fg]] = 1
    torch.testing.assert_close(pos, (grad.abs() * target).sum(0))
    torch.testing.assert_close(neg, (grad.abs() * (1 - target)).sum(0))


def test_efl_with_ratio_one_or_zero_scale_is_focal_loss():
    logits, labels = _batch(seed=3)
    focal = focal_loss(logits, labels, alpha=0.25, gamma=2.0)
    torch.testing.assert_close(equalized_focal_loss(logits, labels, torch.ones(K)), focal)
    torch.testing.assert_close(equalized_focal_loss(logits, labels, torch.rand(K), scale=0.0), focal)


def test_focal_loss_equals_torchvision_and_per_class_alpha_formula():
    logits, labels = _batch(seed=5, ignore=False)
    target = F.one_hot(labels, K + 1)[:, :K].to(logits.dtype)
    expected = sigmoid_focal_loss(logits, target, alpha=0.25, gamma=2.0, reduction="sum")
    torch.testing.assert_close(focal_loss(logits, labels, reduction="sum"), expected)
    # per-class alpha: column j weighs its positives alpha_j and its negatives 1 - alpha_j
    alphas = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9], dtype=torch.float64)
    per_column = sum(
        sigmoid_focal_loss(logits[:, j], target[:, j], alpha=float(alphas[j]), gamma=1.5, reduction="sum")
        for j in range(K)
    )
    torch.testing.assert_close(focal_loss(logits, labels, alpha=alphas, gamma=1.5, reduction="sum"), per_column)
    no_alpha = sigmoid_focal_loss(logits, target, alpha=-1, gamma=2.0, reduction="sum")
    torch.testing.assert_close(focal_loss(logits, labels, alpha=None, reduction="sum"), no_alpha)
    # 'mean' divides by the number of foreground rows
    num_fg = int((labels < K).sum())
    torch.testing.assert_close(focal_loss(logits, labels), expected / num_fg)


def test_alpha_from_weights_scales_the_odds():
    alphas = alpha_from_weights([1.0, 2.0, 0.5], alpha=0.25)
    odds = alphas / (1 - alphas)
    torch.testing.assert_close(odds, torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64) / 3.0)
    stats = _weights_file([1.0, 2.0, 0.5, 1.0, 4.0])
    module = FocalLoss.from_stats(K, stats, alpha=0.25)
    torch.testing.assert_close(module.alpha, alpha_from_weights(stats.weights, 0.25).float())
    with pytest.raises(ValueError, match="need a WeightsFile"):
        FocalLoss.from_stats(K, stats.stats)


def _weights_file(weights):
    from detbalance.weights import ClassStats, WeightsFile

    stats = ClassStats([f"c{i}" for i in range(K)], [100, 50, 20, 5, 1], [80, 40, 10, 5, 1], 100)
    return WeightsFile(
        stats=stats, scheme="inverse", weights=list(weights), background_weight=1.0, groups=["f", "c", "c", "r", "r"]
    )


@pytest.mark.parametrize("name", sorted(DENSE_LOSSES))
def test_gradcheck(name):
    logits, labels = _batch(rows=12, seed=2)
    weight = torch.rand(12, dtype=torch.float64) + 0.5
    if name == "FocalLoss":
        fn = lambda x: focal_loss(x, labels, alpha=[0.2, 0.3, 0.4, 0.5, 0.6], sample_weight=weight)  # noqa: E731
    else:
        pos_neg = torch.tensor([1.0, 0.6, 0.3, 0.05, 0.0], dtype=torch.float64)
        fn = lambda x: equalized_focal_loss(x, labels, pos_neg, sample_weight=weight)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (logits.requires_grad_(True),))


@pytest.mark.parametrize("name", sorted(DENSE_LOSSES))
def test_edge_cases(name):
    module = DENSE_LOSSES[name](K)
    # empty batch and all-ignored batch keep the graph and give 0
    for logits, labels in (
        (torch.zeros(0, K), torch.zeros(0, dtype=torch.int64)),
        (torch.randn(3, K), torch.full((3,), -1)),
    ):
        logits.requires_grad_(True)
        loss = module(logits, labels)
        loss.backward()
        assert float(loss.detach()) == 0.0 and float(logits.grad.abs().sum()) == 0.0
    # background only: positive loss, normalised by 1 (no foreground row)
    logits = torch.randn(4, K)
    torch.testing.assert_close(
        module(logits, torch.full((4,), K)), module(logits, torch.full((4,), K), reduction_override="sum")
    )
    # bad input names the value
    with pytest.raises(ValueError, match=r"logits must have shape \[R, K\] = \[R, 5\]"):
        module(torch.zeros(2, K + 1), torch.tensor([0, K]))
    with pytest.raises(ValueError, match="got 7 at position 1"):
        module(torch.zeros(2, K), torch.tensor([0, 7]))
    with pytest.raises(ValueError, match="logits must be finite, got nan"):
        module(torch.tensor([[float("nan")] + [0.0] * (K - 1)]), torch.tensor([0]))
    assert module.predict_scores(torch.zeros(2, K)).shape == (2, K + 1)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="alpha must lie in"):
        FocalLoss(K, alpha=1.5)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\] for every class, got 2.0 at index 1"):
        FocalLoss(K, alpha=[0.1, 2.0, 0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match=r"alpha must have shape \[5\]"):
        FocalLoss(K, alpha=[0.1, 0.2])
    with pytest.raises(ValueError, match=r"gamma must lie in \(0.0, inf\], got 0"):
        EqualizedFocalLoss(K, gamma=0)
    with pytest.raises(ValueError, match="scale must lie in"):
        EqualizedFocalLoss(K, scale=-1.0)


def test_efl_state_changes_only_on_backward_and_round_trips():
    module = EqualizedFocalLoss(K)
    logits, labels = _batch(seed=4)
    logits = logits.float()
    with torch.no_grad():
        module(logits, labels)
    module(logits, labels)  # not back-propagated
    assert float(module.pos_grad.sum()) == 0.0 and bool((module.pos_neg == 1).all())
    x = logits.clone().requires_grad_(True)
    module(x, labels).backward()
    assert float(module.neg_grad.sum()) > 0
    restored = EqualizedFocalLoss(K)
    restored.load_state_dict(module.state_dict())
    for name in ("pos_grad", "neg_grad", "pos_neg"):
        torch.testing.assert_close(getattr(restored, name), getattr(module, name))


def test_dense_losses_stay_out_of_the_box_head_table():
    assert not set(DENSE_LOSSES) & set(LOSSES)


# ------------------------------------------------------------------------------------ distributed statistics

WORLD_SIZE, ROWS, STEPS = 2, 12, 3


def _train_efl(rank: int, world_size: int, split: str) -> EqualizedFocalLoss:
    module = EqualizedFocalLoss(K).double()
    for step in range(STEPS):
        logits, labels = _batch(rows=ROWS, seed=20 + step)
        weights = torch.rand(ROWS, generator=torch.Generator().manual_seed(step), dtype=torch.float64) + 0.5
        weights[[0, 7]] = 0.0
        if split == "halves":
            rows = slice(rank * ROWS // world_size, (rank + 1) * ROWS // world_size)
        else:  # "empty": the last rank gets no anchor at all, and still joins the sum
            rows = slice(0, ROWS) if rank == 0 else slice(0, 0)
        # every rank divides by the same normalizer (the whole batch's positives), so the ranks' statistics add up
        # to one process's over all rows
        normalizer = float(((labels >= 0) & (labels < K)).sum().clamp(min=1))
        x = logits[rows].clone().requires_grad_(True)
        module(x, labels[rows], sample_weight=weights[rows], normalizer=normalizer).backward()
    return module


def _efl_worker(rank: int, init_file: str, out_dir: str, split: str) -> None:
    from dist_helpers import init_gloo

    init_gloo(rank, WORLD_SIZE, init_file)
    torch.save(_train_efl(rank, WORLD_SIZE, split).state_dict(), f"{out_dir}/rank{rank}.pt")


@pytest.mark.parametrize("split", ["halves", "empty"])
def test_efl_statistics_are_summed_over_ranks(tmp_path, split):
    from dist_helpers import run_ranks

    run_ranks(_efl_worker, (str(tmp_path / "init"), str(tmp_path), split), WORLD_SIZE, timeout_s=60)
    expected = _train_efl(0, 1, "halves").state_dict()
    assert float(expected["pos_grad"].sum()) > 0 and float(expected["pos_neg"].min()) < 1
    for rank in range(WORLD_SIZE):
        state = torch.load(tmp_path / f"rank{rank}.pt")
        assert set(state) == set(expected)
        for name, value in expected.items():
            torch.testing.assert_close(state[name], value, rtol=1e-9, atol=1e-12, msg=f"rank {rank}: {name}")


def test_benchmark_models_name_existing_configs_and_losses_their_heads_take():
    from dbbench.benchmark.models import HEAD_ROWS, MODELS, config_path
    from detbalance.losses import check_box_head_loss, check_dense_head_loss, dense_head_losses

    for key, model in MODELS.items():
        for framework in ("detectron2", "mmdet"):
            if getattr(model, framework) is not None:
                assert config_path(key, framework).is_file(), (key, framework)
    for key, loss in HEAD_ROWS:
        if MODELS[key].head == "dense":
            check_dense_head_loss(dense_head_losses()[loss], key)
        elif loss != "ce":
            assert loss in LOSSES
            check_box_head_loss(loss, key)
    with pytest.raises(ValueError, match="no detectron2 config"):
        config_path("fcos", "detectron2")


@pytest.mark.parametrize("module_name", ["focal", "efl"])
def test_docstring_examples_run(module_name):
    import doctest
    import importlib

    module = importlib.import_module(f"detbalance.losses.{module_name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
