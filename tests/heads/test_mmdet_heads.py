"""MMDetection heads beyond Faster R-CNN, built from the repository's configs and trained a step on CPU:
RetinaNet / FCOS / ATSS with the dense losses, Cascade R-CNN (a loss and per-box weights in every stage),
Mask R-CNN; and the build-time refusals of losses that cannot serve a head."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mmcv.ops  # noqa: F401  (compiled ops: `make setup` builds them; their absence is an error)
import pytest
import torch
from heads_helpers import MMDET_CONFIGS, NUM_CLASSES, mmdet_batch, write_weights_file
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import detbalance.mmdet  # noqa: F401  (registers the DB* components)
from detbalance.losses import EqualizedFocalLoss
from detbalance.mmdet import DBCascadeRoIHead
from helpers import mmdet_config

register_all_modules(init_default_scope=True)

TINY = MMDET_CONFIGS / "tiny"
DENSE_TINY = [
    "retinanet_r18_fpn_tiny_efl.py",
    "retinanet_r18_fpn_tiny_focal.py",
    "fcos_r18_fpn_tiny_efl.py",
    "atss_r18_fpn_tiny_efl.py",
]
FULL = sorted(
    p.name
    for p in MMDET_CONFIGS.glob("*.py")
    if p.name.startswith(("mask-rcnn", "cascade-mask-rcnn", "retinanet", "fcos", "atss"))
)


def load(path, weights_path=None, num_classes=NUM_CLASSES) -> Config:
    """The config with its statistics files pointed at ``weights_path`` (a new ``num_classes`` file if None)."""
    if weights_path is None:
        folder = Path(tempfile.mkdtemp(prefix="detbalance-heads-"))
        weights_path = write_weights_file(folder / "weights.json", num_classes)
    return mmdet_config(path, weights_path)


def train_step(model, data):
    model.train()
    data = model.data_preprocessor(data, True)
    losses = model(**data, mode="loss")
    loss, log_vars = model.parse_losses(losses)
    loss.backward()
    return losses, log_vars


def total(value):
    """A loss entry: a tensor, or one tensor per feature level (RetinaHead, ATSSHead)."""
    return sum(value) if isinstance(value, (list, tuple)) else value


def predict(model, data):
    model.eval()
    with torch.no_grad():
        return model(**model.data_preprocessor(data, False), mode="predict")


@pytest.fixture(scope="module")
def weights_path(tmp_path_factory):
    return write_weights_file(tmp_path_factory.mktemp("mmdet_heads") / "weights.json")


@pytest.mark.parametrize("name", DENSE_TINY)
@pytest.mark.slow
def test_dense_config_trains_and_predicts(name, weights_path):
    model = MODELS.build(load(TINY / name, weights_path).model)
    head = model.bbox_head
    assert head.cls_out_channels == NUM_CLASSES and type(head.loss_cls).__name__.startswith("DB")
    losses, log_vars = train_step(model, mmdet_batch())
    loss_cls = total(losses["loss_cls"])
    assert torch.isfinite(loss_cls) and float(loss_cls) > 0, log_vars
    conv_cls = (
        head.atss_cls if hasattr(head, "atss_cls") else head.conv_cls if hasattr(head, "conv_cls") else head.retina_cls
    )
    assert float(conv_cls.weight.grad.abs().sum()) > 0
    if isinstance(head.loss_cls.core, EqualizedFocalLoss):
        assert float(head.loss_cls.core.neg_grad.sum()) > 0 and float(head.loss_cls.core.pos_grad.sum()) > 0
    for result in predict(model, mmdet_batch(seed=1)):
        pred = result.pred_instances
        assert ((pred.labels >= 0) & (pred.labels < NUM_CLASSES)).all()
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()


@pytest.mark.slow
def test_db_focal_loss_without_class_weights_equals_mmdets_focal_loss():
    cfg = load(TINY / "retinanet_r18_fpn_tiny_focal.py")
    cfg.model.bbox_head.loss_cls.class_weight = None
    ours = MODELS.build(cfg.model)
    cfg.model.bbox_head.loss_cls = dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
    stock = MODELS.build(cfg.model)
    stock.load_state_dict(ours.state_dict())
    ours_losses, _ = train_step(ours, mmdet_batch())
    stock_losses, _ = train_step(stock, mmdet_batch())
    torch.testing.assert_close(total(ours_losses["loss_cls"]), total(stock_losses["loss_cls"]))
    for a, b in zip(predict(ours, mmdet_batch(seed=1)), predict(stock, mmdet_batch(seed=1))):
        torch.testing.assert_close(a.pred_instances.scores, b.pred_instances.scores)


def test_per_class_alphas_come_from_the_weights_file(weights_path):
    model = MODELS.build(load(TINY / "retinanet_r18_fpn_tiny_focal.py", weights_path).model)
    alphas = model.bbox_head.loss_cls.core.alpha
    assert alphas.shape == (NUM_CLASSES,) and len(set(alphas.tolist())) == NUM_CLASSES


@pytest.mark.slow
def test_cascade_every_stage_has_its_own_loss_and_trains():
    model = MODELS.build(load(TINY / "cascade-rcnn_r18_fpn_tiny_seesaw.py").model)
    assert isinstance(model.roi_head, DBCascadeRoIHead)
    cores = [head.loss_cls.core for head in model.roi_head.bbox_head]
    assert len({id(c) for c in cores}) == 3 and all(type(c).__name__ == "SeesawLoss" for c in cores)
    losses, log_vars = train_step(model, mmdet_batch())
    for stage in range(3):
        assert torch.isfinite(losses[f"s{stage}.loss_cls"]), log_vars
        assert float(model.roi_head.bbox_head[stage].fc_cls.weight.grad.abs().sum()) > 0
    assert all(float(c.cum_samples.sum()) > 0 for c in cores)
    for result in predict(model, mmdet_batch(seed=1)):
        assert ((result.pred_instances.labels >= 0) & (result.pred_instances.labels < NUM_CLASSES)).all()


@pytest.mark.slow
def test_cascade_zero_weight_boxes_give_no_classification_gradient_in_any_stage():
    model = MODELS.build(load(TINY / "cascade-rcnn_r18_fpn_tiny_seesaw.py").model)
    records = []
    for head in model.roi_head.bbox_head:
        original = head.loss

        def loss(cls_score, bbox_pred, rois, labels, label_weights, *args, _original=original, **kwargs):
            records.append((cls_score, labels, label_weights))
            return _original(cls_score, bbox_pred, rois, labels, label_weights, *args, **kwargs)

        head.loss = loss
    model.train()
    # image 0: its class-0 box weighs 0; image 1: weights 2 and 1
    data = model.data_preprocessor(mmdet_batch(weights=[[0.0, 1.0], [2.0, 1.0]]), True)
    losses = model(**data, mode="loss")
    assert len(records) == 3
    for stage, (cls_score, labels, label_weights) in enumerate(records):
        (grad,) = torch.autograd.grad(losses[f"s{stage}.loss_cls"], cls_score, retain_graph=True)
        positive = labels < NUM_CLASSES
        removed, kept = positive & (label_weights == 0), positive & (label_weights > 0)
        assert int(removed.sum()) > 0 and int(kept.sum()) > 0, f"stage {stage}: no positive on both boxes"
        assert float(grad[removed].abs().max()) == 0.0, f"stage {stage}: a zero-weight box has a gradient"
        assert bool((grad[kept].abs().sum(dim=1) > 0).all())
        assert set(label_weights[positive].unique().tolist()) <= {0.0, 1.0, 2.0}
        assert float(label_weights[positive].max()) == 2.0  # image 1's first box counts twice


@pytest.mark.slow
def test_mask_rcnn_trains_with_masks_and_predicts_masks():
    model = MODELS.build(load(TINY / "mask-rcnn_r18_fpn_tiny_eqlv2.py").model)
    losses, log_vars = train_step(model, mmdet_batch(masks=True))
    assert {"loss_cls", "loss_mask"} <= set(losses) and torch.isfinite(losses["loss_mask"]), log_vars
    assert float(model.roi_head.mask_head.conv_logits.weight.grad.abs().sum()) > 0
    for result in predict(model, mmdet_batch(seed=1, masks=True)):
        assert result.pred_instances.masks.shape[1:] == (128, 128)


def test_dense_loss_in_a_box_head_fails_at_build_naming_loss_and_head():
    cfg = Config.fromfile(str(TINY / "faster-rcnn_r18_fpn_tiny.py"))
    cfg.model.roi_head.bbox_head.loss_cls = dict(type="DBEqualizedFocalLoss", num_classes=NUM_CLASSES)
    with pytest.raises(ValueError, match="'EqualizedFocalLoss', which cannot serve the box head BBoxHead"):
        MODELS.build(cfg.model)


def test_dense_loss_needs_use_sigmoid():
    cfg = load(TINY / "retinanet_r18_fpn_tiny_efl.py")
    cfg.model.bbox_head.loss_cls.use_sigmoid = False
    with pytest.raises(ValueError, match="use_sigmoid must be True"):
        MODELS.build(cfg.model)


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL)
def test_full_size_config_builds_and_trains_a_step(name, tmp_path):
    cfg = load(MMDET_CONFIGS / name, write_weights_file(tmp_path / "w.json", 1203), num_classes=1203)
    cfg.model.backbone.init_cfg = None
    assert cfg.custom_imports.imports == ["detbalance.mmdet"]
    test_cfg = cfg.model.test_cfg.get("rcnn", cfg.model.test_cfg)
    assert test_cfg.max_per_img == 300 and test_cfg.score_thr == 1e-4
    assert cfg.train_dataloader.sampler == dict(type="DBRepeatFactorSampler", threshold=1e-3)
    assert cfg.train_dataloader.dataset.type == "LVISV1Dataset"
    if "rpn_proposal" in cfg.model.get("train_cfg", {}):
        cfg.model.train_cfg.rpn_proposal.max_per_img = 200
    model = MODELS.build(cfg.model)
    losses, log_vars = train_step(model, mmdet_batch(num_classes=1203, num_images=1, masks="mask" in name))
    assert all(torch.isfinite(total(v)).all() for k, v in losses.items() if "loss" in k), log_vars
