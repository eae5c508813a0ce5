"""Properties every core loss shares: gradcheck, module == function, empty/all-background/ignored batches,
reductions, autocast, validation errors, test-time scores, registry, ``from_stats`` and the docstring examples."""

from __future__ import annotations

import doctest
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from detbalance.losses import (
    LOSSES,
    BAGSLoss,
    ClassBalancedFocalLoss,
    EQLv2Loss,
    EqualizationLoss,
    FederatedLoss,
    SeesawLoss,
    WeightedCrossEntropyLoss,
    bags_loss,
    class_balanced_focal_loss,
    eqlv2_loss,
    equalization_loss,
    federated_loss,
    seesaw_loss,
    weighted_cross_entropy,
)

K = 4
CLASS_WEIGHT = [1.0, 2.0, 4.0, 8.0, 0.5]
COUNTS = [300.0, 40.0, 6.0, 1.0]
FREQ = [0.5, 0.1, 0.002, 0.0005]
POS_NEG = [1.2, 0.8, 0.3, 0.02]
SEED = 7


@dataclass
class Case:
    extra: int  # logit columns beyond K
    function: Callable  # (logits, labels, **kw) -> loss, statistics bound
    module: Callable  # () -> nn.Module whose forward equals `function`
    #: (label, K, extra) -> logits row whose scores' arg-max is the label; None: the class's own column (and
    #: the background column K when there is one; Seesaw: the objectness columns decide background)
    perfect_row: Callable | None = None


def _fed_function(x, y, **kw):
    return federated_loss(x, y, COUNTS, num_sampled=3, generator=torch.Generator().manual_seed(SEED), **kw)


def _eqlv2_module():
    module = EQLv2Loss(K)
    module.pos_neg.copy_(torch.tensor(POS_NEG))
    return module


def _bags_function(x, y, **kw):
    generator = torch.Generator().manual_seed(SEED)
    return bags_loss(x, y, COUNTS, others_sample_ratio=1.0, generator=generator, **kw)


def _bags_perfect_row(label: int, k: int, extra: int) -> torch.Tensor:
    """Background: group 0's background column; class c: group 0's foreground column and c's column."""
    row = torch.full((k + extra,), -8.0)
    if label == k:
        row[k] = 8.0
    elif label >= 0:
        row[k + 1] = row[label] = 8.0
    return row


def _seesaw_module():
    module = SeesawLoss(K).eval()  # eval: counts stay as set
    module.cum_samples.copy_(torch.tensor(COUNTS).long())
    return module


CASES = {
    "WeightedCrossEntropyLoss": Case(
        1,
        lambda x, y, **kw: weighted_cross_entropy(x, y, CLASS_WEIGHT, **kw),
        lambda: WeightedCrossEntropyLoss(K, CLASS_WEIGHT),
    ),
    "ClassBalancedFocalLoss": Case(
        0,
        lambda x, y, **kw: class_balanced_focal_loss(x, y, COUNTS, beta=0.99, background_weight=0.5, **kw),
        lambda: ClassBalancedFocalLoss(K, COUNTS, beta=0.99, background_weight=0.5),
    ),
    "EqualizationLoss": Case(
        0,
        lambda x, y, **kw: equalization_loss(x, y, FREQ, lambda_=0.01, **kw),
        lambda: EqualizationLoss(K, FREQ, lambda_=0.01),
    ),
    "EQLv2Loss": Case(1, lambda x, y, **kw: eqlv2_loss(x, y, torch.tensor(POS_NEG), **kw), _eqlv2_module),
    "SeesawLoss": Case(2, lambda x, y, **kw: seesaw_loss(x, y, COUNTS, **kw), _seesaw_module),
    "FederatedLoss": Case(0, _fed_function, lambda: FederatedLoss(K, COUNTS, num_sampled=3, seed=SEED)),
    # COUNTS fill groups 1 to 3 of 5 (group [1000, inf) is empty); ratio 1 draws others in make_batch's batch
    "BAGSLoss": Case(
        6,
        _bags_function,
        lambda: BAGSLoss(K, COUNTS, others_sample_ratio=1.0, seed=SEED),
        _bags_perfect_row,
    ),
}
NAMES = sorted(CASES)


