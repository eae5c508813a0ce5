# FCOS R50-caffe-FPN (GN head) 1x on LVIS v1 (repeat-factor sampling at 1e-3 through DBRepeatFactorSampler, 300
# detections per image, score threshold 1e-4) with Equalized Focal Loss (Li et al., CVPR 2022) in the
# classification branch.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
num_classes = 1203
dataset_type = 'LVISV1Dataset'
data_root = 'data/lvis_v1/'
model = dict(
    bbox_head=dict(type='DBFCOSHead', num_classes=num_classes, loss_cls=dict(
        _delete_=True, type='DBEqualizedFocalLoss', num_classes=num_classes, use_sigmoid=True, gamma=2.0,
        scale=8.0, alpha=0.25, loss_weight=1.0)),
    test_cfg=dict(score_thr=0.0001, max_per_img=300))
# Repeat-factor sampling at LVIS's threshold 1e-3 through DBRepeatFactorSampler: detectron2's repeat factors and
# stochastic rounding (each epoch repeats an image floor(r) + Bernoulli(r - floor(r)) times), as Detectron2's
# RepeatFactorTrainingSampler, where MMDetection's ClassBalancedDataset rounds every factor up.
train_dataloader = dict(
    sampler=dict(_delete_=True, type='DBRepeatFactorSampler', threshold=1e-3),
    dataset=dict(_delete_=True, type=dataset_type, data_root=data_root, ann_file='annotations/lvis_v1_train.json',
                 data_prefix=dict(img=''), filter_cfg=dict(filter_empty_gt=True, min_size=32),
                 pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, ann_file='annotations/lvis_v1_val.json',
                                   data_prefix=dict(img='')))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='LVISMetric', ann_file=data_root + 'annotations/lvis_v1_val.json',
                     metric=['bbox'])
test_evaluator = val_evaluator
