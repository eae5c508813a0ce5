# Mask R-CNN R50-FPN 1x on LVIS v1 with repeat-factor sampling and the Seesaw loss (K + 2 logits) in the box head.
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(type='DBStandardRoIHead', bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBSeesawLoss', num_classes=1203, p=0.8, q=2.0, eps=1e-2, loss_weight=1.0))))
# Repeat-factor sampling at LVIS's threshold 1e-3 through DBRepeatFactorSampler: detectron2's repeat factors and
# stochastic rounding (each epoch repeats an image floor(r) + Bernoulli(r - floor(r)) times), as Detectron2's
# RepeatFactorTrainingSampler, where MMDetection's ClassBalancedDataset rounds every factor up.
train_dataloader = dict(
    sampler=dict(_delete_=True, type='DBRepeatFactorSampler', threshold=1e-3),
    dataset=dict(_delete_=True, type='LVISV1Dataset', data_root='data/lvis_v1/',
                 ann_file='annotations/lvis_v1_train.json', data_prefix=dict(img=''),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline={{_base_.train_pipeline}},
                 backend_args=None))
