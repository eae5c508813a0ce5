"""The LazyConfig example: explicit predictor arguments, weighted mapper and repeat-factor sampler."""

from __future__ import annotations

import pytest
import torch
from d2_helpers import CONFIG_DIR, synthetic_batch
from detectron2.config import LazyConfig, instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.samplers import RepeatFactorTrainingSampler
from detectron2.modeling.roi_heads import StandardROIHeads
from detectron2.utils.events import EventStorage

from detbalance.detectron2 import BalancedFastRCNNOutputLayers, WeightedDatasetMapper
from detbalance.losses import SeesawLoss

LAZY_CONFIG = CONFIG_DIR / "lazy_faster_rcnn_R_50_FPN_1x_seesaw.py"
DATASET = "detbalance_test_lazy"


@pytest.fixture(scope="module")
def lazy_cfg():
    return LazyConfig.load(str(LAZY_CONFIG))


def test_predictor_is_instantiated_from_explicit_arguments(lazy_cfg):
    lazy_cfg.model.roi_heads.num_classes = 5
    predictor = instantiate(lazy_cfg.model.roi_heads.box_predictor)
    assert isinstance(predictor, BalancedFastRCNNOutputLayers) and isinstance(predictor.cls_loss, SeesawLoss)
    assert predictor.num_classes == predictor.cls_loss.num_classes == 5
    assert predictor.cls_score.out_features == 5 + 2 and predictor.cls_loss.p == 0.8
    assert predictor.test_score_thresh == 0.05
    assert lazy_cfg.model.roi_heads.mask_in_features is None


def test_dataloader_uses_weighted_mapper_and_repeat_factor_sampler(lazy_cfg, tmp_path):
    import numpy as np
    from detectron2.structures import BoxMode
    from PIL import Image

    dicts = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((64, 64, 3), 40 * i, dtype=np.uint8)).save(path)
        dicts.append(
            {
                "file_name": str(path),
                "image_id": i,
                "height": 64,
                "width": 64,
                "annotations": [
                    {"bbox": [4, 4, 30, 30], "bbox_mode": BoxMode.XYXY_ABS, "category_id": i % 2, "weight": 0.5 * i}
                ],
            }
        )
    DatasetCatalog.register(DATASET, lambda: [dict(d) for d in dicts])
    MetadataCatalog.get(DATASET).set(thing_classes=["a", "b"])
    try:
        train = lazy_cfg.dataloader.train
        train.dataset.names = DATASET
        train.total_batch_size, train.num_workers = 2, 0
        train.mapper.augmentations = []
        loader = instantiate(train)
        sampler = instantiate(train.sampler)
        assert isinstance(sampler, RepeatFactorTrainingSampler)
        assert train.mapper._target_ is WeightedDatasetMapper
        batch = next(iter(loader))
        weights = {d["file_name"]: d["annotations"][0]["weight"] for d in dicts}
        for item in batch:  # gt_weights: set by WeightedDatasetMapper only
            assert item["instances"].gt_weights.tolist() == [weights[item["file_name"]]]
    finally:
        DatasetCatalog.remove(DATASET)
        MetadataCatalog.remove(DATASET)


@pytest.mark.slow
def test_lazy_model_trains_a_step(lazy_cfg):
    lazy_cfg.model.roi_heads.num_classes = 8
    lazy_cfg.model.pixel_std = [57.4, 57.1, 58.4]  # random init: real image statistics keep the losses sane
    model = instantiate(lazy_cfg.model)
    assert type(model.roi_heads) is StandardROIHeads
    model.train()
    with EventStorage(0):
        losses = model(synthetic_batch())
        sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values()), losses
    assert float(model.roi_heads.box_predictor.cls_score.weight.grad.abs().sum()) > 0