def make_batch(case: Case, rows: int = 8, dtype=torch.float64, requires_grad: bool = True):
    """Logits with every label's own class scoring highest, so Seesaw's compensation factor is 1 around them
    (piecewise constant, hence differentiable for gradcheck), and labels covering fg, bg and ignored rows."""
    labels = torch.tensor([0, 1, 2, 3, K, K, -1, 2][:rows] + [K] * max(0, rows - 8), dtype=torch.int64)
    logits = torch.randn(rows, K + case.extra, dtype=torch.float64)
    fg = (labels >= 0) & (labels < K)
    rows_fg = fg.nonzero().flatten()
    logits[rows_fg, labels[fg]] = logits[rows_fg].amax(dim=1) + 2.0
    return logits.to(dtype).requires_grad_(requires_grad), labels


def test_registry_names_every_module():
    assert set(LOSSES) == set(NAMES)
    for name, cls in LOSSES.items():
        assert cls.__name__ == name


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck(name):
    case = CASES[name]
    logits, labels = make_batch(case)
    weight = torch.rand(labels.shape[0], dtype=torch.float64) + 0.5
    assert torch.autograd.gradcheck(lambda x: case.function(x, labels, sample_weight=weight), (logits,))
    assert torch.autograd.gradcheck(lambda x: case.function(x, labels, reduction="none"), (logits,), fast_mode=True)


@pytest.mark.parametrize("name", NAMES)
def test_module_equals_function(name):
    case = CASES[name]
    logits, labels = make_batch(case)
    weight = torch.rand(labels.shape[0], dtype=torch.float64)
    for kwargs in ({}, {"sample_weight": weight}, {"normalizer": 3.0}):
        for reduction in ("mean", "sum", "none"):
            module = case.module().double()  # fresh: the federated generator starts from its seed
            got = module(logits, labels, reduction_override=reduction, **kwargs)
            want = case.function(logits, labels, reduction=reduction, **kwargs)
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert case.module().num_logits == K + case.extra


@pytest.mark.parametrize("name", NAMES)
def test_reductions_agree(name):
    case = CASES[name]
    logits, labels = make_batch(case)
    per_row = case.function(logits, labels, reduction="none")
    assert per_row.shape == labels.shape
    assert per_row[labels == -1].eq(0).all()
    torch.testing.assert_close(case.function(logits, labels, reduction="sum"), per_row.sum())
    torch.testing.assert_close(case.function(logits, labels, normalizer=5), per_row.sum() / 5)
    torch.testing.assert_close(case.function(logits, labels, normalizer=torch.tensor(5.0)), per_row.sum() / 5)
    weight = torch.rand(labels.shape[0], dtype=torch.float64)
    torch.testing.assert_close(case.function(logits, labels, sample_weight=weight, reduction="none"), per_row * weight)
    if name != "WeightedCrossEntropyLoss":  # its mean divides by the summed class weights (own test)
        torch.testing.assert_close(case.function(logits, labels), per_row.sum() / (labels != -1).sum())


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_keeps_graph(name):
    case = CASES[name]
    for module_form in (False, True):
        logits = torch.zeros(0, K + case.extra, requires_grad=True)
        labels = torch.zeros(0, dtype=torch.int64)
        loss = case.module()(logits, labels) if module_form else case.function(logits, labels)
        assert loss.shape == () and loss.item() == 0.0 and loss.dtype == torch.float32
        loss.backward()
        assert logits.grad is not None and logits.grad.shape == logits.shape
    assert case.function(logits, labels, reduction="none").shape == (0,)
    assert case.function(logits, labels, reduction="sum").item() == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_all_ignored_batch_is_zero_with_zero_grad(name):
    case = CASES[name]
    logits = torch.randn(5, K + case.extra, dtype=torch.float64, requires_grad=True)
    labels = torch.full((5,), -1, dtype=torch.int64)
    loss = case.function(logits, labels)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


@pytest.mark.parametrize("name", NAMES)
def test_ignored_rows_equal_dropping_them(name):
    case = CASES[name]
    logits, labels = make_batch(case)
    keep = labels != -1
    full = case.function(logits, labels)
    full.backward()
    subset_logits = logits.detach()[keep].requires_grad_(True)
    subset = case.function(subset_logits, labels[keep])
    subset.backward()
    torch.testing.assert_close(full, subset)
    torch.testing.assert_close(logits.grad[keep], subset_logits.grad)
    assert logits.grad[~keep].eq(0).all()


