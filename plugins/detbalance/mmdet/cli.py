"""``tools/train.py`` and ``tools/test.py``: MMDetection 3.x's own entry points, for configs using detbalance.

pip-installed MMDetection ships no ``tools/``; these take the options of its ``tools/train.py``/``tools/test.py``
(``--work-dir``, ``--resume [CHECKPOINT]``, ``--amp``, ``--auto-scale-lr``, ``--cfg-options``,
``--launcher none|pytorch|slurm|mpi``) and add:

- ``detbalance.mmdet`` imported (its components registered) and ``DBRandomStateHook`` in ``custom_hooks``, so that
  ``--resume`` continues the RNG stream and the stateful losses' buffers exactly as an uninterrupted run;
- validation before anything is written: a ``--cfg-options`` key whose parent is not in the config, or a model
  that does not build (e.g. a loss's ``num_classes`` differing from the head's), exits with status 2;
- ``--decouple STAGE1.pth``: decoupled classifier re-training (``load_from`` + ``DBDecoupleHook``), the
  checkpoint checked first (missing, or another number of classes: exit status 2);
- testing ends with detbalance's per-class report (AP, AP50, R50 per class, APr/APc/APf from the train json);
- checkpoints (``--resume``, ``load_from``, the tested one) load as on torch < 2.6 (``weights_only=False``):
  mmengine 0.10's checkpoints hold objects that torch's default ``weights_only=True`` refuses. Load only
  checkpoints you trust.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from detbalance.cli_warnings import quiet_third_party_warnings

__all__ = ["train_main", "test_main", "check_cfg_options", "use_decoupling", "UsageError"]


class UsageError(ValueError):
    """Bad command-line input: reported on stderr with exit status 2, before anything is written."""


def _common_args(parser: argparse.ArgumentParser) -> None:
    from mmengine.config import DictAction

    parser.add_argument(
        "--work-dir",
        help="the folder for logs, checkpoints and results "
        "(default: the config's work_dir, else ./work_dirs/<config name>)",
    )
    parser.add_argument(
        "--cfg-options",
        nargs="+",
        action=DictAction,
        default={},
        help="override config keys, e.g. train_cfg.max_iters=100 model.backbone.depth=18 "
        "(the key's parent must exist in the config)",
    )
    parser.add_argument(
        "--launcher",
        choices=["none", "pytorch", "slurm", "mpi"],
        default="none",
        help="job launcher (pytorch: under torchrun)",
    )
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train.py", description="Train a detector (MMDetection 3.x) with detbalance")
    p.add_argument("config", help="train config file path")
    p.add_argument("--amp", action="store_true", help="automatic mixed precision (AmpOptimWrapper)")
    p.add_argument("--auto-scale-lr", action="store_true", help="scale the learning rate by the total batch size")
    p.add_argument(
        "--resume",
        nargs="?",
        type=str,
        const="auto",
        help="resume from this checkpoint, or without a path from the latest one in the work dir",
    )
    p.add_argument(
        "--decouple",
        metavar="STAGE1_CHECKPOINT",
        default=None,
        help="re-train only the box classifier of this trained model (cRT): load_from it and add DBDecoupleHook "
        "(detbalance.mmdet.decouple); the config's sampler and schedule are stage 2's",
    )
    _common_args(p)
    return p


def test_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="test.py", description="Test a detector (MMDetection 3.x): COCO metrics and detbalance's per-class report"
    )
    p.add_argument("config", help="test config file path")
    p.add_argument("checkpoint", help="checkpoint file")
    p.add_argument("--out", help="also write the COCO results json (the detections) to this path")
    _common_args(p)
    return p


# ------------------------------------------------------------------------------------------------ the config
def check_cfg_options(cfg, options: dict) -> None:
    """Refuse an override whose parent key is not in ``cfg`` (a typo would otherwise add a key nobody reads).

    A new leaf is accepted only inside a component (a dict with ``type``), whose builder checks its arguments.
    """
    for key in options:
        node, parts = cfg, key.split(".")
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, (list, tuple)):
                if not part.isdigit() or int(part) >= len(node):
                    raise UsageError(
                        f"--cfg-options {key}: index {part!r} of {'.'.join(parts[:depth]) or 'the config'}"
                        f" is out of range; expected 0..{len(node) - 1}"
                    )
                node = node[int(part)]
                continue
            if not hasattr(node, "keys"):
                raise UsageError(f"--cfg-options {key}: {'.'.join(parts[:depth])} is a value, not a dict")
            if part not in node:
                if last and "type" in node:
                    break  # a new argument of a component; its builder validates it
                where = ".".join(parts[:depth]) or "the config"
                raise UsageError(
                    f"--cfg-options {key}: {part!r} is not a key of {where}; expected one of {sorted(node.keys())}"
                )
            node = node[part]


def load_config(args):
    from mmengine.config import Config

    if not os.path.isfile(args.config):
        raise UsageError(f"config file {args.config!r} does not exist")
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options:
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = os.path.join("./work_dirs", Path(args.config).stem)
    return cfg


def check_model_builds(cfg) -> None:
    """Build the model once (a loss whose num_classes or statistics do not fit fails here, naming both)."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope

    init_default_scope(cfg.get("default_scope", "mmdet"))
    try:
        MODELS.build(cfg.model)
    except (ValueError, TypeError, KeyError, FileNotFoundError) as e:
        raise UsageError(f"{cfg.filename}: the model does not build: {e}") from e


