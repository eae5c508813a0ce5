"""Train and test one run with MMDetection 3.x: the same small Faster R-CNN as the Detectron2 runner.

The config is the repository's tiny CPU config for the loss (``configs/mmdet/tiny/``; the plain one for the
cross-entropy baseline), pointed at the run's data with :func:`detbalance.mmdet.config.use_dataset` and given the
runs' model size and the run's schedule: ResNet-18 + FPN on C3-C5 with 128 channels, anchors 16-128 px, 500/100 RPN
proposals, 128 RPN and 64 RoI samples per image, 256-d box head, SGD with linear warm-up and steps at 75 %/92 %.
Training runs through mmengine's ``Runner`` (iteration-based loop) with mmengine's ``InfiniteSampler`` or, for
``sampler="rfs"``, :class:`detbalance.mmdet.DBRepeatFactorSampler` (detectron2's repeat factors, seeded with the
run's seed); the trained weights go to ``model_final.pth``; the detections of the test split are written
as a COCO results json by a loop over the test data loader.

Another model (``RunSpec.model``) starts from its own tiny config (:func:`dbbench.training.models.config_path`)
with the same data, schedule, seed, sampler, prediction settings and the Detectron2 runner's sizes: Cascade
R-CNN (``cascade-rcnn_r18_fpn_tiny_seesaw.py`` with MMDetection's own ``CascadeRoIHead``; every stage's
``loss_cls`` is the one of the Faster R-CNN config of the loss, above) and RetinaNet
(``retinanet_r18_fpn_tiny_efl.py``: FPN P3-P7 with 128 channels, anchors 16 px at P3 with three scales per
octave, two convolutions per branch, 1000 candidates per level at test as detectron2's RetinaNet; ``loss_cls``:
MMDetection's ``FocalLoss`` with RetinaNet's settings, or the config's ``DBEqualizedFocalLoss``); FCOS and ATSS
likewise from ``fcos_r18_fpn_tiny_efl.py`` / ``atss_r18_fpn_tiny_efl.py`` (MMDetection only: no Detectron2 config).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import time
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

from detbalance.stats.progress import progress_bar

from .config_files import MMDET_TINY_DIR
from .files import write_json
from .models import DEFAULT_MODEL, config_path, get_model
from .run import RunSpec, save_checkpoint, seed_everything, training_summary

__all__ = ["CONFIG_DIR", "CONFIG_FILES", "MMDET_LOSSES", "build_cfg", "train_and_predict", "predict"]

CONFIG_DIR = MMDET_TINY_DIR
#: detbalance loss -> tiny config of that loss (``None``: the framework's own cross-entropy).
CONFIG_FILES = {
    None: "faster-rcnn_r18_fpn_tiny.py",
    "WeightedCrossEntropyLoss": "faster-rcnn_r18_fpn_tiny_weighted-ce.py",
    "ClassBalancedFocalLoss": "faster-rcnn_r18_fpn_tiny_cb-focal.py",
    "EqualizationLoss": "faster-rcnn_r18_fpn_tiny_eql.py",
    "EQLv2Loss": "faster-rcnn_r18_fpn_tiny_eqlv2.py",
    "SeesawLoss": "faster-rcnn_r18_fpn_tiny_seesaw.py",
    "FederatedLoss": "faster-rcnn_r18_fpn_tiny_federated.py",
    "BAGSLoss": "faster-rcnn_r18_fpn_tiny_bags.py",
}

#: MMDetection's own box-classifier losses (``RunSpec.mmdet_loss``) with their documented LVIS settings, set as
#: ``loss_cls`` of the baseline config (num_classes = K added), everything else as in the detbalance runs:
#: ``SeesawLoss`` as in mmdet 3.3's ``configs/seesaw_loss/*_lvis-v1.py`` (p 0.8, q 2.0; those configs also swap
#: the classifier for a ``NormedLinear``, left out so that only the loss differs); ``EQLV2Loss`` (mmdet 3.3 ships
#: no config for it) with its documented defaults (mu 0.8, alpha 4, gamma 12, objectness at test). MMDetection's
#: ``BBoxHead`` scores ``EQLV2Loss`` boxes with a softmax at test time (the loss sets no ``custom_activation``):
#: measured as MMDetection does it.
MMDET_LOSSES = {
    "SeesawLoss": dict(type="SeesawLoss", p=0.8, q=2.0, loss_weight=1.0),
    "EQLV2Loss": dict(
        type="EQLV2Loss", use_sigmoid=True, loss_weight=1.0, mu=0.8, alpha=4.0, gamma=12, test_with_obj=True
    ),
}

#: The normalised linear classifier of MMDetection's configs/seesaw_loss (its argument is spelt ``tempearture``).
NORMED_CLASSIFIER = dict(type="NormedLinear", tempearture=20)

#: A dense head's own loss: MMDetection's ``FocalLoss`` with the settings of its RetinaNet configs (those of
#: detectron2's RetinaNet: alpha 0.25, gamma 2).
FOCAL_LOSS = dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
#: The models this runner builds besides the Faster R-CNN of ``CONFIG_FILES`` (box detection, no masks).
OTHER_MODELS = ("cascade_rcnn", "retinanet", "fcos", "atss")


class _ProgressHook(Hook):
    """A progress bar over the training iterations with the running loss."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.bar = progress_bar(total=total, desc=desc, enabled=enabled)
        self.losses: list[float] = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        loss = float(outputs["loss"].detach()) if outputs and "loss" in outputs else float("nan")
        if not torch.isfinite(torch.tensor(loss)):
            raise FloatingPointError(f"loss became {loss} at iteration {runner.iter}")
        self.losses.append(loss)
        self.bar.update(1)
        if batch_idx % 20 == 0:
            recent = self.losses[-20:]
            self.bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}")

    def after_train(self, runner):
        self.bar.close()


