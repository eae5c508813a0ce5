"""The length of stage 2 of the tuned decoupled row, chosen on the validation split.

Stage 2 of classifier re-training trains :data:`~.methods.DECOUPLE_FRACTION` of the regime's iterations unless its
row says another. Fine-tuned from the pretrained backbone, the recommended decoupled row
(:data:`~.methods.DECOUPLE_TUNED_BASE`: RFS + Seesaw with a normalised linear classifier on the saved CE model) may
want a longer stage. :func:`tune_decouple_fraction` trains that row's stage 2 once per fraction of
:data:`~.methods.DECOUPLE_FRACTION_GRID` (fixed before any of them ran) on CE's saved model of seed
:data:`~.tuning.TUNING_SEED` in each framework, predicts the **validation** split with each and keeps the fraction
with the best validation APr (the primary metric; LVIS protocol), averaged over the frameworks (ties: the shorter
stage). The test split chooses nothing. The choice, every candidate's validation AP/APr/APc/APf and time go to
``<results>/tuning/decouple_fraction.json``; :data:`~.methods.DECOUPLE_TUNED_FRACTION` must be it. Each candidate is
the row ``<base>-f<fraction>`` (:func:`~.methods.decouple_variant`) in the matrix's own work folder, so the chosen
candidate's run is the matrix's seed-0 run of the tuned row.
"""

from __future__ import annotations

from pathlib import Path

from ..training.files import write_json
from .methods import DECOUPLE_FRACTION_GRID, DECOUPLE_TUNED_BASE, decouple_variant, get_method
from .runs import format_metric, prepare_version, run_definition, run_spec, train_and_validate
from .tuning import TUNING_SEED, choose_best

__all__ = ["DECOUPLE_METRIC", "decouple_tuning_path", "tune_decouple_fraction"]

#: What the stage-2 length maximises on the validation split: the benchmark's primary metric.
DECOUPLE_METRIC = "APr"
_REGIME = "pretrained"


def decouple_tuning_path(results_dir: str | Path) -> Path:
    """Where the choice and its validation metrics are written."""
    return Path(results_dir) / "tuning" / "decouple_fraction.json"


def tune_decouple_fraction(settings, frameworks, log=print) -> dict:
    """Train (stage 2 only, on CE's saved model, trained first where it is missing) and validate every candidate of
    :data:`~.methods.DECOUPLE_FRACTION_GRID` in ``frameworks`` (cached), write :func:`decouple_tuning_path` and
    return its content (module docstring)."""
    if settings.regime != _REGIME:
        raise ValueError(f"regime={settings.regime!r}; expected {_REGIME!r} (the tuned row exists only there)")
    dataset, weights_file = prepare_version(settings)
    base = get_method(DECOUPLE_TUNED_BASE)
    stage1 = get_method(base.base)
    val: dict[str, dict[float, dict]] = {}
    seconds: dict[str, dict[str, dict]] = {}
    for framework in frameworks:
        spec = run_spec(settings, dataset, weights_file, framework, stage1, TUNING_SEED)
        stage1_seconds, _ = train_and_validate(settings, dataset, spec, run_definition(stage1, settings, weights_file))
        for fraction in DECOUPLE_FRACTION_GRID:
            method = decouple_variant(base, fraction)
            spec = run_spec(settings, dataset, weights_file, framework, method, TUNING_SEED)
            definition = run_definition(method, settings, weights_file)
            stage2_seconds, metrics = train_and_validate(settings, dataset, spec, definition)
            seconds.setdefault(framework, {"stage1": stage1_seconds})[f"{fraction:g}"] = stage2_seconds
            val.setdefault(framework, {})[fraction] = metrics
            log(
                f"tune {framework} {method.key} (stage 2 {spec.schedule.iters} it, {stage2_seconds:.0f} s): "
                f"val APr {format_metric(metrics['APr'])} AP {format_metric(metrics['AP'])}"
            )
    chosen = choose_best(
        {fw: {f: m[DECOUPLE_METRIC] for f, m in by_f.items()} for fw, by_f in val.items()}, "fractions"
    )
    out = {
        "data_version": dataset.version,
        "regime": _REGIME,
        "base": base.key,
        "stage1": stage1.key,
        "seed": TUNING_SEED,
        "grid": list(DECOUPLE_FRACTION_GRID),
        "split": "val",
        "metric": f"{DECOUPLE_METRIC} (LVIS protocol), mean over frameworks",
        "val": {fw: {f"{f:g}": m for f, m in by_f.items()} for fw, by_f in val.items()},
        "seconds": seconds,
        "chosen": chosen,
        "row": decouple_variant(base, chosen).key,
    }
    write_json(decouple_tuning_path(settings.results_dir), out, indent=1)
    log(f"tune: stage 2 {chosen:g} of the schedule (row {out['row']}) -> {decouple_tuning_path(settings.results_dir)}")
    return out
