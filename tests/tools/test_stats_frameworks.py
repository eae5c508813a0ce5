"""One COCO dataset, three readers: Detectron2's DatasetCatalog, an MMDetection config, the raw json.

Category ids are non-contiguous and their names are not alphabetical, so a reader that used the ids as labels or
sorted the names would disagree with the model's label order.
"""
import json
import uuid

import numpy as np
import pytest
from PIL import Image

from detbalance.stats import read_coco

CATEGORIES = [{"id": 3, "name": "zebra"}, {"id": 7, "name": "ant"}, {"id": 12, "name": "moth"},
              {"id": 40, "name": "bee"}]
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
    }
    for img_id, boxes in plan.items():
        name = f"img{img_id}.png"
        Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(root / name)
        images.append({"id": img_id, "file_name": name, "height": 32, "width": 48})
        for cat, crowd in boxes:
            x, y = rng.uniform(0, 20, 2).round(1).tolist()
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat, "bbox": [x, y, 10.0, 8.0],
                         "area": 80.0, "iscrowd": crowd})
    (root / "train.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES}))
    return root


def _mmdet_config(root, filter_cfg=None, wrap=False):
    from mmengine.config import Config

    dataset = dict(type="CocoDataset", data_root=str(root), ann_file="train.json", data_prefix=dict(img=""),
                   metainfo=dict(classes=MODEL_CLASSES), filter_cfg=filter_cfg,
                   pipeline=[dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
                             dict(type="PackDetInputs")])
    if wrap:
        dataset = dict(type="ClassBalancedDataset", oversample_thr=0.5, dataset=dataset)
    return Config(dict(default_scope="mmdet", train_dataloader=dict(batch_size=1, num_workers=0, dataset=dataset)))


def _key(ds):
    return (ds.stats.class_names, ds.stats.instance_counts, ds.stats.image_counts, ds.stats.num_images,
            ds.ignored_counts, [x.tolist() for x in ds.image_labels])


def test_three_readers_agree_in_model_label_order(coco_dir):
    from detbalance.detectron2.stats import register_coco, stats_from_detectron2
    from detbalance.mmdet.stats import stats_from_mmdet_config

    raw = read_coco(coco_dir / "train.json")
    name = f"detbalance_test_{uuid.uuid4().hex[:8]}"
    register_coco(name, str(coco_dir / "train.json"), str(coco_dir))
    d2 = stats_from_detectron2(name)
    mm = stats_from_mmdet_config(_mmdet_config(coco_dir))

    assert raw.stats.class_names == list(MODEL_CLASSES)
    assert raw.stats.instance_counts == [3, 2, 3, 2]  # zebra: 4 boxes, one of them crowd
    assert raw.stats.image_counts == [2, 2, 1, 2]
    assert raw.stats.num_images == 5 and raw.ignored_counts == [1, 0, 0, 0]
    assert _key(d2) == _key(raw)
    assert _key(mm) == _key(raw)
    # crowd boxes counted on request, identically
    assert (stats_from_detectron2(name, include_ignored=True).stats.instance_counts
            == read_coco(coco_dir / "train.json", include_ignored=True).stats.instance_counts == [4, 2, 3, 2])

    from detectron2.data import MetadataCatalog

    assert MetadataCatalog.get(name).thing_dataset_id_to_contiguous_id == {3: 0, 7: 1, 12: 2, 40: 3}
    with pytest.raises(ValueError, match="already registered"):
        register_coco(name, str(coco_dir / "train.json"), str(coco_dir))


def test_mmdet_counts_what_training_sees(coco_dir):
    from detbalance.mmdet.stats import stats_from_mmdet_config

    raw = read_coco(coco_dir / "train.json")
    filtered = stats_from_mmdet_config(_mmdet_config(coco_dir, filter_cfg=dict(filter_empty_gt=True)))
    assert filtered.stats.num_images == 4  # the empty image is filtered out before training
    assert filtered.stats.instance_counts == raw.stats.instance_counts
    wrapped = stats_from_mmdet_config(_mmdet_config(coco_dir, wrap=True))  # repeats do not inflate the counts
    assert _key(wrapped) == _key(raw)


def test_framework_errors(tmp_path, coco_dir):
    from detbalance.detectron2.stats import stats_from_detectron2
    from detbalance.mmdet.stats import stats_from_mmdet_config

    with pytest.raises(ValueError, match="'no_such_set' is not registered"):
        stats_from_detectron2("no_such_set")
    with pytest.raises(FileNotFoundError, match="MMDetection config .*missing.py does not exist"):
        stats_from_mmdet_config(tmp_path / "missing.py")
