"""The detectors a run can train: one tiny CPU config per framework, and which losses each head
takes.

A model names its head kind (``"box"``: Faster/Mask/Cascade R-CNN, the box classifier takes the losses of
``detbalance.losses.LOSSES``; ``"dense"``: RetinaNet/FCOS/ATSS, K sigmoid logits per anchor, the losses of
:func:`detbalance.losses.dense_head_losses`) and its config in each framework, relative to the shipped
``configs/`` folder (:data:`~dbbench.training.config_files.CONFIG_ROOT`; ``None`` where the framework has no such
config here). A run selects the loss as users do: ``DETBALANCE.LOSS`` (with ``BalancedROIHeads``,
``BalancedCascadeROIHeads`` or ``MODEL.META_ARCHITECTURE: BalancedRetinaNet``) in Detectron2, the ``loss_cls`` of
each box/dense head in MMDetection. A run without a detbalance loss trains the model's own loss as the framework
implements it (:attr:`Detector.own_loss`): softmax cross-entropy for a box head, the sigmoid focal loss
(Lin et al. 2017) for a dense head.

:data:`HEAD_LOSSES` adds the dense heads' entries to the box heads' (:data:`~.losses.LOSS_SETTINGS`);
:func:`loss_setting` looks a key up in both, :func:`check_model_loss` refuses a loss the model's head cannot train.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config_files import CONFIG_ROOT
from .losses import BASELINE, LOSS_SETTINGS, LossSetting

__all__ = [
    "Detector",
    "MODELS",
    "DEFAULT_MODEL",
    "HEAD_LOSSES",
    "get_model",
    "config_path",
    "loss_setting",
    "check_model_loss",
    "REGIMES",
]

#: How the detector's backbone starts: ``"scratch"`` (random initialisation, the tiny ResNet-18 configs) or
#: ``"pretrained"`` (ImageNet-pretrained EfficientNet-Lite0, fine-tuned: ``Detector.pretrained``).
REGIMES = ("scratch", "pretrained")

#: The default detector: every run trains it unless it names another.
DEFAULT_MODEL = "faster_rcnn"


@dataclass(frozen=True)
class Detector:
    """One detector: ``key``, readable ``label``, head kind, tiny config per framework, whether it needs masks, and
    per framework the config of its ImageNet-pretrained variant (``pretrained``: framework -> config; regime
    ``"pretrained"``)."""

    key: str
    label: str
    head: str
    detectron2: str | None
    mmdet: str | None
    masks: bool = False
    pretrained: tuple[tuple[str, str], ...] = ()

    @property
    def own_loss(self) -> str:
        """The classification loss the framework trains the model with: ``"ce"`` (softmax cross-entropy, box
        heads) or ``"FocalLoss"`` (sigmoid focal loss, dense heads)."""
        return "ce" if self.head == "box" else "FocalLoss"

    @property
    def own_loss_key(self) -> str:
        """The key of :func:`loss_setting` that trains :attr:`own_loss` (``"ce"`` or ``"focal"``)."""
        return BASELINE if self.head == "box" else "focal"


MODELS: dict[str, Detector] = {
    m.key: m
    for m in (
        Detector(
            "faster_rcnn",
            "Faster R-CNN R18-FPN",
            "box",
            "detectron2/faster_rcnn_R_18_FPN_tiny_cpu.yaml",
            "mmdet/tiny/faster-rcnn_r18_fpn_tiny.py",
            pretrained=(
                ("detectron2", "detectron2/faster_rcnn_EfficientNetLite0_FPN_tiny_cpu.yaml"),
                ("mmdet", "mmdet/tiny/faster-rcnn_efficientnet-lite0_fpn_tiny.py"),
            ),
        ),
        Detector(
            "mask_rcnn",
            "Mask R-CNN R18-FPN",
            "box",
            "detectron2/heads/mask_rcnn_R_18_FPN_tiny_cpu.yaml",
            "mmdet/tiny/mask-rcnn_r18_fpn_tiny_eqlv2.py",
            masks=True,
        ),
        Detector(
            "cascade_rcnn",
            "Cascade R-CNN R18-FPN",
            "box",
            "detectron2/heads/cascade_rcnn_R_18_FPN_tiny_cpu.yaml",
            "mmdet/tiny/cascade-rcnn_r18_fpn_tiny_seesaw.py",
        ),
        Detector(
            "retinanet",
            "RetinaNet R18-FPN",
            "dense",
            "detectron2/heads/retinanet_R_18_FPN_tiny_cpu.yaml",
            "mmdet/tiny/retinanet_r18_fpn_tiny_efl.py",
        ),
        Detector("fcos", "FCOS R18-FPN", "dense", None, "mmdet/tiny/fcos_r18_fpn_tiny_efl.py"),
        Detector("atss", "ATSS R18-FPN", "dense", None, "mmdet/tiny/atss_r18_fpn_tiny_efl.py"),
    )
}

#: The dense heads' losses: their own sigmoid focal loss (the framework's: detectron2's RetinaNet,
#: MMDetection's ``FocalLoss``) and Equalized Focal Loss (Li et al. 2022).
HEAD_LOSSES: dict[str, LossSetting] = {
    d.key: d
    for d in (
        LossSetting("focal", "sigmoid focal loss (framework default)", None),
        LossSetting("efl", "equalized focal loss", "EqualizedFocalLoss"),
    )
}


def get_model(key: str) -> Detector:
    if key not in MODELS:
        raise ValueError(f"unknown model {key!r}; expected one of {list(MODELS)}")
    return MODELS[key]


def config_path(key: str, framework: str, root: Path = CONFIG_ROOT, regime: str = "scratch") -> Path:
    """The tiny config of model ``key`` in ``framework`` (``"detectron2"`` or ``"mmdet"``) for ``regime``."""
    model = get_model(key)
    if framework not in ("detectron2", "mmdet"):
        raise ValueError(f"framework={framework!r}; expected 'detectron2' or 'mmdet'")
    if regime not in REGIMES:
        raise ValueError(f"regime={regime!r}; expected one of {REGIMES}")
    relative = getattr(model, framework) if regime == "scratch" else dict(model.pretrained).get(framework)
    if relative is None:
        where = [f for f in ("detectron2", "mmdet") if getattr(model, f)]
        if regime != "scratch":
            where = [f for f, _ in model.pretrained]
        raise ValueError(f"model {key!r} has no {framework} config here in regime {regime!r}; it exists in {where}")
    return root / relative


def loss_setting(key: str) -> LossSetting:
    """The entry ``key`` of :data:`~.losses.LOSS_SETTINGS` or :data:`HEAD_LOSSES`."""
    losses = {**LOSS_SETTINGS, **HEAD_LOSSES}
    if key not in losses:
        raise ValueError(f"unknown loss {key!r}; expected one of {sorted(losses)}")
    return losses[key]


def check_model_loss(model: str, loss: LossSetting) -> None:
    """Raise ``ValueError`` naming the loss, the model and the losses it takes unless ``model``'s head trains
    ``loss``: the model's own loss (:attr:`Detector.own_loss_key`), or a detbalance loss its head takes."""
    from detbalance.losses import LOSSES, dense_head_losses

    found = get_model(model)
    takes = sorted(dense_head_losses() if found.head == "dense" else LOSSES)
    if loss.key == found.own_loss_key or (loss.loss is not None and loss.loss in takes):
        return
    raise ValueError(
        f"loss {loss.key!r} ({loss.loss or 'a framework default'}) cannot train the {found.head} head of model "
        f"{model!r} ({found.label}); expected {found.own_loss_key!r} ({loss_setting(found.own_loss_key).label}) or a "
        f"detbalance loss of {takes}"
    )
