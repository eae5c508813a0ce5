#!/usr/bin/env python
"""Time of one full training step of Faster R-CNN R50-FPN with detbalance's box head vs each framework's own.

One step: forward of a batch (default 2 images of 3 x 256 x 256, 3 boxes each) in training mode, the summed
losses' backward and an SGD step, on the CPU, from random initialisation (no weights are loaded: Detectron2 with
``RESNETS.NORM = "BN"``, MMDetection with ``backbone.init_cfg = None``), K = 1203 classes as LVIS.

Per framework the models are built from the repository's configs and the same seed:

- Detectron2: ``StandardROIHeads`` (softmax cross-entropy) vs ``BalancedROIHeads`` with each detbalance loss
  (``configs/detectron2/faster_rcnn_R_50_FPN_1x_<loss>.yaml``);
- MMDetection: ``faster-rcnn_r50_fpn_1x_coco.py`` with its own ``CrossEntropyLoss`` vs
  ``configs/mmdet/faster-rcnn_r50_fpn_1x_coco_<loss>.py`` (``DB*`` losses).

The models of a framework run interleaved (A B C A B C ...), the global seed reset to the same value before each
case of a round, so that machine load and proposal sampling hit them alike; the learning rate is tiny so that
every round does about the same work. Reported: the median step time of each case after the warm-up rounds and
its ratio to the framework's own head. Target: every ratio <= 1.05 (``--check`` exits with 1 otherwise).

``--value-checks off`` runs detbalance's losses without the checks that read tensors back to the host
(:func:`detbalance.losses.set_value_checks`); they are on by default.

Time is the process's CPU time by default (``--clock cpu``: the time the step computed, which other jobs on a
shared machine do not inflate), or wall-clock time (``--clock wall``).

Example:
    python tools/bench_step.py --repeats 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
D2_CONFIGS = REPO / "configs" / "detectron2"
MMDET_CONFIGS = REPO / "configs" / "mmdet"
FRAMEWORKS = ("detectron2", "mmdet")
#: detbalance loss -> its config name part (``faster_rcnn_R_50_FPN_1x_<d2>.yaml``, ``..._coco_<mmdet>.py``)
LOSSES = {"EQLv2Loss": ("eqlv2", "eqlv2"), "WeightedCrossEntropyLoss": ("weighted_ce", "weighted-ce")}
#: maximum step time of a detbalance head over the framework's own head
TARGET = 1.05
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
PIXEL_STD = [57.375, 57.120, 58.395]  # detectron2's torchvision-style std: random init needs a real one


@dataclass
class Case:
    """One model of a framework: ``step()`` runs one training step."""

    framework: str
    name: str
    step: Callable[[], None]
    times: list = field(default_factory=list)


def _weights_file(folder: Path, num_classes: int) -> Path:
    """A weights file of ``num_classes`` long-tailed classes (1 / sqrt(frequency) weights)."""
    from detbalance.weights import ClassStats, WeightsFile, compute_class_weights, frequency_groups, save_weights

    counts = [max(1, round(10000 * 1000.0 ** (-c / max(1, num_classes - 1)))) for c in range(num_classes)]
    stats = ClassStats([f"class{c}" for c in range(num_classes)], counts, counts, max(counts))
    weights = compute_class_weights(stats.instance_counts, "sqrt_inverse")
    path = folder / f"weights_{num_classes}.json"
    save_weights(
        path,
        WeightsFile(
            stats=stats,
            scheme="sqrt_inverse",
            weights=[float(w) for w in weights],
            background_weight=1.0,
            groups=frequency_groups(stats.image_counts),
        ),
    )
    return path


def _boxes(size: int, count: int, num_classes: int, image: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` boxes inside a ``size`` square image, labels spread over the classes."""
    g = torch.Generator().manual_seed(100 + image)
    xy = torch.rand(count, 2, generator=g) * size * 0.6
    wh = torch.rand(count, 2, generator=g) * size * 0.3 + size * 0.1
    labels = (torch.arange(count) * 397 + image * 61) % num_classes
    return torch.cat([xy, (xy + wh).clamp(max=size - 1)], dim=1), labels


def _images(args) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(3, args.size, args.size, generator=g) * 255).round() for _ in range(args.images)]


