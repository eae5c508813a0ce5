"""Balanced Group Softmax against a float64 transcription of the reference code (FishYuLi/BalancedGroupSoftmax):
``tools/lvis_analyse.py`` (``get_cate_gs``, ``get_split``: groups, ``label2binlabel``, ``pred_slice``) and
``mmdet/models/bbox_heads/gs_bbox_head_with0.py`` (``GSBBoxHeadWith0._remap_labels``, ``_sample_others``,
``_slice_preds``, ``loss``, ``_merge_score``), written here with the reference's own column layout (group slices)
and labels (0 = background), independently of the package's helpers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from detbalance.losses import LOSS_TABLE, LOSSES, BAGSLoss, bags_groups, bags_loss, bags_scores
from detbalance.losses.bags import _chosen_rows
from detbalance.losses.without_statistics import without_statistics

PAPER_EDGES = (10, 100, 1000)


# ------------------------------------------------------------------------------------------ the transcription
def reference_tables(counts, edges):
    """``get_cate_gs``/``get_split`` for any edges: ``label2binlabel[G, K + 1]``, ``pred_slice`` (start, length)
    per group and the labels (1..K) of each foreground group, in label order."""
    num_bins = len(edges) + 2
    num_labels = len(counts) + 1
    binlabel_count = [1] * num_bins
    label2binlabel = torch.zeros(num_bins, num_labels, dtype=torch.long)
    label2binlabel[0, 1:] = binlabel_count[0]
    binlabel_count[0] += 1
    splits = [[] for _ in range(num_bins - 1)]
    for cid in range(1, num_labels):
        ins_count = counts[cid - 1]
        bin_index = num_bins - 1
        for i, edge in enumerate(edges):
            if ins_count < edge:
                bin_index = i + 1
                break
        label2binlabel[bin_index, cid] = binlabel_count[bin_index]
        binlabel_count[bin_index] += 1
        splits[bin_index - 1].append(cid)
    pred_slice, start = [], 0
    for count in binlabel_count:
        pred_slice.append((start, count))
        start += count
    return label2binlabel, pred_slice, splits


def to_reference(logits, labels, counts, edges):
    """Our ``[R, K + 1 + G]`` logits in the reference's column order, our labels in its numbering."""
    k = len(counts)
    _, _, splits = reference_tables(counts, edges)
    order = [k, k + 1]
    for g, split in enumerate(splits, start=1):
        order += [k + 1 + g] + [cid - 1 for cid in split]
    assert sorted(order) == list(range(logits.shape[1]))
    ref_labels = None if labels is None else torch.where(labels == k, 0, labels + 1)
    return logits[:, order], ref_labels


def sample_others(label, ratio, pick):
    """``_sample_others``: the group's proposals plus ``int(fg_num * ratio)`` of the others (``pick`` draws)."""
    fg = torch.where(label > 0, torch.ones_like(label), torch.zeros_like(label))
    fg_idx = fg.nonzero(as_tuple=True)[0]
    fg_num = fg_idx.shape[0]
    if fg_num == 0:
        return torch.zeros_like(label)
    bg_idx = (1 - fg).nonzero(as_tuple=True)[0]
    bg_num = bg_idx.shape[0]
    bg_sample_num = int(fg_num * ratio)
    if bg_sample_num >= bg_num:
        return torch.ones_like(label)
    fg[pick(bg_idx, bg_sample_num)] = 1
    return fg


def permutation_picks(num_rows, num_bins, seed):
    """The draw ``bags_loss`` makes with ``torch.Generator().manual_seed(seed)``: one random permutation of the
    rows per foreground group, in group order; a group's others are taken in the order of their values."""
    generator = torch.Generator().manual_seed(seed)
    perms = [torch.randperm(num_rows, generator=generator) for _ in range(num_bins - 1)]
    return lambda i: lambda idx, m: idx[perms[i - 1][idx].argsort()[:m]]


def reference_loss(logits, labels, counts, edges, ratio, seed):
    """``GSBBoxHeadWith0.loss``: the sum over the groups of their ``CrossEntropyLoss`` with ``avg_factor``."""
    label2binlabel, pred_slice, _ = reference_tables(counts, edges)
    cls_score, ref_labels = to_reference(logits, labels, counts, edges)
    pick = permutation_picks(labels.shape[0], len(pred_slice), seed)
    total = logits.new_zeros(())
    for i, (start, length) in enumerate(pred_slice):
        new_label = label2binlabel[i][ref_labels]
        weight = torch.ones_like(new_label) if i < 1 else sample_others(new_label, ratio, pick(i))
        avg_factor = max(torch.sum(weight).float().item(), 1.0)
        loss = F.cross_entropy(cls_score.narrow(1, start, length), new_label, reduction="none")
        total = total + (loss * weight.to(loss.dtype)).sum() / avg_factor
    return total


