"""The demo from data to table: data set, weights file, one training run per (framework, loss, seed), report.

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

from ..data import SyntheticSpec
from .catalog import BASELINE, DEMO_LOSSES, ORACLE, DemoLoss
from .datasets import folder_data, synthetic_data
from .files import write_json, write_text
from .run import NUM_THREADS, PREDICT_SCORE_THRESHOLD, RunSpec
from .runners import FRAMEWORKS, get_runner
from .schedule import Schedule
from .weights_file import WEIGHT_SCHEME, write_weights_file

__all__ = ["DemoSettings", "DEFAULT_SCORE_THRESHOLD", "run_demo"]

#: test score threshold of the main table: detectron2's ``ROI_HEADS.SCORE_THRESH_TEST`` and MMDetection's
#: ``test_cfg.rcnn.score_thr`` default.
DEFAULT_SCORE_THRESHOLD = 0.05


@dataclass(frozen=True)
class DemoSettings:
    """Everything one demo invocation does (the command line maps onto this)."""

    frameworks: tuple[str, ...]
    losses: tuple[DemoLoss, ...]
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
        if not self.losses or self.losses[0].key != BASELINE:
            raise ValueError(
                f"losses must start with the baseline {BASELINE!r}, got {[loss.key for loss in self.losses]}"
            )
        if not self.seeds:
            raise ValueError("seeds is empty; expected at least one seed")
        if self.oracle and self.data_path is not None:
            raise ValueError(
                "--oracle needs the synthetic data (a balanced train set of the same size is generated); "
                f"it cannot be combined with --data {self.data_path}"
            )


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
    oracle_data = None
    if settings.oracle:
        balanced = SyntheticSpec(**{**asdict(settings.synthetic), "balanced": True})
        oracle_data = synthetic_data(balanced, settings.cache_dir)
    log(f"data: {data.name}: {data.num_classes} classes, train {data.train_json}, test {data.test_json}")
    weights_file = write_weights_file(data, out)
    log((out / "weights.txt").read_text().rstrip())
    log(f"weights file: {weights_file}")

    jobs = []
    for framework in settings.frameworks:
        for loss in settings.losses:
            for seed in settings.seeds:
                jobs.append((framework, loss.key, loss, seed, data))
        if oracle_data is not None:
            for seed in settings.seeds:
                jobs.append((framework, ORACLE, DEMO_LOSSES[BASELINE], seed, oracle_data))
    runs, results = [], {}
    for i, (framework, method, loss, seed, run_data) in enumerate(jobs, start=1):
        spec = RunSpec(
            framework=framework,
            loss=loss,
            seed=seed,
            data=run_data,
            schedule=settings.schedule,
            weights_file=weights_file,
            work_dir=out / "runs" / framework / method / f"seed{seed}",
        )
        t0 = time.perf_counter()
        summary = get_runner(framework).train_and_predict(spec, progress=settings.progress)
        seconds = time.perf_counter() - t0
        log(
            f"[{i}/{len(jobs)}] {framework} {method} seed {seed}: {seconds:.0f} s, "
            f"loss {summary['first_loss']:.2f} -> {summary['final_loss']:.2f}, {summary['num_detections']} detections"
        )
        runs.append(
            {
                "framework": framework,
                "method": method,
                "seed": seed,
                "seconds": round(seconds, 1),
                "results": str(spec.results_json),
                **summary,
            }
        )
        results.setdefault(framework, {}).setdefault(method, []).append(spec.results_json)

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
        "losses": {loss.key: {"label": loss.label, "loss": loss.loss, "hyper": loss.hyper} for loss in settings.losses},
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
