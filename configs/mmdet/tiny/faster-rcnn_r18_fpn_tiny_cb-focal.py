_base_ = './faster-rcnn_r18_fpn_tiny.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(type='DBStandardRoIHead', bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBClassBalancedFocalLoss', num_classes={{_base_.num_classes}},
    samples_per_class={{_base_.weights_file}}, beta=0.99, gamma=2.0, loss_weight=1.0))))