def build_cfg(spec: RunSpec) -> Config:
    """The mmdet config of ``spec``: tiny config of the loss + demo data, model size, schedule and seed."""
    import detbalance.mmdet  # noqa: F401  (registers the losses, needed to resolve their statistics argument)
    from detbalance.mmdet.config import use_dataset

    data, schedule = spec.data, spec.schedule
    if spec.model == DEFAULT_MODEL:
        cfg = Config.fromfile(str(CONFIG_DIR / CONFIG_FILES[spec.loss.loss]))
    elif spec.model in OTHER_MODELS:
        cfg = Config.fromfile(str(config_path(spec.model, "mmdet")))
        for head in _class_heads(cfg):
            head.loss_cls = _other_model_loss(spec, head.loss_cls)
    else:
        raise ValueError(
            f"model={spec.model!r}; expected one of {[DEFAULT_MODEL, *OTHER_MODELS]} (the mmdet runner "
            "trains box detection without masks)"
        )
    if spec.regime != "scratch":
        _use_backbone(cfg, Config.fromfile(str(config_path(spec.model, "mmdet", regime=spec.regime))))
    if spec.mmdet_loss is not None:
        if spec.mmdet_loss not in MMDET_LOSSES:
            raise ValueError(f"mmdet_loss={spec.mmdet_loss!r}; expected one of {sorted(MMDET_LOSSES)}")
        for head in _class_heads(cfg):
            head.loss_cls = dict(MMDET_LOSSES[spec.mmdet_loss], num_classes=data.num_classes)
    use_dataset(
        cfg,
        data_root="",
        classes=data.class_names,
        train_ann=str(data.train_json),
        train_images=str(data.train_images) + "/",
        val_ann=str(data.test_json),
        val_images=str(data.test_images) + "/",
        weights_file=spec.weights_file if _reads_weights(cfg) else None,
    )
    if get_model(spec.model).head == "dense":
        _size_dense(cfg.model, spec)
    else:
        _size_two_stage(cfg.model, spec)
    for head in _class_heads(cfg):  # an mmdet_loss row's loss is the baseline's: no settings
        head.loss_cls.update(spec.loss.settings())
        if spec.classifier == "normed":  # as MMDetection's configs/seesaw_loss ship it
            head.cls_predictor_cfg = dict(NORMED_CLASSIFIER)
    scale = (data.max_size, data.image_size)
    for loader in ("train_dataloader", "test_dataloader"):
        for step in cfg[loader].dataset.pipeline:
            if step["type"] == "Resize":
                step["scale"] = scale
    cfg.train_dataloader.update(
        batch_size=schedule.batch_size, num_workers=0, persistent_workers=False, sampler=_train_sampler(spec)
    )
    if spec.sampler is not None:
        cfg.custom_imports = dict(imports=["detbalance.mmdet"], allow_failed_imports=False)
    cfg.test_dataloader.update(batch_size=1, num_workers=0, persistent_workers=False)
    cfg.train_cfg = dict(type="IterBasedTrainLoop", max_iters=schedule.iters)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_evaluator = None
    cfg.optim_wrapper = dict(
        type="OptimWrapper",
        optimizer=dict(type="SGD", lr=schedule.base_lr, momentum=schedule.momentum, weight_decay=schedule.weight_decay),
    )
    if spec.clip_grad_norm is not None:
        cfg.optim_wrapper["clip_grad"] = dict(max_norm=spec.clip_grad_norm, norm_type=2)
    cfg.param_scheduler = [
        dict(
            type="LinearLR", start_factor=schedule.warmup_factor, by_epoch=False, begin=0, end=schedule.effective_warmup
        ),
        dict(
            type="MultiStepLR",
            by_epoch=False,
            begin=0,
            end=schedule.iters,
            milestones=list(schedule.steps),
            gamma=schedule.gamma,
        ),
    ]
    cfg.default_hooks = dict(
        timer=dict(type="IterTimerHook"),
        param_scheduler=dict(type="ParamSchedulerHook"),
        logger=dict(type="LoggerHook", interval=10**9),
        checkpoint=None,
    )
    cfg.randomness = dict(seed=spec.seed)
    # mmengine keeps one visualizer per name per process; each run of a demo gets its own.
    cfg.visualizer = dict(type="DetLocalVisualizer", name=f"dbbench_{spec.work_dir}")
    cfg.log_level = "WARNING"
    cfg.work_dir = str(spec.work_dir)
    cfg.load_from = None
    cfg.resume = False
    if spec.decouple is not None:  # stage 2 of decoupled training, as tools/train.py --decouple configures it
        cfg.load_from = str(spec.init_checkpoint)
        cfg.custom_hooks = [*cfg.get("custom_hooks", []), dict(type="DBDecoupleHook", train=spec.decouple)]
        cfg.custom_imports = dict(imports=["detbalance.mmdet"], allow_failed_imports=False)
    return cfg


