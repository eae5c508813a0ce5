# Tiny CPU RetinaNet with the focal loss and per-class alphas from the weights file's class weights
# (DBFocalLoss: alpha_j / (1 - alpha_j) = w_j * alpha / (1 - alpha)); class_weight=None gives MMDetection's
# FocalLoss with one alpha.
_base_ = './retinanet_r18_fpn_tiny_efl.py'
model = dict(bbox_head=dict(loss_cls=dict(
    _delete_=True, type='DBFocalLoss', num_classes={{_base_.num_classes}}, use_sigmoid=True,
    class_weight={{_base_.weights_file}}, alpha=0.25, gamma=2.0, loss_weight=1.0)))
