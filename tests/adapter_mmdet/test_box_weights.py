"""Per-box annotation weights: COCO "weight" -> gt_instances.weights -> classification loss of matched RoIs."""

from __future__ import annotations

import json

import mmcv.ops  # noqa: F401,E402  (compiled ops: `make setup` builds them; their absence is an error)
import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: E402
from mmdet.registry import DATASETS, MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.bbox import bbox2roi  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402
from PIL import Image  # noqa: E402

PIPELINE = [
    dict(type="LoadImageFromFile"),
    dict(type="DBLoadAnnotations", with_bbox=True),
    dict(type="Resize", scale=(64, 64), keep_ratio=True),
    dict(type="DBPackDetInputs"),
]


def write_coco(root, annotations):
    (root / "images").mkdir()
    for image_id in (1, 2):
        Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(root / "images" / f"{image_id}.png")
    coco = {
        "images": [{"id": i, "file_name": f"{i}.png", "width": 64, "height": 64} for i in (1, 2)],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }
    (root / "train.json").write_text(json.dumps(coco))


def ann(ann_id, image_id, bbox, category=1, **extra):
    return dict(
        id=ann_id, image_id=image_id, category_id=category, bbox=bbox, area=bbox[2] * bbox[3], iscrowd=0, **extra
    )


def dataset(root, pipeline=PIPELINE):
    return DATASETS.build(
        dict(
            type="DBCocoDataset",
            data_root=str(root),
            ann_file="train.json",
            data_prefix=dict(img="images/"),
            metainfo=dict(classes=("a", "b")),
            filter_cfg=dict(filter_empty_gt=False),
            pipeline=pipeline,
        )
    )


def test_weights_reach_gt_instances(tmp_path):
    write_coco(
        tmp_path,
        [
            ann(1, 1, [2, 2, 20, 20], weight=0.0),
            ann(2, 1, [0, 0, 0.5, 30], weight=5.0),  # dropped by CocoDataset (w < 1): its weight goes too
            ann(3, 1, [30, 30, 20, 20], category=2, weight=2.0),
            ann(4, 1, [10, 40, 12, 12], category=7, weight=9.0),  # unknown category: dropped
            ann(5, 1, [40, 5, 10, 10]),  # no weight: 1
            ann(6, 2, [5, 5, 30, 30], weight=0.25),
        ],
    )
    data = dataset(tmp_path)
    weights_of = {
        data.get_data_info(i)["img_id"]: [inst["weight"] for inst in data.get_data_info(i)["instances"]]
        for i in range(len(data))
    }
    assert weights_of == {1: [0.0, 2.0, 1.0], 2: [0.25]}
    packed = {int(s["data_samples"].img_id): s["data_samples"].gt_instances for s in (data[0], data[1])}
    torch.testing.assert_close(packed[1].weights, torch.tensor([0.0, 2.0, 1.0]))
    torch.testing.assert_close(packed[1].labels, torch.tensor([0, 1, 0]))
    torch.testing.assert_close(packed[2].weights, torch.tensor([0.25]))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "2", "0.5", True, None])
def test_invalid_weight_names_the_annotation(tmp_path, bad):
    write_coco(tmp_path, [ann(41, 1, [2, 2, 20, 20], weight=bad), ann(42, 2, [2, 2, 20, 20])])
    with pytest.raises(ValueError, match=r"annotation id=41 has weight="):
        dataset(tmp_path)


def test_transform_dropping_boxes_without_weights_is_an_error(tmp_path):
    write_coco(tmp_path, [ann(1, 1, [2, 2, 20, 20], weight=2.0), ann(2, 1, [30, 30, 4, 4]), ann(3, 2, [2, 2, 20, 20])])
    filtering = PIPELINE[:2] + [dict(type="FilterAnnotations", min_gt_bbox_wh=(8, 8))] + PIPELINE[2:]
    data = dataset(tmp_path, filtering)
    first_image = [data.get_data_info(i)["img_id"] for i in range(len(data))].index(1)
    with pytest.raises(ValueError, match=r"gt_bboxes_weights has 2 entries but gt_bboxes has 1"):
        data[first_image]


@pytest.fixture(scope="module")
def roi_head(config_dir):
    cfg = Config.fromfile(str(config_dir / "tiny" / "faster-rcnn_r18_fpn_tiny_box-weights.py"))
    assert cfg.model.roi_head.type == "DBStandardRoIHead"
    model = MODELS.build(cfg.model)
    model.train()
    return model.roi_head


def proposals_around(box, n_pos, n_neg, g):
    """n_pos proposals overlapping ``box`` (IoU > 0.5) and n_neg far from it."""
    x0, y0, x1, y1 = box
    pos = torch.tensor([[x0 + d, y0 + d, x1 + d, y1 + d] for d in range(1, n_pos + 1)], dtype=torch.float32)
    neg = torch.rand(n_neg, 2, generator=g) * 8 + torch.tensor([100.0, 100.0])
    return torch.cat([pos, torch.cat([neg, neg + 10], dim=1)])


