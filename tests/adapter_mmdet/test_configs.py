"""Every config in configs/mmdet/ loads, builds with real MMDetection, trains one step and predicts on CPU."""

from __future__ import annotations

import mmcv.ops  # noqa: F401,E402  (compiled ops: `make setup` builds them; their absence is an error)
import pytest
import torch
from mmdet.registry import MODELS  # noqa: E402
from mmengine.config import Config, ConfigDict  # noqa: E402

from helpers import MMDET_CONFIGS as CONFIG_DIR

# The Faster R-CNN configs; tests/heads builds the Mask R-CNN, Cascade R-CNN and dense-head configs.
CONFIGS = sorted(p.relative_to(CONFIG_DIR).as_posix() for p in CONFIG_DIR.rglob("faster-rcnn*.py"))
LOSS_SUFFIXES = ("weighted-ce", "cb-focal", "eql", "eqlv2", "seesaw", "federated", "bags")
SIGMOID_LOSSES = {"DBClassBalancedFocalLoss", "DBEqualizationLoss", "DBEQLv2Loss", "DBFederatedLoss"}


def test_every_loss_has_full_and_tiny_config():
    for loss in LOSS_SUFFIXES:
        assert f"faster-rcnn_r50_fpn_1x_coco_{loss}.py" in CONFIGS
        assert f"tiny/faster-rcnn_r18_fpn_tiny_{loss}.py" in CONFIGS


def load(name: str, weights_file) -> Config:
    """The config with its weights-file argument (a site path in the config) pointed at a test file."""
    cfg = Config.fromfile(str(CONFIG_DIR / name))
    bbox_head = cfg.model.roi_head.bbox_head
    stats_arg = getattr(MODELS.get(bbox_head.loss_cls.type), "stats_arg", None)
    if stats_arg is not None and isinstance(bbox_head.loss_cls.get(stats_arg), str):
        bbox_head.loss_cls[stats_arg] = str(weights_file(bbox_head.num_classes))
    if not name.startswith("tiny/"):
        # Full-size models run on 128 px batches here; fewer proposals keep their CPU step short (NMS over
        # 1000 proposals x 80 near-uniform sigmoid scores dominates otherwise).
        cfg.model.train_cfg.rpn_proposal.max_per_img = 200
        cfg.model.test_cfg.rpn.max_per_img = 100
    return cfg


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.slow
def test_config_trains_and_predicts(name, weights_file, batch):
    cfg = load(name, weights_file)
    bbox_head_cfg = cfg.model.roi_head.bbox_head
    if name.endswith(tuple(f"_{s}.py" for s in LOSS_SUFFIXES)):
        assert cfg.custom_imports.imports == ["detbalance.mmdet"]
        assert bbox_head_cfg.loss_cls.type.startswith("DB")
        assert bbox_head_cfg.loss_cls.num_classes == bbox_head_cfg.num_classes
    num_classes = bbox_head_cfg.num_classes
    model = MODELS.build(cfg.model)
    bbox_head = model.roi_head.bbox_head
    assert bbox_head.fc_cls.out_features == getattr(bbox_head.loss_cls, "get_cls_channels", lambda k: k + 1)(
        num_classes
    )

    model.train()
    box_weights = [[1.0, 0.0, 2.0], [0.5, 1.0, 1.0]] if cfg.model.roi_head.type == "DBStandardRoIHead" else None
    data = model.data_preprocessor(batch(num_classes, weights=box_weights), True)
    losses = model(**data, mode="loss")
    loss, log_vars = model.parse_losses(losses)
    assert torch.isfinite(loss), log_vars
    assert torch.isfinite(losses["loss_cls"]) and losses["loss_cls"] > 0
    assert "acc" in losses and 0 <= float(losses["acc"]) <= 100
    loss.backward()
    grad = bbox_head.fc_cls.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(batch(num_classes, seed=1), False), mode="predict")
    assert len(results) == 2
    for result in results:
        pred = result.pred_instances
        assert pred.bboxes.shape[1] == 4 and len(pred.scores) == len(pred.labels) == len(pred.bboxes)
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        assert ((pred.labels >= 0) & (pred.labels < num_classes)).all()


