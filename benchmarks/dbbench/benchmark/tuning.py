"""The repeat threshold of repeat-factor sampling, chosen on the validation split.

LVIS's threshold (0.001 for ~100k images) says nothing about a 4.3k-image set, and the matrix's rows use 0.01 from
the many-class probe. :func:`tune_rfs_threshold` trains the row :data:`~.methods.RFS_TUNED_BASE` once per
threshold of :data:`~.methods.RFS_THRESHOLD_GRID` (seed :data:`TUNING_SEED`, each framework; the row at its own
threshold is the matrix's run, cached like any run), predicts the **validation** split with each model and keeps
the threshold with the best validation APr under the LVIS protocol, averaged over the frameworks (ties: the
smaller threshold). The test split chooses nothing. The choice is written to ``<results>/tuning/rfs_threshold.json``
with every candidate's validation metrics and training time; :data:`~.methods.RFS_TUNED_THRESHOLD` must name it (the row
``<base>-t<threshold>`` of the matrix, whose seed-0 run is the candidate's training).
"""

from __future__ import annotations

import math
from pathlib import Path

from ..training.files import write_json
from .methods import RFS_THRESHOLD_GRID, RFS_TUNED_BASE, get_method, rfs_variant
from .runs import format_metric, prepare_version, run_definition, run_spec, train_and_validate

__all__ = ["TUNING_SEED", "choose_best", "choose_threshold", "tuning_path", "tune_rfs_threshold"]

TUNING_SEED = 0
#: The validation metric the threshold maximises: the benchmark's primary metric.
TUNING_METRIC = "APr"


def tuning_path(results_dir: str | Path) -> Path:
    """Where the choice and its validation metrics are written."""
    return Path(results_dir) / "tuning" / "rfs_threshold.json"


def choose_best(val_metric: dict[str, dict[float, float]], name: str = "thresholds") -> float:
    """The candidate (a number: a threshold, a fraction) with the best mean of ``val_metric[framework][candidate]``
    over the frameworks (ties: the smaller). Every framework must have the same candidates, ``name`` in the errors,
    and a number for each (``None``: the split has no class of the metric's group)."""
    grids = {fw: sorted(by_t) for fw, by_t in val_metric.items()}
    if not grids or len({tuple(g) for g in grids.values()}) != 1 or not next(iter(grids.values())):
        raise ValueError(f"val_metric {name}={grids}; expected the same non-empty {name} in every framework")
    missing = {fw: [t for t, v in by_t.items() if v is None or math.isnan(v)] for fw, by_t in val_metric.items()}
    if any(missing.values()):
        raise ValueError(f"val_metric has no number at {missing}; expected one at every candidate")
    candidates = next(iter(grids.values()))
    mean = {t: sum(val_metric[fw][t] for fw in val_metric) / len(val_metric) for t in candidates}
    return max(candidates, key=lambda t: (mean[t], -t))


def choose_threshold(val_metric: dict[str, dict[float, float]]) -> float:
    """The repeat threshold of :func:`choose_best`."""
    return choose_best(val_metric, "thresholds")


def tune_rfs_threshold(settings, frameworks, log=print) -> dict:
    """Train and validate every candidate of :data:`~.methods.RFS_THRESHOLD_GRID` in ``frameworks`` (cached: a
    trained candidate is not trained again, its validation detections are kept beside its test detections), write
    :func:`tuning_path` and return its content (module docstring)."""
    if settings.regime != "scratch":
        raise ValueError(
            f"regime={settings.regime!r}; expected 'scratch' (the tuned row's threshold is chosen from scratch)"
        )
    dataset, weights_file = prepare_version(settings)
    base = get_method(RFS_TUNED_BASE)
    val: dict[str, dict[float, dict]] = {}
    seconds: dict[str, dict[str, float]] = {}
    for framework in frameworks:
        for threshold in RFS_THRESHOLD_GRID:
            method = rfs_variant(base, threshold)
            spec = run_spec(settings, dataset, weights_file, framework, method, TUNING_SEED)
            definition = run_definition(method, settings, weights_file)
            train_seconds, metrics = train_and_validate(settings, dataset, spec, definition)
            seconds.setdefault(framework, {})[f"{threshold:g}"] = train_seconds
            val.setdefault(framework, {})[threshold] = metrics
            log(
                f"tune {framework} {method.key} (threshold {threshold:g}, {train_seconds:.0f} s training): "
                f"val APr {format_metric(metrics['APr'])} AP {format_metric(metrics['AP'])}"
            )
    chosen = choose_threshold({fw: {t: m[TUNING_METRIC] for t, m in by_t.items()} for fw, by_t in val.items()})
    out = {
        "data_version": dataset.version,
        "base": base.key,
        "base_threshold": base.rfs_threshold,
        "seed": TUNING_SEED,
        "grid": list(RFS_THRESHOLD_GRID),
        "split": "val",
        "metric": f"{TUNING_METRIC} (LVIS protocol), mean over frameworks",
        "val": {fw: {f"{t:g}": m for t, m in by_t.items()} for fw, by_t in val.items()},
        "train_seconds": seconds,
        "chosen": chosen,
        "row": rfs_variant(base, chosen).key,
    }
    write_json(tuning_path(settings.results_dir), out, indent=1)
    log(f"tune: repeat threshold {chosen:g} (row {out['row']}) -> {tuning_path(settings.results_dir)}")
    return out
