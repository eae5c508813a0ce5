"""What one training run of the demo needs and produces, independent of the framework."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .catalog import DemoLoss
from .data import DemoData
from .schedule import Schedule

__all__ = ["RunSpec", "seed_everything", "NUM_THREADS", "PREDICT_SCORE_THRESHOLD"]

#: torch intra-op threads of every run (the demo is sized for 2 CPU cores).
NUM_THREADS = 2
#: every run keeps test detections down to this score (at most 100 per image), in both frameworks; the report
#: evaluates them at the frameworks' default threshold and with all of them.
PREDICT_SCORE_THRESHOLD = 0.001


@dataclass(frozen=True)
class RunSpec:
    """One (framework, loss, seed) training run on ``data`` with ``schedule``.

    ``weights_file`` is the detbalance weights file of the train split; ``work_dir`` receives the run's files,
    among them ``results.json``, the COCO detection results on the test split: those scoring at least
    ``score_threshold``, at most ``max_detections`` per image. ``device``: ``"cpu"`` or ``"cuda"``;
    ``num_threads``: torch intra-op threads (1 runs faster than 2 on a machine busy with other jobs).
    """

    framework: str
    loss: DemoLoss
    seed: int
    data: DemoData
    schedule: Schedule
    weights_file: Path
    work_dir: Path
    score_threshold: float = PREDICT_SCORE_THRESHOLD
    max_detections: int = 100
    device: str = "cpu"
    num_threads: int = NUM_THREADS

    def __post_init__(self):
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device={self.device!r}; expected 'cpu' or 'cuda'")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' but torch sees no CUDA device; expected device='cpu' on this machine")
        if isinstance(self.num_threads, bool) or not isinstance(self.num_threads, int) or self.num_threads < 1:
            raise ValueError(f"num_threads={self.num_threads!r}; expected an integer >= 1")

    @property
    def name(self) -> str:
        return f"{self.framework}/{self.loss.key}/seed{self.seed}"

    @property
    def results_json(self) -> Path:
        return self.work_dir / "results.json"


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (the data loaders run in the main process, so this covers augmentation)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
