_base_ = './faster-rcnn_r18_fpn_tiny.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(type='DBStandardRoIHead', bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBEQLv2Loss', num_classes={{_base_.num_classes}}, mu=0.8, gamma=12.0, alpha=4.0,
    loss_weight=1.0))))
