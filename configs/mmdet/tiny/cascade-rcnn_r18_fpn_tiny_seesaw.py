# Tiny CPU Cascade R-CNN: the tiny Faster R-CNN (faster-rcnn_r18_fpn_tiny.py) with three cascade stages, each
# training the Seesaw loss (one loss module, and state, per stage), and DBCascadeRoIHead, which applies per-box
# annotation weights in every stage (see faster-rcnn_r18_fpn_tiny_box-weights.py for the data side).
_base_ = './faster-rcnn_r18_fpn_tiny.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
num_classes = 8
stage_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
stage_ious = [0.5, 0.6, 0.7]
model = dict(
    type='CascadeRCNN',
    roi_head=dict(
        _delete_=True,
        type='DBCascadeRoIHead',
        num_stages=3,
        stage_loss_weights=[1, 0.5, 0.25],
        bbox_roi_extractor=dict(type='SingleRoIExtractor', out_channels=64, featmap_strides=[4, 8, 16, 32],
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0)),
        bbox_head=[
            dict(type='Shared2FCBBoxHead', in_channels=64, fc_out_channels=128, roi_feat_size=7,
                 num_classes=num_classes, reg_class_agnostic=True,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
                 loss_cls=dict(type='DBSeesawLoss', num_classes=num_classes, p=0.8, q=2.0, eps=1e-2,
                               loss_weight=1.0),
                 loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
            for stds in stage_stds
        ]),
    train_cfg=dict(rcnn=[
        dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=iou, neg_iou_thr=iou, min_pos_iou=iou,
                           match_low_quality=False, ignore_iof_thr=-1),
             sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
             pos_weight=-1, debug=False)
        for iou in stage_ious
    ]))