def _sgd(model) -> torch.optim.Optimizer:
    return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-6, momentum=0.9)


def detectron2_cases(args, weights: Path) -> list[Case]:
    from detectron2.modeling import build_model
    from detectron2.structures import Boxes, Instances

    from detbalance.detectron2 import (
        _compat,  # noqa: F401  (before any detectron2 import)
        get_config,
    )

    batch = []
    for i, image in enumerate(_images(args)):
        instances = Instances((args.size, args.size))
        boxes, labels = _boxes(args.size, args.boxes, args.classes, i)
        instances.gt_boxes, instances.gt_classes = Boxes(boxes), labels
        batch.append({"image": image, "height": args.size, "width": args.size, "instances": instances})
    common = [
        "MODEL.DEVICE",
        "cpu",
        "MODEL.RESNETS.NORM",
        "BN",
        "MODEL.PIXEL_STD",
        PIXEL_STD,
        "MODEL.ROI_HEADS.NUM_CLASSES",
        args.classes,
        "INPUT.MIN_SIZE_TRAIN",
        (args.size,),
        "INPUT.MAX_SIZE_TRAIN",
        args.size,
        "DETBALANCE.WEIGHTS_FILE",
        str(weights),
    ]
    configs = {
        "own: StandardROIHeads": (
            D2_CONFIGS / "faster_rcnn_R_50_FPN_1x_eqlv2.yaml",
            ["MODEL.ROI_HEADS.NAME", "StandardROIHeads"],
        )
    }
    for loss in args.losses:
        configs[f"BalancedROIHeads {loss}"] = (D2_CONFIGS / f"faster_rcnn_R_50_FPN_1x_{LOSSES[loss][0]}.yaml", [])
    cases = []
    for name, (path, extra) in configs.items():
        torch.manual_seed(0)
        model = build_model(get_config(path, common + extra))
        model.train()
        cases.append(Case("detectron2", name, _d2_step(model, _sgd(model), batch)))
    return cases


def _d2_step(model, optimizer, batch) -> Callable[[], None]:
    from detectron2.utils.events import EventStorage

    def step() -> None:
        with EventStorage(0):  # detectron2's heads log to the current event storage
            losses = model(batch)
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()

    return step


def mmdet_cases(args, weights: Path) -> list[Case]:
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.structures import InstanceData

    import detbalance.mmdet  # noqa: F401  (registers the DB* components)

    register_all_modules()
    samples = []
    for i in range(args.images):
        shape = (args.size, args.size)
        sample = DetDataSample(
            metainfo=dict(
                img_shape=shape, ori_shape=shape, scale_factor=(1.0, 1.0), pad_shape=shape, batch_input_shape=shape
            )
        )
        boxes, labels = _boxes(args.size, args.boxes, args.classes, i)
        sample.gt_instances = InstanceData(bboxes=boxes, labels=labels)
        samples.append(sample)
    data = {"inputs": [image.to(torch.uint8) for image in _images(args)], "data_samples": samples}
    configs = {"own: CrossEntropyLoss": (MMDET_CONFIGS / "faster-rcnn_r50_fpn_1x_coco_eqlv2.py", None)}
    for loss in args.losses:
        configs[f"DB{loss}"] = (MMDET_CONFIGS / f"faster-rcnn_r50_fpn_1x_coco_{LOSSES[loss][1]}.py", loss)
    cases = []
    for name, (path, loss) in configs.items():
        cfg = Config.fromfile(str(path)).model
        cfg.backbone.init_cfg = None
        head = cfg.roi_head.bbox_head
        head.num_classes = args.classes
        if loss is None:  # the framework's own head: mmdet's softmax cross-entropy
            head.loss_cls = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)
        else:
            head.loss_cls.num_classes = args.classes
            if "class_weight" in head.loss_cls:
                head.loss_cls.class_weight = str(weights)
        torch.manual_seed(0)
        model = MODELS.build(cfg)
        model.train()
        cases.append(Case("mmdet", name, _mmdet_step(model, _sgd(model), data)))
    return cases


def _mmdet_step(model, optimizer, data) -> Callable[[], None]:
    def step() -> None:
        inputs = model.data_preprocessor(data, True)
        total, _ = model.parse_losses(model(**inputs, mode="loss"))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()

    return step