@pytest.mark.parametrize("name", NAMES)
def test_all_background_batch(name):
    case = CASES[name]
    logits = torch.randn(6, K + case.extra, dtype=torch.float64, requires_grad=True)
    labels = torch.full((6,), K, dtype=torch.int64)
    loss = case.function(logits, labels)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_bf16_autocast_gives_finite_float32(name):
    case = CASES[name]
    layer = torch.nn.Linear(16, K + case.extra)
    _, labels = make_batch(case, requires_grad=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = layer(torch.randn(labels.shape[0], 16) * 3)
        assert logits.dtype == torch.bfloat16
        loss = case.module()(logits, labels)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(layer.weight.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name):
    case = CASES[name]
    logits, labels = make_batch(case, dtype=torch.float32)
    assert case.function(logits, labels).dtype == torch.float32


@pytest.mark.parametrize("name", NAMES)
def test_predict_scores_and_accuracy(name):
    case = CASES[name]
    module = case.module()
    logits, labels = make_batch(case, dtype=torch.float32, requires_grad=False)
    scores = module.predict_scores(logits)
    assert scores.shape == (labels.shape[0], K + 1)
    assert ((scores >= 0) & (scores <= 1)).all()
    # logits that make every label the arg-max of the scores -> 100 %
    perfect = torch.full((labels.shape[0], K + case.extra), -8.0)
    for row, label in enumerate(labels.tolist()):
        if case.perfect_row is not None:
            perfect[row] = case.perfect_row(label, K, case.extra)
        elif case.extra == 2:  # seesaw: objectness decides background
            perfect[row, K + (1 if label == K else 0)] = 8.0
            perfect[row, min(max(label, 0), K - 1)] = 8.0
        elif label >= 0 and (label < K or case.extra == 1):
            perfect[row, label] = 8.0
    assert module.class_accuracy(perfect, labels).item() == pytest.approx(100.0)
    assert module.class_accuracy(perfect[:0], labels[:0]).item() == 0.0


BAD_INPUTS = [
    ("1-D logits", lambda x, y: (x[0], y), "2-D"),
    ("integer logits", lambda x, y: (x.long(), y), "floating"),
    ("NaN logit", lambda x, y: (torch.where(torch.arange(x.shape[1]) == 1, float("nan"), x), y), "nan"),
    ("inf logit", lambda x, y: (x.clone().index_fill_(1, torch.tensor([0]), float("inf")), y), "inf"),
    ("int32 labels", lambda x, y: (x, y.int()), "int64"),
    ("short labels", lambda x, y: (x, y[:-1]), "[8]"),
    ("label above K", lambda x, y: (x, y.clone().index_fill_(0, torch.tensor([2]), K + 1)), f"got {K + 1}"),
    ("negative label", lambda x, y: (x, y.clone().index_fill_(0, torch.tensor([2]), -5)), "got -5"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("what,corrupt,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_names_the_value(name, what, corrupt, message):
    case = CASES[name]
    logits, labels = make_batch(case, dtype=torch.float32, requires_grad=False)
    logits, labels = corrupt(logits, labels)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        case.function(logits, labels)


@pytest.mark.parametrize("name", NAMES)
def test_bad_options_raise(name):
    case = CASES[name]
    logits, labels = make_batch(case, dtype=torch.float32, requires_grad=False)
    with pytest.raises(ValueError, match="'average'"):
        case.function(logits, labels, reduction="average")
    with pytest.raises(ValueError, match="-0.5 at position 3"):
        case.function(logits, labels, sample_weight=torch.tensor([1, 1, 1, -0.5, 1, 1, 1, 1]))
    with pytest.raises(ValueError, match=r"shape \[R\] = \[8\]"):
        case.function(logits, labels, sample_weight=torch.ones(3))
    with pytest.raises(ValueError, match="normalizer"):
        case.function(logits, labels, normalizer=-1.0)
    with pytest.raises(ValueError, match=f"outside the label range \\[0, {K}\\], got 0"):
        case.function(logits, labels, ignore_index=0)
    with pytest.raises(ValueError, match=r"logits must have shape"):
        case.module()(logits[:, :-1], labels)


STATISTIC_ERRORS = [
    (lambda: weighted_cross_entropy(torch.zeros(2, K + 1), torch.tensor([0, K]), [1.0] * K), r"\[5\], got \(4,\)"),
    (lambda: weighted_cross_entropy(torch.zeros(2, K + 1), torch.tensor([0, K]), [1, 1, -2, 1, 1]), "-2.0 at index 2"),
    (lambda: class_balanced_focal_loss(torch.zeros(2, K), torch.tensor([0, K]), [1, 2, float("nan"), 4]), "nan"),
    (lambda: class_balanced_focal_loss(torch.zeros(2, K), torch.tensor([0, K]), [1, 0, 3, 0]), r"classes \[1, 3\]"),
    (lambda: class_balanced_focal_loss(torch.zeros(2, K), torch.tensor([0, K]), COUNTS, beta=1.0), r"\[0.0, 1.0\)"),
    (lambda: class_balanced_focal_loss(torch.zeros(2, K), torch.tensor([0, K]), COUNTS, beta=-0.1), "-0.1"),
    (lambda: equalization_loss(torch.zeros(2, K), torch.tensor([0, K]), [0.1, 2.0, 0.1, 0.1]), "2.0 at index 1"),
    (lambda: eqlv2_loss(torch.zeros(2, K + 1), torch.tensor([0, K]), torch.ones(K + 1)), r"pos_neg must have shape"),
    (lambda: seesaw_loss(torch.zeros(2, K + 2), torch.tensor([0, K]), [1.0, -1.0, 1.0, 1.0]), "cum_samples"),
    (lambda: seesaw_loss(torch.zeros(2, K + 2), torch.tensor([0, K]), COUNTS, eps=0.0), "eps"),
    (lambda: federated_loss(torch.zeros(2, K), torch.tensor([0, K]), COUNTS[:2]), "image_counts"),
    (lambda: federated_loss(torch.zeros(2, K), torch.tensor([0, K]), COUNTS, num_sampled=0), "num_sampled"),
    (lambda: ClassBalancedFocalLoss(K, COUNTS, beta=1.5), "beta"),
    (lambda: WeightedCrossEntropyLoss(0), "num_classes"),
    (lambda: EQLv2Loss(K, ignore_index=2), "ignore_index"),
]


@pytest.mark.parametrize("build,message", STATISTIC_ERRORS)
def test_bad_statistics_and_settings_raise(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def _stats():
    return SimpleNamespace(
        class_names=["a", "b", "c", "d"], instance_counts=[300, 40, 6, 1], image_counts=[200, 30, 5, 1], num_images=400
    )


def test_from_stats_builds_each_statistic():
    stats = _stats()
    weights_file = SimpleNamespace(stats=stats, weights=[0.5, 1.0, 2.0, 4.0], background_weight=0.25)
    ce = WeightedCrossEntropyLoss.from_stats(K, weights_file)
    assert ce.class_weight.tolist() == [0.5, 1.0, 2.0, 4.0, 0.25]
    for source in (stats, weights_file):
        assert ClassBalancedFocalLoss.from_stats(K, source, beta=0.9).samples_per_class.tolist() == [300, 40, 6, 1]
        torch.testing.assert_close(
            EqualizationLoss.from_stats(K, source, lambda_=0.01).class_freq, torch.tensor([0.5, 0.075, 0.0125, 0.0025])
        )
        assert FederatedLoss.from_stats(K, source, seed=1).image_counts.tolist() == [200, 30, 5, 1]
        assert EQLv2Loss.from_stats(K, source, alpha=2.0).alpha == 2.0
        assert SeesawLoss.from_stats(K, source, p=0.5).p == 0.5
        assert BAGSLoss.from_stats(K, source, seed=1).class_group.tolist() == [3, 2, 1, 1]
    with pytest.raises(ValueError, match="describe 4 classes but num_classes=5"):
        FederatedLoss.from_stats(5, stats)
    with pytest.raises(ValueError, match="WeightsFile"):
        WeightedCrossEntropyLoss.from_stats(K, stats)
    with pytest.raises(ValueError, match="lacks"):
        ClassBalancedFocalLoss.from_stats(K, SimpleNamespace(class_names=["a"] * K))


def test_from_stats_accepts_the_weights_package_types():
    from detbalance import weights

    stats = weights.ClassStats(
        class_names=["a", "b", "c", "d"], instance_counts=[300, 40, 6, 1], image_counts=[200, 30, 5, 1], num_images=400
    )
    weights_file = weights.WeightsFile(
        stats=stats, scheme="inverse", weights=[0.5, 1.0, 2.0, 4.0], background_weight=1.0, groups=["f", "c", "r", "r"]
    )
    for name, cls in LOSSES.items():
        module = cls.from_stats(K, weights_file)
        assert module.num_classes == K
        if name != "WeightedCrossEntropyLoss":
            assert cls.from_stats(K, stats).num_classes == K


@pytest.mark.parametrize("name", NAMES)
def test_mean_divides_by_the_kept_proposals_with_weight(name):
    """Default 'mean': summed loss / number of non-ignored proposals with sample weight > 0 (MMDetection's
    avg_factor), for every loss; weighted CE's summed-weights denominator is an explicit option."""
    case = CASES[name]
    logits, labels = make_batch(case)
    weight = torch.tensor([1.0, 0.0, 2.0, 0.5, 0.0, 1.0, 3.0, 1.0], dtype=torch.float64)
    kept = int(((labels != -1) & (weight > 0)).sum())
    assert kept == 5
    total = case.function(logits, labels, sample_weight=weight, reduction="sum")
    torch.testing.assert_close(case.function(logits, labels, sample_weight=weight), total / kept)
    torch.testing.assert_close(case.module()(logits, labels, sample_weight=weight), total / kept)
    torch.testing.assert_close(case.function(logits, labels, sample_weight=weight, normalizer=kept), total / kept)


REFERENCE_BIAS = {  # the first classifier bias of each loss's reference implementation, K = 4
    "WeightedCrossEntropyLoss": [0.0] * (K + 1),
    "SeesawLoss": [0.0] * (K + 2),
    "EQLv2Loss": [0.0] * (K + 1),  # tztztztztz/eqlv2: bias 0, objectness column included
    "EqualizationLoss": [-math.log((1 - 0.001) / 0.001)] * K,  # eql.detectron2: prior 0.001
    "ClassBalancedFocalLoss": [-math.log(K - 1)] * K,  # richardaecn/class-balanced-loss: -log(C - 1)
    "FederatedLoss": [-math.log((1 - 0.01) / 0.01)] * K,  # Detic: prior 0.01
    "BAGSLoss": [0.0] * (K + 6),  # FishYuLi/BalancedGroupSoftmax: fc_cls bias 0, "others" columns included
}


@pytest.mark.parametrize("name", NAMES)
def test_initial_bias_is_the_references(name):
    module = CASES[name].module()
    bias = module.initial_bias()
    assert bias.shape == (module.num_logits,) and bias.dtype == torch.float32
    torch.testing.assert_close(bias, torch.tensor(REFERENCE_BIAS[name]))


def test_initial_bias_sets_the_initial_class_probability():
    # with zero weights, every class logit of a fresh sigmoid head is the prior: loss per background proposal
    # K * -log(1 - p), far below K ln 2
    for module in (EqualizationLoss(K, FREQ), FederatedLoss(K, COUNTS, seed=0), ClassBalancedFocalLoss(K, COUNTS)):
        logits = module.initial_bias().expand(3, -1)
        torch.testing.assert_close(torch.sigmoid(logits[0]), torch.full((K,), module.prior_prob))
        assert module(logits, torch.full((3,), K)).item() < 0.5 * K * math.log(2)


def test_prior_prob_overrides_and_is_validated():
    overrides = [
        EqualizationLoss(K, FREQ, prior_prob=0.2),
        FederatedLoss(K, COUNTS, prior_prob=0.2, seed=0),
        ClassBalancedFocalLoss(K, COUNTS, prior_prob=0.2),
        EQLv2Loss(K, prior_prob=0.2),
    ]
    for module in overrides:
        bias = module.initial_bias()
        torch.testing.assert_close(bias[:K], torch.full((K,), -math.log(4.0)))
        assert bias[K:].eq(0).all()  # EQLv2's objectness column keeps 0
    for bad in (-0.1, 0.0, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="prior_prob"):
            EqualizationLoss(K, FREQ, prior_prob=bad)
    with pytest.raises(ValueError, match="num_classes=1"):
        ClassBalancedFocalLoss(1, [5])
    assert ClassBalancedFocalLoss(1, [5], prior_prob=0.01).initial_bias().shape == (1,)
    with pytest.raises(TypeError):
        WeightedCrossEntropyLoss(K, prior_prob=0.1)  # softmax losses take no prior


@pytest.mark.parametrize(
    "module_name", ["activations", "weighted_ce", "cb_focal", "eql", "eqlv2", "seesaw", "federated", "bags"]
)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(f"detbalance.losses.{module_name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
