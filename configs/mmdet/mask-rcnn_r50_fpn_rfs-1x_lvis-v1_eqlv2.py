# Mask R-CNN R50-FPN 1x on LVIS v1: MMDetection's LVIS config (repeat-factor sampling at 1e-3 through
# ClassBalancedDataset, 300 detections per image, score threshold 1e-4; mask head unchanged) with EQLv2 in the
# box head. The *_seesaw / *_federated files differ by loss_cls, the *_rfs-2x_* files by the schedule.
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBEQLv2Loss', num_classes=1203, mu=0.8, gamma=12.0, alpha=4.0, loss_weight=1.0))))
