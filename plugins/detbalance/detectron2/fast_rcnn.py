"""Fast R-CNN box predictor whose classification term is a detbalance loss.

Shape shorthand in this module:

    R: number of proposals, combined over all images of the batch
    K: number of foreground classes (``MODEL.ROI_HEADS.NUM_CLASSES``); label K is background
    L: classifier columns the loss needs, ``cls_loss.num_logits``: K+1 (softmax, background last; EQLv2, sigmoid
       objectness last), K (other sigmoid losses), K+2 (seesaw: K classes + 2 objectness) or K+1+G (BAGS: K
       classes, background, an "others" column per group)

Box regression (deltas, ``box_reg_loss``, box inference) is detectron2's, unchanged.
"""

from __future__ import annotations

import inspect

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec, cat
from detectron2.modeling.roi_heads.fast_rcnn import FastRCNNOutputLayers, _log_classification_stats
from detectron2.structures import Instances
from torch import nn

from ..calibration import ScoreCalibration
from ..layers import SEESAW_TEMPERATURE
from ..losses import LOSSES
from .calibration import calibration_from_config
from .classifier import build_classifier
from .config import HYPER_PARAMETER_KEYS
from .loss_builder import build_classification_loss

__all__ = ["BalancedFastRCNNOutputLayers"]

# detectron2 after v0.6 (upstream main) added these FastRCNNOutputLayers options for its own sigmoid and
# federated classification losses; from_config returns them there, not in v0.6. This predictor takes its
# classification loss from cfg.DETBALANCE.LOSS instead, so the switches must be off and none is forwarded (the
# parent's defaults then keep them off). This is the one place that differs between detectron2 versions.
_UPSTREAM_CLASSIFICATION_SWITCHES = {"use_sigmoid_ce": "USE_SIGMOID_CE", "use_fed_loss": "USE_FED_LOSS"}
_UPSTREAM_CLASSIFICATION_SETTINGS = ("get_fed_loss_cls_weights", "fed_loss_num_classes")


def drop_upstream_classification_options(parent_args: dict) -> dict:
    """Remove upstream detectron2's own classification-loss options from ``FastRCNNOutputLayers.from_config``.

    Raises ``ValueError`` when one of them is switched on, since it would compete with ``DETBALANCE.LOSS``.
    Returns ``parent_args`` (edited in place); on detectron2 v0.6 there is nothing to remove.
    """
    for key, cfg_key in _UPSTREAM_CLASSIFICATION_SWITCHES.items():
        if parent_args.pop(key, False):
            raise ValueError(
                f"MODEL.ROI_BOX_HEAD.{cfg_key} is True, expected False with BalancedROIHeads: the classification "
                "loss is chosen by DETBALANCE.LOSS (e.g. 'FederatedLoss' for a federated sigmoid loss)"
            )
    for key in _UPSTREAM_CLASSIFICATION_SETTINGS:
        parent_args.pop(key, None)
    return parent_args