def reference_scores(logits, counts, edges):
    """``_merge_score``, then the background column moved last (our layout of scores)."""
    _, pred_slice, splits = reference_tables(counts, edges)
    cls_score, _ = to_reference(logits, None, counts, edges)
    new_scores = [F.softmax(cls_score.narrow(1, start, length), dim=1) for start, length in pred_slice]
    bg_score, fg_score = new_scores[0], new_scores[1:]
    num_labels = len(counts) + 1
    fg_merge = logits.new_zeros(logits.shape[0], num_labels)
    merge = logits.new_zeros(logits.shape[0], num_labels)
    for i, split in enumerate(splits):
        if split:
            fg_merge[:, torch.tensor(split)] = fg_score[i][:, 1:]
    fg_merge = bg_score.narrow(1, 1, 1) * fg_merge
    merge[:, 0] = bg_score[:, 0]
    merge[:, 1:] = fg_merge[:, 1:]
    return torch.cat([merge[:, 1:], merge[:, :1]], dim=1)


# ------------------------------------------------------------------------------------------------ the cases
STATS = {
    "paper edges, [1000, inf) empty": ([400, 150, 60, 20, 5, 1], PAPER_EDGES),
    "paper edges, every group": ([2000, 400, 150, 60, 20, 5, 1], PAPER_EDGES),
    "counts on the edges, zero": ([10, 100, 0, 1000, 9], PAPER_EDGES),
    "two edges": ([300, 12, 3, 0], (5.0, 50.0)),
    "no edge": ([30, 3, 7], ()),
}


def batch(counts, edges, rows=40, seed=0, classes=None):
    """Random float64 logits and labels; ``classes`` limits the foreground labels (background always present)."""
    g = torch.Generator().manual_seed(seed)
    k = len(counts)
    logits = (torch.randn(rows, k + len(edges) + 3, generator=g, dtype=torch.float64) * 2).requires_grad_()
    pool = torch.tensor(list(range(k)) if classes is None else classes)
    labels = pool[torch.randint(0, len(pool), (rows,), generator=g)]
    labels[torch.rand(rows, generator=g) < 0.5] = k
    return logits, labels


def check_against_reference(logits, labels, counts, edges, ratio, seed=3):
    ours_x = logits.detach().clone().requires_grad_()
    ours = bags_loss(
        ours_x,
        labels,
        counts,
        bin_edges=edges,
        others_sample_ratio=ratio,
        generator=torch.Generator().manual_seed(seed),
    )
    ref_x = logits.detach().clone().requires_grad_()
    ref = reference_loss(ref_x, labels, counts, edges, ratio, seed)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(ours_x.grad, ref_x.grad, rtol=1e-12, atol=1e-12)
    return ours


@pytest.mark.parametrize("ratio", [8.0, 1.0, 0.5, 0.0])
@pytest.mark.parametrize("stats", sorted(STATS))
def test_value_and_gradient_equal_the_reference(stats, ratio):
    counts, edges = STATS[stats]
    for seed in range(3):
        logits, labels = batch(counts, edges, seed=seed)
        check_against_reference(logits, labels, counts, edges, ratio, seed=seed + 10)


@pytest.mark.parametrize("stats", sorted(STATS))
def test_groups_without_a_proposal_and_all_background_batches(stats):
    counts, edges = STATS[stats]
    k = len(counts)
    for ratio in (8.0, 0.5):
        logits, labels = batch(counts, edges, classes=[k - 1], seed=5)  # one class: the other groups have none
        check_against_reference(logits, labels, counts, edges, ratio)
        logits, _ = batch(counts, edges, seed=6)
        background = torch.full((logits.shape[0],), k)
        loss = check_against_reference(logits, background, counts, edges, ratio)
        assert loss.item() > 0


def test_the_reference_default_samples_others():
    # 1 proposal of the rare class among 30 others: 8 others are drawn, not all 30 (nor none)
    counts, edges = [2000, 5], PAPER_EDGES
    logits, labels = batch(counts, edges, rows=31, seed=2, classes=[0])
    labels[:] = 2
    labels[0] = 1
    check_against_reference(logits, labels, counts, edges, 8.0)
    chosen = _chosen_rows(
        torch.nn.functional.one_hot(torch.where(labels == 1, 1, 0), 5).bool(),
        counted=torch.ones(31, dtype=torch.bool),
        num_counted=31,
        ratio=8.0,
        generator=torch.Generator().manual_seed(0),
    )
    assert chosen[:, 0].all() and int(chosen[:, 1].sum()) == 1 + 8 and bool(chosen[0, 1])
    assert not chosen[:, 2:].any()


