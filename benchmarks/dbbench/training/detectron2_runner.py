"""Train and test one run with Detectron2: a small ResNet-18 detector from random initialisation.

The data sets are registered with ``register_coco_instances``; the model is ``configs/detectron2/
faster_rcnn_R_18_FPN_tiny_cpu.yaml``: detectron2's model-zoo Faster R-CNN R50-FPN config shrunk for 2 CPU cores
(ResNet-18 with BatchNorm, FPN on res3-res5 with 128 channels, anchors 16-128 px, 500/100 RPN proposals, 64 RoIs
per image, 256-d box head), given the data set's classes and image size and the run's schedule. A run with a
detbalance loss differs from the baseline only by ``MODEL.ROI_HEADS.NAME: BalancedROIHeads`` and the ``DETBALANCE``
node. Training is a plain loop over ``build_detection_train_loader`` (SGD, warm-up, steps at 75 %/92 %) with
detectron2's ``TrainingSampler`` or, for ``sampler="rfs"``, its ``RepeatFactorTrainingSampler`` (factors from
``repeat_factors_from_category_frequency`` on the loader's filtered dataset dicts, seeded with the run's seed); the
trained weights go to ``model_final.pth``; testing writes the detections on the test split as a COCO results json.

Another model (``RunSpec.model``) starts from its own tiny config (:func:`dbbench.training.models.config_path`)
and gets the same data, schedule, seed, sampler and prediction settings: Cascade R-CNN
(``configs/detectron2/heads/cascade_rcnn_R_18_FPN_tiny_cpu.yaml``, the tiny Faster R-CNN with three stages:
detectron2's ``CascadeROIHeads``, or ``BalancedCascadeROIHeads`` with a detbalance loss in every stage) and
RetinaNet (``retinanet_R_18_FPN_tiny_cpu.yaml``: FPN P3-P7 with 128 channels, anchors from 16 px at P3, two
convolutions per branch; detectron2's ``RetinaNet`` with its sigmoid focal loss, or ``BalancedRetinaNet`` with a
detbalance loss). RetinaNet's anchors get three scales per octave (x, x 2^(1/3), x 2^(2/3) of the config's size
per level), as detectron2's RetinaNet configs and MMDetection's tiny RetinaNet (``octave_base_scale=2``,
``scales_per_octave=3``) have them: 16-40 px on P3 and P4 for the 14-36 px objects of the 128 px images.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import time
from pathlib import Path

import torch

import detbalance.detectron2  # noqa: F401  (applies its compatibility shims before any detectron2 import)

# isort: split
from detectron2.data import (
    DatasetCatalog,
    DatasetMapper,
    MetadataCatalog,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset_dicts,
)
from detectron2.data.datasets import register_coco_instances
from detectron2.data.samplers import RepeatFactorTrainingSampler, TrainingSampler
from detectron2.modeling import build_model
from detectron2.solver import build_lr_scheduler, build_optimizer
from detectron2.utils.events import EventStorage

from detbalance.detectron2.decouple import freeze_for_decoupling, reinit_classifiers
from detbalance.stats.progress import progress_bar

from .config_files import D2_TINY_CONFIG
from .files import write_json
from .models import DEFAULT_MODEL, config_path, get_model
from .run import RunSpec, save_checkpoint, seed_everything, training_summary

__all__ = ["build_cfg", "train_and_predict", "predict"]

#: ResNet-18 Faster R-CNN for 2 CPU cores, on the model zoo's R50-FPN config (also used by the tests).
TINY_CONFIG = D2_TINY_CONFIG

#: model -> (detectron2's own head, detbalance's head taking DETBALANCE.LOSS): ``MODEL.ROI_HEADS.NAME`` of a box
#: model, ``MODEL.META_ARCHITECTURE`` of a dense one.
HEADS = {
    "faster_rcnn": ("StandardROIHeads", "BalancedROIHeads"),
    "cascade_rcnn": ("CascadeROIHeads", "BalancedCascadeROIHeads"),
    "retinanet": ("RetinaNet", "BalancedRetinaNet"),
}


def _register(data) -> tuple[str, str]:
    """Register the train and test splits (once per process); names carry a hash of the paths."""
    key = hashlib.sha1(f"{data.train_json}|{data.test_json}".encode()).hexdigest()[:10]
    names = (f"dbbench_{key}_train", f"dbbench_{key}_test")
    for name, json_file, image_root in zip(
        names, (data.train_json, data.test_json), (data.train_images, data.test_images)
    ):
        if name not in DatasetCatalog.list():
            register_coco_instances(name, {}, str(json_file), str(image_root))
    return names


def build_cfg(spec: RunSpec):
    """The detectron2 config of ``spec`` (model, data, schedule and, for detbalance losses, the loss node)."""
    from detbalance.detectron2.config import DENSE_HYPER_PARAMETER_KEYS, HYPER_PARAMETER_KEYS, get_config

    if spec.model not in HEADS:
        raise ValueError(
            f"model={spec.model!r}; expected one of {sorted(HEADS)} (the detectron2 runner trains "
            "box detection without masks)"
        )
    train_name, test_name = _register(spec.data)
    # the model: the repository's tiny CPU config (its ImageNet-pretrained variant in regime "pretrained")
    cfg = get_config(str(config_path(spec.model, "detectron2", regime=spec.regime)))
    # the baseline: detectron2's own head and loss (softmax CE, RetinaNet's sigmoid focal loss)
    head = HEADS[spec.model][0 if spec.loss.loss is None else 1]
    if get_model(spec.model).head == "dense":
        cfg.MODEL.META_ARCHITECTURE = head
        cfg.MODEL.RETINANET.NUM_CLASSES = spec.data.num_classes
        cfg.MODEL.RETINANET.SCORE_THRESH_TEST = spec.score_threshold
        cfg.MODEL.ANCHOR_GENERATOR.SIZES = [
            [size[0] * 2 ** (i / 3) for i in range(3)] for size in cfg.MODEL.ANCHOR_GENERATOR.SIZES
        ]
    else:
        cfg.MODEL.ROI_HEADS.NAME = head
        cfg.MODEL.ROI_HEADS.NUM_CLASSES = spec.data.num_classes
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = spec.score_threshold
    cfg.TEST.DETECTIONS_PER_IMAGE = spec.max_detections
    cfg.MODEL.DEVICE = spec.device
    cfg.INPUT.MIN_SIZE_TRAIN = (spec.data.image_size,)
    cfg.INPUT.MAX_SIZE_TRAIN = spec.data.max_size
    cfg.INPUT.MIN_SIZE_TEST = spec.data.image_size
    cfg.INPUT.MAX_SIZE_TEST = spec.data.max_size
    cfg.DATASETS.TRAIN = (train_name,)
    cfg.DATASETS.TEST = (test_name,)
    schedule = spec.schedule
    cfg.SOLVER.IMS_PER_BATCH = schedule.batch_size
    cfg.SOLVER.BASE_LR = schedule.base_lr
    cfg.SOLVER.MOMENTUM = schedule.momentum
    cfg.SOLVER.WEIGHT_DECAY = schedule.weight_decay
    cfg.SOLVER.MAX_ITER = schedule.iters
    cfg.SOLVER.STEPS = schedule.steps
    cfg.SOLVER.GAMMA = schedule.gamma
    cfg.SOLVER.WARMUP_ITERS = schedule.effective_warmup
    cfg.SOLVER.WARMUP_FACTOR = schedule.warmup_factor
    cfg.SEED = spec.seed
    if spec.sampler == "rfs":  # what the runner builds (_train_sampler), so that config.yaml says it
        cfg.DATALOADER.SAMPLER_TRAIN = "RepeatFactorTrainingSampler"
        cfg.DATALOADER.REPEAT_THRESHOLD = spec.rfs_threshold
    if spec.decouple is not None:  # stage 2 of decoupled training: what DETBALANCE.DECOUPLE reads
        cfg.DETBALANCE.DECOUPLE.ENABLED = True
        cfg.DETBALANCE.DECOUPLE.TRAIN = spec.decouple
        cfg.MODEL.WEIGHTS = str(spec.init_checkpoint)
    if spec.classifier == "normed":  # the Seesaw paper's classifier (RunSpec allows it with a detbalance loss)
        cfg.DETBALANCE.CLS_PREDICTOR.TYPE = "NormedLinear"
    if spec.loss.loss is not None:
        cfg.DETBALANCE.LOSS = spec.loss.loss
        cfg.DETBALANCE.WEIGHTS_FILE = str(spec.weights_file)
        node, keys = {**HYPER_PARAMETER_KEYS, **DENSE_HYPER_PARAMETER_KEYS}[spec.loss.loss]
        by_argument = {argument: key for key, argument in keys.items()}
        for argument, value in spec.loss.settings().items():
            if argument not in by_argument:
                raise ValueError(
                    f"{spec.loss.loss} has no detectron2 config key for {argument!r}; "
                    f"expected one of {sorted(by_argument)}"
                )
            cfg.DETBALANCE[node][by_argument[argument]] = value
    cfg.freeze()
    return cfg


def train_and_predict(spec: RunSpec, *, progress: bool = True) -> dict:
    """Train ``spec``'s model, write its test detections to ``spec.results_json``; returns a run summary."""
    torch.set_num_threads(spec.num_threads)
    seed_everything(spec.seed)
    if spec.loss.loss is not None:
        import detbalance.detectron2  # noqa: F401  (registers BalancedROIHeads, BalancedCascadeROIHeads, ...)
    cfg = build_cfg(spec)
    spec.work_dir.mkdir(parents=True, exist_ok=True)
    (spec.work_dir / "config.yaml").write_text(cfg.dump(), encoding="utf-8")
    with _quiet():
        model = build_model(cfg)
        dataset = get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=True)
        loader = build_detection_train_loader(cfg, dataset=dataset, sampler=_train_sampler(spec, dataset))
    if spec.decouple is not None:  # as tools/train_net.py --decouple: stage 1's weights, frozen, re-initialised
        _load_stage1(model, spec.init_checkpoint)
        freeze_for_decoupling(cfg, model)
        reinit_classifiers(model)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    losses_log = []
    model.train()
    bar = progress_bar(total=cfg.SOLVER.MAX_ITER, desc=f"train {spec.name}", enabled=progress)
    with EventStorage(0) as storage:
        for iteration, batch in zip(range(cfg.SOLVER.MAX_ITER), loader):
            storage.iter = iteration
            loss_dict = model(batch)
            total = sum(loss_dict.values())
            if not torch.isfinite(total):
                raise FloatingPointError(
                    f"{spec.name}: loss became {float(total)} at iteration {iteration}: "
                    f"{ {k: float(v) for k, v in loss_dict.items()} }"
                )
            optimizer.zero_grad()
            total.backward()
            if spec.clip_grad_norm is not None:  # the whole model's gradient, as MMDetection's clip_grad
                torch.nn.utils.clip_grad_norm_(
                    [p for p in model.parameters() if p.grad is not None], spec.clip_grad_norm
                )
            optimizer.step()
            scheduler.step()
            losses_log.append(float(total.detach()))
            bar.update(1)
            if iteration % 20 == 0:
                bar.set_postfix(loss=f"{sum(losses_log[-20:]) / len(losses_log[-20:]):.3f}")
    bar.close()
    save_checkpoint(spec.checkpoint, {"model": model.state_dict(), "iteration": cfg.SOLVER.MAX_ITER})
    start = time.perf_counter()
    detections = _predict(cfg, model, progress=progress, name=spec.name)
    write_json(spec.results_json, detections)
    return training_summary(losses_log, len(detections), time.perf_counter() - start)


