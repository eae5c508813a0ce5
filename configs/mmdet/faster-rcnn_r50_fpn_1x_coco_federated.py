_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(type='DBStandardRoIHead', bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBFederatedLoss', num_classes=80,
    image_counts='data/coco/detbalance_weights.json', num_sampled=50, freq_power=0.5, loss_weight=1.0))))
