"""The method table of the experiments (:data:`METHODS`): the rows the benchmark matrix runs and the demo
(:mod:`dbbench.demo`) lets a user name; a method added later is one more row.

A method says what one training run changes with respect to the framework's own softmax cross-entropy
(``ce``) on the default Faster R-CNN: the model (``model``, a key of :data:`dbbench.training.models.MODELS`: the
head rows train RetinaNet, and in MMDetection FCOS and ATSS, with their own focal loss or Equalized Focal Loss
and Cascade R-CNN with CE or the balanced losses), the classification loss (a key of
:func:`dbbench.training.models.loss_setting`, trained through the runners of :mod:`dbbench.training`; a loss the
model's head cannot train is refused when the row is made), the train split (``train_balanced`` for the oracle),
the sampler (``rfs``: repeat-factor sampling; the row :func:`rfs_variant` makes of :data:`RFS_TUNED_BASE` at the
threshold chosen on the validation split, :mod:`dbbench.benchmark.tuning`), MMDetection's own loss (``mmdet-*``) or a
post-hoc calibration of another method's trained model (``calibrate``, ``base``: no training of its own;
:func:`calibrated` makes such a row for any base, with NorCal for softmax heads and logit adjustment for the
others, as :func:`calibration_method` decides). :func:`pending` says, for a (method, framework), what the runners
still lack; the runner refuses such runs with that reason instead of running something else under the method's
name. :mod:`.jobs` turns a row into a run (:func:`~.jobs.method_spec`) and trains the runs (:func:`~.jobs.run_jobs`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass

from ..training.losses import BASELINE, LossSetting
from ..training.models import DEFAULT_MODEL, REGIMES, check_model_loss, get_model, loss_setting
from ..training.runners import FRAMEWORKS

__all__ = [
    "Method",
    "METHODS",
    "BASELINE",
    "ORACLE",
    "FRAMEWORKS",
    "get_method",
    "pending",
    "definition_hash",
    "calibrated",
    "calibration_method",
    "GAMMA_GRID",
    "method_loss",
    "model_baseline",
    "rfs_variant",
    "RFS_THRESHOLD_GRID",
    "RFS_TUNED_BASE",
    "RFS_TUNED_THRESHOLD",
    "DECOUPLE_FRACTION",
    "DECOUPLE_FRACTION_GRID",
    "DECOUPLE_TUNED_BASE",
    "DECOUPLE_TUNED_FRACTION",
    "decouple_schedule",
    "decouple_variant",
]


#: The oracle row's key: the framework's cross-entropy trained on the class-balanced train set (the ceiling a
#: method's rare-class gains are compared to).
ORACLE = "oracle"


@dataclass(frozen=True)
class Method:
    """One row of the matrix.

    Attributes:
        key: name in results and tables.
        label: readable name.
        loss: key of :func:`dbbench.training.models.loss_setting` (``"ce"``: the framework's own cross-entropy;
            ``"focal"``: a dense model's own sigmoid focal loss).
        train_split: split of :mod:`dbbench.data.longtail` it trains on.
        sampler: ``None`` (uniform over images) or ``"rfs"`` (repeat-factor sampling, threshold ``rfs_threshold``).
        frameworks: frameworks the method exists in.
        mmdet_loss: MMDetection's own registered loss type used instead of a detbalance loss.
        calibrate: post-hoc calibration (``"norcal"`` or ``"logit_adjust"``) of the trained model of method
            ``base``, which it re-predicts (no training of its own; :mod:`dbbench.benchmark.posthoc`).
        base: the method whose trained model a post-hoc calibration reuses (same framework and seed).
        model: the detector (key of :data:`dbbench.training.models.MODELS`); its head must take ``loss``.
        classifier: the box classifier layer, ``"linear"`` or ``"normed"`` (the cosine classifier of the Seesaw
            paper, :class:`detbalance.layers.NormedLinear` / MMDetection's ``NormedLinear``, temperature 20).
        decouple: stage 2 of decoupled training (cRT, :mod:`detbalance.decouple`): the part re-trained
            (``"classifier"``) on top of the saved model of ``base`` (same framework, regime and seed), with this
            row's loss and sampler, for :func:`decouple_schedule` of the regime's schedule.
        decouple_fraction: the fraction of the regime's iterations stage 2 trains (:attr:`stage2_fraction`);
            None: :data:`DECOUPLE_FRACTION`.
        clip_grad_norm: the largest L2 norm of the whole model's gradient before each step; None: not clipped.
        regimes: the regimes the row exists in.
    """

    key: str
    label: str
    loss: str = BASELINE
    train_split: str = "train"
    sampler: str | None = None
    rfs_threshold: float | None = None
    frameworks: tuple[str, ...] = FRAMEWORKS
    mmdet_loss: str | None = None
    calibrate: str | None = None
    base: str | None = None
    model: str = DEFAULT_MODEL
    classifier: str = "linear"
    decouple: str | None = None
    decouple_fraction: float | None = None
    clip_grad_norm: float | None = None
    regimes: tuple[str, ...] = REGIMES

    def __post_init__(self):
        check_model_loss(self.model, loss_setting(self.loss))
        if not self.regimes or any(r not in REGIMES for r in self.regimes):
            raise ValueError(f"regimes={self.regimes!r}; expected a non-empty subset of {REGIMES}")
        if self.classifier not in ("linear", "normed"):
            raise ValueError(f"classifier={self.classifier!r}; expected 'linear' or 'normed'")
        if self.decouple is not None and (self.base is None or self.calibrate is not None):
            raise ValueError(
                f"decouple={self.decouple!r} with base={self.base!r}, calibrate={self.calibrate!r}; expected the "
                "stage-1 row as base and no calibration"
            )
        if self.decouple_fraction is not None:
            if self.decouple is None:
                raise ValueError(
                    f"decouple_fraction={self.decouple_fraction!r} with decouple=None; expected a float in (0, 1] on "
                    "a decoupled row"
                )
            _check_fraction("decouple_fraction", self.decouple_fraction)

    @property
    def stage2_fraction(self) -> float:
        """The fraction of the regime's iterations that stage 2 of a decoupled row trains."""
        return DECOUPLE_FRACTION if self.decouple_fraction is None else self.decouple_fraction


def method_loss(method: Method) -> LossSetting:
    """The loss ``method`` trains (an entry of :data:`dbbench.training.LOSS_SETTINGS` or of
    :data:`dbbench.training.models.HEAD_LOSSES`)."""
    return loss_setting(method.loss)


def calibration_method(base: Method) -> str:
    """``"norcal"`` where ``base``'s box head scores with a softmax over K + 1 logits (the framework's own CE,
    loaded into the weighted-CE head, and :data:`detbalance.calibration.SOFTMAX_LOSSES`), else ``"logit_adjust"``."""
    from detbalance.calibration import SOFTMAX_LOSSES
    from detbalance.losses import LOSSES

    name = method_loss(base).loss
    return "norcal" if name is None or issubclass(LOSSES[name], SOFTMAX_LOSSES) else "logit_adjust"


def calibrated(base: Method, key: str | None = None) -> Method:
    """The post-hoc calibration row of ``base`` (key ``<base>-norcal`` or ``<base>-logit-adjust``)."""
    if base.calibrate is not None or base.mmdet_loss is not None or base.model != DEFAULT_MODEL:
        raise ValueError(
            f"base={base.key!r} (model {base.model!r}); expected a {DEFAULT_MODEL} method trained with "
            "a detbalance loss or the framework's own CE (not a calibration or MMDetection's own loss)"
        )
    method = calibration_method(base)
    label = "NorCal" if method == "norcal" else "logit adjustment"
    return Method(
        key or f"{base.key}-{method.replace('_', '-')}",
        f"{base.label} + post-hoc {label}",
        loss=base.loss,
        train_split=base.train_split,
        sampler=base.sampler,
        rfs_threshold=base.rfs_threshold,
        frameworks=base.frameworks,
        calibrate=method,
        base=base.key,
        classifier=base.classifier,
    )


#: The calibration exponents a calibration row predicts the validation split at (gamma of NorCal, tau of logit
#: adjustment): 0 is the uncalibrated model; quarter steps up to 1 (logit adjustment's usual tau), then 1.5, 2
#: and 3 (with 1.5 the largest, Detectron2 CE + NorCal's validation APr was still rising there: 1.9 at 0, 3.1 at
#: 1, 3.5 at 1.5, seed 2).
GAMMA_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
#: What gamma maximises on the validation split (LVIS protocol): the benchmark's primary metric, APr.
GAMMA_FIT_METRIC = "apr"

#: LVIS's repeat threshold 0.001 is for ~100k images; with ~4.3k train images 0.01 gives rare classes a similar
#: repeat factor (measured in the many-class probe).
RFS_THRESHOLD = 0.01
#: The repeat thresholds :mod:`dbbench.benchmark.tuning` trains the row :data:`RFS_TUNED_BASE` with (seed 0),
#: choosing the one with the best validation APr (mean over both frameworks); :data:`RFS_TUNED_THRESHOLD` is its
#: choice, recorded in ``results/tuning/rfs_threshold.json`` (a test checks the two agree).
RFS_THRESHOLD_GRID = (0.01, 0.03, 0.1)
RFS_TUNED_BASE = "rfs-eqlv2"
RFS_TUNED_THRESHOLD = 0.1


#: Stage 2 of a decoupled row trains this fraction of the regime's iterations (its forward pass is a full
#: training's, its backward pass the classifier's alone), at the regime's learning rate, unless the row says
#: another (``Method.decouple_fraction``).
DECOUPLE_FRACTION = 0.3
#: The stage-2 lengths (fractions of the regime's iterations) :mod:`dbbench.benchmark.decouple_tuning` trains the
#: row :data:`DECOUPLE_TUNED_BASE` with on the saved CE model (seed 0, pretrained regime), choosing the one with the
#: best validation APr (mean over both frameworks); :data:`DECOUPLE_TUNED_FRACTION` is its choice, recorded in
#: ``results/tuning/decouple_fraction.json`` (a test checks the two agree).
DECOUPLE_FRACTION_GRID = (0.3, 0.6, 1.0)
DECOUPLE_TUNED_BASE = "crt-seesaw-normed"
DECOUPLE_TUNED_FRACTION = 1.0


def _check_fraction(name: str, fraction) -> None:
    """Refuse a stage-2 fraction that is not a float in (0, 1], naming it ``name``."""
    if isinstance(fraction, bool) or not isinstance(fraction, float) or not 0 < fraction <= 1:
        raise ValueError(f"{name}={fraction!r}; expected a float in (0, 1]")


def decouple_schedule(schedule, fraction: float = DECOUPLE_FRACTION):
    """The stage-2 schedule of a decoupled row: ``fraction`` of ``schedule``'s iterations, its learning rate and
    warm-up (at most a quarter of the stage)."""
    import dataclasses as dc

    _check_fraction("fraction", fraction)
    iters = max(1, round(fraction * schedule.iters))
    return dc.replace(schedule, iters=iters, warmup_iters=min(schedule.warmup_iters, max(1, iters // 4)))


def decouple_variant(base: Method, fraction: float) -> Method:
    """``base`` (a decoupled row) with stage 2 training ``fraction`` of the regime's iterations: ``base`` itself at
    its own fraction, else the row ``<base>-f<fraction>``."""
    if base.decouple is None:
        raise ValueError(f"base={base.key!r}; expected a decoupled row")
    _check_fraction("fraction", fraction)
    if fraction == base.stage2_fraction:
        return base
    return dataclasses.replace(
        base,
        key=f"{base.key}-f{fraction:g}",
        label=f"{base.label}; stage 2 "
        + ("as long as stage 1" if fraction == 1 else f"{fraction:.0%} of stage 1's iterations"),
        decouple_fraction=fraction,
    )


def rfs_variant(base: Method, threshold: float) -> Method:
    """``base`` (a row with repeat-factor sampling) with repeat threshold ``threshold``: ``base`` itself at its own
    threshold, else the row ``<base>-t<threshold>``."""
    if base.sampler != "rfs" or base.calibrate is not None:
        raise ValueError(f"base={base.key!r}; expected a trained row with sampler 'rfs'")
    if not isinstance(threshold, float) or not 0 < threshold <= 1:
        raise ValueError(f"threshold={threshold!r}; expected a float in (0, 1]")
    if threshold == base.rfs_threshold:
        return base
    return dataclasses.replace(
        base,
        key=f"{base.key}-t{threshold:g}",
        label=f"{base.label}, repeat threshold {threshold:g}",
        rfs_threshold=threshold,
    )


#: The gradient-norm limit of the clipped rows (MMDetection's usual ``clip_grad=dict(max_norm=35, norm_type=2)``).
CLIP_GRAD_NORM = 35.0
_FT = ("pretrained",)

_RFS_EQLV2 = Method(RFS_TUNED_BASE, "RFS + EQLv2", loss="eqlv2", sampler="rfs", rfs_threshold=RFS_THRESHOLD)

_CRT_SEESAW_NORMED = Method(
    DECOUPLE_TUNED_BASE,
    "cRT: CE model, classifier re-trained with RFS + Seesaw, normalised linear classifier",
    loss="seesaw",
    sampler="rfs",
    rfs_threshold=RFS_TUNED_THRESHOLD,
    classifier="normed",
    decouple="classifier",
    base=BASELINE,
    regimes=_FT,
)

METHODS: dict[str, Method] = {
    m.key: m
    for m in (
        Method(BASELINE, "softmax CE (framework default)"),
        Method(ORACLE, "oracle: softmax CE on the balanced train set", train_split="train_balanced"),
        Method("wce", "weighted CE 1/sqrt(freq)", loss="wce"),
        Method("cbfocal", "class-balanced focal (beta 0.9)", loss="cbfocal-b0.9"),
        Method("eql", "EQL", loss="eql"),
        Method("eqlv2", "EQLv2", loss="eqlv2"),
        Method("seesaw", "Seesaw", loss="seesaw"),
        Method("seesaw-normed", "Seesaw, normalised linear classifier", loss="seesaw", classifier="normed"),
        Method("federated", "Federated", loss="federated"),
        Method("rfs", "RFS + CE", sampler="rfs", rfs_threshold=RFS_THRESHOLD),
        Method("rfs-seesaw", "RFS + Seesaw", loss="seesaw", sampler="rfs", rfs_threshold=RFS_THRESHOLD),
        Method(
            "rfs-seesaw-normed",
            "RFS + Seesaw, normalised linear classifier",
            loss="seesaw",
            sampler="rfs",
            rfs_threshold=RFS_THRESHOLD,
            classifier="normed",
        ),
        _RFS_EQLV2,
        rfs_variant(_RFS_EQLV2, RFS_TUNED_THRESHOLD),
        Method("ce-norcal", "CE + post-hoc calibration", calibrate="norcal", base=BASELINE),
        # decoupled classifier re-training on the CE row's saved model (cRT; its stage 2 only is this row's)
        Method(
            "crt",
            "cRT: CE model, classifier re-trained with RFS + CE",
            sampler="rfs",
            rfs_threshold=RFS_TUNED_THRESHOLD,
            decouple="classifier",
            base=BASELINE,
        ),
        Method(
            "bags",
            "BAGS: CE model, classifier re-trained with balanced group softmax",
            loss="bags",
            decouple="classifier",
            base=BASELINE,
        ),
        Method(
            "crt-eqlv2",
            "cRT: CE model, classifier re-trained with RFS + EQLv2",
            loss="eqlv2",
            sampler="rfs",
            rfs_threshold=RFS_TUNED_THRESHOLD,
            decouple="classifier",
            base=BASELINE,
        ),
        _CRT_SEESAW_NORMED,
        decouple_variant(_CRT_SEESAW_NORMED, DECOUPLE_TUNED_FRACTION),
        Method(
            "seesaw-logit-adjust",
            "Seesaw + post-hoc logit adjustment",
            loss="seesaw",
            calibrate="logit_adjust",
            base="seesaw",
        ),
        Method(
            "rfs-eqlv2-logit-adjust",
            "RFS + EQLv2 + post-hoc logit adjustment",
            loss="eqlv2",
            sampler="rfs",
            rfs_threshold=RFS_THRESHOLD,
            calibrate="logit_adjust",
            base="rfs-eqlv2",
        ),
        Method("mmdet-seesaw", "MMDetection's own SeesawLoss", frameworks=("mmdet",), mmdet_loss="SeesawLoss"),
        Method(
            "mmdet-seesaw-normed",
            "MMDetection's own SeesawLoss, NormedLinear (as its configs ship it)",
            frameworks=("mmdet",),
            mmdet_loss="SeesawLoss",
            classifier="normed",
        ),
        Method("mmdet-eqlv2", "MMDetection's own EQLV2Loss", frameworks=("mmdet",), mmdet_loss="EQLV2Loss"),
        # Fine-tuned from the pretrained backbone, EQLv2 (detbalance's and MMDetection's own alike) diverged within
        # 500 iterations without clipping; these rows clip the gradient as MMDetection's LVIS configs can
        # (optim_wrapper.clip_grad max_norm 35), the only difference to their unclipped rows.
        Method("eqlv2-clip", "EQLv2, gradient clipped", loss="eqlv2", clip_grad_norm=CLIP_GRAD_NORM, regimes=_FT),
        Method("eqlv2-prior", "EQLv2, classifier started at the prior 0.01", loss="eqlv2-p0.01", regimes=_FT),
        Method(
            "rfs-eqlv2-clip",
            "RFS + EQLv2, gradient clipped",
            loss="eqlv2",
            sampler="rfs",
            rfs_threshold=RFS_TUNED_THRESHOLD,
            clip_grad_norm=CLIP_GRAD_NORM,
            regimes=_FT,
        ),
        Method(
            "mmdet-eqlv2-clip",
            "MMDetection's own EQLV2Loss, gradient clipped",
            frameworks=("mmdet",),
            mmdet_loss="EQLV2Loss",
            clip_grad_norm=CLIP_GRAD_NORM,
            regimes=_FT,
        ),
        # The head rows: each model against its own framework loss (its first row), same data, schedule and protocol.
        Method("retinanet-focal", "RetinaNet, sigmoid focal loss (framework default)", loss="focal", model="retinanet"),
        Method("retinanet-efl", "RetinaNet, Equalized Focal Loss", loss="efl", model="retinanet"),
        Method("cascade-ce", "Cascade R-CNN, softmax CE (framework default)", model="cascade_rcnn"),
        Method("cascade-wce", "Cascade R-CNN, weighted CE 1/sqrt(freq)", loss="wce", model="cascade_rcnn"),
        Method("cascade-seesaw", "Cascade R-CNN, Seesaw", loss="seesaw", model="cascade_rcnn"),
        Method("cascade-eqlv2", "Cascade R-CNN, EQLv2", loss="eqlv2", model="cascade_rcnn"),
        Method(
            "fcos-focal",
            "FCOS, sigmoid focal loss (framework default)",
            loss="focal",
            model="fcos",
            frameworks=("mmdet",),
        ),
        Method("fcos-efl", "FCOS, Equalized Focal Loss", loss="efl", model="fcos", frameworks=("mmdet",)),
        Method(
            "atss-focal",
            "ATSS, sigmoid focal loss (framework default)",
            loss="focal",
            model="atss",
            frameworks=("mmdet",),
        ),
        Method("atss-efl", "ATSS, Equalized Focal Loss", loss="efl", model="atss", frameworks=("mmdet",)),
    )
}


def get_method(key: str) -> Method:
    if key not in METHODS:
        raise ValueError(f"unknown method {key!r}; expected one of {list(METHODS)}")
    return METHODS[key]


def pending(method: Method, framework: str, regime: str = "scratch") -> str | None:
    """Why ``method`` cannot run in ``framework`` and ``regime`` (``None`` when it can): a framework the row does not
    exist in, a model without a config of the regime, a calibration row that is not :func:`calibrated` of its
    base, or a base that cannot run."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework={framework!r}; expected one of {FRAMEWORKS}")
    if regime not in REGIMES:
        raise ValueError(f"regime={regime!r}; expected one of {REGIMES}")
    if framework not in method.frameworks:
        return f"{method.key} exists only in {method.frameworks}"
    if regime not in method.regimes:
        return f"{method.key} exists only in the regimes {method.regimes}"
    model = get_model(method.model)
    if getattr(model, framework) is None:
        return f"{method.key}: model {method.model!r} has no {framework} config here"
    if regime != "scratch" and framework not in dict(model.pretrained):
        return f"{method.key}: model {method.model!r} has no {regime} {framework} config here"
    if method.decouple is not None:
        return pending(get_method(method.base), framework, regime)
    if method.calibrate is not None:
        base = get_method(method.base)
        expected = calibrated(base, method.key)
        if method != dataclasses.replace(expected, label=method.label):
            return f"{method.key} does not calibrate {base.key} as calibrated({base.key!r}) does: expected {expected}"
        return pending(base, framework, regime)
    return None


#: Fields added to :class:`Method` after runs were recorded: they enter :func:`definition_hash` only when they
#: differ from their default, so that the rows that existed before keep their hash (and their cached runs).
_HASHED_WHEN_SET = ("model", "classifier", "decouple", "decouple_fraction", "clip_grad_norm", "regimes")


def model_baseline(model: str) -> str:
    """The key of the row that trains ``model`` with the framework's own loss (what its rows are compared to)."""
    if model == DEFAULT_MODEL:
        return BASELINE
    rows = [
        m.key
        for m in METHODS.values()
        if m.model == model
        and m.calibrate is None
        and m.mmdet_loss is None
        and m.sampler is None
        and m.train_split == "train"
        and method_loss(m).loss is None
    ]
    if not rows:
        raise ValueError(
            f"model={model!r}; expected a model with a row of its own loss, one of "
            f"{sorted({m.model for m in METHODS.values()})}"
        )
    return rows[0]


def definition_hash(method: Method, extra: dict) -> str:
    """A short hash of the method's row and ``extra`` (schedule, protocol): a cached run with another is stale."""
    defaults = {f.name: f.default for f in dataclasses.fields(Method)}
    row = {k: v for k, v in asdict(method).items() if k not in _HASHED_WHEN_SET or v != defaults[k]}
    text = json.dumps({"method": row, **extra}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