def test_others_are_drawn_uniformly_without_replacement():
    # 2 proposals of group 1 and 10 others, ratio 2: 4 others each draw, every other one with probability 0.4
    own = torch.zeros(12, 3, dtype=torch.bool)
    own[:2, 1] = True
    own[2:, 0] = True
    counted = torch.ones(12, dtype=torch.bool)
    generator = torch.Generator().manual_seed(0)
    hits = torch.zeros(12)
    draws = 4000
    for _ in range(draws):
        chosen = _chosen_rows(own, counted=counted, num_counted=12, ratio=2.0, generator=generator)
        assert int(chosen[2:, 1].sum()) == 4 and chosen[:2, 1].all()
        hits += chosen[:, 1].double()
    assert (hits[2:] / draws - 0.4).abs().max() < 0.04


def test_predict_scores_equal_the_reference_merge():
    for counts, edges in STATS.values():
        logits, _ = batch(counts, edges, seed=7)
        module = BAGSLoss(len(counts), counts, bin_edges=edges, seed=0).double()
        expected = reference_scores(logits.detach(), counts, edges)
        torch.testing.assert_close(module.predict_scores(logits.detach()), expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(bags_scores(logits.detach(), module.class_group), expected, rtol=1e-12, atol=1e-12)
        assert module.predict_scores(logits.detach().float()).dtype == torch.float32


def test_gradcheck_with_sampling():
    counts, edges = [400, 150, 60, 20, 5, 1], PAPER_EDGES
    logits, labels = batch(counts, edges, rows=12, seed=4)
    weight = torch.rand(12, dtype=torch.float64) + 0.5

    def loss(x):
        generator = torch.Generator().manual_seed(1)
        return bags_loss(x, labels, counts, others_sample_ratio=0.5, generator=generator, sample_weight=weight)

    assert torch.autograd.gradcheck(loss, (logits,))


def test_module_draws_like_the_function_with_its_seed():
    counts, edges = [2000, 400, 150, 60, 20, 5, 1], PAPER_EDGES
    module = BAGSLoss(7, counts, others_sample_ratio=0.5, seed=9).double()
    for step in range(3):  # the module's generator moves on; the reference is replayed from the same state
        logits, labels = batch(counts, edges, seed=step)
        state = module.generator.get_state()
        got = module(logits, labels)
        generator = torch.Generator()
        generator.set_state(state)
        want = bags_loss(logits, labels, counts, others_sample_ratio=0.5, generator=generator)
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_sample_weights_zero_equals_dropping_and_one_changes_nothing():
    counts, edges = [400, 150, 60, 20, 5, 1], PAPER_EDGES
    logits, labels = batch(counts, edges, seed=8)
    no_draw = dict(others_sample_ratio=1e6)  # every other proposal is taken: no draw decides anything
    weight = torch.rand(labels.shape[0], dtype=torch.float64) + 0.5
    weight[::3] = 0.0
    kept = weight > 0
    full = bags_loss(logits, labels, counts, sample_weight=weight, **no_draw)
    subset = bags_loss(logits[kept], labels[kept], counts, sample_weight=weight[kept], **no_draw)
    torch.testing.assert_close(full, subset)
    ones = torch.ones(labels.shape[0], dtype=torch.float64)
    with_ones = bags_loss(logits, labels, counts, sample_weight=ones, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(with_ones, bags_loss(logits, labels, counts, generator=torch.Generator().manual_seed(0)))
    # 'none' rows scaled so that 'mean' is their sum over the proposals; normalizer replaces that count
    rows = bags_loss(logits, labels, counts, reduction="none", **no_draw)
    torch.testing.assert_close(bags_loss(logits, labels, counts, **no_draw), rows.sum() / labels.shape[0])
    torch.testing.assert_close(bags_loss(logits, labels, counts, normalizer=7.0, **no_draw), rows.sum() / 7.0)


# ------------------------------------------------------------------------------------- layout and the table
def test_groups_layout_and_registration():
    assert bags_groups([2000, 999, 1000, 10, 9, 0], PAPER_EDGES).tolist() == [4, 3, 4, 2, 1, 1]
    assert bags_groups([3, 300], ()).tolist() == [1, 1]
    module = BAGSLoss(6, [2000, 999, 1000, 10, 9, 0], bin_edges=[5, 50])
    assert module.num_groups == 4 and module.num_logits == 6 + 1 + 4
    assert module.class_group.tolist() == [3, 3, 3, 2, 2, 1]
    assert torch.equal(module.initial_bias(), torch.zeros(11))  # the reference's fc_cls bias starts at 0
    assert "class_group" in module.state_dict() and "samples_per_class" not in module.state_dict()
    spec = LOSS_TABLE["BAGSLoss"]
    assert LOSSES["BAGSLoss"] is BAGSLoss and spec.stats_arg == "samples_per_class"
    assert spec.defaults() == {"bin_edges": (10, 100, 1000), "others_sample_ratio": 8.0}
    assert spec.config_keys() == {"BIN_EDGES": "bin_edges", "OTHERS_SAMPLE_RATIO": "others_sample_ratio"}
    stats = SimpleNamespace(class_names=["a", "b"], instance_counts=[50, 5000], image_counts=[5, 9], num_images=9)
    assert BAGSLoss.from_stats(2, stats, bin_edges=(100,)).class_group.tolist() == [1, 2]


def test_model_built_without_statistics_scores_with_the_checkpoint_groups():
    counts = [2000, 400, 150, 60, 20, 5, 1]
    trained = BAGSLoss(7, counts, seed=0)
    inference = without_statistics(BAGSLoss, 7, FileNotFoundError("weights file w.json does not exist"))
    assert inference.class_group.tolist() == [1] * 7  # placeholder statistics: one instance per class
    inference.load_state_dict(trained.state_dict())
    logits = torch.randn(5, trained.num_logits)
    torch.testing.assert_close(inference.predict_scores(logits), trained.predict_scores(logits))
    with pytest.raises(FileNotFoundError, match="w.json does not exist"):
        inference(logits, torch.tensor([0, 1, 7, 7, 3]))


# -------------------------------------------------------------------------------------------------- errors
BAD = [
    (lambda: bags_loss(torch.zeros(2, 9), torch.tensor([0, 3]), [5, 50, 500, 5000]), r"\[R, 10\].*got \(2, 9\)"),
    (lambda: BAGSLoss(3, [5, 50, 500])(torch.zeros(2, 8), torch.tensor([0, 3])), r"\[R, 9\] for num_classes=3"),
    (lambda: BAGSLoss(3, [5, 50, 500]).predict_scores(torch.zeros(2, 10)), r"\[R, 9\] for num_classes=3, got \(2, 10"),
    (lambda: BAGSLoss(3, [5, 50, 500], bin_edges=(10, 10, 100)), r"strictly increasing, got 10 after 10"),
    (lambda: BAGSLoss(3, [5, 50, 500], bin_edges=(100, 10)), r"strictly increasing, got 10 after 100"),
    (lambda: BAGSLoss(3, [5, 50, 500], bin_edges=(0, 10)), r"finite numbers > 0, got 0 in \(0, 10\)"),
    (lambda: BAGSLoss(3, [5, 50, 500], bin_edges=(10, math.nan)), r"finite numbers > 0, got nan"),
    (lambda: BAGSLoss(3, [5, 50, 500], bin_edges=(True,)), r"finite numbers > 0, got True"),
    (lambda: BAGSLoss(3, [5, 50, 500], bin_edges=10), r"sequence of numbers, got 10"),
    (lambda: BAGSLoss(3, [5, 50, 500], bin_edges="10"), r"finite numbers > 0, got '1' in '10'"),
    (lambda: BAGSLoss(3, [5, -3, 500]), r"samples_per_class must be finite and >= 0, got -3.0 at index 1"),
    (lambda: BAGSLoss(3, [5, 50, math.inf]), r"samples_per_class must be finite and >= 0, got inf at index 2"),
    (lambda: BAGSLoss(3, [5, 50]), r"samples_per_class must have shape \[3\], got \(2,\)"),
    (lambda: bags_loss(torch.zeros(2, 9), torch.tensor([0, 3]), [5, -1.5, 5]), r"got -1.5 at index 1"),
    (lambda: BAGSLoss(3, [5, 50, 500], others_sample_ratio=-1), r"others_sample_ratio must lie in .*got -1"),
    (lambda: BAGSLoss(3, [5, 50, 500], seed=-2), r"seed=-2"),
    (lambda: bags_scores(torch.zeros(2, 9), torch.tensor([1.0, 2.0, 3.0])), r"class_group must be an int64"),
    (
        lambda: bags_scores(torch.zeros(2, 9), torch.tensor([1, 5, 2])),
        r"class_group \(logits \[R, K \+ 1 \+ G\] with K = 3\) holds 5 at index 1, expected groups in \[1, 4\]",
    ),
]


@pytest.mark.parametrize("build,message", BAD)
def test_bad_input_names_the_value(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_checkpoint_groups_that_do_not_fit_are_refused():
    module = BAGSLoss(3, [5, 50, 500])
    state = module.state_dict()
    state["class_group"] = torch.tensor([1, 7, 2])
    with pytest.raises(ValueError, match=r"class_group holds 7 at index 1, expected groups in \[1, 4\]"):
        module.load_state_dict(state)
    with pytest.raises(ValueError, match=r"class_group has shape \(4,\), expected \(3,\)"):
        module.load_state_dict(BAGSLoss(4, [5, 50, 500, 5000]).state_dict())
    assert module.class_group.tolist() == [1, 2, 3]
