"""Resumable runs of the benchmark matrix: one cached record per (framework, method, seed, data version).

Each run trains the method's model (the demo's Faster R-CNN unless the row names another, e.g. RetinaNet or
Cascade R-CNN) through the demo's runners (:mod:`dbbench.demo.detectron2_runner`, ``mmdet_runner``) on the
split of :mod:`dbbench.data.longtail` its method names, writes the test detections of the LVIS protocol
(score >= 1e-4, at most 300 per image) to ``<work_dir>/<data version>/<framework>/<method>/seed<n>/results.json``
and evaluates them with :func:`detbalance.evaluation.lvis_protocol.evaluate_large_vocabulary`. The record,
``<results_dir>/runs/<data version>/<framework>__<method>__seed<n>.json``, holds the model, the metrics, the
time and the machine. A run whose record exists with the same definition hash (method row, schedule, protocol)
is skipped; detections that exist without a record are evaluated without training again. Every trained model is kept
(``model_final.pth``) for the post-hoc calibration rows (:mod:`.posthoc`), which re-predict their base method's
model instead of training. After every run ``<results_dir>/summary.json`` is rewritten from the records.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from detbalance.evaluation.lvis_protocol import LVIS_MAX_DETS, LVIS_SCORE_THRESHOLD, evaluate_large_vocabulary

from ..checks import check_int
from ..data.longtail import LongTailDataset, LongTailSpec, get_longtail_dataset
from ..demo import Schedule
from ..demo._io import write_json
from ..demo.data import DemoData
from ..demo.models import REGIMES
from .methods import (
    FRAMEWORKS,
    GAMMA_FIT_METRIC,
    GAMMA_GRID,
    Method,
    decouple_schedule,
    definition_hash,
    get_method,
    method_loss,
    pending,
)
from .summary import load_summary, record_path

__all__ = [
    "BenchmarkSettings",
    "BENCHMARK_SCHEDULE",
    "PRETRAINED_SCHEDULE",
    "REGIME_SCHEDULES",
    "demo_data",
    "prepare_version",
    "run_matrix",
    "work_root",
]

#: The schedule of every benchmark run from scratch (the many-class probe's: about 6 minutes on 2 idle cores).
BENCHMARK_SCHEDULE = Schedule(iters=2000)
#: The schedule of each regime (:data:`~dbbench.demo.models.REGIMES`): from scratch :data:`BENCHMARK_SCHEDULE`;
#: fine-tuning the ImageNet-pretrained backbone :data:`PRETRAINED_SCHEDULE` (chosen on the validation split,
#: ``results/tuning/pretrained_schedule.json``).
PRETRAINED_SCHEDULE = Schedule(iters=2000)
REGIME_SCHEDULES = {"scratch": BENCHMARK_SCHEDULE, "pretrained": PRETRAINED_SCHEDULE}


@dataclass(frozen=True)
class BenchmarkSettings:
    """Where and how the matrix runs. ``regime``: how the detectors' backbones start (one of
    :data:`~dbbench.demo.models.REGIMES`); ``schedule``: by default the regime's (:data:`REGIME_SCHEDULES`)."""

    results_dir: Path = Path("results")
    work_dir: Path = Path("work_dirs/benchmark")
    spec: LongTailSpec = field(default_factory=LongTailSpec)
    schedule: Schedule | None = None
    device: str = "cpu"
    cache_dir: Path | None = None
    progress: bool = True
    threads: int = 2
    regime: str = "scratch"

    def __post_init__(self):
        if self.regime not in REGIMES:
            raise ValueError(f"regime={self.regime!r}; expected one of {REGIMES}")
        if self.schedule is None:
            object.__setattr__(self, "schedule", REGIME_SCHEDULES[self.regime])
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device={self.device!r}; expected 'cpu' or 'cuda'")
        check_int("threads", self.threads, minimum=1)


def demo_data(dataset: LongTailDataset, train_split: str) -> DemoData:
    """The demo runners' view of ``dataset``: ``train_split`` to train on, the test split to report on."""
    train_json, train_images = dataset.split(train_split)
    test_json, test_images = dataset.split("test")
    cats = dataset.categories
    return DemoData(
        name=f"{dataset.version}/{train_split}",
        train_json=train_json,
        train_images=train_images,
        test_json=test_json,
        test_images=test_images,
        class_names=dataset.class_names,
        category_ids=tuple(c["id"] for c in cats),
        groups=tuple(c["frequency"] for c in cats),
        image_size=dataset.spec.image_size,
        max_size=dataset.spec.image_size,
        stats_source=("--coco", str(train_json)),
    )


