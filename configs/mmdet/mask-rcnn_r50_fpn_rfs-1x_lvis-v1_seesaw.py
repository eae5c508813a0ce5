# Mask R-CNN R50-FPN 1x on LVIS v1 with repeat-factor sampling and the Seesaw loss (K + 2 logits) in the box head.
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBSeesawLoss', num_classes=1203, p=0.8, q=2.0, eps=1e-2, loss_weight=1.0))))
