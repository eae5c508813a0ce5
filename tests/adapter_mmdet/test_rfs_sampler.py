"""DBRepeatFactorSampler: detectron2's repeat factors on the same COCO records (empty and crowd-only images
included), stochastic rounding whose mean over epochs is the factor, bad thresholds, and a real MMDetection train
dataloader built from a config that selects it."""

import json
import math

import pytest
import torch
from detectron2.data.datasets import load_coco_json
from detectron2.data.samplers import RepeatFactorTrainingSampler
from mmdet.datasets import CocoDataset
from mmengine.config import Config
from mmengine.runner import Runner

from dbbench.data import SyntheticSpec, generate
from detbalance.mmdet import DBRepeatFactorSampler, use_dataset

CLASSES = ("a", "b", "c", "d")


def _write_coco(path):
    """12 images: 'a' in 9, 'b' in 2, 'c' in one image with 'a', 'd' only as a crowd box of one image, one image
    without annotations."""
    labels = [["a"]] * 6 + [["a", "b"], ["a", "b"], ["a", "c"], ["d*"], [], ["a", "a"]]
    images, anns = [], []
    for i, names in enumerate(labels, start=1):
        images.append({"id": i, "file_name": f"{i}.png", "width": 64, "height": 64})
        for j, name in enumerate(names):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": CLASSES.index(name[0]) + 1,
                    "bbox": [4 + 20 * j, 4, 16, 16],
                    "area": 256,
                    "iscrowd": int(name.endswith("*")),
                }
            )
    cats = [{"id": k + 1, "name": n} for k, n in enumerate(CLASSES)]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


@pytest.fixture
def coco_records(tmp_path):
    ann = _write_coco(tmp_path / "train.json")
    dataset = CocoDataset(
        ann_file=str(ann),
        data_root="",
        data_prefix=dict(img=str(tmp_path)),
        metainfo=dict(classes=CLASSES),
        filter_cfg=None,
        pipeline=[],
    )
    dicts = load_coco_json(str(ann), str(tmp_path), dataset_name=f"rfs_sampler_{tmp_path.name}")
    return dataset, dicts


@pytest.mark.parametrize("threshold", [0.05, 0.5, 1.0])
def test_factors_equal_detectron2s_on_the_same_records(coco_records, threshold):
    dataset, dicts = coco_records
    sampler = DBRepeatFactorSampler(dataset, threshold=threshold, seed=0)
    expected = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(dicts, threshold)
    ours = {dataset.get_data_info(i)["img_id"]: float(f) for i, f in enumerate(sampler.repeat_factors)}
    theirs = {d["image_id"]: float(f) for d, f in zip(dicts, expected)}
    assert ours == pytest.approx(theirs, rel=1e-6)
    if threshold == 0.5:  # 'd' is in 1 of 12 images through its crowd box alone; the empty image repeats once
        assert ours[10] == pytest.approx(math.sqrt(0.5 * 12)) and ours[11] == 1.0
        assert ours[7] == pytest.approx(math.sqrt(0.5 * 6))


@pytest.mark.slow
def test_mean_repeats_over_epochs_equal_the_factors(coco_records):
    dataset, _ = coco_records
    sampler = DBRepeatFactorSampler(dataset, threshold=0.5, seed=3)
    factors = sampler.repeat_factors.double()
    epochs = 1000
    counts = torch.zeros(len(dataset), dtype=torch.float64)
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        indices = list(sampler)
        assert len(indices) == len(sampler)
        per_image = torch.bincount(torch.tensor(indices), minlength=len(dataset)).double()
        assert ((per_image == factors.floor()) | (per_image == factors.floor() + 1)).all()
        counts += per_image
    assert (counts / epochs).tolist() == pytest.approx(factors.tolist(), abs=0.07)
    sampler.set_epoch(7)
    first = list(sampler)
    again = DBRepeatFactorSampler(dataset, threshold=0.5, seed=3)
    again.set_epoch(7)
    assert list(again) == first
    again.set_epoch(8)
    assert list(again) != first


@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), float("inf"), "0.01", True])
def test_bad_threshold_names_the_value(coco_records, bad):
    dataset, _ = coco_records
    with pytest.raises(ValueError, match=f"threshold={bad!r}".replace("(", r"\(").replace(")", r"\)")):
        DBRepeatFactorSampler(dataset, threshold=bad)


