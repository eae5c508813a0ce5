#!/usr/bin/env python
"""Train and evaluate a Detectron2 model with a detbalance loss (detectron2's project layout, as PointRend's).

Examples:
  # a detbalance yaml (its _BASE_ may be model_zoo://...) on your own COCO-format data, on CPU
  python tools/train_net.py --config-file configs/detectron2/faster_rcnn_R_18_FPN_tiny_cpu.yaml \\
      --register-coco my_train train.json train_images/ --register-coco my_val val.json val_images/ \\
      DATASETS.TRAIN '("my_train",)' DATASETS.TEST '("my_val",)' \\
      DETBALANCE.LOSS SeesawLoss MODEL.ROI_HEADS.NUM_CLASSES 8 OUTPUT_DIR out/seesaw
  # 8 GPUs; several machines with --num-machines/--machine-rank/--dist-url
  python tools/train_net.py --config-file configs/detectron2/faster_rcnn_R_50_FPN_1x_seesaw.yaml --num-gpus 8
  # continue from OUTPUT_DIR's last checkpoint (weights, optimizer, schedule, loss state, RNG state)
  python tools/train_net.py --config-file ... --resume
  # decoupled classifier re-training (cRT) of a trained model: only the box classifier learns, with RFS
  python tools/train_net.py --config-file ... --decouple out/ce/model_final.pth OUTPUT_DIR out/crt \
      SOLVER.MAX_ITER 2000 DATALOADER.SAMPLER_TRAIN RepeatFactorTrainingSampler DATALOADER.REPEAT_THRESHOLD 0.01
  # evaluate a checkpoint: COCO AP, then the per-class report with APr/APc/APf
  python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS out/seesaw/model_final.pth
  # a LazyConfig: overrides are path.key=value
  python tools/train_net.py --config-file configs/detectron2/lazy_faster_rcnn_R_50_FPN_1x_seesaw.py train.max_iter=100

Trailing KEY VALUE pairs (yaml) or key=value (LazyConfig) override the config. Evaluation ends with detbalance's
per-class report (AP, AP50, R50 per class; APr/APc/APf from the train json's class frequencies).

Exit status: 0 on success, 2 on bad input (unknown config key, missing or malformed --register-coco json,
unregistered data set, a DETBALANCE loss without BalancedROIHeads, a --decouple checkpoint that is missing or has
another number of classes); nothing is written then.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import logging
import os
import sys
from collections import OrderedDict

from detbalance.cli_warnings import quiet_third_party_warnings

quiet_third_party_warnings()

import detectron2.utils.comm as comm  # noqa: E402
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.config import CfgNode, LazyConfig, get_cfg, instantiate  # noqa: E402
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader, build_detection_train_loader  # noqa: E402,E501
from detectron2.data.datasets import register_coco_instances  # noqa: E402
from detectron2.engine import (  # noqa: E402
    AMPTrainer,
    SimpleTrainer,
    create_ddp_model,
    default_argument_parser,
    default_setup,
    default_writers,
    hooks,
    launch,
)
from detectron2.evaluation import COCOEvaluator, inference_on_dataset, print_csv_format  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.solver import build_lr_scheduler, build_optimizer  # noqa: E402
from detectron2.utils.events import CommonMetricPrinter, JSONWriter  # noqa: E402

import detbalance.detectron2  # noqa: E402,F401  (registers BalancedROIHeads)
from detbalance.detectron2 import add_detbalance_config, get_config  # noqa: E402
from detbalance.detectron2._compat import HAS_COMPILED_OPS  # noqa: E402
from detbalance.detectron2.decouple import (  # noqa: E402
    check_stage1_checkpoint,
    freeze_for_decoupling,
    reinit_classifiers,
    trained_patterns,
)
from detbalance.evaluation import compare, format_report  # noqa: E402
from detbalance.random_state import capture_rng_state, restore_rng_state  # noqa: E402

logger = logging.getLogger("detectron2")

#: detectron2 v0.6's launch asserts CUDA for more than one process per machine; main starts gloo ranks on CPU
#: (both call themselves version 0.6: the launcher's source tells them apart).
LAUNCH_NEEDS_CUDA = "GLOO" not in inspect.getsource(
    importlib.import_module("detectron2.engine.launch")._distributed_worker
)


class UsageError(ValueError):
    """Bad command-line input: reported on stderr with exit status 2, before anything is written."""


class RandomState:
    """Checkpointable global RNG state, so that a resumed run draws what an uninterrupted one draws.

    On load, numpy's and python's streams (augmentation) are restored at once; torch's (proposal sampling) waits
    for the first batch of the resumed run (:class:`ResumedLoader`), because detectron2's train loader creates
    its inner data loader iterator on that first fetch, which draws a seed from torch (the uninterrupted run drew
    it at its iteration 0). Exact with ``DATALOADER.NUM_WORKERS 0``; detectron2's sampler restarts its order on
    resume (its own behaviour), so the data order continues only where it does not depend on the start.
    """

    def __init__(self):
        self.pending_torch: dict | None = None

    def state_dict(self) -> dict:
        return capture_rng_state()

    def load_state_dict(self, state: dict) -> None:
        restore_rng_state(state, ("numpy", "python"))
        self.pending_torch = state


class ResumedLoader:
    """The train loader, restoring the torch RNG of a loaded :class:`RandomState` right after the first batch."""

    def __init__(self, loader, random_state: RandomState):
        self.loader, self.random_state = loader, random_state

    def __iter__(self):
        for batch in self.loader:
            if self.random_state.pending_torch is not None:
                restore_rng_state(self.random_state.pending_torch, ("torch",))
                self.random_state.pending_torch = None
            yield batch


# ------------------------------------------------------------------------------------------------- arguments
def build_parser():
    parser = default_argument_parser(epilog=__doc__.split("\n\n", 1)[1])
    parser.description = __doc__.split("\n\n")[0]
    parser.add_argument(
        "--register-coco",
        nargs=3,
        action="append",
        default=[],
        metavar=("NAME", "JSON", "IMAGE_ROOT"),
        help="register a COCO-format data set under NAME (repeatable), e.g. for DATASETS.TRAIN",
    )
    parser.add_argument(
        "--decouple",
        metavar="STAGE1_CHECKPOINT",
        default=None,
        help="re-train only the box classifier of this trained model (cRT): sets DETBALANCE.DECOUPLE.ENABLED and "
        "MODEL.WEIGHTS (yaml configs; see detbalance.detectron2.decouple)",
    )
    return parser


def is_lazy(config_file: str) -> bool:
    return config_file.endswith(".py")


def check_coco(name: str, json_file: str, image_root: str) -> None:
    """Refuse a --register-coco entry whose json is missing or not a COCO detection file."""
    if not os.path.isfile(json_file):
        raise UsageError(f"--register-coco {name}: json file {json_file!r} does not exist")
    try:
        with open(json_file, encoding="utf-8") as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"--register-coco {name}: {json_file!r} is not valid json ({e})") from e
    missing = [
        k
        for k in ("images", "annotations", "categories")
        if not isinstance(data, dict) or not isinstance(data.get(k), list)
    ]
    if missing:
        raise UsageError(
            f"--register-coco {name}: {json_file!r} is not a COCO detection file: "
            f"expected lists 'images', 'annotations', 'categories', missing {missing}"
        )
    if not os.path.isdir(image_root):
        raise UsageError(f"--register-coco {name}: image folder {image_root!r} does not exist")


def register_datasets(entries) -> None:
    for name, json_file, image_root in entries:
        check_coco(name, json_file, image_root)
        if name in DatasetCatalog.list():
            if MetadataCatalog.get(name).get("json_file") != json_file:
                raise UsageError(f"--register-coco {name}: the name is already registered for another data set")
            continue
        register_coco_instances(name, {}, json_file, image_root)


def setup(args):
    """The config of ``args``: yaml (with model_zoo:// bases and the DETBALANCE node) or LazyConfig."""
    if not args.config_file:
        raise UsageError("--config-file is required (a detbalance yaml or a LazyConfig .py)")
    if not os.path.isfile(args.config_file):
        raise UsageError(f"--config-file {args.config_file!r} does not exist")
    register_datasets(args.register_coco)
    if is_lazy(args.config_file):
        if args.decouple is not None:
            raise UsageError("--decouple takes a yaml config (DETBALANCE.DECOUPLE); got a LazyConfig")
        cfg = LazyConfig.load(args.config_file)
        try:
            cfg = LazyConfig.apply_overrides(cfg, args.opts)
        except (KeyError, AttributeError) as e:
            raise UsageError(f"config override: {e}") from e
        check_lazy_datasets(cfg)
        return cfg
    if len(args.opts) % 2:
        raise UsageError(f"overrides must be KEY VALUE pairs, got an odd number: {args.opts}")
    opts = list(args.opts)
    if args.decouple is not None:
        opts += ["DETBALANCE.DECOUPLE.ENABLED", "True", "MODEL.WEIGHTS", args.decouple]
    try:
        cfg = get_config(args.config_file, opts)
    except (KeyError, AssertionError) as e:  # yacs: "Non-existent (config) key: ..." (file / KEY VALUE overrides)
        raise UsageError(f"{args.config_file}: {e.args[0] if e.args else e}") from e
    check_detbalance_head(cfg)
    check_yaml_datasets(cfg, args.eval_only)
    if cfg.DETBALANCE.DECOUPLE.ENABLED and not args.eval_only:
        try:
            trained_patterns(cfg.DETBALANCE.DECOUPLE.TRAIN)
            check_stage1_checkpoint(cfg.MODEL.WEIGHTS, cfg.MODEL.ROI_HEADS.NUM_CLASSES)
        except ValueError as e:
            raise UsageError(str(e)) from e
    cfg.freeze()
    return cfg


def check_detbalance_head(cfg: CfgNode) -> None:
    """A DETBALANCE setting is read only by BalancedROIHeads: refuse one that another head would ignore
    (``DETBALANCE.DECOUPLE`` excepted: the training reads it, with any head)."""
    if cfg.MODEL.ROI_HEADS.NAME == "BalancedROIHeads":
        return
    defaults = get_cfg()
    add_detbalance_config(defaults)
    changed = sorted(
        k
        for k in _changed_keys(cfg.DETBALANCE, defaults.DETBALANCE, "DETBALANCE")
        if not k.startswith("DETBALANCE.DECOUPLE.")
    )
    if changed:
        raise UsageError(
            f"{', '.join(changed)} set, but MODEL.ROI_HEADS.NAME={cfg.MODEL.ROI_HEADS.NAME!r} does not "
            "read the DETBALANCE node; expected MODEL.ROI_HEADS.NAME BalancedROIHeads"
        )


def _changed_keys(node, default, prefix):
    for key, value in node.items():
        if isinstance(value, CfgNode):
            yield from _changed_keys(value, default.get(key, CfgNode()), f"{prefix}.{key}")
        elif default.get(key) != value:
            yield f"{prefix}.{key}={value!r}"


def _require_registered(names, what: str) -> None:
    registered = set(DatasetCatalog.list())
    for name in names:
        if name not in registered:
            raise UsageError(
                f"{what} names data set {name!r}, which is not registered; register it with "
                "--register-coco NAME JSON IMAGE_ROOT"
            )


def check_yaml_datasets(cfg: CfgNode, eval_only: bool) -> None:
    if not eval_only:
        _require_registered(cfg.DATASETS.TRAIN, "DATASETS.TRAIN")
    _require_registered(cfg.DATASETS.TEST, "DATASETS.TEST")


def check_lazy_datasets(cfg) -> None:
    for split in ("train", "test"):
        names = cfg.dataloader[split].dataset.get("names") if split in cfg.dataloader else None
        _require_registered(
            [names] if isinstance(names, str) else list(names or ()), f"dataloader.{split}.dataset.names"
        )


def check_launch(args, cfg) -> None:
    device = cfg.train.device if is_lazy(args.config_file) else cfg.MODEL.DEVICE
    if LAUNCH_NEEDS_CUDA and args.num_gpus * args.num_machines > 1 and not device.startswith("cuda"):
        raise UsageError(
            f"--num-gpus {args.num_gpus} --num-machines {args.num_machines} on device {device!r}: "
            "detectron2 v0.6's launch needs CUDA for more than one process; use --num-gpus 1 on CPU "
            "(detectron2 main starts CPU ranks with gloo)"
        )


# ---------------------------------------------------------------------------------------------- evaluation
def _settings(cfg, lazy: bool) -> dict:
    if lazy:
        return {
            "output_dir": cfg.train.output_dir,
            "device": cfg.train.device,
            "weights": cfg.train.init_checkpoint,
            "max_iter": cfg.train.max_iter,
            "period": cfg.train.checkpointer.period,
            "eval_period": cfg.train.eval_period,
            "log_period": cfg.train.log_period,
            "amp": cfg.train.amp.enabled,
        }
    return {
        "output_dir": cfg.OUTPUT_DIR,
        "device": cfg.MODEL.DEVICE,
        "weights": cfg.MODEL.WEIGHTS,
        "max_iter": cfg.SOLVER.MAX_ITER,
        "period": cfg.SOLVER.CHECKPOINT_PERIOD,
        "eval_period": cfg.TEST.EVAL_PERIOD,
        "log_period": 20,
        "amp": cfg.SOLVER.AMP.ENABLED,
    }


def per_class_report(results_json: str, dataset_name: str, train_names) -> str | None:
    """detbalance's per-class table of one evaluated data set, or None when there is no results file."""
    if not os.path.isfile(results_json):
        return None
    gt_json = MetadataCatalog.get(dataset_name).get("json_file")
    train_jsons = [MetadataCatalog.get(n).get("json_file") for n in train_names]
    # r/c/f groups come from the train json's class frequencies, when there is one train json on disk
    train_json = train_jsons[0] if len(train_jsons) == 1 and train_jsons[0] and os.path.isfile(train_jsons[0]) else None
    try:
        report = compare(gt_json, {"model": [results_json]}, train_json=train_json)
    except ValueError as e:
        logger.warning(f"no per-class report for {dataset_name}: {e}")
        return None
    return format_report(report)


def do_test(cfg, model, lazy: bool) -> dict:
    results = OrderedDict()
    if lazy:
        names = cfg.dataloader.test.dataset.names
        names = [names] if isinstance(names, str) else list(names)
        if cfg.dataloader.evaluator.get("output_dir") is None:  # the per-class report reads its results file
            cfg.dataloader.evaluator.output_dir = os.path.join(cfg.train.output_dir, "inference", names[0])
        if not HAS_COMPILED_OPS and "use_fast_impl" not in cfg.dataloader.evaluator:
            cfg.dataloader.evaluator.use_fast_impl = False  # the C++ COCO evaluator is one of the ops
        evaluator = instantiate(cfg.dataloader.evaluator)
        runs = [(names[0], instantiate(cfg.dataloader.test), evaluator, evaluator._output_dir)]
        train_names = cfg.dataloader.train.dataset.names
        train_names = [train_names] if isinstance(train_names, str) else list(train_names)
    else:
        runs = []
        for name in cfg.DATASETS.TEST:
            out = os.path.join(cfg.OUTPUT_DIR, "inference", name)
            runs.append(
                (
                    name,
                    build_detection_test_loader(cfg, name),
                    COCOEvaluator(name, output_dir=out, use_fast_impl=HAS_COMPILED_OPS),
                    out,
                )
            )
        train_names = list(cfg.DATASETS.TRAIN)
    for name, loader, evaluator, out in runs:
        results[name] = inference_on_dataset(model, loader, evaluator)
        if comm.is_main_process():
            logger.info(f"Evaluation results for {name} in csv format:")
            print_csv_format(results[name])
            table = per_class_report(os.path.join(out or "", "coco_instances_results.json"), name, train_names)
            if table is not None:
                print(f"\nPer-class report of {name}:\n{table}", flush=True)
    return results


# ------------------------------------------------------------------------------------------------- training
def build_training(cfg, lazy: bool):
    if lazy:
        model = instantiate(cfg.model)
        model.to(cfg.train.device)
        cfg.optimizer.params.model = model
        return model, instantiate(cfg.optimizer), instantiate(cfg.dataloader.train), instantiate(cfg.lr_multiplier)
    model = build_model(cfg)
    if cfg.DETBALANCE.DECOUPLE.ENABLED:  # before the optimizer, which takes the trainable parameters only
        freeze_for_decoupling(cfg, model)
    optimizer = build_optimizer(cfg, model)
    return model, optimizer, build_detection_train_loader(cfg), build_lr_scheduler(cfg, optimizer)


def writers(output_dir: str, max_iter: int) -> list:
    """detectron2's default writers; the TensorBoard one only where tensorboard is installed (not a dependency)."""
    if importlib.util.find_spec("tensorboard") is not None:
        return default_writers(output_dir, max_iter)
    return [CommonMetricPrinter(max_iter), JSONWriter(os.path.join(output_dir, "metrics.json"))]


def do_train(args, cfg, lazy: bool) -> dict:
    s = _settings(cfg, lazy)
    model, optimizer, loader, scheduler = build_training(cfg, lazy)
    # CPU ranks: DistributedDataParallel without device ids (detectron2 would pass the local rank as a GPU id).
    model = create_ddp_model(
        model, broadcast_buffers=False, **({} if s["device"].startswith("cuda") else {"device_ids": None})
    )
    random_state = RandomState()
    trainer = (AMPTrainer if s["amp"] else SimpleTrainer)(model, ResumedLoader(loader, random_state), optimizer)
    checkpointer = DetectionCheckpointer(model, s["output_dir"], trainer=trainer, rng=random_state)
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(scheduler=scheduler),
            hooks.PeriodicCheckpointer(checkpointer, s["period"]) if comm.is_main_process() else None,
            hooks.EvalHook(s["eval_period"], lambda: do_test(cfg, model, lazy)),
            hooks.PeriodicWriter(writers(s["output_dir"], s["max_iter"]), period=s["log_period"])
            if comm.is_main_process()
            else None,
        ]
    )
    resumed = args.resume and checkpointer.has_checkpoint()
    checkpointer.resume_or_load(s["weights"], resume=args.resume)
    if not lazy and cfg.DETBALANCE.DECOUPLE.ENABLED and cfg.DETBALANCE.DECOUPLE.REINIT_CLASSIFIER and not resumed:
        reinit_classifiers(model.module if hasattr(model, "module") else model)
    start_iter = trainer.iter + 1 if resumed else 0
    trainer.train(start_iter, s["max_iter"])
    return {}


def main(args):
    cfg = setup(args)
    lazy = is_lazy(args.config_file)
    default_setup(cfg, args)
    if args.eval_only:
        if lazy:
            model = instantiate(cfg.model)
            model.to(cfg.train.device)
            DetectionCheckpointer(model).load(cfg.train.init_checkpoint)
        else:
            model = build_model(cfg)
            DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        return do_test(cfg, model, lazy)
    return do_train(args, cfg, lazy)


def cli(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = setup(args)  # validated once here, so that bad input fails before any rank starts or writes
        check_launch(args, cfg)
    except UsageError as e:
        print(f"train_net.py: error: {e}", file=sys.stderr)
        return 2
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