def _use_backbone(cfg: Config, other: Config) -> None:
    """``other``'s backbone, input scaling and neck input channels in ``cfg`` (the loss config of another regime's
    model), with the imports that register its backbone."""
    cfg.model.backbone = other.model.backbone
    cfg.model.data_preprocessor = other.model.data_preprocessor
    cfg.model.neck.in_channels = other.model.neck.in_channels
    cfg.custom_imports = dict(imports=["detbalance.mmdet"], allow_failed_imports=False)


def _size_two_stage(model, spec: RunSpec) -> None:
    """The Detectron2 runner's sizes of a Faster/Cascade R-CNN: FPN P3-P6 (C3-C5) with 128 channels, anchors 16-128 px,
    500/100 RPN proposals, 128 RPN and 64 RoI samples per image, 256-d box heads."""
    model.neck.update(out_channels=128, start_level=1, num_outs=4)  # in_channels: the backbone's, from the config
    model.rpn_head.update(in_channels=128, feat_channels=128)
    model.rpn_head.anchor_generator.update(scales=[2], strides=[8, 16, 32, 64])
    model.roi_head.bbox_roi_extractor.update(out_channels=128, featmap_strides=[8, 16, 32])
    if model.type == "CascadeRCNN":
        model.roi_head.type = "CascadeRoIHead"  # MMDetection's own: only loss_cls differs between the rows
    heads = model.roi_head.bbox_head
    for head in heads if isinstance(heads, (list, tuple)) else [heads]:
        head.update(in_channels=128, fc_out_channels=256)
    model.train_cfg.rpn.sampler.num = 128
    model.train_cfg.rpn_proposal.update(nms_pre=500, max_per_img=100)
    stages = model.train_cfg.rcnn
    for stage in stages if isinstance(stages, (list, tuple)) else [stages]:
        stage.sampler.num = 64
    model.test_cfg.rpn.update(nms_pre=500, max_per_img=100)
    model.test_cfg.rcnn.update(score_thr=spec.score_threshold, max_per_img=spec.max_detections)