def test_dataset_without_classes_is_refused():
    with pytest.raises(ValueError, match="has no get_cat_ids"):
        DBRepeatFactorSampler(list(range(4)), threshold=0.1)


def test_a_config_selecting_it_builds_a_real_dataloader(tmp_path, config_dir):
    data = tmp_path / "shapes"
    generate(
        SyntheticSpec(
            num_classes=4,
            head_instances=12,
            imbalance_ratio=6,
            test_per_class=1,
            image_size=64,
            min_size=10,
            max_size=16,
            max_objects=2,
        ),
        data,
    )
    cfg = Config.fromfile(str(config_dir / "tiny" / "faster-rcnn_r18_fpn_tiny.py"))
    classes = [
        c["name"] for c in sorted(json.loads((data / "train.json").read_text())["categories"], key=lambda c: c["id"])
    ]
    use_dataset(
        cfg,
        data_root=str(data),
        classes=classes,
        train_ann="train.json",
        train_images="train/",
        val_ann="test.json",
        val_images="test/",
    )
    cfg.merge_from_dict(
        dict(
            custom_imports=dict(imports=["detbalance.mmdet"], allow_failed_imports=False),
            train_dataloader=dict(
                batch_size=2,
                num_workers=0,
                persistent_workers=False,
                sampler=dict(type="DBRepeatFactorSampler", threshold=0.3, seed=1),
            ),
        )
    )
    assert cfg.train_dataloader.sampler.type == "DBRepeatFactorSampler"
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    sampler = loader.batch_sampler.sampler  # the config's batch sampler (aspect-ratio grouping) wraps it
    assert isinstance(sampler, DBRepeatFactorSampler) and sampler.seed == 1
    assert max(sampler.repeat_factors.tolist()) > 1.0
    batch = next(iter(loader))
    assert len(batch["inputs"]) == 2 and batch["inputs"][0].dtype == torch.uint8
    assert all(len(s.gt_instances.labels) >= 1 for s in batch["data_samples"])
    cfg.train_dataloader.sampler.threshold = -1
    with pytest.raises(ValueError, match="threshold=-1"):
        Runner.build_dataloader(cfg.train_dataloader, seed=0)


def _rank_indices(rank, ann, image_root, init_file, out_dir):
    from dist_helpers import init_gloo

    init_gloo(rank, 2, init_file)
    dataset = CocoDataset(
        ann_file=ann,
        data_root="",
        data_prefix=dict(img=image_root),
        metainfo=dict(classes=CLASSES),
        filter_cfg=None,
        pipeline=[],
    )
    sampler = DBRepeatFactorSampler(dataset, threshold=0.5)  # seed None: rank 0's random seed, broadcast
    sampler.set_epoch(2)
    (out_dir / f"rank{rank}.json").write_text(
        json.dumps({"seed": sampler.seed, "indices": list(sampler), "len": len(sampler)})
    )


@pytest.mark.slow
def test_ranks_share_one_epoch_between_them(tmp_path):
    from detbalance.weights.sampling import repeat_factor_epoch
    from dist_helpers import run_ranks

    ann = _write_coco(tmp_path / "train.json")
    run_ranks(_rank_indices, (str(ann), str(tmp_path), str(tmp_path / "init"), tmp_path), nprocs=2, timeout_s=60)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["seed"] == ranks[1]["seed"]
    assert len(ranks[0]["indices"]) == len(ranks[1]["indices"]) == ranks[0]["len"]
    dataset = CocoDataset(
        ann_file=str(ann),
        data_root="",
        data_prefix=dict(img=str(tmp_path)),
        metainfo=dict(classes=CLASSES),
        filter_cfg=None,
        pipeline=[],
    )
    factors = DBRepeatFactorSampler(dataset, threshold=0.5, seed=0).repeat_factors
    epoch = repeat_factor_epoch(factors, ranks[0]["seed"], 2).tolist()
    padded = (epoch * 2)[: 2 * ranks[0]["len"]]  # padded to a multiple of the world size, as DefaultSampler
    assert ranks[0]["indices"] == padded[0::2] and ranks[1]["indices"] == padded[1::2]