def predict(
    spec: RunSpec,
    json_file: Path,
    image_root: Path,
    *,
    calibration: tuple[str, float] | None = None,
    progress: bool = False,
) -> list[dict]:
    """COCO detections on ``json_file``/``image_root`` of the model ``spec`` trained (``spec.checkpoint``).

    ``calibration``: ``(method, gamma)`` of ``DETBALANCE.CALIBRATION`` (``"norcal"`` or ``"logit_adjust"``),
    applied through the config as a user would; a model of detectron2's own softmax CE head (``StandardROIHeads``)
    is loaded into ``BalancedROIHeads`` with ``WeightedCrossEntropyLoss`` (same classifier). None: as trained.
    """

    if calibration is not None and spec.model != DEFAULT_MODEL:
        raise ValueError(
            f"calibration={calibration!r} for model={spec.model!r}; expected model={DEFAULT_MODEL!r} "
            "(calibration loads the model into BalancedROIHeads)"
        )
    torch.set_num_threads(spec.num_threads)
    data = dataclasses.replace(spec.data, test_json=Path(json_file), test_images=Path(image_root))
    cfg = build_cfg(dataclasses.replace(spec, data=data))
    cfg.defrost()
    cfg.MODEL.WEIGHTS = str(spec.checkpoint)
    if calibration is not None:
        method, gamma = calibration
        if spec.loss.loss is None:
            cfg.MODEL.ROI_HEADS.NAME = "BalancedROIHeads"
            cfg.DETBALANCE.LOSS = "WeightedCrossEntropyLoss"
        cfg.DETBALANCE.WEIGHTS_FILE = str(spec.weights_file)  # the training class counts
        cfg.DETBALANCE.CALIBRATION.METHOD = method
        cfg.DETBALANCE.CALIBRATION.GAMMA = float(gamma)
    cfg.freeze()
    with _quiet():
        model = build_model(cfg)
    state = torch.load(cfg.MODEL.WEIGHTS, map_location=cfg.MODEL.DEVICE, weights_only=True)
    model.load_state_dict(state["model"], strict=True)
    return _predict(cfg, model, progress=progress, name=f"{spec.name} {calibration or ''}".strip())


