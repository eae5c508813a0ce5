# The tiny Seesaw config with the normalised linear (cosine) classifier at temperature 20, as the Seesaw paper and
# MMDetection's configs/seesaw_loss train the loss.
_base_ = "./faster-rcnn_r18_fpn_tiny_seesaw.py"
model = dict(roi_head=dict(bbox_head=dict(cls_predictor_cfg=dict(type="NormedLinear", tempearture=20))))
