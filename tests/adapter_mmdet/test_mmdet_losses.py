"""The registered DB* losses: parity with the core losses and MMDetection, statistics files, build-time errors."""

from __future__ import annotations

import mmcv.ops  # noqa: F401,E402  (compiled ops: `make setup` builds them; their absence is an error)
import pytest
import torch
from mmdet.models.losses import CrossEntropyLoss, EQLV2Loss, SeesawLoss  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmengine.config import Config  # noqa: E402

from detbalance import losses as core  # noqa: E402
from detbalance.weights import load_weights  # noqa: E402

K = 5
R = 37
COUNTS = [900, 300, 40, 7, 1]
IMAGE_COUNTS = [500, 200, 30, 5, 1]

# registered name -> (config settings, core function, statistics for the function, function keywords)
CASES = {
    "DBWeightedCrossEntropyLoss": (
        dict(class_weight=[1.0, 2.0, 0.5, 3.0, 1.5, 0.2]),
        core.weighted_cross_entropy,
        [1.0, 2.0, 0.5, 3.0, 1.5, 0.2],
        {},
    ),
    "DBClassBalancedFocalLoss": (
        dict(samples_per_class=COUNTS, beta=0.99, gamma=1.5, background_weight=0.7),
        core.class_balanced_focal_loss,
        COUNTS,
        dict(beta=0.99, gamma=1.5, background_weight=0.7),
    ),
    "DBEqualizationLoss": (
        dict(class_freq=[0.5, 0.1, 1e-3, 1e-4, 0.02], lambda_=1e-2),
        core.equalization_loss,
        [0.5, 0.1, 1e-3, 1e-4, 0.02],
        dict(lambda_=1e-2),
    ),
    "DBEQLv2Loss": (dict(mu=0.7, gamma=10.0, alpha=3.0), None, None, {}),
    "DBSeesawLoss": (dict(p=0.7, q=1.5, eps=0.02), None, None, {}),
    "DBFederatedLoss": (
        dict(image_counts=IMAGE_COUNTS, num_sampled=3, freq_power=0.5, seed=5),
        core.federated_loss,
        IMAGE_COUNTS,
        dict(num_sampled=3, freq_power=0.5),
    ),
}
CORE_MODULES = {
    "DBEQLv2Loss": lambda: core.EQLv2Loss(K, mu=0.7, gamma=10.0, alpha=3.0),
    "DBSeesawLoss": lambda: core.SeesawLoss(K, p=0.7, q=1.5, eps=0.02),
}


def build(name: str, loss_weight: float = 1.0, **overrides):
    settings = dict(CASES[name][0], **overrides)
    return MODELS.build(dict(type=name, num_classes=K, loss_weight=loss_weight, **settings))


def inputs(loss, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(R, loss.get_cls_channels(K), generator=g, dtype=dtype) * 2).requires_grad_()
    labels = torch.randint(0, K + 1, (R,), generator=g)
    labels[:8] = K  # plenty of background, as after RoI sampling
    label_weights = torch.rand(R, generator=g, dtype=dtype) * 2
    label_weights[3] = 0.0
    return logits, labels, label_weights


