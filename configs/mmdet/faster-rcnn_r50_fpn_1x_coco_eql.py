_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(type='DBStandardRoIHead', bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBEqualizationLoss', num_classes=80,
    class_freq='data/coco/detbalance_weights.json', lambda_=1.76e-3, loss_weight=1.0))))