def _machine(device: str, threads: int) -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "torch_threads": threads,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _definition(method: Method, settings: BenchmarkSettings, weights_file: Path) -> str:
    """The definition hash of ``method``'s run: its row, the schedule, the protocol, and the class weights of
    ``weights_file`` where its loss reads them (a run trained with other weights is stale)."""
    from detbalance.losses import LOSS_TABLE
    from detbalance.weights import load_weights

    loss = method_loss(method)
    extra = {
        "schedule": asdict(settings.schedule),
        "loss": asdict(loss),
        "protocol": [LVIS_MAX_DETS, LVIS_SCORE_THRESHOLD],
    }
    if settings.regime != "scratch":  # runs recorded before the regimes keep their hash
        extra["regime"] = settings.regime
    if loss.loss is not None and LOSS_TABLE[loss.loss].statistic == "class weights":
        weights = load_weights(weights_file)
        extra["class_weights"] = [*weights.weights, weights.background_weight]
    if method.decouple is not None:  # stale with its stage 1's training or another stage-2 schedule
        extra["decouple"] = {
            "base": _definition(get_method(method.base), settings, weights_file),
            "schedule": asdict(decouple_schedule(settings.schedule)),
        }
    if method.calibrate is not None:  # stale with its base's training or another grid / fit metric
        extra["calibration"] = {
            "base": _definition(get_method(method.base), settings, weights_file),
            "grid": list(GAMMA_GRID),
            "metric": GAMMA_FIT_METRIC,
        }
    return definition_hash(method, extra)


def prepare_version(settings: BenchmarkSettings) -> tuple[LongTailDataset, Path]:
    """The dataset of ``settings`` (generated on first use) and its class weights file, written again on every call
    (a file of older code is not reused)."""
    from ..demo.pipeline import _weights

    dataset = get_longtail_dataset(settings.spec, cache_dir=settings.cache_dir)
    version_dir = Path(settings.work_dir) / dataset.version
    version_dir.mkdir(parents=True, exist_ok=True)
    _weights(demo_data(dataset, "train"), version_dir)
    return dataset, version_dir / "weights.json"


def run_matrix(settings: BenchmarkSettings, frameworks, methods, seeds, log=print) -> list[dict]:
    """Run every (framework, method, seed) not cached yet; returns the records of this call's jobs.

    Methods that :func:`~dbbench.benchmark.methods.pending` refuses are logged and skipped.
    """
    bad = [f for f in frameworks if f not in FRAMEWORKS]
    if bad or not frameworks:
        raise ValueError(f"frameworks={list(frameworks)}; expected one or more of {FRAMEWORKS}")
    methods = [get_method(m) if isinstance(m, str) else m for m in methods]
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"seeds={list(seeds)}; expected one or more integers >= 0")
    dataset, weights_file = prepare_version(settings)
    test_gt = json.loads(dataset.split("test")[0].read_text(encoding="utf-8"))
    groups = [c["frequency"] for c in dataset.categories]
    done = []

    def run_and_record(tag: str, framework: str, method: Method, seed: int, *, need_checkpoint: bool = False) -> None:
        definition = _definition(method, settings, weights_file)
        record = _run_one(
            settings, dataset, weights_file, test_gt, groups, framework, method, seed, definition, need_checkpoint
        )
        path = record_path(settings.results_dir, dataset.version, framework, method.key, seed, settings.regime)
        write_json(path, record, indent=1)
        write_json(
            Path(settings.results_dir) / "summary.json",
            load_summary(settings.results_dir, settings.spec),
            indent=1,
        )
        lvis = record["metrics"]
        log(
            f"{tag}: {record['seconds']:.0f} s; LVIS protocol AP {lvis['AP']:.1f} APr {lvis['APr']:.1f} "
            f"APc {lvis['APc']:.1f} APf {lvis['APf']:.1f}"
        )
        done.append(record)

    jobs = [(f, m, s) for f in frameworks for m in methods for s in seeds]
    regime = "" if settings.regime == "scratch" else f" ({settings.regime})"
    for i, (framework, method, seed) in enumerate(jobs, start=1):
        tag = f"[{i}/{len(jobs)}] {framework} {method.key} seed {seed}{regime}"
        reason = pending(method, framework, settings.regime)
        if reason is not None:
            log(f"{tag}: skipped ({reason})")
            continue
        definition = _definition(method, settings, weights_file)
        path = record_path(settings.results_dir, dataset.version, framework, method.key, seed, settings.regime)
        if path.is_file() and json.loads(path.read_text(encoding="utf-8")).get("definition") == definition:
            log(f"{tag}: cached ({path})")
            continue
        if method.calibrate is not None or method.decouple is not None:
            # the base's saved model first: a base run without one (recorded before the runners saved checkpoints)
            # trains again, and its record is rewritten from that training, so it describes the calibrated model
            base = get_method(method.base)
            if not _spec(settings, dataset, weights_file, framework, base, seed).checkpoint.is_file():
                base_tag = f"{tag}: base {base.key} (no saved model)"
                run_and_record(base_tag, framework, base, seed, need_checkpoint=True)
        run_and_record(tag, framework, method, seed)
    return done


