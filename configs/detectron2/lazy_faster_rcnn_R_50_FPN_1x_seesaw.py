"""LazyConfig: the model zoo's Faster R-CNN R50-FPN (1x schedule) with a detbalance loss in the box head.

The box predictor is given explicitly (no yaml node is read): ``cls_loss`` is built by
``build_classification_loss`` from a loss name, hyper-parameters and, for losses that need class statistics, a
``weights_file`` (or ``dataset_names``). Per-box ``"weight"`` annotations reach the loss through
``WeightedDatasetMapper``; images of rare classes are repeated by detectron2's ``RepeatFactorTrainingSampler``.

Train with detectron2's ``tools/lazyconfig_train_net.py --config-file <this file>``.
"""
from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.layers import ShapeSpec
from detectron2.modeling.box_regression import Box2BoxTransform

import detbalance.detectron2  # noqa: F401  (first: compatibility shims, registrations)
from detbalance.detectron2 import (
    BalancedFastRCNNOutputLayers,
    WeightedDatasetMapper,
    build_classification_loss,
    build_repeat_factor_sampler,
)

model = model_zoo.get_config("common/models/mask_rcnn_fpn.py").model
model.roi_heads.update(mask_in_features=None, mask_pooler=None, mask_head=None)  # boxes only
model.roi_heads.box_predictor = L(BalancedFastRCNNOutputLayers)(
    input_shape=ShapeSpec(channels=1024),
    test_score_thresh=0.05,
    box2box_transform=L(Box2BoxTransform)(weights=(10, 10, 5, 5)),
    num_classes="${..num_classes}",
    cls_loss=L(build_classification_loss)(
        name="SeesawLoss",
        num_classes="${...num_classes}",
        hyper_params={"p": 0.8, "q": 2.0, "eps": 0.01},
    ),
)

dataloader = model_zoo.get_config("common/data/coco.py").dataloader
dataloader.train.mapper._target_ = WeightedDatasetMapper
dataloader.train.mapper.use_instance_mask = False
dataloader.train.sampler = L(build_repeat_factor_sampler)(dataset_dicts="${..dataset}", repeat_thresh=0.001)

optimizer = model_zoo.get_config("common/optim.py").SGD
lr_multiplier = model_zoo.get_config("common/coco_schedule.py").lr_multiplier_1x
train = model_zoo.get_config("common/train.py").train
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
