# Mask R-CNN R50-FPN 1x on LVIS v1: MMDetection's LVIS config (300 detections per image, score threshold 1e-4;
# mask head unchanged; repeat-factor sampling at 1e-3 through DBRepeatFactorSampler instead of its
# ClassBalancedDataset) with EQLv2 in the box head. The *_seesaw / *_federated files differ by loss_cls, the
# *_rfs-2x_* files by the schedule.
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(type='DBStandardRoIHead', bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBEQLv2Loss', num_classes=1203, mu=0.8, gamma=12.0, alpha=4.0, loss_weight=1.0))))
# Repeat-factor sampling at LVIS's threshold 1e-3 through DBRepeatFactorSampler: detectron2's repeat factors and
# stochastic rounding (each epoch repeats an image floor(r) + Bernoulli(r - floor(r)) times), as Detectron2's
# RepeatFactorTrainingSampler, where MMDetection's ClassBalancedDataset rounds every factor up.
train_dataloader = dict(
    sampler=dict(_delete_=True, type='DBRepeatFactorSampler', threshold=1e-3),
    dataset=dict(_delete_=True, type='LVISV1Dataset', data_root='data/lvis_v1/',
                 ann_file='annotations/lvis_v1_train.json', data_prefix=dict(img=''),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline={{_base_.train_pipeline}},
                 backend_args=None))