def use_decoupling(cfg, checkpoint: str) -> None:
    """``cfg`` as stage 2 of decoupled training from ``checkpoint`` (checked: it exists and has the box head's
    number of classes): ``load_from`` it, ``DBDecoupleHook`` in ``custom_hooks`` (kept as configured if there)."""
    from detbalance.mmdet.decouple import check_stage1_checkpoint

    heads = cfg.model.roi_head.bbox_head if "roi_head" in cfg.model else None
    if heads is None:
        raise UsageError(
            f"--decouple {checkpoint!r}: the model has no roi_head.bbox_head; expected a two-stage detector"
        )
    head = heads[0] if isinstance(heads, (list, tuple)) else heads
    try:
        check_stage1_checkpoint(checkpoint, head.num_classes)
    except ValueError as e:
        raise UsageError(f"--decouple: {e}") from e
    cfg.load_from = checkpoint
    hooks = list(cfg.get("custom_hooks", None) or [])
    if not any(h.get("type") == "DBDecoupleHook" for h in hooks):
        hooks.append(dict(type="DBDecoupleHook"))
    cfg.custom_hooks = hooks


def _ensure_hook(cfg) -> None:
    hooks = list(cfg.get("custom_hooks", None) or [])
    if not any(h.get("type") == "DBRandomStateHook" for h in hooks):
        hooks.append(dict(type="DBRandomStateHook"))
    cfg.custom_hooks = hooks


# ---------------------------------------------------------------------------------------------- entry points
def _setup_process(args) -> None:
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    # mmengine 0.10 checkpoints hold its HistoryBuffer and numpy values, which torch >= 2.6's default
    # torch.load(weights_only=True) refuses: load them as mmengine expects (as on torch < 2.6). Only load
    # checkpoints you trust, as with MMDetection's own tools.
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import detbalance.mmdet  # noqa: F401  (registers the losses and DBRandomStateHook)


def _fail(prog: str, error: Exception) -> int:
    print(f"{prog}: error: {error}", file=sys.stderr)
    return 2


def train_main(argv=None) -> int:
    quiet_third_party_warnings()
    args = train_parser().parse_args(argv)
    _setup_process(args)
    from mmengine.runner import Runner

    try:
        cfg = load_config(args)
        check_model_builds(cfg)
        if args.resume not in (None, "auto") and not os.path.isfile(args.resume):
            raise UsageError(f"--resume {args.resume!r}: no such checkpoint")
        if args.decouple is not None:
            use_decoupling(cfg, args.decouple)
    except UsageError as e:
        return _fail("train.py", e)
    if args.amp:
        if cfg.optim_wrapper.get("type", "OptimWrapper") not in ("OptimWrapper", "AmpOptimWrapper"):
            return _fail(
                "train.py", UsageError(f"--amp needs optim_wrapper.type OptimWrapper, got {cfg.optim_wrapper.type!r}")
            )
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.loss_scale = "dynamic"
    if args.auto_scale_lr:
        if "auto_scale_lr" not in cfg or "base_batch_size" not in cfg.auto_scale_lr:
            return _fail("train.py", UsageError("--auto-scale-lr needs auto_scale_lr.base_batch_size in the config"))
        cfg.auto_scale_lr.enable = True
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    _ensure_hook(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return 0


def per_class_report(cfg, results_json: str) -> str:
    """detbalance's per-class table of the test split from a COCO results json."""
    from detbalance.evaluation import compare, format_report

    train = cfg.train_dataloader.dataset
    while "dataset" in train:
        train = train.dataset
    train_json = os.path.join(train.get("data_root", "") or "", train.ann_file) if "ann_file" in train else None
    if train_json is not None and not os.path.isfile(train_json):
        train_json = None
    return format_report(compare(cfg.test_evaluator.ann_file, {"model": [results_json]}, train_json=train_json))


def test_main(argv=None) -> int:
    quiet_third_party_warnings()
    args = test_parser().parse_args(argv)
    _setup_process(args)
    from mmengine.runner import Runner

    try:
        cfg = load_config(args)
        if not os.path.isfile(args.checkpoint):
            raise UsageError(f"checkpoint {args.checkpoint!r} does not exist")
        evaluator = cfg.get("test_evaluator")
        if not evaluator or evaluator.get("type", "CocoMetric") != "CocoMetric" or "ann_file" not in evaluator:
            raise UsageError("test_evaluator must be a CocoMetric with ann_file (the per-class report reads it)")
        check_model_builds(cfg)
    except UsageError as e:
        return _fail("test.py", e)
    cfg.load_from = args.checkpoint
    prefix = os.path.join(cfg.work_dir, "test_results")
    cfg.test_evaluator.outfile_prefix = prefix  # CocoMetric writes <prefix>.bbox.json
    runner = Runner.from_cfg(cfg)
    runner.test()
    results_json = prefix + ".bbox.json"
    if int(os.environ.get("RANK", "0")) == 0:
        if args.out:
            from detbalance.weights.file import write_text_atomic

            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(args.out, Path(results_json).read_text(encoding="utf-8"))
        print(f"\nPer-class report ({cfg.test_evaluator.ann_file}):\n{per_class_report(cfg, results_json)}", flush=True)
    return 0
