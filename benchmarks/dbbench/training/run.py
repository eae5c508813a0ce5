"""What one training run needs and produces, independent of the framework."""

from __future__ import annotations

import math
import os
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from detbalance.decouple import check_trained_part

from ..checks import check_int
from .data import RunData
from .losses import LossSetting
from .models import DEFAULT_MODEL, REGIMES, check_model_loss, get_model
from .schedule import Schedule

__all__ = [
    "RunSpec",
    "seed_everything",
    "NUM_THREADS",
    "PREDICT_SCORE_THRESHOLD",
    "SAMPLERS",
    "save_checkpoint",
    "training_summary",
]

#: torch intra-op threads of a run by default (the runs are sized for 2 CPU cores).
NUM_THREADS = 2
#: every run keeps test detections down to this score (at most 100 per image), in both frameworks; the report
#: evaluates them at the frameworks' default threshold and with all of them.
PREDICT_SCORE_THRESHOLD = 0.001
#: train samplers of a run: ``None`` (uniform over images, shuffled) or ``"rfs"`` (repeat-factor sampling:
#: detectron2's ``RepeatFactorTrainingSampler``, MMDetection's ``DBRepeatFactorSampler``, same statistics).
SAMPLERS = (None, "rfs")


@dataclass(frozen=True)
class RunSpec:
    """One (framework, loss, seed) training run on ``data`` with ``schedule``.

    ``weights_file`` is the detbalance weights file of the train split; ``work_dir`` receives the run's files,
    among them ``results.json``, the COCO detection results on the test split: those scoring at least
    ``score_threshold``, at most ``max_detections`` per image. ``device``: ``"cpu"`` or ``"cuda"``;
    ``num_threads``: torch intra-op threads (1 runs faster than 2 on a machine busy with other jobs).
    ``sampler``: one of :data:`SAMPLERS`; ``rfs_threshold``: the repeat threshold ``t`` > 0, given exactly when
    ``sampler="rfs"``. ``mmdet_loss``: MMDetection's own registered box-classifier loss instead of its
    cross-entropy (a key of :data:`dbbench.training.mmdet_runner.MMDET_LOSSES`; MMDetection runs with ``loss``
    the baseline only). The trained weights are saved to ``checkpoint`` (``work_dir/model_final.pth``).
    ``model``: the detector, a key of :data:`dbbench.training.models.MODELS` whose head takes ``loss``
    (:func:`~dbbench.training.models.check_model_loss`); ``mmdet_loss`` needs a box head. ``regime``: how its
    backbone starts, one of :data:`~dbbench.training.models.REGIMES` (``"pretrained"``: the model's ImageNet-
    pretrained config, fine-tuned). ``classifier``: the box classifier layer, one of :data:`CLASSIFIERS`
    (``"normed"``: the normalised linear classifier at temperature 20 the Seesaw paper trains with).
    ``decouple``: stage 2 of decoupled training (:mod:`detbalance.decouple`): ``"classifier"`` or
    ``"classifier+regressor"`` are trained, re-initialised classifier, everything else frozen as the model
    ``init_checkpoint`` (the runner's own checkpoint of a stage-1 run) has it. ``clip_grad_norm``: the largest
    L2 norm of all the model's gradients together before each step (both frameworks clip the whole model's
    gradient, as MMDetection's ``optim_wrapper.clip_grad``); None: no clipping.
    """

    framework: str
    loss: LossSetting
    seed: int
    data: RunData
    schedule: Schedule
    weights_file: Path
    work_dir: Path
    score_threshold: float = PREDICT_SCORE_THRESHOLD
    max_detections: int = 100
    device: str = "cpu"
    num_threads: int = NUM_THREADS
    sampler: str | None = None
    rfs_threshold: float | None = None
    mmdet_loss: str | None = None
    model: str = DEFAULT_MODEL
    regime: str = "scratch"
    classifier: str = "linear"
    init_checkpoint: Path | None = None
    decouple: str | None = None
    clip_grad_norm: float | None = None

    def __post_init__(self):
        check_model_loss(self.model, self.loss)
        if self.regime not in REGIMES:
            raise ValueError(f"regime={self.regime!r}; expected one of {REGIMES}")
        if (self.decouple is None) != (self.init_checkpoint is None):
            raise ValueError(
                f"decouple={self.decouple!r} with init_checkpoint={self.init_checkpoint!r}; expected both (stage 2 "
                "of decoupled training from that checkpoint) or neither"
            )
        if self.decouple is not None:
            check_trained_part(self.decouple, "decouple")
            if get_model(self.model).head != "box":
                raise ValueError(f"decouple={self.decouple!r} with model={self.model!r}; expected a box head")
        if self.classifier not in CLASSIFIERS:
            raise ValueError(f"classifier={self.classifier!r}; expected one of {CLASSIFIERS}")
        if self.classifier == "normed" and (
            get_model(self.model).head != "box" or (self.loss.loss is None and self.mmdet_loss is None)
        ):
            raise ValueError(
                f"classifier='normed' with model={self.model!r} and loss {self.loss.key!r}; expected a box head "
                "trained with a detbalance loss or MMDetection's own (the framework's CE head keeps its Linear)"
            )
        c = self.clip_grad_norm
        if c is not None and (
            isinstance(c, bool) or not isinstance(c, (int, float)) or not (math.isfinite(c) and c > 0)
        ):
            raise ValueError(f"clip_grad_norm={c!r}; expected None or a number > 0")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device={self.device!r}; expected 'cpu' or 'cuda'")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' but torch sees no CUDA device; expected device='cpu' on this machine")
        check_int("num_threads", self.num_threads, minimum=1)
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler={self.sampler!r}; expected one of {list(SAMPLERS)}")
        if self.sampler == "rfs":
            t = self.rfs_threshold
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not (math.isfinite(t) and t > 0):
                raise ValueError(f"rfs_threshold={t!r}; expected a number > 0 with sampler='rfs'")
        elif self.rfs_threshold is not None:
            raise ValueError(
                f"rfs_threshold={self.rfs_threshold!r} given with sampler={self.sampler!r}; expected "
                "None (or sampler='rfs')"
            )
        if self.mmdet_loss is not None:
            if self.framework != "mmdet" or self.loss.loss is not None:
                raise ValueError(
                    f"mmdet_loss={self.mmdet_loss!r} with framework={self.framework!r} and loss "
                    f"{self.loss.key!r}; expected framework='mmdet' and the baseline loss 'ce'"
                )
            if not isinstance(self.mmdet_loss, str) or not self.mmdet_loss:
                raise ValueError(f"mmdet_loss={self.mmdet_loss!r}; expected the name of an MMDetection loss")
            if get_model(self.model).head != "box":
                raise ValueError(
                    f"mmdet_loss={self.mmdet_loss!r} with model={self.model!r}; expected a model "
                    "with a box head (MMDetection's box-classifier losses)"
                )

    @property
    def name(self) -> str:
        loss = self.loss.key if self.mmdet_loss is None else f"mmdet:{self.mmdet_loss}"
        model = "" if self.model == DEFAULT_MODEL else f"{self.model}:"
        normed = "+normed" if self.classifier == "normed" else ""
        return f"{self.framework}/{model}{loss}{normed}{'+rfs' if self.sampler == 'rfs' else ''}/seed{self.seed}"

    @property
    def results_json(self) -> Path:
        return self.work_dir / "results.json"

    @property
    def checkpoint(self) -> Path:
        """The trained model's weights (the framework's own checkpoint format)."""
        return self.work_dir / "model_final.pth"


#: The box classifier layers a run can train: ``"linear"`` (the frameworks' own), ``"normed"`` (NormedLinear).
CLASSIFIERS = ("linear", "normed")


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (the data loaders run in the main process, so this covers augmentation)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(path: Path, checkpoint: dict) -> Path:
    """``torch.save`` ``checkpoint`` to ``path`` atomically (a temporary file in the same folder, then
    ``os.replace``): a checkpoint that exists is complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def training_summary(losses: list[float], num_detections: int, predict_seconds: float) -> dict:
    """What a runner returns for a run: the first loss, the mean of the last 50 (``final_loss``), the iterations,
    the number of test detections kept and the seconds predicting the test split took (the rest of a run's time is
    building, training and saving)."""
    recent = losses[-50:]
    return {
        "final_loss": sum(recent) / len(recent),
        "first_loss": losses[0],
        "iterations": len(losses),
        "num_detections": num_detections,
        "predict_seconds": round(predict_seconds, 1),
    }
