"""The building blocks of the benchmark's runs: settings, the data set and its weights file, one run's definition
hash, its :class:`~dbbench.training.run.RunSpec` and work folder (:func:`~.jobs.method_spec` with the benchmark's
:class:`~.jobs.JobSetup`), training once (cached in ``trained.json``) and the validation metrics of a trained model
(cached in ``val_results.json``).

:mod:`.runner` runs the matrix with them; :mod:`.posthoc`, :mod:`.tuning` and :mod:`.schedule_tuning` train and
re-predict their candidates with them. A run's framework is imported only when the run starts.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from detbalance.evaluation.lvis_protocol import LVIS_MAX_DETS, LVIS_SCORE_THRESHOLD, evaluate_large_vocabulary

from ..checks import check_int
from ..data.longtail import LongTailDataset, LongTailSpec, get_longtail_dataset
from ..training.data import RunData
from ..training.files import write_json
from ..training.models import REGIMES
from ..training.run import RunSpec
from ..training.runners import get_runner
from ..training.schedule import Schedule
from ..training.weights_file import write_weights_file
from .jobs import JobSetup, fresh_marker, method_spec, train
from .methods import GAMMA_FIT_METRIC, GAMMA_GRID, Method, decouple_schedule, definition_hash, get_method, method_loss

__all__ = [
    "BenchmarkSettings",
    "BENCHMARK_SCHEDULE",
    "PRETRAINED_SCHEDULE",
    "REGIME_SCHEDULES",
    "split_data",
    "run_definition",
    "prepare_version",
    "work_root",
    "job_setup",
    "run_spec",
    "train_once",
    "validate",
    "train_and_validate",
    "format_metric",
]

#: The schedule of every benchmark run from scratch (the many-class probe's: about 6 minutes on 2 idle cores).
BENCHMARK_SCHEDULE = Schedule(iters=2000)
#: The schedule of each regime (:data:`~dbbench.training.models.REGIMES`): from scratch :data:`BENCHMARK_SCHEDULE`;
#: fine-tuning the ImageNet-pretrained backbone :data:`PRETRAINED_SCHEDULE` (chosen on the validation split,
#: ``results/tuning/pretrained_schedule.json``).
PRETRAINED_SCHEDULE = Schedule(iters=2000)
REGIME_SCHEDULES = {"scratch": BENCHMARK_SCHEDULE, "pretrained": PRETRAINED_SCHEDULE}


@dataclass(frozen=True)
class BenchmarkSettings:
    """Where and how the matrix runs. ``regime``: how the detectors' backbones start (one of
    :data:`~dbbench.training.models.REGIMES`); ``schedule``: by default the regime's (:data:`REGIME_SCHEDULES`)."""

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


def split_data(dataset: LongTailDataset, train_split: str) -> RunData:
    """The runners' view of ``dataset``: ``train_split`` to train on, the test split to report on."""
    train_json, train_images = dataset.split(train_split)
    test_json, test_images = dataset.split("test")
    cats = dataset.categories
    return RunData(
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


def run_definition(method: Method, settings: BenchmarkSettings, weights_file: Path) -> str:
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
            "base": run_definition(get_method(method.base), settings, weights_file),
            "schedule": asdict(decouple_schedule(settings.schedule, method.stage2_fraction)),
        }
    if method.calibrate is not None:  # stale with its base's training or another grid / fit metric
        extra["calibration"] = {
            "base": run_definition(get_method(method.base), settings, weights_file),
            "grid": list(GAMMA_GRID),
            "metric": GAMMA_FIT_METRIC,
        }
    return definition_hash(method, extra)


def prepare_version(settings: BenchmarkSettings) -> tuple[LongTailDataset, Path]:
    """The dataset of ``settings`` (generated on first use) and its class weights file, written again on every call
    (a file of older code is not reused)."""
    dataset = get_longtail_dataset(settings.spec, cache_dir=settings.cache_dir)
    version_dir = Path(settings.work_dir) / dataset.version
    version_dir.mkdir(parents=True, exist_ok=True)
    write_weights_file(split_data(dataset, "train"), version_dir)
    return dataset, version_dir / "weights.json"


