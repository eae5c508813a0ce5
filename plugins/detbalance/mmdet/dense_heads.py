"""``DBRetinaHead``, ``DBFCOSHead``, ``DBATSSHead``: MMDetection's dense heads, checked against their detbalance
loss and their training batches.

MMDetection's dense heads size their classifier from the config's ``loss_cls.use_sigmoid`` and never ask their
loss anything. Right after building the loss, before the layers, these heads:

- refuse a detbalance loss that cannot serve a dense head (softmax cross-entropy, EQLv2's objectness column,
  Seesaw's two extra columns, BAGS: not K sigmoid logits per anchor, :func:`detbalance.losses.check_dense_head_loss`)
  or one built for another number of classes, naming the loss and the head;
- give a K-column loss of the box-head table (class-balanced focal, EQL, Federated), which takes no
  ``use_sigmoid``, K sigmoid channels, and ask it for the K class scores (``serves_dense_head``).

And they apply no per-box annotation weights (:mod:`.box_weights_data`): a training batch whose boxes carry
weights other than 1 raises, naming the head, instead of being trained as if every weight were 1
(:func:`detbalance.losses.dense_head_checks.refuse_box_weights`). With MMDetection's own losses they train and
predict exactly as the heads they extend. Config::

    model = dict(bbox_head=dict(type='DBRetinaHead', loss_cls=dict(type='DBEqualizedFocalLoss', ...)))
"""

from __future__ import annotations

from mmdet.models.dense_heads import ATSSHead, FCOSHead, RetinaHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from torch import Tensor

from detbalance.losses.dense_head_checks import check_dense_head, refuse_box_weights

from ._loss_base import DBLossBase
from .cascade_roi_head import DBCascadeRoIHead
from .roi_head import DBStandardRoIHead

__all__ = ["DBRetinaHead", "DBFCOSHead", "DBATSSHead", "DenseHeadChecks"]

#: The heads that apply per-box weights.
BOX_HEADS = (DBStandardRoIHead.__name__, DBCascadeRoIHead.__name__)


class DenseHeadChecks:
    """What the DB dense heads add to the MMDetection head they extend (module docstring)."""

    def _init_layers(self) -> None:
        loss = self.loss_cls
        if isinstance(loss, DBLossBase):
            head = f"{type(self).__name__} (loss_cls {type(loss).__name__})"
            check_dense_head(loss.core, head, self.num_classes, "bbox_head.num_classes")
            self.use_sigmoid_cls, self.cls_out_channels = True, self.num_classes
            loss.serves_dense_head = True
        super()._init_layers()

    def loss(self, x: tuple[Tensor], batch_data_samples: list[DetDataSample]) -> dict:
        weights = (sample.gt_instances.get("weights") for sample in batch_data_samples)
        refuse_box_weights(weights, type(self).__name__, "gt_instances.weights", BOX_HEADS)
        return super().loss(x, batch_data_samples)


@MODELS.register_module()
class DBRetinaHead(DenseHeadChecks, RetinaHead):
    """``RetinaHead`` with the checks of :class:`DenseHeadChecks`."""


@MODELS.register_module()
class DBFCOSHead(DenseHeadChecks, FCOSHead):
    """``FCOSHead`` with the checks of :class:`DenseHeadChecks`."""


@MODELS.register_module()
class DBATSSHead(DenseHeadChecks, ATSSHead):
    """``ATSSHead`` with the checks of :class:`DenseHeadChecks`."""
