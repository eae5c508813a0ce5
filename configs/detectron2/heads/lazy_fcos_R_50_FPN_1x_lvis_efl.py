"""LazyConfig: FCOS R50-FPN 1x (detectron2's model zoo FCOS) on LVIS v1 with Equalized Focal Loss.

``BalancedFCOS`` replaces detectron2's focal loss by ``cls_loss`` (any loss of
``detbalance.losses.dense_head_losses``, e.g. ``FocalLoss`` with a ``weights_file`` for per-class alphas); LVIS
v1 with repeat-factor sampling at 0.001, 300 detections per image, score threshold 1e-4 (FCOS scores are
sqrt(class score x centerness)). Register ``lvis_v1_train``/``lvis_v1_val`` (detectron2's builtin datasets) and
train with detectron2's ``tools/lazyconfig_train_net.py --config-file <this file>``.
"""
from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.evaluation import LVISEvaluator

import detbalance.detectron2  # noqa: F401  (first: compatibility shims, registrations)
from detbalance.detectron2 import BalancedFCOS, build_dense_classification_loss, build_repeat_factor_sampler
from detbalance.detectron2.fcos import group_norm_32

NUM_CLASSES = 1203

model = model_zoo.get_config("common/models/fcos.py").model
model._target_ = BalancedFCOS
del model.focal_loss_alpha, model.focal_loss_gamma  # the loss's own hyper-parameters are in cls_loss
model.num_classes = NUM_CLASSES
model.test_score_thresh = 0.0001
model.max_detections_per_image = 300
model.cls_loss = L(build_dense_classification_loss)(
    name="EqualizedFocalLoss",
    num_classes="${..num_classes}",
    hyper_params={"gamma": 2.0, "scale": 8.0, "alpha": 0.25},
    head="BalancedFCOS",
)
model.head.norm = group_norm_32  # "GN" (32 groups), in a form detectron2 v0.6 builds on current torch
model.backbone.bottom_up.freeze_at = 2

dataloader = model_zoo.get_config("common/data/coco.py").dataloader
dataloader.train.dataset.names = "lvis_v1_train"
dataloader.train.mapper.use_instance_mask = False
dataloader.train.sampler = L(build_repeat_factor_sampler)(dataset_dicts="${..dataset}", repeat_thresh=0.001)
dataloader.test.dataset.names = "lvis_v1_val"
dataloader.evaluator = L(LVISEvaluator)(dataset_name="${..test.dataset.names}", max_dets_per_image=300)

optimizer = model_zoo.get_config("common/optim.py").SGD
optimizer.lr = 0.01
lr_multiplier = model_zoo.get_config("common/coco_schedule.py").lr_multiplier_1x
train = model_zoo.get_config("common/train.py").train
train.init_checkpoint = "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