def work_root(settings: BenchmarkSettings, dataset: LongTailDataset) -> Path:
    """The folder of the runs of ``settings``'s regime on ``dataset``: ``<work_dir>/<data version>``, and
    ``/<regime>`` below it for a regime other than ``"scratch"``."""
    root = Path(settings.work_dir) / dataset.version
    return root if settings.regime == "scratch" else root / settings.regime


def job_setup(settings: BenchmarkSettings, dataset: LongTailDataset, weights_file: Path) -> JobSetup:
    """What the runs of ``settings`` on ``dataset`` share: its train splits (``train``, ``train_balanced``) with its
    test split, the schedule, ``weights_file``, :func:`work_root`, the LVIS protocol's detections, the regime, device
    and threads."""
    return JobSetup(
        splits={split: split_data(dataset, split) for split in ("train", "train_balanced")},
        schedule=settings.schedule,
        weights_file=weights_file,
        work_root=work_root(settings, dataset),
        regime=settings.regime,
        score_threshold=LVIS_SCORE_THRESHOLD,
        max_detections=LVIS_MAX_DETS,
        device=settings.device,
        num_threads=settings.threads,
    )


def run_spec(
    settings: BenchmarkSettings, dataset: LongTailDataset, weights_file: Path, framework: str, method: Method, seed: int
) -> RunSpec:
    """The run of ``method`` (seed ``seed``) in ``framework`` (:func:`~.jobs.method_spec` of :func:`job_setup`): its
    work folder ``<work_root>/<framework>/<method>/seed<n>``, its data split, schedule, loss and protocol; a decoupled
    row starts from its base's checkpoint with the stage-2 schedule."""
    return method_spec(job_setup(settings, dataset, weights_file), framework, method, seed)


def train_once(settings: BenchmarkSettings, spec: RunSpec, definition: str, *, need_checkpoint: bool = False) -> dict:
    """The training marker of ``spec`` (``trained.json``, :func:`~.jobs.fresh_marker`), training first
    (:func:`~.jobs.train`) where it is missing or stale (another definition, no detections, or no checkpoint when
    ``need_checkpoint``)."""
    trained = fresh_marker(spec, definition, need_checkpoint=need_checkpoint)
    return trained if trained is not None else train(spec, definition, progress=settings.progress)


def validate(settings: BenchmarkSettings, dataset: LongTailDataset, spec: RunSpec, definition: str) -> dict:
    """The LVIS-protocol metrics (``AP``, ``APr``, ``APc``, ``APf``, ...) of ``spec``'s trained model on the
    validation split; its detections are cached in ``<work>/val_results.json`` beside the test detections, and
    predicted again only when that file holds another definition."""
    val_json, val_images = dataset.split("val")
    cache = spec.work_dir / "val_results.json"
    marker = json.loads(cache.read_text(encoding="utf-8")) if cache.is_file() else None
    if marker is None or marker.get("definition") != definition:
        detections = get_runner(spec.framework).predict(spec, val_json, val_images, progress=settings.progress)
        marker = {"definition": definition, "detections": detections}
        write_json(cache, marker)
    val_gt = json.loads(val_json.read_text(encoding="utf-8"))
    return evaluate_large_vocabulary(val_gt, marker["detections"], [c["frequency"] for c in dataset.categories])["lvis"]


def train_and_validate(
    settings: BenchmarkSettings, dataset: LongTailDataset, spec: RunSpec, definition: str
) -> tuple[float, dict]:
    """Train ``spec`` once (:func:`train_once`, keeping its checkpoint) and return its training seconds and its
    ``AP``, ``APr``, ``APc``, ``APf`` on the validation split (:func:`validate`; ``None`` for a group without AP):
    a candidate of a tuning grid."""
    trained = train_once(settings, spec, definition, need_checkpoint=True)
    lvis = validate(settings, dataset, spec, definition)
    return trained["seconds"], {k: None if math.isnan(lvis[k]) else lvis[k] for k in ("AP", "APr", "APc", "APf")}


def format_metric(value: float | None) -> str:
    """A metric of :func:`train_and_validate` for a log line: one decimal, ``n/a`` for ``None``."""
    return "n/a" if value is None else f"{value:.1f}"
