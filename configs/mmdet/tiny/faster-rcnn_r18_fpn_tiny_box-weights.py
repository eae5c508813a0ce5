# Per-box annotation weights: a COCO annotation's "weight" (default 1) multiplies that box's classification loss.
# DBCocoDataset keeps it, DBLoadAnnotations loads it, DBPackDetInputs packs it as gt_instances.weights and
# DBStandardRoIHead scales the label weights of the proposals matched to the box. Works with any loss_cls.
_base_ = './faster-rcnn_r18_fpn_tiny.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
model = dict(roi_head=dict(type='DBStandardRoIHead'))
train_dataloader = dict(dataset=dict(
    type='DBCocoDataset',
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='DBLoadAnnotations', with_bbox=True),
        dict(type='Resize', scale={{_base_.image_size}}, keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='DBPackDetInputs'),
    ]))