@pytest.mark.parametrize(
    "name",
    [
        n for n in CONFIGS if n.startswith("tiny/") and "_tiny_" in n and not n.endswith(("box-weights.py", "crt.py"))
    ],  # crt: plain CE
)
@pytest.mark.slow
def test_predict_uses_the_trained_activation(name, weights_file):
    """Test-time scores through the bbox head are the loss's activation of the logits (sigmoid for sigmoid losses)."""
    cfg = load(name, weights_file)
    model = MODELS.build(cfg.model).eval()
    head = model.roi_head.bbox_head
    k = head.num_classes
    g = torch.Generator().manual_seed(3)
    num_rois = 40
    xy = torch.rand(num_rois, 2, generator=g) * 80
    rois = torch.cat([torch.zeros(num_rois, 1), xy, xy + 8 + torch.rand(num_rois, 2, generator=g) * 40], dim=1)
    cls_score = torch.randn(num_rois, head.fc_cls.out_features, generator=g) * 3
    bbox_pred = torch.zeros(num_rois, 4 * k)
    img_meta = dict(img_shape=(128, 128), scale_factor=(1.0, 1.0))

    # Without a test config the head returns the raw activation of every RoI.
    raw = head.predict_by_feat((rois,), (cls_score,), (bbox_pred,), [img_meta], rcnn_test_cfg=None)[0]
    expected = head.loss_cls.core.predict_scores(cls_score)
    torch.testing.assert_close(raw.scores, expected)
    loss_type = cfg.model.roi_head.bbox_head.loss_cls.type
    if loss_type == "DBEQLv2Loss":  # official EQLv2: sigmoid(x_c) * (1 - sigmoid(x_bg)), objectness logit last
        assert cls_score.shape[1] == k + 1
        objectness = torch.sigmoid(cls_score[:, k:])
        torch.testing.assert_close(raw.scores[:, :k], torch.sigmoid(cls_score[:, :k]) * (1 - objectness))
    elif loss_type in SIGMOID_LOSSES:
        torch.testing.assert_close(raw.scores[:, :k], torch.sigmoid(cls_score))
    elif loss_type == "DBWeightedCrossEntropyLoss":
        torch.testing.assert_close(raw.scores, torch.softmax(cls_score, dim=1))

    # With NMS every kept box's score is the activation of its RoI's logit for the kept label.
    test_cfg = ConfigDict(dict(score_thr=0.0, nms=dict(type="nms", iou_threshold=0.5), max_per_img=100))
    kept = head.predict_by_feat((rois,), (cls_score,), (bbox_pred,), [img_meta], rcnn_test_cfg=test_cfg)[0]
    assert len(kept.scores) > 0
    for score, label in zip(kept.scores, kept.labels):
        assert (expected[:, label] - score).abs().min() < 1e-6
        if loss_type in SIGMOID_LOSSES and loss_type != "DBEQLv2Loss":
            assert (torch.sigmoid(cls_score[:, label]) - score).abs().min() < 1e-6


def test_use_dataset_sets_every_documented_key(tmp_path, weights_file):
    from detbalance.mmdet import use_dataset

    cfg = Config.fromfile(str(CONFIG_DIR / "tiny" / "faster-rcnn_r18_fpn_tiny_cb-focal.py"))
    path = weights_file(3)
    use_dataset(
        cfg,
        data_root=tmp_path,
        classes=["a", "b", "c"],
        train_ann="tr.json",
        train_images="tr/",
        val_ann="va.json",
        val_images="va/",
        weights_file=path,
    )
    for loader, ann, images in (
        ("train_dataloader", "tr.json", "tr/"),
        ("val_dataloader", "va.json", "va/"),
        ("test_dataloader", "va.json", "va/"),
    ):
        dataset = cfg[loader].dataset
        assert (dataset.data_root, dataset.ann_file, dataset.data_prefix.img) == (str(tmp_path), ann, images)
        assert tuple(dataset.metainfo.classes) == ("a", "b", "c")
    assert cfg.val_evaluator.ann_file == cfg.test_evaluator.ann_file == str(tmp_path / "va.json")
    head = cfg.model.roi_head.bbox_head
    assert head.num_classes == head.loss_cls.num_classes == 3
    assert head.loss_cls.samples_per_class == str(path)
    assert MODELS.build(cfg.model).roi_head.bbox_head.fc_cls.out_features == 3

    seesaw = Config.fromfile(str(CONFIG_DIR / "tiny" / "faster-rcnn_r18_fpn_tiny_seesaw.py"))
    with pytest.raises(ValueError, match="DBSeesawLoss.*reads no weights file"):
        use_dataset(
            seesaw,
            data_root=tmp_path,
            classes=["a"],
            train_ann="tr.json",
            train_images="tr/",
            val_ann="va.json",
            val_images="va/",
            weights_file=path,
        )
