"""Per-box weights through detectron2's data pipeline and ROI heads; repeat-factor sampling; catalog statistics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from d2_helpers import NUM_CLASSES, synthetic_batch, tiny_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_train_loader
from detectron2.data.samplers import RepeatFactorTrainingSampler
from detectron2.modeling import build_model
from detectron2.structures import Boxes, BoxMode, Instances
from detectron2.utils.events import EventStorage
from PIL import Image

from detbalance.detectron2 import WeightedDatasetMapper, build_repeat_factor_sampler

DATASET = "detbalance_test_tiny_weighted"


def image_file(path, size=128, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return str(path)


def annotation(box, category, **extra):
    return {"bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "category_id": category, **extra}


def record(file_name, annotations, image_id=0, size=128):
    return {"file_name": file_name, "image_id": image_id, "height": size, "width": size, "annotations": annotations}


def test_mapper_carries_weights_of_the_boxes_it_keeps(tmp_path):
    dataset_dict = record(
        image_file(tmp_path / "a.png"),
        [
            annotation([10, 10, 40, 40], 3, weight=0.5),
            annotation([5, 5, 30, 30], 1, weight=9.0, iscrowd=1),  # crowd: dropped by detectron2
            annotation([50, 50, 50, 70], 5, weight=7.0),  # zero width: filtered as empty by detectron2
            annotation([60, 60, 100, 90], 7),  # no "weight": 1
        ],
    )
    mapper = WeightedDatasetMapper(is_train=True, augmentations=[], image_format="BGR")
    out = mapper(dataset_dict)
    instances = out["instances"]
    assert instances.gt_classes.tolist() == [3, 7]
    assert instances.gt_weights.tolist() == [0.5, 1.0] and instances.gt_weights.dtype == torch.float32
    assert instances.gt_boxes.tensor.tolist() == [[10, 10, 40, 40], [60, 60, 100, 90]]
    assert dataset_dict["annotations"][0]["category_id"] == 3  # the caller's dict is untouched


def test_mapper_from_config_resizes_and_keeps_weights(tmp_path):
    dataset_dict = record(
        image_file(tmp_path / "b.png", size=256), [annotation([20, 20, 120, 100], 2, weight=3.0)], size=256
    )
    out = WeightedDatasetMapper(tiny_cfg("EQLv2Loss"), is_train=True)(dataset_dict)
    assert out["image"].shape[1:] == (128, 128)
    assert out["instances"].gt_weights.tolist() == [3.0] and out["instances"].gt_classes.tolist() == [2]
    assert (
        WeightedDatasetMapper(tiny_cfg("EQLv2Loss"), is_train=True)(record(dataset_dict["file_name"], [], size=256))[
            "instances"
        ].gt_weights.numel()
        == 0
    )


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "heavy", "0.5", True, None])
def test_mapper_rejects_bad_weights(tmp_path, bad):
    # numbers only, as MMDetection's DBCocoDataset: a numeric string such as "0.5" is refused too
    dataset_dict = record(image_file(tmp_path / "c.png"), [annotation([10, 10, 40, 40], 3, weight=bad)])
    mapper = WeightedDatasetMapper(is_train=True, augmentations=[], image_format="BGR")
    with pytest.raises(
        ValueError,
        match=r"annotation in image '.*c\.png' has weight=.*; expected a finite number "
        r">= 0",
    ):
        mapper(dataset_dict)


def test_roi_heads_copy_box_weights_to_proposals():
    model = build_model(tiny_cfg("EQLv2Loss"))
    target = Instances((128, 128))
    target.gt_boxes = Boxes(torch.tensor([[10.0, 10.0, 50.0, 50.0], [60.0, 60.0, 110.0, 100.0]]))
    target.gt_classes = torch.tensor([1, 6])
    target.gt_weights = torch.tensor([0.25, 4.0])
    proposals = Instances((128, 128))
    proposals.proposal_boxes = Boxes(target.gt_boxes.tensor.repeat(5, 1) + torch.randn(10, 4))
    proposals.objectness_logits = torch.zeros(10)
    with EventStorage(0):
        (sampled,) = model.roi_heads.label_and_sample_proposals([proposals], [target])
    foreground = sampled.gt_classes < NUM_CLASSES
    assert int(foreground.sum()) >= 2
    for box, label, weight in zip(
        sampled.gt_boxes.tensor[foreground], sampled.gt_classes[foreground], sampled.gt_weights[foreground]
    ):
        index = int((target.gt_boxes.tensor == box).all(dim=1).nonzero())
        assert int(label) == int(target.gt_classes[index]) and float(weight) == float(target.gt_weights[index])


@pytest.mark.slow
def test_zero_weight_boxes_give_no_classification_gradient_in_a_training_step(weights_file):
    model = build_model(tiny_cfg("WeightedCrossEntropyLoss", weights_file))
    batch = synthetic_batch()
    for item in batch:
        item["instances"].gt_weights = torch.zeros(len(item["instances"]))
    captured = []
    model.roi_heads.box_predictor.register_forward_hook(lambda m, args, output: captured.append(output[0]))
    model.train()
    with EventStorage(0) as storage:
        losses = model(batch)
        num_foreground = storage.latest()["roi_head/num_fg_samples"][0] * len(batch)
    (grad,) = torch.autograd.grad(losses["loss_cls"], captured[0])
    silent_rows = int((grad.abs().sum(dim=1) == 0).sum())
    assert num_foreground > 0 and silent_rows == num_foreground
    assert torch.isfinite(losses["loss_cls"]) and float(losses["loss_cls"].detach()) > 0  # background still trains


def labels_dataset(num_images=40):
    rng = np.random.default_rng(0)
    dicts = []
    for i in range(num_images):
        classes = [0] * int(rng.integers(1, 4)) + ([3] if i % 10 == 0 else []) + ([5] if i % 4 == 0 else [])
        dicts.append(record(f"img{i}.png", [annotation([0, 0, 10, 10], c) for c in classes], image_id=i))
    dicts.append(record("empty.png", [], image_id=num_images))
    return dicts


def test_repeat_factor_sampler_matches_detectron2s():
    dicts = labels_dataset()
    ours = build_repeat_factor_sampler(dicts, repeat_thresh=0.3, seed=7)
    theirs = RepeatFactorTrainingSampler(
        RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(dicts, 0.3), seed=7
    )
    assert isinstance(ours, RepeatFactorTrainingSampler)
    drawn = list(itertools.islice(iter(ours), 400))
    assert drawn == list(itertools.islice(iter(theirs), 400))
    counts = np.bincount(drawn, minlength=len(dicts))
    rare = [i for i, d in enumerate(dicts) if any(a["category_id"] == 3 for a in d["annotations"])]
    common = [i for i, d in enumerate(dicts) if {a["category_id"] for a in d["annotations"]} == {0}]
    assert counts[rare].mean() > 1.5 * counts[common].mean()  # images with the rare class repeat
    with pytest.raises(ValueError, match="threshold must be a positive number, got -1"):
        build_repeat_factor_sampler(dicts, repeat_thresh=-1)


@pytest.fixture
def registered_dataset(tmp_path):
    files = [image_file(tmp_path / f"{i}.png", seed=i) for i in range(4)]
    dicts = [
        record(files[0], [annotation([10, 10, 50, 50], 0, weight=0.0), annotation([60, 60, 100, 100], 0)], 0),
        record(files[1], [annotation([20, 20, 60, 70], 0), annotation([70, 10, 110, 40], 1, weight=2.0)], 1),
        record(files[2], [annotation([30, 30, 80, 80], 2)], 2),
        record(files[3], [annotation([15, 40, 50, 90], 0)], 3),
    ]
    DatasetCatalog.register(DATASET, lambda: [dict(d, annotations=[dict(a) for a in d["annotations"]]) for d in dicts])
    MetadataCatalog.get(DATASET).set(thing_classes=["a", "b", "c"])
    yield dicts
    DatasetCatalog.remove(DATASET)
    MetadataCatalog.remove(DATASET)


@pytest.mark.slow
def test_loader_with_weights_and_repeat_factors_trains_a_step(registered_dataset):
    cfg = tiny_cfg(
        "EQLv2Loss",
        opts=(
            "MODEL.ROI_HEADS.NUM_CLASSES",
            "3",
            "DATASETS.TRAIN",
            f"('{DATASET}',)",
            "DATALOADER.REPEAT_THRESHOLD",
            "0.5",
        ),
    )
    dicts = DatasetCatalog.get(DATASET)
    loader = build_detection_train_loader(
        cfg,
        dataset=dicts,
        mapper=WeightedDatasetMapper(cfg, is_train=True),
        sampler=build_repeat_factor_sampler(dicts, repeat_thresh=cfg.DATALOADER.REPEAT_THRESHOLD, seed=0),
    )
    batch = next(iter(loader))
    assert len(batch) == cfg.SOLVER.IMS_PER_BATCH
    by_image = {d["file_name"]: [a.get("weight", 1.0) for a in d["annotations"]] for d in registered_dataset}
    for item in batch:
        assert item["instances"].gt_weights.tolist() == by_image[item["file_name"]]
    model = build_model(cfg)
    model.train()
    with EventStorage(0):
        losses = model(batch)
    assert all(torch.isfinite(v) for v in losses.values())


def test_statistics_from_the_catalog_when_no_weights_file(registered_dataset, capsys):
    cfg = tiny_cfg(
        "ClassBalancedFocalLoss", opts=("MODEL.ROI_HEADS.NUM_CLASSES", "3", "DATASETS.TRAIN", f"('{DATASET}',)")
    )
    loss = build_model(cfg).roi_heads.box_predictor.cls_loss
    assert loss.samples_per_class.tolist() == [4, 1, 1]
    printed = capsys.readouterr().out
    assert DATASET in printed and "4 images" in printed
    with pytest.raises(ValueError, match=r"have 3 classes, expected 8"):
        build_model(tiny_cfg("FederatedLoss", opts=("DATASETS.TRAIN", f"('{DATASET}',)")))
