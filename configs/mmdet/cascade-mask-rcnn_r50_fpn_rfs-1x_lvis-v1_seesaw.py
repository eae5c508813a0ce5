# Cascade Mask R-CNN R50-FPN 1x on LVIS v1 with repeat-factor sampling and the Seesaw loss in every stage (one
# loss module, and its class counts, per stage).
_base_ = './cascade-mask-rcnn_r50_fpn_rfs-1x_lvis-v1_ce.py'
stage_loss_cls = dict(type='DBSeesawLoss', num_classes=1203, p=0.8, q=2.0, eps=1e-2, loss_weight=1.0)
stage_stds = [[0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067]]
model = dict(roi_head=dict(bbox_head=[
    dict(type='Shared2FCBBoxHead', in_channels=256, fc_out_channels=1024, roi_feat_size=7, num_classes=1203,
         reg_class_agnostic=True,
         bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
         loss_cls=stage_loss_cls, loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
    for stds in stage_stds
]))
