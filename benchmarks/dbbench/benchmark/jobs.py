"""The one job loop of the experiments: a row of the method table becomes a run, and every run trains the same way.

A job is one (framework, method row, seed) and the :class:`~dbbench.training.run.RunSpec` that trains it.
:func:`method_spec` is the one place a row becomes a run: the data of its train split, its loss setting, model,
sampler, classifier, gradient clipping and MMDetection's own loss, the regime, the test protocol, and for a
decoupled row the stage-2 schedule from its base's checkpoint. :func:`run_jobs` trains jobs one after the other
and logs one line per run; :func:`train` trains one through its framework's runner and writes its marker
``trained.json`` (definition hash, seconds, the runner's summary, the machine), which :func:`fresh_marker` reads
back. The demo (:func:`dbbench.demo.pipeline.run_demo`) and the benchmark matrix
(:func:`dbbench.benchmark.runner.run_matrix`) both build their runs with :func:`method_spec` and train them with
:func:`run_jobs`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..training.data import RunData
from ..training.files import write_json
from ..training.run import NUM_THREADS, PREDICT_SCORE_THRESHOLD, RunSpec
from ..training.runners import get_runner
from ..training.schedule import Schedule
from .methods import Method, decouple_schedule, get_method, method_loss

__all__ = ["JobSetup", "Job", "MARKER", "method_spec", "run_name", "machine_info", "train", "fresh_marker", "run_jobs"]

#: The file in a run's work folder that says it was trained, and how (:func:`train`).
MARKER = "trained.json"


@dataclass(frozen=True)
class JobSetup:
    """What the runs of one invocation share.

    ``splits``: the data of each train split a row may name (``Method.train_split``: ``"train"``, and
    ``"train_balanced"`` for the oracle), each with the same test split. ``weights_file``: the class weights file of
    the train split. A run's files go to ``<work_root>/<framework>/<method>/seed<n>``. ``score_threshold`` and
    ``max_detections``: the test detections each run keeps (the evaluation protocol). ``regime``, ``device`` and
    ``num_threads``: as :class:`~dbbench.training.run.RunSpec` takes them.
    """

    splits: dict[str, RunData]
    schedule: Schedule
    weights_file: Path
    work_root: Path
    regime: str = "scratch"
    score_threshold: float = PREDICT_SCORE_THRESHOLD
    max_detections: int = 100
    device: str = "cpu"
    num_threads: int = NUM_THREADS


def method_spec(setup: JobSetup, framework: str, method: Method, seed: int) -> RunSpec:
    """The run of row ``method`` with seed ``seed`` in ``framework``; a decoupled row starts from its base's
    checkpoint (the base's run in the same setup) with :func:`~.methods.decouple_schedule` of the schedule at
    the row's :attr:`~.methods.Method.stage2_fraction`."""
    if method.train_split not in setup.splits:
        raise ValueError(
            f"method {method.key!r} trains on split {method.train_split!r}; expected one of {sorted(setup.splits)}"
        )
    stage1 = None
    if method.decouple is not None:
        stage1 = method_spec(setup, framework, get_method(method.base), seed).checkpoint
    return RunSpec(
        framework=framework,
        loss=method_loss(method),
        seed=seed,
        model=method.model,
        data=setup.splits[method.train_split],
        schedule=setup.schedule if stage1 is None else decouple_schedule(setup.schedule, method.stage2_fraction),
        weights_file=setup.weights_file,
        work_dir=Path(setup.work_root) / framework / method.key / f"seed{seed}",
        score_threshold=setup.score_threshold,
        max_detections=setup.max_detections,
        device=setup.device,
        num_threads=setup.num_threads,
        sampler=method.sampler,
        rfs_threshold=method.rfs_threshold,
        mmdet_loss=method.mmdet_loss,
        regime=setup.regime,
        classifier=method.classifier,
        init_checkpoint=stage1,
        decouple=method.decouple,
        clip_grad_norm=method.clip_grad_norm,
    )


def run_name(framework: str, method: Method, seed: int, regime: str) -> str:
    """How the logs name a run: ``"<framework> <method> seed <n>"``, `` (<regime>)`` after it unless scratch."""
    return f"{framework} {method.key} seed {seed}" + ("" if regime == "scratch" else f" ({regime})")


@dataclass(frozen=True)
class Job:
    """One run to train: row ``method`` as ``spec`` says (:func:`method_spec`), and the run's definition hash
    (the benchmark's :func:`~.runs.run_definition`; ``None`` where the caller keeps none), written to its marker."""

    method: Method
    spec: RunSpec
    definition: str | None = None

    @property
    def name(self) -> str:
        """The run's :func:`run_name`."""
        return run_name(self.spec.framework, self.method, self.spec.seed, self.spec.regime)


def machine_info(device: str, threads: int) -> dict:
    """The machine a run ran on: platform, CPUs, Python and torch versions, device, threads (and the GPU's name)."""
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


def train(spec: RunSpec, definition: str | None, *, progress: bool) -> dict:
    """Train ``spec`` through its framework's runner (test detections to ``spec.results_json``, the model to
    ``spec.checkpoint``) and write its marker ``<work_dir>/trained.json``: ``definition``, the seconds the runner
    took, its summary (``train``: first and final loss, iterations, detections) and the machine; returns it."""
    start = time.perf_counter()
    summary = get_runner(spec.framework).train_and_predict(spec, progress=progress)
    trained = {
        "definition": definition,
        "seconds": round(time.perf_counter() - start, 1),
        "train": summary,
        "machine": machine_info(spec.device, spec.num_threads),
    }
    write_json(spec.work_dir / MARKER, trained, indent=1)
    return trained


def fresh_marker(spec: RunSpec, definition: str, *, need_checkpoint: bool = False) -> dict | None:
    """``spec``'s marker where its training is current: the marker holds ``definition``, the test detections exist,
    and so does the checkpoint when ``need_checkpoint``; else ``None`` (the run trains again)."""
    marker = spec.work_dir / MARKER
    trained = json.loads(marker.read_text(encoding="utf-8")) if marker.is_file() else None
    if (
        trained is None
        or trained.get("definition") != definition
        or not spec.results_json.is_file()
        or (need_checkpoint and not spec.checkpoint.is_file())
    ):
        return None
    return trained


def run_jobs(jobs: Sequence[Job], *, progress: bool, log=print) -> list[dict]:
    """Train every job in order (:func:`train`), logging one line per run: ``[i/n] <framework> <method> seed <n>:
    <seconds> s, loss <first> -> <final>, <n> detections``; returns their markers in the jobs' order."""
    markers = []
    for i, job in enumerate(jobs, start=1):
        trained = train(job.spec, job.definition, progress=progress)
        summary = trained["train"]
        log(
            f"[{i}/{len(jobs)}] {job.name}: {trained['seconds']:.0f} s, loss {summary['first_loss']:.2f} -> "
            f"{summary['final_loss']:.2f}, {summary['num_detections']} detections"
        )
        markers.append(trained)
    return markers
