# Balanced group softmax (Li et al., CVPR 2020): a softmax per group of classes binned by training instance count
# (10 / 100 / 1000), an "others" column per group; reads the classes' instance counts from the weights file.
# Its paper trains it on top of a trained model: tools/train.py CONFIG --decouple STAGE1.pth.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(type='DBStandardRoIHead', bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBBAGSLoss', num_classes=80, samples_per_class='data/coco/detbalance_weights.json',
    bin_edges=(10, 100, 1000), others_sample_ratio=8.0, loss_weight=1.0))))
