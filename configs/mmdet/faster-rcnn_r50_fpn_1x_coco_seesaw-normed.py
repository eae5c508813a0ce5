# Seesaw loss as published (Wang et al., CVPR 2021) and as MMDetection's configs/seesaw_loss ship it: the loss with
# MMDetection's normalised linear (cosine) classifier at temperature 20 (its argument is spelt `tempearture`).
_base_ = "./faster-rcnn_r50_fpn_1x_coco_seesaw.py"
model = dict(roi_head=dict(bbox_head=dict(cls_predictor_cfg=dict(type="NormedLinear", tempearture=20))))