def run(cases: list[Case], repeats: int, warmup: int, clock: Callable[[], float] = time.process_time) -> None:
    """Interleaved rounds: every case once per round, the global seed reset before each."""
    for i in range(warmup + repeats):
        for case in cases:
            torch.manual_seed(1000 + i)
            start = clock()
            case.step()
            elapsed = clock() - start
            if i >= warmup:
                case.times.append(elapsed)


def summarize(cases: list[Case]) -> list[dict]:
    """Rows ``framework, head, time_s, ratio, met``; the first case of each framework is its own head."""
    rows, own = [], {}
    for case in cases:
        median = statistics.median(case.times)
        reference = own.setdefault(case.framework, median)
        ratio = median / reference
        rows.append(
            {"framework": case.framework, "head": case.name, "time_s": median, "ratio": ratio, "met": ratio <= TARGET}
        )
    return rows


def format_rows(rows: list[dict], title: str) -> str:
    header = f"{'framework':<12}{'head':<44}{'step s':>9}{'ratio':>8}  target"
    lines = [title, header, "-" * len(header)]
    for r in rows:
        own = r["head"].startswith("own:")
        verdict = "" if own else f"<= {TARGET} {'ok' if r['met'] else 'MISSED'}"
        lines.append(f"{r['framework']:<12}{r['head']:<44}{r['time_s']:>9.3f}{r['ratio']:>8.3f}  {verdict}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS), help=f"comma-separated, from {FRAMEWORKS}")
    parser.add_argument("--losses", default=",".join(LOSSES), help=f"comma-separated, from {list(LOSSES)}")
    parser.add_argument("--classes", type=int, default=1203, help="K, the number of classes (LVIS: 1203)")
    parser.add_argument("--images", type=int, default=2, help="images per batch")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--boxes", type=int, default=3, help="ground-truth boxes per image")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per case first")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: stable timings)")
    parser.add_argument(
        "--clock",
        choices=tuple(CLOCKS),
        default="cpu",
        help="cpu: process CPU time (default, steady on a shared machine); wall: elapsed time",
    )
    parser.add_argument(
        "--value-checks",
        choices=("on", "off"),
        default="on",
        help="detbalance's loss checks that read tensors back to the host (default on)",
    )
    parser.add_argument("--check", action="store_true", help=f"exit with 1 when a ratio exceeds {TARGET}")
    args = parser.parse_args(argv)
    frameworks = [f for f in args.frameworks.split(",") if f]
    if not frameworks or any(f not in FRAMEWORKS for f in frameworks):
        parser.error(f"--frameworks {args.frameworks!r}; expected a comma-separated subset of {list(FRAMEWORKS)}")
    args.losses = [loss for loss in args.losses.split(",") if loss]
    if not args.losses or any(loss not in LOSSES for loss in args.losses):
        parser.error(f"--losses {','.join(args.losses)!r}; expected a comma-separated subset of {list(LOSSES)}")
    for name in ("classes", "images", "size", "boxes", "repeats", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} {getattr(args, name)}; expected an integer >= 1")
    if args.size < 32 or args.warmup < 0:
        parser.error(f"--size {args.size} (expected >= 32) / --warmup {args.warmup} (expected >= 0)")
    torch.set_num_threads(args.threads)
    if args.value_checks == "off":
        from detbalance.losses import set_value_checks

        set_value_checks(False)
    builders = {"detectron2": detectron2_cases, "mmdet": mmdet_cases}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        weights = _weights_file(Path(folder), args.classes)
        for framework in frameworks:
            cases = builders[framework](args, weights)
            run(cases, args.repeats, args.warmup, CLOCKS[args.clock])
            rows += summarize(cases)
            del cases
    title = (
        f"Faster R-CNN R50-FPN, K={args.classes}, {args.images} x 3 x {args.size} x {args.size}, "
        f"{args.boxes} boxes/image, CPU, {args.threads} thread(s), {args.clock} time, value checks "
        f"{args.value_checks}, median of {args.repeats} "
        f"steps (interleaved, {args.warmup} warm-up), torch {torch.__version__}"
    )
    print(format_rows(rows, title))
    missed = [f"{r['framework']}/{r['head']}" for r in rows if not r["met"]]
    if missed:
        print(f"\ntargets missed: {', '.join(missed)}")
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