def reference(name: str, logits, labels, label_weights, avg_factor, reduction):
    """The core computation of the same loss: the function with the same statistics, or a fresh core module."""
    _, function, stats, keywords = CASES[name]
    if function is None:
        return CORE_MODULES[name]()(
            logits, labels, sample_weight=label_weights, normalizer=avg_factor, reduction_override=reduction
        )
    if name == "DBFederatedLoss":  # the registered loss was built with seed=5
        keywords = dict(keywords, generator=torch.Generator().manual_seed(5))
    return function(
        logits, labels, stats, sample_weight=label_weights, normalizer=avg_factor, reduction=reduction, **keywords
    )


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("reduction", [None, "mean", "sum", "none"])
@pytest.mark.parametrize("avg_factor", [None, 23.0])
def test_parity_with_core(name, reduction, avg_factor):
    loss = build(name, loss_weight=2.5)
    logits, labels, label_weights = inputs(loss)
    ref_logits = logits.detach().clone().requires_grad_()
    got = loss(logits, labels, label_weights, avg_factor=avg_factor, reduction_override=reduction)
    want = 2.5 * reference(name, ref_logits, labels, label_weights, avg_factor, reduction or "mean")
    # Core modules keep their statistics as float32 buffers, the functions convert lists to the logits' dtype.
    tol = dict(rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(got, want, **tol)
    got.sum().backward()
    want.sum().backward()
    torch.testing.assert_close(logits.grad, ref_logits.grad, **tol)
    if reduction == "none":
        assert got.shape == (R,)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", [None, "sum", "none"])
def test_weighted_ce_reproduces_mmdet_cross_entropy(dtype, reduction):
    class_weight = [1.0, 2.0, 0.5, 3.0, 1.5, 0.2]
    ours = build("DBWeightedCrossEntropyLoss", loss_weight=1.7, class_weight=class_weight)
    mmdet_ce = CrossEntropyLoss(use_sigmoid=False, class_weight=class_weight, loss_weight=1.7)
    logits, labels, label_weights = inputs(ours, seed=2, dtype=dtype)
    ref_logits = logits.detach().clone().requires_grad_()
    avg_factor = max(float((label_weights > 0).sum()), 1.0)  # what BBoxHead.loss passes
    if reduction == "sum":
        avg_factor = None  # MMDetection refuses avg_factor with reduction="sum"
    got = ours(logits, labels, label_weights, avg_factor=avg_factor, reduction_override=reduction)
    want = mmdet_ce(ref_logits, labels, label_weights, avg_factor=avg_factor, reduction_override=reduction)
    # float64: the class weights are stored as float32 in the core module, as given in the config.
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(got, want.to(got.dtype), **tol)
    got.sum().backward()
    want.sum().backward()
    torch.testing.assert_close(logits.grad, ref_logits.grad, **tol)


def expected_scores(name: str, logits: torch.Tensor) -> torch.Tensor:
    """``scores[R, K + 1]`` each loss must give, from MMDetection's own losses or written out here."""
    x = logits.detach().to(torch.float64)
    if name == "DBWeightedCrossEntropyLoss":  # BBoxHead's softmax over K + 1 columns, background last
        return torch.softmax(x, dim=1)
    if name == "DBSeesawLoss":  # K class logits, then 2 objectness logits
        return SeesawLoss(num_classes=K).get_activation(x)
    if name == "DBEQLv2Loss":  # sigmoid, classes scaled by 1 - the objectness column's background probability
        return EQLV2Loss(num_classes=K).get_activation(x.clone())
    probs = torch.sigmoid(x)  # K sigmoid columns; background 1 - the best class probability
    return torch.cat([probs, 1.0 - probs.max(dim=1, keepdim=True).values], dim=1)


def test_bbox_head_protocol():
    for name in CASES:
        loss = build(name)
        assert loss.custom_cls_channels and loss.custom_activation and loss.custom_accuracy
        assert loss.get_cls_channels(K) == loss.core.num_logits
        logits, labels, _ = inputs(loss, dtype=torch.float32)
        scores = loss.get_activation(logits)
        assert scores.shape == (R, K + 1) and scores.dtype == torch.float32
        want = expected_scores(name, logits)
        torch.testing.assert_close(scores, want.float(), rtol=1e-6, atol=1e-7, msg=name)
        acc = loss.get_accuracy(logits, labels)
        assert set(acc) == {"acc"}
        want_acc = 100.0 * (want.argmax(dim=1) == labels).double().mean()
        torch.testing.assert_close(acc["acc"].double(), want_acc, msg=name)
    assert build("DBSeesawLoss").get_cls_channels(K) == K + 2
    assert build("DBWeightedCrossEntropyLoss").get_cls_channels(K) == K + 1
    assert build("DBClassBalancedFocalLoss").get_cls_channels(K) == K


def test_statistics_from_weights_file(weights_file):
    path = str(weights_file(K))
    wf = load_weights(path)
    s = wf.stats
    pairs = {
        "DBWeightedCrossEntropyLoss": (dict(class_weight=path), dict(class_weight=wf.weights + [wf.background_weight])),
        "DBClassBalancedFocalLoss": (dict(samples_per_class=path), dict(samples_per_class=s.instance_counts)),
        "DBEqualizationLoss": (dict(class_freq=path), dict(class_freq=[n / s.num_images for n in s.image_counts])),
        "DBFederatedLoss": (dict(image_counts=path), dict(image_counts=s.image_counts)),
    }
    for name, (from_file, inline) in pairs.items():
        a, b = build(name, **from_file), build(name, **inline)
        logits, labels, label_weights = inputs(a)
        got = a(logits, labels, label_weights, avg_factor=11.0)
        torch.testing.assert_close(got, b(logits, labels, label_weights, avg_factor=11.0), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    "name", ["DBWeightedCrossEntropyLoss", "DBClassBalancedFocalLoss", "DBEqualizationLoss", "DBFederatedLoss"]
)
def test_weights_file_class_count_mismatch_names_both_numbers(name, weights_file):
    arg = MODELS.get(name).stats_arg
    with pytest.raises(ValueError, match=r"has 7 classes but the model has num_classes=5"):
        build(name, **{arg: str(weights_file(7))})


def test_mismatch_raises_when_the_model_is_built(config_dir, weights_file):
    cfg = Config.fromfile(str(config_dir / "tiny" / "faster-rcnn_r18_fpn_tiny_cb-focal.py"))
    head = cfg.model.roi_head.bbox_head
    head.loss_cls.samples_per_class = str(weights_file(head.num_classes + 3))
    with pytest.raises(
        ValueError,
        match=rf"has {head.num_classes + 3} classes but the model has "
        rf"num_classes={head.num_classes}",
    ):
        MODELS.build(cfg.model)


def test_loss_and_head_num_classes_must_agree(config_dir):
    cfg = Config.fromfile(str(config_dir / "tiny" / "faster-rcnn_r18_fpn_tiny_seesaw.py"))
    cfg.model.roi_head.bbox_head.num_classes = 6
    cfg.model.roi_head.bbox_head.loss_cls.num_classes = 9
    with pytest.raises(ValueError, match=r"num_classes=9.*num_classes=6"):
        MODELS.build(cfg.model)


@pytest.mark.parametrize(
    "name, arg, length",
    [
        ("DBWeightedCrossEntropyLoss", "class_weight", K),
        ("DBClassBalancedFocalLoss", "samples_per_class", K + 1),
        ("DBEqualizationLoss", "class_freq", K - 1),
        ("DBFederatedLoss", "image_counts", 2),
    ],
)
def test_inline_statistics_of_wrong_length(name, arg, length):
    with pytest.raises(ValueError, match=rf"{arg} has {length} entries.*num_classes={K}"):
        build(name, **{arg: [1.0] * length})


def test_unknown_argument_is_refused():
    with pytest.raises(TypeError):
        build("DBSeesawLoss", use_sigmoid=True)