class BalancedFastRCNNOutputLayers(FastRCNNOutputLayers):
    """``FastRCNNOutputLayers`` with an L-column classifier trained by ``cls_loss``.

    - ``losses()``: ``loss_cls = cls_loss(logits[R, L], gt_classes[R], sample_weight=w[R])``; ``w`` is the
      ``gt_weights`` of the box each foreground proposal matched (see :mod:`detbalance.detectron2.mapper`) and
      1 for background proposals; without ``gt_weights`` no weight is passed. ``loss_box_reg`` is the parent's.
    - ``predict_probs()``: ``cls_loss.predict_scores(logits)`` -> ``[R, K+1]``, the activation the loss trained
      (softmax, or sigmoid with a background column last), which detectron2's inference consumes unchanged.
    - the classifier bias starts at ``cls_loss.initial_bias()`` (each sigmoid loss's reference prior,
      ``DETBALANCE.CLS_PRIOR_PROB`` when set); a checkpoint whose classifier has another shape fails to load
      with a ``ValueError`` naming both shapes.

    LazyConfig (explicit arguments, no yaml config)::

        L(BalancedFastRCNNOutputLayers)(
            input_shape=ShapeSpec(channels=1024),
            box2box_transform=L(Box2BoxTransform)(weights=(10, 10, 5, 5)),
            num_classes=8,
            cls_loss=L(build_classification_loss)(name="SeesawLoss", num_classes=8),
        )
    """

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        box2box_transform,
        num_classes: int,
        cls_loss: nn.Module,
        test_score_thresh: float = 0.0,
        test_nms_thresh: float = 0.5,
        test_topk_per_image: int = 100,
        cls_agnostic_bbox_reg: bool = False,
        smooth_l1_beta: float = 0.0,
        box_reg_loss_type: str = "smooth_l1",
        loss_weight: float | dict[str, float] = 1.0,
        calibration: ScoreCalibration | None = None,
        cls_predictor: str = "Linear",
        cls_temperature: float = SEESAW_TEMPERATURE,
    ):
        """
        Args:
            cls_loss: a detbalance loss module (``detbalance.losses.LOSSES``) built for ``num_classes``
                classes; its ``num_logits`` sets the classifier width L.
            calibration: test-time score calibration (``DETBALANCE.CALIBRATION``); None: the loss's scores.
            cls_predictor: the classifier layer, ``"Linear"`` or ``"NormedLinear"``
                (``DETBALANCE.CLS_PREDICTOR.TYPE``, :mod:`detbalance.detectron2.classifier`).
            cls_temperature: ``NormedLinear``'s temperature (``DETBALANCE.CLS_PREDICTOR.TEMPERATURE``).
            others: as ``FastRCNNOutputLayers``.
        """
        super().__init__(
            input_shape,
            box2box_transform=box2box_transform,
            num_classes=num_classes,
            test_score_thresh=test_score_thresh,
            test_nms_thresh=test_nms_thresh,
            test_topk_per_image=test_topk_per_image,
            cls_agnostic_bbox_reg=cls_agnostic_bbox_reg,
            smooth_l1_beta=smooth_l1_beta,
            box_reg_loss_type=box_reg_loss_type,
            loss_weight=loss_weight,
        )
        loss_classes = getattr(cls_loss, "num_classes", None)
        if loss_classes != num_classes:
            raise ValueError(
                f"cls_loss {type(cls_loss).__name__} was built for num_classes={loss_classes}, expected "
                f"{num_classes} (the predictor's num_classes)"
            )
        self.cls_loss = cls_loss
        self.calibration = calibration if calibration is not None else ScoreCalibration(num_classes)
        self.calibration.check_loss(cls_loss)
        # The parent's classifier (or the normalised one) with L output columns; the bias is the loss's initial
        # bias (0 for softmax losses, the reference prior of sigmoid losses).
        self.cls_score = build_classifier(
            cls_predictor, cls_temperature, self.cls_score.in_features, cls_loss.num_logits
        )
        with torch.no_grad():
            self.cls_score.bias.copy_(cls_loss.initial_bias())

    @classmethod
    def from_config(cls, cfg, input_shape):
        if "DETBALANCE" not in cfg:
            raise ValueError(
                "config has no DETBALANCE node, expected one: call "
                "detbalance.detectron2.add_detbalance_config(cfg) (or load it with detbalance.detectron2.get_config)"
            )
        ret = drop_upstream_classification_options(super().from_config(cfg, input_shape))
        node = cfg.DETBALANCE
        if node.LOSS not in HYPER_PARAMETER_KEYS:
            raise ValueError(f"DETBALANCE.LOSS is {node.LOSS!r}, expected one of {sorted(HYPER_PARAMETER_KEYS)}")
        sub_node, keys = HYPER_PARAMETER_KEYS[node.LOSS]
        hyper_params = {argument: node[sub_node][key] for key, argument in keys.items()}
        if node.CLS_PRIOR_PROB is not None:
            hyper_params["prior_prob"] = _prior_prob(node.CLS_PRIOR_PROB, node.LOSS)
        ret["cls_loss"] = build_classification_loss(
            node.LOSS,
            cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            weights_file=node.WEIGHTS_FILE or None,
            dataset_names=tuple(cfg.DATASETS.TRAIN),
            filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
            hyper_params=hyper_params,
        )
        ret["calibration"] = calibration_from_config(cfg)
        ret["cls_predictor"] = node.CLS_PREDICTOR.TYPE
        ret["cls_temperature"] = node.CLS_PREDICTOR.TEMPERATURE
        return ret

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        saved = state_dict.get(prefix + "cls_score.weight")
        expected = tuple(self.cls_score.weight.shape)
        if saved is not None and tuple(saved.shape) != expected:
            raise ValueError(
                f"checkpoint entry {prefix}cls_score.weight has shape {tuple(saved.shape)}, expected {expected}: "
                f"{type(self.cls_loss).__name__} needs {self.cls_loss.num_logits} classifier outputs for "
                f"K = {self.num_classes} classes ({self.cls_loss.layout})"
            )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def losses(self, predictions: tuple[torch.Tensor, torch.Tensor], proposals: list[Instances]):
        """
        Args:
            predictions: ``(logits[R, L], deltas[R, K*B or B])`` from :meth:`forward`.
            proposals: per image, with ``proposal_boxes``, ``gt_classes`` and (foreground images) ``gt_boxes``;
                optional ``gt_weights``.

        Returns:
            dict with ``loss_cls`` and ``loss_box_reg``.
        """
        scores, proposal_deltas = predictions
        if len(proposals):
            gt_classes = cat([p.gt_classes for p in proposals], dim=0)
            proposal_boxes = cat([p.proposal_boxes.tensor for p in proposals], dim=0)
            # Background-only images carry no gt_boxes; their boxes are never read by box_reg_loss.
            gt_boxes = cat([(p.gt_boxes if p.has("gt_boxes") else p.proposal_boxes).tensor for p in proposals], dim=0)
        else:
            gt_classes = torch.empty(0, dtype=torch.int64, device=scores.device)
            proposal_boxes = gt_boxes = torch.empty((0, 4), device=proposal_deltas.device)
        _log_classification_stats(self.cls_loss.predict_scores(scores.detach()), gt_classes)

        losses = {
            "loss_cls": self.cls_loss(scores, gt_classes, sample_weight=self._proposal_weights(proposals)),
            "loss_box_reg": self.box_reg_loss(proposal_boxes, gt_boxes, proposal_deltas, gt_classes),
        }
        return {k: v * self.loss_weight.get(k, 1.0) for k, v in losses.items()}

    def _proposal_weights(self, proposals: list[Instances]):
        """``w[R]``: matched box's ``gt_weights`` for foreground proposals, 1 otherwise; None if none has any."""
        if not any(p.has("gt_weights") for p in proposals):
            return None
        weights = []
        for p in proposals:
            ones = torch.ones(len(p), dtype=torch.float32, device=p.gt_classes.device)
            if p.has("gt_weights"):
                foreground = (p.gt_classes >= 0) & (p.gt_classes < self.num_classes)
                weights.append(torch.where(foreground, p.gt_weights.to(ones), ones))
            else:
                weights.append(ones)
        return cat(weights, dim=0)

    def predict_probs(self, predictions: tuple[torch.Tensor, torch.Tensor], proposals: list[Instances]):
        """
        Returns:
            list[Tensor]: per image, ``[Ri, K+1]`` class scores from ``cls_loss.predict_scores``, calibrated by
            ``calibration``; column K is background (dropped by detectron2's inference).
        """
        scores, _ = predictions
        probs = self.calibration(self.cls_loss, scores)
        return probs.split([len(p) for p in proposals], dim=0)


def _prior_prob(value, loss_name: str) -> float:
    """``DETBALANCE.CLS_PRIOR_PROB`` checked: a probability in (0, 1), and only for a loss that takes a prior."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ValueError(
            f"DETBALANCE.CLS_PRIOR_PROB is {value!r}, expected a probability in (0, 1) or None "
            "(the loss's reference prior)"
        )
    if "prior_prob" not in inspect.signature(LOSSES[loss_name]).parameters:
        raise ValueError(
            f"DETBALANCE.CLS_PRIOR_PROB is {value!r} but DETBALANCE.LOSS {loss_name!r} is a softmax "
            "loss whose classifier bias starts at 0; expected None"
        )
    return float(value)
