# Tiny CPU Faster R-CNN: ResNet-18 + FPN (64 channels), 128x128 inputs, 64 sampled RoIs, 100 proposals,
# random initialisation (nothing is downloaded). Plain softmax cross-entropy; the *_<loss>.py files next to
# this one differ from it only by `custom_imports`, `loss_cls` and `roi_head.type` (DBStandardRoIHead, which
# starts the classifier at the loss's initial bias).
#
# Dataset (COCO json) keys to override, e.g. with detbalance.mmdet.use_dataset(cfg, ...) or --cfg-options:
#   {train,val,test}_dataloader.dataset.{data_root, ann_file, data_prefix.img, metainfo.classes}
#   {val,test}_evaluator.ann_file                     (path including data_root)
#   model.roi_head.bbox_head.num_classes               (= len(classes))
#   model.roi_head.bbox_head.loss_cls.num_classes      (loss configs only, = len(classes))
#   model.roi_head.bbox_head.loss_cls.<stats argument> (loss configs reading the weights file)
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

# Layout of dbbench.data.synthetic (benchmarks/): train.json + train/*.png, test.json + test/*.png.
data_root = 'data/shapes/'
train_ann = 'train.json'
train_images = 'train/'
val_ann = 'test.json'
val_images = 'test/'
# Weights file of the training set (tools/compute_weights.py), read by the loss configs.
weights_file = data_root + 'weights.json'
classes = ('circle', 'square', 'triangle', 'cross', 'ring', 'hexagon', 'star', 'diamond')
num_classes = 8
image_size = (128, 128)

model = dict(
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=128, num_classes=num_classes)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=64)),
        rpn_proposal=dict(nms_pre=200, max_per_img=100),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=200, max_per_img=100),
        rcnn=dict(max_per_img=50)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file=train_ann,
        data_prefix=dict(img=train_images),
        metainfo=dict(classes=classes),
        filter_cfg=dict(filter_empty_gt=True, min_size=4),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file=val_ann,
        data_prefix=dict(img=val_images),
        metainfo=dict(classes=classes),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + val_ann)
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=12, val_interval=4)
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=4))