def _load_stage1(model, path: Path) -> None:
    """The stage-1 weights (this runner's checkpoint) into ``model``; only box classifiers of another shape (another
    loss's layout, re-initialised next) and the stage-2 loss's own state (``cls_loss`` buffers, which start fresh)
    may be left out."""
    state = torch.load(path, map_location="cpu", weights_only=True)["model"]
    own = model.state_dict()
    skipped = sorted(k for k in state if k in own and own[k].shape != state[k].shape)
    if any(".cls_score." not in k for k in skipped):
        raise ValueError(f"stage-1 checkpoint {path} does not fit the model: {skipped}; expected only classifiers")
    missing, unexpected = model.load_state_dict({k: v for k, v in state.items() if k not in skipped}, strict=False)
    if unexpected or any(".cls_score." not in k and ".cls_loss." not in k for k in missing):
        raise ValueError(f"stage-1 checkpoint {path}: missing {missing}, unexpected {unexpected}")


def _train_sampler(spec: RunSpec, dataset: list[dict]):
    """detectron2's own sampler of ``spec.sampler`` over the loader's (empty-image filtered) ``dataset``."""
    if spec.sampler == "rfs":
        factors = RepeatFactorTrainingSampler.repeat_factors_from_category_frequency(dataset, spec.rfs_threshold)
        return RepeatFactorTrainingSampler(factors, seed=spec.seed)
    return TrainingSampler(len(dataset), seed=spec.seed)


