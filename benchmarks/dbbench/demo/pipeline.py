"""The demo from data to table: data set, weights file, one training run per (framework, method, seed), report.

The methods are rows of the experiments' method table (:data:`dbbench.benchmark.methods.METHODS`, the ones
:mod:`.methods` accepts); their runs are made and trained as the benchmark's are, by
:func:`~dbbench.benchmark.jobs.method_spec` and :func:`~dbbench.benchmark.jobs.run_jobs`, here on the demo's data
with the demo's schedule and test detections.

Every number printed or written comes from the runs of this invocation: each run writes its COCO results json,
the report evaluates those files against the test split (``detbalance.evaluation.compare``).

Each run keeps detections down to score 0.001. They are evaluated twice:

- at :data:`DEFAULT_SCORE_THRESHOLD` (0.05), the default test threshold of detectron2 (``SCORE_THRESH_TEST``) and
  MMDetection (``rcnn.score_thr``): what a user deploying the model with the framework's defaults gets. A loss
  that leaves rare classes with low scores loses their boxes here. This is the main table.
- with every kept detection (the LVIS protocol): AP then measures the ranking of each class's boxes alone, and
  low but well-ranked rare-class scores still count.
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..benchmark.jobs import Job, JobSetup, method_spec, run_jobs
from ..benchmark.methods import BASELINE, ORACLE, Method, get_method, method_loss
from ..data import SyntheticSpec
from ..training.data import RunData
from ..training.files import write_json, write_text
from ..training.run import NUM_THREADS, PREDICT_SCORE_THRESHOLD
from ..training.runners import FRAMEWORKS
from ..training.schedule import Schedule
from ..training.weights_file import WEIGHT_SCHEME, write_weights_file
from .datasets import folder_data, synthetic_data
from .methods import REGIME, check_demo_method

__all__ = ["DemoSettings", "DEFAULT_SCORE_THRESHOLD", "demo_jobs", "run_demo"]

#: test score threshold of the main table: detectron2's ``ROI_HEADS.SCORE_THRESH_TEST`` and MMDetection's
#: ``test_cfg.rcnn.score_thr`` default.
DEFAULT_SCORE_THRESHOLD = 0.05


@dataclass(frozen=True)
class DemoSettings:
    """Everything one demo invocation does (the command line maps onto this).

    ``methods``: rows of the method table the demo runs (:func:`~.methods.check_demo_method`), the baseline
    first; ``oracle``: also the oracle row, CE on the class-balanced synthetic train set of the same size.
    """

    frameworks: tuple[str, ...]
    methods: tuple[Method, ...]
    seeds: tuple[int, ...]
    schedule: Schedule
    out_dir: Path
    synthetic: SyntheticSpec = field(default_factory=SyntheticSpec)
    data_path: Path | None = None
    oracle: bool = False
    cache_dir: Path | None = None
    progress: bool = True

    def __post_init__(self):
        bad = [f for f in self.frameworks if f not in FRAMEWORKS]
        if bad or not self.frameworks:
            raise ValueError(f"framework {bad[0] if bad else '(none)'!r}; expected one or more of {FRAMEWORKS}")
        if not self.methods or self.methods[0].key != BASELINE:
            raise ValueError(
                f"methods {[m.key for m in self.methods]}; expected a list starting with the baseline {BASELINE!r}"
            )
        for method in self.methods:
            check_demo_method(method, self.frameworks)
        if not self.seeds:
            raise ValueError("seeds is empty; expected at least one seed")
        if self.oracle and self.data_path is not None:
            raise ValueError(
                "--oracle needs the synthetic data (a balanced train set of the same size is generated); "
                f"it cannot be combined with --data {self.data_path}"
            )


def demo_jobs(settings: DemoSettings, splits: dict[str, RunData], weights_file: Path) -> list[Job]:
    """The runs of ``settings``, per framework its methods then the oracle (with ``settings.oracle``), each for
    every seed: their data from ``splits`` (train split -> data: ``"train"``, and ``"train_balanced"`` for the
    oracle), their files under ``<out_dir>/runs``."""
    setup = JobSetup(
        splits=splits,
        schedule=settings.schedule,
        weights_file=weights_file,
        work_root=Path(settings.out_dir) / "runs",
        regime=REGIME,
    )
    methods = [*settings.methods, get_method(ORACLE)] if settings.oracle else list(settings.methods)
    return [
        Job(method, method_spec(setup, framework, method, seed))
        for framework in settings.frameworks
        for method in methods
        for seed in settings.seeds
    ]


def run_demo(settings: DemoSettings, log=print) -> dict:
    """Run the demo; returns the json-ready summary that is also written to ``out_dir/results.json``."""
    from detbalance.evaluation import compare, format_table, plot_report

    torch.set_num_threads(NUM_THREADS)
    out = Path(settings.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if settings.data_path is None:
        data = synthetic_data(settings.synthetic, settings.cache_dir)
    else:
        data = folder_data(settings.data_path, out)
    splits = {"train": data}
    if settings.oracle:  # the oracle row's train split: the class-balanced set of the same size, same test split
        balanced = SyntheticSpec(**{**asdict(settings.synthetic), "balanced": True})
        splits["train_balanced"] = synthetic_data(balanced, settings.cache_dir)
    log(f"data: {data.name}: {data.num_classes} classes, train {data.train_json}, test {data.test_json}")
    weights_file = write_weights_file(data, out)
    log((out / "weights.txt").read_text().rstrip())
    log(f"weights file: {weights_file}")

    jobs = demo_jobs(settings, splits, weights_file)
    runs, results = [], {}
    for job, trained in zip(jobs, run_jobs(jobs, progress=settings.progress, log=log), strict=True):
        framework, method = job.spec.framework, job.method.key
        runs.append(
            {
                "framework": framework,
                "method": method,
                "seed": job.spec.seed,
                "seconds": trained["seconds"],
                "results": str(job.spec.results_json),
                **trained["train"],
            }
        )
        results.setdefault(framework, {}).setdefault(method, []).append(job.spec.results_json)

    reports, all_detection_reports = {}, {}
    for framework, by_method in results.items():
        report, all_detections = (
            compare(
                data.test_json,
                by_method,
                baseline=BASELINE,
                oracle=ORACLE if ORACLE in by_method else None,
                train_json=data.train_json,
                groups=data.groups,
                score_threshold=threshold,
            )
            for threshold in (DEFAULT_SCORE_THRESHOLD, 0.0)
        )
        plot = plot_report(
            report,
            out / f"{framework}_ap.png",
            title=f"{framework}: per-class AP (score >= {DEFAULT_SCORE_THRESHOLD:g}), {data.name}, "
            f"{settings.schedule.iters} iterations, seeds {list(settings.seeds)}",
        )
        table, table_all = format_table(report, "ap"), format_table(all_detections, "ap")
        write_text(out / f"{framework}_table.txt", table + "\n")
        write_text(out / f"{framework}_table_all_detections.txt", table_all + "\n")
        log(
            f"\n{framework} — per-class AP on the test split at the frameworks' default test score threshold "
            f"{DEFAULT_SCORE_THRESHOLD:g} (mean over seeds {list(settings.seeds)}; delta vs {BASELINE}):\n{table}\n"
            f"\n{framework} — the same runs, every detection kept (score >= "
            f"{PREDICT_SCORE_THRESHOLD:g}; ranking only):\n{table_all}\n"
            f"plot: {plot}"
        )
        reports[framework] = report.to_dict()
        all_detection_reports[framework] = all_detections.to_dict()

    summary = {
        "data": {
            "name": data.name,
            "train_json": str(data.train_json),
            "test_json": str(data.test_json),
            "class_names": list(data.class_names),
            "groups": list(data.groups),
            "synthetic": asdict(settings.synthetic) if settings.data_path is None else None,
        },
        "weights_file": str(weights_file),
        "weight_scheme": WEIGHT_SCHEME,
        "schedule": {
            **asdict(settings.schedule),
            "steps": list(settings.schedule.steps),
            "warmup": settings.schedule.effective_warmup,
        },
        "methods": {
            job.method.key: {**asdict(job.method), "loss_setting": asdict(method_loss(job.method))} for job in jobs
        },
        "seeds": list(settings.seeds),
        "frameworks": list(settings.frameworks),
        "oracle": settings.oracle,
        "runs": runs,
        "reports": reports,
        "reports_all_detections": all_detection_reports,
        "seconds": round(time.perf_counter() - start, 1),
        "machine": {"torch_threads": NUM_THREADS, "python": platform.python_version(), "torch": torch.__version__},
    }
    write_json(out / "results.json", summary, indent=1)
    log(f"\ntotal {summary['seconds']:.0f} s; wrote {out / 'results.json'}")
    return summary
