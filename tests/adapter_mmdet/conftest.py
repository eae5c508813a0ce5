"""Fixtures of the MMDetection tests: real mmdet registries, weights files and synthetic detection batches."""

from __future__ import annotations

from pathlib import Path

import mmcv.ops  # noqa: F401  (compiled ops: `make setup` builds them; their absence is an error)
import pytest
import torch
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.structures import InstanceData

import detbalance.mmdet  # noqa: F401  (registers the DB* components)
from helpers import MMDET_CONFIGS as CONFIG_DIR
from helpers import write_weights_file

register_all_modules(init_default_scope=True)

IMAGE_SIZE = 128


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory):
    """``weights_file(K)``: path of a weights file describing K classes (cached per K)."""
    folder = tmp_path_factory.mktemp("weights")
    cache: dict[int, Path] = {}

    def make(num_classes: int) -> Path:
        if num_classes not in cache:
            cache[num_classes] = write_weights_file(
                folder / f"weights_k{num_classes}.json", num_classes, background_weight=0.5
            )
        return cache[num_classes]

    return make


def make_batch(
    num_classes: int,
    num_images: int = 2,
    boxes_per_image: int = 3,
    seed: int = 0,
    weights: list[list[float]] | None = None,
) -> dict:
    """A ``model.data_preprocessor`` input: uint8 images with bright boxes and matching ``gt_instances``."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(num_images):
        image = torch.randint(60, 120, (3, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8, generator=g)
        xy = torch.randint(0, IMAGE_SIZE - 48, (boxes_per_image, 2), generator=g).float()
        wh = torch.randint(16, 48, (boxes_per_image, 2), generator=g).float()
        boxes = torch.cat([xy, xy + wh], dim=1)
        for x0, y0, x1, y1 in boxes.long().tolist():
            image[:, y0:y1, x0:x1] = 220
        sample = DetDataSample(
            metainfo=dict(
                img_id=i,
                img_path=f"{i}.png",
                ori_shape=(IMAGE_SIZE, IMAGE_SIZE),
                img_shape=(IMAGE_SIZE, IMAGE_SIZE),
                scale_factor=(1.0, 1.0),
            )
        )
        gt = InstanceData(bboxes=boxes, labels=torch.randint(0, num_classes, (boxes_per_image,), generator=g))
        if weights is not None:
            gt.weights = torch.tensor(weights[i], dtype=torch.float32)
        sample.gt_instances = gt
        inputs.append(image)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


@pytest.fixture(scope="session")
def batch():
    """``batch(K, ...)``: see :func:`make_batch`."""
    return make_batch


@pytest.fixture(scope="session")
def config_dir() -> Path:
    return CONFIG_DIR
