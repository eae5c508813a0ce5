# Tiny CPU Mask R-CNN: the tiny Faster R-CNN (faster-rcnn_r18_fpn_tiny.py) with MMDetection's FCN mask head
# (two 64-channel convolutions, unchanged) and EQLv2 in the box head; annotations are loaded with their masks.
_base_ = './faster-rcnn_r18_fpn_tiny.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(
    type='MaskRCNN',
    data_preprocessor=dict(pad_mask=True),
    roi_head=dict(
        type='DBStandardRoIHead',
        bbox_head=dict(loss_cls=dict(
            _delete_=True, type='DBEQLv2Loss', num_classes={{_base_.num_classes}}, mu=0.8, gamma=12.0, alpha=4.0,
            loss_weight=1.0)),
        mask_roi_extractor=dict(type='SingleRoIExtractor', out_channels=64, featmap_strides=[4, 8, 16, 32],
                                roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0)),
        mask_head=dict(type='FCNMaskHead', num_convs=2, in_channels=64, conv_out_channels=64,
                       num_classes={{_base_.num_classes}},
                       loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    train_cfg=dict(rcnn=dict(mask_size=28)),
    test_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale={{_base_.image_size}}, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]))
