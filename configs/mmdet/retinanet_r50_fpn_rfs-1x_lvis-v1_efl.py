# RetinaNet R50-FPN 1x on LVIS v1 with repeat-factor sampling and Equalized Focal Loss (Li et al., CVPR 2022;
# paper hyper-parameters), which learns its class statistics while training.
_base_ = './retinanet_r50_fpn_rfs-1x_lvis-v1_focal.py'
model = dict(bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBEqualizedFocalLoss', num_classes=1203, use_sigmoid=True, gamma=2.0, scale=8.0,
    alpha=0.25, loss_weight=1.0)))