def _size_dense(model, spec: RunSpec) -> None:
    """The Detectron2 runner's RetinaNet sizes: FPN P3-P7 (the tiny configs': from C3-C5, extra levels as each
    model's config makes them) with 128 channels, 128-channel head branches, at most 1000 candidates per level
    before NMS at test."""
    model.neck.update(out_channels=128)
    model.bbox_head.update(in_channels=128, feat_channels=128)
    model.test_cfg.update(nms_pre=1000, score_thr=spec.score_threshold, max_per_img=spec.max_detections)


def _class_heads(cfg: Config) -> list:
    """The heads with a classifier: ``model.roi_head.bbox_head`` (one per cascade stage) or ``model.bbox_head``."""
    heads = cfg.model.roi_head.bbox_head if "roi_head" in cfg.model else cfg.model.bbox_head
    return list(heads) if isinstance(heads, (list, tuple)) else [heads]


def _other_model_loss(spec: RunSpec, configured: dict) -> dict:
    """``loss_cls`` of a head of ``spec.model`` (not the Faster R-CNN) for ``spec.loss``: a box head's is the one
    of the Faster R-CNN config of that loss (:data:`CONFIG_FILES`), a dense head's MMDetection's ``FocalLoss``
    (:data:`FOCAL_LOSS`) or the model config's own ``configured`` loss when it is ``spec.loss``'s."""
    name = spec.loss.loss
    if get_model(spec.model).head == "box":
        return Config.fromfile(str(CONFIG_DIR / CONFIG_FILES[name])).model.roi_head.bbox_head.loss_cls
    if name is None:
        return dict(FOCAL_LOSS)
    if configured.type != f"DB{name}":
        raise ValueError(
            f"loss {name!r} for model {spec.model!r}: its mmdet config trains {configured.type}; "
            f"expected the framework's own focal loss or DB{name} there"
        )
    return configured


def _train_sampler(spec: RunSpec) -> dict:
    """The train sampler of ``spec.sampler``: mmengine's ``InfiniteSampler`` or ``DBRepeatFactorSampler``."""
    if spec.sampler == "rfs":
        return dict(type="DBRepeatFactorSampler", threshold=spec.rfs_threshold, seed=spec.seed)
    return dict(type="InfiniteSampler", shuffle=True, seed=spec.seed)


def _reads_weights(cfg: Config) -> bool:
    from mmdet.registry import MODELS

    return getattr(MODELS.get(_class_heads(cfg)[0].loss_cls.type), "stats_arg", None) is not None