def run(roi_head, x, gts, proposals, weights):
    """roi_head.loss under a fixed seed and its reference from the same sampling.

    Returns ``(loss_cls, reference, per-RoI cross-entropy, RoI labels, RoI weight factors)``.
    """
    samples = []
    for gt_boxes, gt_labels, w in zip(gts[0], gts[1], weights):
        sample = DetDataSample(metainfo=dict(img_shape=(128, 128)))
        sample.gt_instances = InstanceData(bboxes=gt_boxes, labels=gt_labels)
        if w is not None:
            sample.gt_instances.weights = torch.tensor(w)
        samples.append(sample)
    torch.manual_seed(0)
    loss = roi_head.loss(x, [InstanceData(bboxes=p.clone()) for p in proposals], samples)["loss_cls"]

    # Reference: the same sampling, per-RoI cross-entropy weighted by the matched box's weight.
    torch.manual_seed(0)
    results = []
    for i, (p, sample) in enumerate(zip(proposals, samples)):
        priors = InstanceData(priors=p.clone())
        assign = roi_head.bbox_assigner.assign(priors, sample.gt_instances)
        results.append(
            roi_head.bbox_sampler.sample(assign, priors, sample.gt_instances, feats=[level[i][None] for level in x])
        )
    rois = bbox2roi([r.priors for r in results])
    cls_score = roi_head._bbox_forward(x, rois)["cls_score"]
    labels, factors = [], []
    for r, w in zip(results, weights):
        labels += [r.pos_gt_labels, torch.full((len(r.neg_priors),), roi_head.bbox_head.num_classes)]
        pos_w = torch.ones(len(r.pos_priors)) if w is None else torch.tensor(w)[r.pos_assigned_gt_inds]
        factors += [pos_w, torch.ones(len(r.neg_priors))]
    labels, factors = torch.cat(labels), torch.cat(factors)
    per_roi = F.cross_entropy(cls_score, labels, reduction="none")
    return loss, (per_roi * factors).sum() / (factors > 0).sum(), per_roi, labels, factors


def test_box_weight_scales_the_classification_loss(roi_head):
    g = torch.Generator().manual_seed(0)
    x = tuple(torch.randn(2, 64, 128 // s, 128 // s, generator=g) for s in (4, 8, 16, 32, 64))
    box_a, box_b, box_c = [10.0, 10.0, 50.0, 50.0], [60.0, 20.0, 90.0, 60.0], [20.0, 60.0, 60.0, 100.0]
    gts = ([torch.tensor([box_a, box_b]), torch.tensor([box_c])], [torch.tensor([0, 3]), torch.tensor([5])])
    proposals = [
        torch.cat([proposals_around(box_a, 3, 5, g), proposals_around(box_b, 2, 0, g)]),
        proposals_around(box_c, 3, 4, g),
    ]

    base, base_ref, per_roi, labels, _ = run(roi_head, x, gts, proposals, [[1.0, 1.0], [1.0]])
    plain, _, _, _, _ = run(roi_head, x, gts, proposals, [None, None])
    torch.testing.assert_close(base, plain)  # weights of 1 change nothing
    torch.testing.assert_close(base, base_ref)

    loss, ref, _, _, factors = run(roi_head, x, gts, proposals, [[0.0, 2.0], [1.0]])
    torch.testing.assert_close(loss, ref)
    # Box A (weight 0) contributes nothing: the loss is the mean over the other RoIs, with box B's counted twice.
    kept = factors > 0
    assert (~kept).sum() == 4  # A itself (added as a proposal) and its three overlapping proposals
    torch.testing.assert_close(loss, (per_roi[kept] * factors[kept]).sum() / kept.sum())
    # Box B's positives (weight 2) count exactly twice compared with the all-ones run.
    is_b = factors == 2
    assert is_b.sum() == 3 and (labels[is_b] == 3).all()
    torch.testing.assert_close(loss * kept.sum() - base * len(factors), per_roi[is_b].sum() - per_roi[~kept].sum())


@pytest.mark.slow
def test_box_weights_config_trains_from_a_coco_file(tmp_path, config_dir, batch):
    """The box-weights config end to end: DBCocoDataset -> pipeline -> model.train_step."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    from detbalance.mmdet import use_dataset

    write_coco(
        tmp_path,
        [
            ann(1, 1, [2, 2, 20, 20], weight=0.0),
            ann(2, 1, [30, 30, 20, 20], category=2, weight=2.0),
            ann(3, 2, [5, 5, 30, 30]),
        ],
    )
    cfg = Config.fromfile(str(config_dir / "tiny" / "faster-rcnn_r18_fpn_tiny_box-weights.py"))
    use_dataset(
        cfg,
        data_root=tmp_path,
        classes=("a", "b"),
        train_ann="train.json",
        train_images="images/",
        val_ann="train.json",
        val_images="images/",
    )
    cfg.train_dataloader.batch_size = 2
    assert cfg.train_dataloader.dataset.type == "DBCocoDataset"
    loader = Runner.build_dataloader(cfg.train_dataloader)
    data = next(iter(loader))
    assert sorted(torch.cat([s.gt_instances.weights for s in data["data_samples"]]).tolist()) == [0.0, 1.0, 2.0]
    model = MODELS.build(cfg.model)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    before = model.roi_head.bbox_head.fc_cls.weight.detach().clone()
    log_vars = model.train_step(data, optim)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log_vars.values())
    assert not torch.equal(before, model.roi_head.bbox_head.fc_cls.weight)
