_base_ = './faster-rcnn_r18_fpn_tiny.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(type='DBStandardRoIHead', bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBEqualizationLoss', num_classes={{_base_.num_classes}},
    class_freq={{_base_.weights_file}}, lambda_=1.76e-3, loss_weight=1.0))))
