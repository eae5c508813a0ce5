_base_ = './faster-rcnn_r18_fpn_tiny.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(type='DBStandardRoIHead', bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBFederatedLoss', num_classes={{_base_.num_classes}},
    image_counts={{_base_.weights_file}}, num_sampled=50, freq_power=0.5, loss_weight=1.0))))