def _predict(cfg, model, *, progress: bool, name: str) -> list[dict]:
    test_name = cfg.DATASETS.TEST[0]
    with _quiet():
        dataset = DatasetCatalog.get(test_name)  # loading the json fills the category id mapping
    contiguous_to_id = {v: k for k, v in MetadataCatalog.get(test_name).thing_dataset_id_to_contiguous_id.items()}
    loader = build_detection_test_loader(dataset, mapper=DatasetMapper(cfg, is_train=False))
    model.eval()
    out = []
    with torch.no_grad():
        for batch in progress_bar(loader, total=len(dataset), desc=f"test  {name}", enabled=progress):
            inputs = batch[0]
            instances = model([inputs])[0]["instances"].to("cpu")
            boxes = instances.pred_boxes.tensor.tolist()
            for (x0, y0, x1, y1), score, label in zip(
                boxes, instances.scores.tolist(), instances.pred_classes.tolist()
            ):
                out.append(
                    {
                        "image_id": inputs["image_id"],
                        "category_id": contiguous_to_id[label],
                        "bbox": [x0, y0, x1 - x0, y1 - y0],
                        "score": score,
                    }
                )
    return out


@contextlib.contextmanager
def _quiet():
    """Silence detectron2's info logging and prints while building (the runs show their own progress)."""
    logger = logging.getLogger("detectron2")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)