def train_and_predict(spec: RunSpec, *, progress: bool = True) -> dict:
    """Train ``spec``'s model with mmengine's Runner, write test detections to ``spec.results_json``."""
    torch.set_num_threads(spec.num_threads)
    seed_everything(spec.seed)
    cfg = build_cfg(spec)
    spec.work_dir.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(spec.work_dir / "config.py"))
    hook = _ProgressHook(spec.schedule.iters, f"train {spec.name}", progress)
    logging.getLogger("mmengine").setLevel(logging.WARNING)
    test_loader_cfg = cfg.test_dataloader  # tested by _predict, not by the Runner (which would need an evaluator)
    cfg.test_dataloader = None
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints while loading the json
        runner = Runner.from_cfg(cfg)
    runner.register_hook(hook, priority="LOWEST")
    with contextlib.redirect_stdout(io.StringIO()):
        runner.train()
    torch.set_num_threads(spec.num_threads)
    save_checkpoint(spec.checkpoint, {"state_dict": runner.model.state_dict(), "meta": {"iter": runner.iter}})
    start = time.perf_counter()
    detections = _predict(runner.model, test_loader_cfg, progress=progress, name=spec.name)
    write_json(spec.results_json, detections)
    return training_summary(hook.losses, len(detections), time.perf_counter() - start)


def predict(
    spec: RunSpec,
    json_file: Path,
    image_root: Path,
    *,
    calibration: tuple[str, float] | None = None,
    progress: bool = False,
) -> list[dict]:
    """COCO detections on ``json_file``/``image_root`` of the model ``spec`` trained (``spec.checkpoint``).

    ``calibration``: ``(method, gamma)`` set as the loss's ``calibration=dict(method, gamma, file)`` (``"norcal"``
    or ``"logit_adjust"``; ``file``: the weights file, the training class counts), as a user would; a model of
    MMDetection's own ``CrossEntropyLoss`` is loaded with ``DBWeightedCrossEntropyLoss`` (same ``fc_cls``).
    None: as trained.
    """
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    if calibration is not None and spec.model != DEFAULT_MODEL:
        raise ValueError(f"calibration={calibration!r} for model={spec.model!r}; expected model={DEFAULT_MODEL!r}")
    torch.set_num_threads(spec.num_threads)
    data = dataclasses.replace(spec.data, test_json=Path(json_file), test_images=Path(image_root))
    cfg = build_cfg(dataclasses.replace(spec, data=data))
    if calibration is not None:
        method, gamma = calibration
        settings = dict(method=method, gamma=float(gamma), file=str(spec.weights_file))
        bbox_head = cfg.model.roi_head.bbox_head
        if spec.loss.loss is None and spec.mmdet_loss is None:
            bbox_head.loss_cls = dict(
                type="DBWeightedCrossEntropyLoss", num_classes=data.num_classes, calibration=settings
            )
        elif spec.mmdet_loss is None:
            bbox_head.loss_cls.calibration = settings
        else:
            raise ValueError(
                f"calibration={calibration!r} for MMDetection's own {spec.mmdet_loss}; expected a "
                "run with MMDetection's CrossEntropyLoss or a detbalance loss"
            )
    init_default_scope("mmdet")
    model = MODELS.build(cfg.model)
    with contextlib.redirect_stdout(io.StringIO()):
        load_checkpoint(model, str(spec.checkpoint), map_location="cpu", strict=True, logger="silent")
    return _predict(
        model.to(spec.device), cfg.test_dataloader, progress=progress, name=f"{spec.name} {calibration or ''}".strip()
    )


def _predict(model, loader_cfg, *, progress: bool, name: str) -> list[dict]:
    with contextlib.redirect_stdout(io.StringIO()):
        loader = Runner.build_dataloader(loader_cfg, seed=0)
    category_ids = list(loader.dataset.cat_ids)  # contiguous label -> COCO category id
    model.eval()
    out = []
    with torch.no_grad():
        for batch in progress_bar(loader, total=len(loader), desc=f"test  {name}", enabled=progress):
            for sample in model.test_step(batch):
                pred = sample.pred_instances
                for (x0, y0, x1, y1), score, label in zip(
                    pred.bboxes.tolist(), pred.scores.tolist(), pred.labels.tolist()
                ):
                    out.append(
                        {
                            "image_id": sample.img_id,
                            "category_id": category_ids[label],
                            "bbox": [x0, y0, x1 - x0, y1 - y0],
                            "score": score,
                        }
                    )
    return out
