"""The full-size LVIS configs named ``*rfs*`` sample with DBRepeatFactorSampler at LVIS's threshold (detectron2's
repeat factors and stochastic rounding) instead of MMDetection's ClassBalancedDataset, and their train loaders
build: the config's own sampler and aspect-ratio batch sampler over a small COCO-format set in place of LVIS."""

import json

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from dbbench.data import SyntheticSpec, generate
from detbalance.mmdet import DBRepeatFactorSampler  # the configs' custom_imports: registers the sampler
from helpers import MMDET_CONFIGS

RFS_CONFIGS = sorted(p.name for p in MMDET_CONFIGS.glob("*rfs*.py"))


def test_every_rfs_config_is_listed():
    assert len(RFS_CONFIGS) == 12 and all("lvis-v1" in name for name in RFS_CONFIGS)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    data = tmp_path_factory.mktemp("rfs") / "shapes"
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
    return data


@pytest.mark.slow
@pytest.mark.parametrize("name", RFS_CONFIGS)
def test_rfs_config_samples_with_the_shared_sampler_at_lvis_threshold(name, shapes):
    cfg = Config.fromfile(str(MMDET_CONFIGS / name))
    loader_cfg = cfg.train_dataloader
    assert loader_cfg.sampler == dict(type="DBRepeatFactorSampler", threshold=1e-3)
    dataset = loader_cfg.dataset
    assert dataset.type == "LVISV1Dataset" and "ClassBalancedDataset" not in cfg.pretty_text
    assert dataset.ann_file == "annotations/lvis_v1_train.json" and dataset.filter_cfg.min_size == 32
    # the same loader over a COCO-format set (LVIS itself is not here): only the dataset's location differs
    classes = [
        c["name"] for c in sorted(json.loads((shapes / "train.json").read_text())["categories"], key=lambda c: c["id"])
    ]
    dataset.update(
        type="CocoDataset",
        data_root=str(shapes),
        ann_file="train.json",
        data_prefix=dict(img="train/"),
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
    )
    loader_cfg.update(num_workers=0, persistent_workers=False, batch_size=2)
    init_default_scope("mmdet")
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    sampler = loader.batch_sampler.sampler
    assert type(loader.batch_sampler).__name__ == "AspectRatioBatchSampler"
    assert isinstance(sampler, DBRepeatFactorSampler) and sampler.threshold == 1e-3
    assert len(sampler.repeat_factors) == len(loader.dataset) and len(sampler) >= len(loader.dataset)
