# Mask R-CNN R50-FPN 1x on LVIS v1 with repeat-factor sampling and the Federated loss in the box head; its image
# counts come from the weights file of the training set (tools/compute_weights.py --coco lvis_v1_train.json).
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBFederatedLoss', num_classes=1203, image_counts='data/lvis_v1/detbalance_weights.json',
    num_sampled=50, freq_power=0.5, loss_weight=1.0))))
