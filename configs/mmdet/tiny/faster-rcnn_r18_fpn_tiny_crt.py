# Decoupled classifier re-training (cRT) of the tiny Faster R-CNN: stage 2 starts from a model trained end to end
# with faster-rcnn_r18_fpn_tiny.py (load_from), trains only the box classifier (re-initialised) with repeat-factor
# sampling for a short schedule; every other parameter and every BatchNorm statistic stays as trained.
_base_ = './faster-rcnn_r18_fpn_tiny.py'
custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)

load_from = 'work_dirs/faster-rcnn_r18_fpn_tiny/epoch_12.pth'  # the stage-1 model
custom_hooks = [dict(type='DBDecoupleHook', train='classifier', reinit_classifier=True)]
train_dataloader = dict(sampler=dict(_delete_=True, type='DBRepeatFactorSampler', threshold=0.01))
train_cfg = dict(max_epochs=2, val_interval=2)