def _runner(framework: str):
    if framework == "detectron2":
        from ..demo import detectron2_runner as runner
    else:
        from ..demo import mmdet_runner as runner
    return runner


def work_root(settings: BenchmarkSettings, dataset: LongTailDataset) -> Path:
    """The folder of the runs of ``settings``'s regime on ``dataset``: ``<work_dir>/<data version>``, and
    ``/<regime>`` below it for a regime other than ``"scratch"``."""
    root = Path(settings.work_dir) / dataset.version
    return root if settings.regime == "scratch" else root / settings.regime


def _spec(settings, dataset, weights_file, framework, method, seed):
    from ..demo.run import RunSpec

    work = work_root(settings, dataset) / framework / method.key / f"seed{seed}"
    stage1 = None
    if method.decouple is not None:
        stage1 = _spec(settings, dataset, weights_file, framework, get_method(method.base), seed).checkpoint
    return RunSpec(
        framework=framework,
        loss=method_loss(method),
        seed=seed,
        model=method.model,
        data=demo_data(dataset, method.train_split),
        schedule=settings.schedule if stage1 is None else decouple_schedule(settings.schedule),
        weights_file=weights_file,
        work_dir=work,
        score_threshold=LVIS_SCORE_THRESHOLD,
        max_detections=LVIS_MAX_DETS,
        device=settings.device,
        num_threads=settings.threads,
        sampler=method.sampler,
        rfs_threshold=method.rfs_threshold,
        mmdet_loss=method.mmdet_loss,
        regime=settings.regime,
        classifier=method.classifier,
        init_checkpoint=stage1,
        decouple=method.decouple,
        clip_grad_norm=method.clip_grad_norm,
    )


def _trained(settings, spec, definition: str, *, need_checkpoint: bool = False) -> dict:
    """The training marker of ``spec`` (``trained.json``), training first where it is missing or stale (another
    definition, no detections, or no checkpoint when ``need_checkpoint``)."""
    marker = spec.work_dir / "trained.json"
    trained = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else None
    if (
        trained is None
        or trained.get("definition") != definition
        or not spec.results_json.is_file()
        or (need_checkpoint and not spec.checkpoint.is_file())
    ):
        start = time.perf_counter()
        summary = _runner(spec.framework).train_and_predict(spec, progress=settings.progress)
        trained = {
            "definition": definition,
            "seconds": round(time.perf_counter() - start, 1),
            "train": summary,
            "machine": _machine(settings.device, settings.threads),
        }
        write_json(marker, trained, indent=1)
    return trained


def _run_one(
    settings, dataset, weights_file, test_gt, groups, framework, method, seed, definition, need_checkpoint=False
) -> dict:
    if method.calibrate is not None:
        from .posthoc import calibrate_row

        trained, results, extra = calibrate_row(settings, dataset, weights_file, framework, method, seed, definition)
    else:
        spec = _spec(settings, dataset, weights_file, framework, method, seed)
        trained = _trained(settings, spec, definition, need_checkpoint=need_checkpoint)
        results, extra = json.loads(spec.results_json.read_text(encoding="utf-8")), {}
        if method.decouple is not None:  # the stage-2 time is the record's; stage 1's is its base's record
            base = get_method(method.base)
            base_spec = _spec(settings, dataset, weights_file, framework, base, seed)
            stage1 = json.loads((base_spec.work_dir / "trained.json").read_text(encoding="utf-8"))
            extra = {
                "decouple": {
                    "base": base.key,
                    "trained": method.decouple,
                    "iters": spec.schedule.iters,
                    "stage1_iters": settings.schedule.iters,
                    "stage1_seconds": stage1["seconds"],
                }
            }
    views = evaluate_large_vocabulary(test_gt, results, groups)
    return {
        "framework": framework,
        "method": method.key,
        "regime": settings.regime,
        "model": method.model,
        "seed": seed,
        "data_version": dataset.version,
        "definition": definition,
        "seconds": trained["seconds"],
        "machine": trained["machine"],
        "train": trained["train"],
        "metrics": {k: views["lvis"][k] for k in ("AP", "APr", "APc", "APf")},
        "AP50": views["lvis"]["AP50"],
        "cap100": views["cap100"],
        "ap_fixed": views["ap_fixed"],
        "ap_pool": views["ap_pool"],
        "ece": views["ece"],
        "per_class_ap": views["per_class_ap"],
        "num_detections": views["num_lvis_detections"],
        **extra,
    }
