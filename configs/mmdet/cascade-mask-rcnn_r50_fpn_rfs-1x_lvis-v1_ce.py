# Cascade Mask R-CNN R50-FPN 1x on LVIS v1 (repeat-factor sampling at 1e-3, 300 detections per image, score
# threshold 1e-4) with MMDetection's softmax cross-entropy in the three stages: the baseline of
# cascade-mask-rcnn_r50_fpn_rfs-1x_lvis-v1_{seesaw,eqlv2}.py. DBCascadeRoIHead applies per-box annotation
# weights (gt_instances.weights) in every stage and is CascadeRoIHead without them.
_base_ = [
    'mmdet::_base_/models/cascade-mask-rcnn_r50_fpn.py', 'mmdet::_base_/datasets/lvis_v1_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
num_classes = 1203
stage_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
stage_loss_cls = dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
model = dict(
    roi_head=dict(
        type='DBCascadeRoIHead',
        bbox_head=[
            dict(type='Shared2FCBBoxHead', in_channels=256, fc_out_channels=1024, roi_feat_size=7,
                 num_classes=num_classes, reg_class_agnostic=True,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
                 loss_cls=stage_loss_cls,
                 loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
            for stds in stage_stds
        ],
        mask_head=dict(num_classes=num_classes)),
    test_cfg=dict(rcnn=dict(score_thr=0.0001, max_per_img=300)))
# Repeat-factor sampling at LVIS's threshold 1e-3 through DBRepeatFactorSampler: detectron2's repeat factors and
# stochastic rounding (each epoch repeats an image floor(r) + Bernoulli(r - floor(r)) times), as Detectron2's
# RepeatFactorTrainingSampler, where MMDetection's ClassBalancedDataset rounds every factor up.
train_dataloader = dict(
    sampler=dict(_delete_=True, type='DBRepeatFactorSampler', threshold=1e-3),
    dataset=dict(_delete_=True, type='LVISV1Dataset', data_root='data/lvis_v1/',
                 ann_file='annotations/lvis_v1_train.json', data_prefix=dict(img=''),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32), pipeline={{_base_.train_pipeline}},
                 backend_args=None))
