"""One COCO dataset, three readers: Detectron2's DatasetCatalog, an MMDetection config, the raw json.

Category ids are non-contiguous and their names are not alphabetical, so a reader that used the ids as labels or
sorted the names would disagree with the model's label order. The set has an image without boxes and a
crowd-only image: the framework bridges count the images each framework's training loader iterates, and their
repeat factors equal the frameworks' own (detectron2's ``RepeatFactorTrainingSampler``, MMEngine's
``ClassBalancedDataset``).
"""

import json
import uuid

import numpy as np
import pytest
import torch
from PIL import Image

from detbalance.stats import read_coco
from detbalance.weights import repeat_factors

CATEGORIES = [
    {"id": 3, "name": "zebra"},
    {"id": 7, "name": "ant"},
    {"id": 12, "name": "moth"},
    {"id": 40, "name": "bee"},
]
MODEL_CLASSES = ("zebra", "ant", "moth", "bee")  # label order of both frameworks: categories by id


@pytest.fixture(scope="module")
def coco_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    rng = np.random.default_rng(0)
    images, anns = [], []
    plan = {  # image id -> [(category id, iscrowd)]
        101: [(3, 0), (3, 0), (40, 0)],
        102: [(7, 0), (3, 1)],  # a crowd zebra
        105: [(12, 0), (12, 0), (12, 0), (3, 0)],
        109: [],  # an image without boxes
        110: [(40, 0), (7, 0)],
        111: [(12, 1)],  # only a crowd moth
    }
    for img_id, boxes in plan.items():
        name = f"img{img_id}.png"
        Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(root / name)
        images.append({"id": img_id, "file_name": name, "height": 32, "width": 48})
        for cat, crowd in boxes:
            x, y = rng.uniform(0, 20, 2).round(1).tolist()
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": img_id,
                    "category_id": cat,
                    "bbox": [x, y, 10.0, 8.0],
                    "area": 80.0,
                    "iscrowd": crowd,
                }
            )
    (root / "train.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES}))
    return root


def _mmdet_config(root, filter_cfg=None, wrap=False, threshold=0.5):
    from mmengine.config import Config

    dataset = dict(
        type="CocoDataset",
        data_root=str(root),
        ann_file="train.json",
        data_prefix=dict(img=""),
        metainfo=dict(classes=MODEL_CLASSES),
        filter_cfg=filter_cfg,
        pipeline=[
            dict(type="LoadImageFromFile"),
            dict(type="LoadAnnotations", with_bbox=True),
            dict(type="PackDetInputs"),
        ],
    )
    if wrap:
        dataset = dict(type="ClassBalancedDataset", oversample_thr=threshold, dataset=dataset)
    return Config(dict(default_scope="mmdet", train_dataloader=dict(batch_size=1, num_workers=0, dataset=dataset)))


def _key(ds):
    return (
        ds.stats.class_names,
        ds.stats.instance_counts,
        ds.stats.image_counts,
        ds.stats.num_images,
        ds.ignored_counts,
        [x.tolist() for x in ds.image_labels],
    )


def test_three_readers_agree_in_model_label_order(coco_dir):
    from detbalance.detectron2.stats import register_coco, stats_from_detectron2
    from detbalance.mmdet.stats import stats_from_mmdet_config

    raw = read_coco(coco_dir / "train.json")
    name = f"detbalance_test_{uuid.uuid4().hex[:8]}"
    register_coco(name, str(coco_dir / "train.json"), str(coco_dir))
    d2 = stats_from_detectron2(name, filter_empty=False)
    mm = stats_from_mmdet_config(_mmdet_config(coco_dir))

    assert raw.stats.class_names == list(MODEL_CLASSES)
    assert raw.stats.instance_counts == [3, 2, 3, 2]  # zebra: 4 boxes, one of them crowd; moth: one crowd
    assert raw.stats.image_counts == [2, 2, 1, 2]
    assert raw.stats.num_images == 6 and raw.ignored_counts == [1, 0, 1, 0]
    # every box names its image's classes (crowd ones too, as the repeat-factor samplers count them)
    assert [x.tolist() for x in raw.image_labels] == [[0, 3], [0, 1], [0, 2], [], [1, 3], [2]]
    assert _key(d2) == _key(raw)
    assert _key(mm) == _key(raw)
    # crowd boxes counted on request, identically
    assert (
        stats_from_detectron2(name, include_ignored=True, filter_empty=False).stats.instance_counts
        == read_coco(coco_dir / "train.json", include_ignored=True).stats.instance_counts
        == [4, 2, 4, 2]
    )

    from detectron2.data import MetadataCatalog

    assert MetadataCatalog.get(name).thing_dataset_id_to_contiguous_id == {3: 0, 7: 1, 12: 2, 40: 3}
    with pytest.raises(ValueError, match="already registered"):
        register_coco(name, str(coco_dir / "train.json"), str(coco_dir))


def _register(coco_dir) -> str:
    from detbalance.detectron2.stats import register_coco

    name = f"detbalance_test_{uuid.uuid4().hex[:8]}"
    register_coco(name, str(coco_dir / "train.json"), str(coco_dir))
    return name


@pytest.mark.parametrize("filter_empty", [True, False])
def test_detectron2_counts_the_images_its_loader_iterates(coco_dir, filter_empty):
    from detectron2.data import get_detection_dataset_dicts
    from detectron2.data.samplers import RepeatFactorTrainingSampler

    from detbalance.detectron2.stats import class_stats_from_catalog, stats_from_detectron2

    name = _register(coco_dir)
    loader_dicts = get_detection_dataset_dicts([name], filter_empty=filter_empty)
    ds = stats_from_detectron2(name, filter_empty=filter_empty)
    assert ds.stats.num_images == len(loader_dicts) == (4 if filter_empty else 6)  # empty and crowd-only out
    assert ds.stats.instance_counts == [3, 2, 3, 2] and ds.stats.image_counts == [2, 2, 1, 2]
    assert class_stats_from_catalog([name, name], filter_empty=filter_empty).num_images == 2 * len(loader_dicts)
    for threshold in (0.2, 0.3, 0.5, 1.0):
        want = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(loader_dicts, threshold)
        got = repeat_factors(ds.image_labels, threshold)
        assert got.dtype == want.dtype and torch.equal(got, want), (threshold, got, want)
        assert (want > 1).any() or threshold < 0.5


def test_detectron2_build_counts_with_the_loader_filter(coco_dir, capsys):
    from detbalance.detectron2.loss_builder import build_classification_loss

    name = _register(coco_dir)
    loss = build_classification_loss("EqualizationLoss", 4, dataset_names=[name], filter_empty=True)
    assert "(4 images)" in capsys.readouterr().out
    torch.testing.assert_close(loss.class_freq, torch.tensor([2, 2, 1, 2]) / 4.0)
    build_classification_loss("EqualizationLoss", 4, dataset_names=[name], filter_empty=False)
    assert "(6 images)" in capsys.readouterr().out


@pytest.mark.slow  # six MMDetection dataset builds per case
@pytest.mark.parametrize("filter_cfg", [dict(filter_empty_gt=True), None])
def test_mmdet_counts_what_training_sees(coco_dir, filter_cfg):
    from detbalance.mmdet.stats import build_train_dataset, stats_from_mmdet_config

    raw = read_coco(coco_dir / "train.json")
    for threshold in (0.3, 0.5, 1.0):
        config = _mmdet_config(coco_dir, filter_cfg=filter_cfg, wrap=True, threshold=threshold)
        ds = stats_from_mmdet_config(config)  # the ClassBalancedDataset's repeats do not inflate the counts
        balanced = build_train_dataset(config)
        # MMDetection's filter_empty_gt drops the image without annotations; the crowd-only one stays
        assert ds.stats.num_images == len(balanced.dataset) == (5 if filter_cfg else 6)
        assert ds.stats.instance_counts == raw.stats.instance_counts
        assert ds.stats.image_counts == raw.stats.image_counts
        want = balanced._get_repeat_factors(balanced.dataset, threshold)
        got = repeat_factors(ds.image_labels, threshold)
        assert got.tolist() == pytest.approx(want, rel=1e-6)
        assert max(want) > 1 or threshold < 0.5


def test_framework_errors(tmp_path, coco_dir):
    from detbalance.detectron2.stats import stats_from_detectron2
    from detbalance.mmdet.stats import stats_from_mmdet_config

    with pytest.raises(ValueError, match="'no_such_set' is not registered"):
        stats_from_detectron2("no_such_set")
    with pytest.raises(FileNotFoundError, match="MMDetection config .*missing.py does not exist"):
        stats_from_mmdet_config(tmp_path / "missing.py")


def test_command_line_counts_the_detectron2_loader_images(coco_dir, capsys):
    from detbalance.cli.compute_weights import main

    json_file = str(coco_dir / "train.json")
    for extra, images in (([], 4), (["--keep-empty"], 6)):
        name = f"detbalance_test_{uuid.uuid4().hex[:8]}"
        assert main(["--register-coco", name, json_file, str(coco_dir), "--rfs-threshold", "0.5"] + extra) == 0
        out = capsys.readouterr().out
        assert "4 classes (" in out and f"10 instances, {images} images" in out
        assert "repeat factor sampling, threshold 0.5: " in out and f" of {images} images repeated" in out
    assert main(["--coco", json_file, "--keep-empty"]) == 2
    assert "--keep-empty applies to --d2-dataset/--register-coco" in capsys.readouterr().err
