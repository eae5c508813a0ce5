# Mask R-CNN R50-FPN 2x (24 epochs, LR steps at 16 and 22) on LVIS v1 with repeat-factor sampling; box-head loss
# as in mask-rcnn_r50_fpn_rfs-1x_lvis-v1_eqlv2.py.
_base_ = './mask-rcnn_r50_fpn_rfs-1x_lvis-v1_eqlv2.py'
train_cfg = dict(max_epochs=24)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True, milestones=[16, 22], gamma=0.1),
]
