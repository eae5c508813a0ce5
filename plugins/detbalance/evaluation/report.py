"""Compare detection results of several methods on one ground truth: per-class metrics, r/c/f means, deltas.

A method may have several result files (e.g. one per seed); its per-class value is the mean over its runs and its
summary rows carry the standard deviation over runs. Classes without ground truth (NaN) are left out of all means.

- ``AP`` of a method: mean per-class AP over the classes with ground truth (equals COCO's AP when every class
  has ground truth).
- ``APr``/``APc``/``APf``: the same mean restricted to one LVIS-style frequency group.
- delta: a method's value minus the baseline's value.
- rare-class gap closed: ``(APr(method) - APr(baseline)) / (APr(oracle) - APr(baseline))`` where the oracle is
  the same detector trained on a class-balanced train set; 1 means the loss undid all the damage the imbalance did
  to rare classes, 0 none. NaN when there is no oracle, no rare class, or the oracle is not better than the
  baseline on rare classes.

Groups come from, in this order: the ``groups`` argument; the ``frequency`` field of the train json's categories
(LVIS json and the synthetic set carry one); LVIS thresholds (``detbalance.weights.frequency_groups``: r <= 10
images, c <= 100, f > 100) on the train json's per-class image counts; the ``frequency`` field of the ground-truth
categories. Without any of those there are no group rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .coco_eval import ClassMetrics, check_score_threshold, evaluate_detections, load_json, validate_ground_truth

__all__ = [
    "METRICS",
    "METRIC_DESCRIPTIONS",
    "GROUPS",
    "MethodRuns",
    "Report",
    "train_statistics",
    "resolve_groups",
    "compare",
    "build_report",
]

#: Per-class metrics a report holds, with their display names (R50: recall at IoU 0.5, 100 detections/image).
METRICS = {"ap": "AP", "ap50": "AP50", "recall": "R50"}
METRIC_DESCRIPTIONS = {
    "ap": "AP at IoU .50:.95",
    "ap50": "AP at IoU .50",
    "recall": "R50 = recall at IoU .50 with 100 detections per image",
}
GROUPS = ("r", "c", "f")


@dataclass(frozen=True)
class MethodRuns:
    """One method's runs: ``values[metric]`` is ``[N runs, K classes]`` (percent, NaN = no ground truth)."""

    name: str
    sources: list[str]
    values: dict[str, np.ndarray]

    @property
    def num_runs(self) -> int:
        return len(self.sources)

    def per_class(self, metric: str) -> np.ndarray:
        """Mean over runs, ``[K]``."""
        return _nanmean(self.values[metric], axis=0)


@dataclass(frozen=True)
class Report:
    """Everything the table and the plot show. Classes are in the ground truth's category order."""

    category_ids: list[int]
    class_names: list[str]
    groups: list[str] | None
    train_instances: list[int] | None
    train_images: list[int] | None
    methods: dict[str, MethodRuns]
    baseline: str
    oracle: str | None = None
    order: list[int] = field(default_factory=list)  # display order: most frequent train class first
    score_threshold: float = 0.0  # detections scoring below it were dropped before evaluation

    def summary(self, name: str, metric: str = "ap", group: str | None = None) -> tuple[float, float]:
        """(mean over runs, std over runs) of the class-mean of ``metric``, optionally within one group."""
        values = self.methods[name].values[metric]
        if group is not None:
            if self.groups is None:
                return math.nan, math.nan
            columns = [k for k, g in enumerate(self.groups) if g == group]
            values = values[:, columns]
        per_run = _nanmean(values, axis=1) if values.shape[1] else np.full(values.shape[0], math.nan)
        spread = float(np.std(per_run, ddof=1)) if per_run.size > 1 and np.isfinite(per_run).all() else math.nan
        return float(_nanmean(per_run, axis=0)), spread

    def delta(self, name: str, metric: str = "ap", group: str | None = None) -> float:
        """Summary of ``name`` minus summary of the baseline."""
        return self.summary(name, metric, group)[0] - self.summary(self.baseline, metric, group)[0]

    def gap_closed(self, name: str) -> float:
        """Fraction of the rare-class AP gap between baseline and oracle that ``name`` closes (NaN if undefined)."""
        if self.oracle is None:
            return math.nan
        base, oracle = self.summary(self.baseline, "ap", "r")[0], self.summary(self.oracle, "ap", "r")[0]
        gap = oracle - base
        if not math.isfinite(gap) or gap <= 0:
            return math.nan
        return (self.summary(name, "ap", "r")[0] - base) / gap

    def to_dict(self) -> dict:
        """A json-serialisable copy (NaN becomes None)."""

        def clean(x):
            return None if isinstance(x, float) and not math.isfinite(x) else x

        out = {
            "baseline": self.baseline,
            "oracle": self.oracle,
            "score_threshold": self.score_threshold,
            "classes": [],
            "methods": {},
        }
        for k in self.order:
            out["classes"].append(
                {
                    "category_id": self.category_ids[k],
                    "name": self.class_names[k],
                    "group": self.groups[k] if self.groups else None,
                    "train_instances": self.train_instances[k] if self.train_instances else None,
                    "train_images": self.train_images[k] if self.train_images else None,
                }
            )
        for name, runs in self.methods.items():
            entry = {"runs": runs.sources, "per_class": {}, "summary": {}}
            for metric in METRICS:
                entry["per_class"][metric] = [clean(float(v)) for v in runs.per_class(metric)[self.order]]
                for group in (None, *GROUPS):
                    mean, std = self.summary(name, metric, group)
                    key = METRICS[metric] + (group or "")
                    entry["summary"][key] = {
                        "mean": clean(mean),
                        "std": clean(std),
                        "delta": clean(self.delta(name, metric, group)),
                    }
            entry["rare_gap_closed"] = clean(self.gap_closed(name))
            out["methods"][name] = entry
        return out


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean ignoring NaN; all-NaN slices give NaN without a warning."""
    values = np.asarray(values, dtype=float)
    count = np.sum(np.isfinite(values), axis=axis)
    total = np.nansum(values, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def train_statistics(train: dict, category_ids: Sequence[int]) -> tuple[list[int], list[int], list[str] | None]:
    """(instances, images, declared groups or None) per category of ``category_ids`` in a COCO/LVIS train json.

    Crowd boxes (``iscrowd=1``) are not counted. Declared groups are the categories' ``frequency`` fields when
    every category has one of r/c/f.
    """
    validate_ground_truth(train, "train json")
    by_id = {c["id"]: c for c in train["categories"]}
    missing = [cid for cid in category_ids if cid not in by_id]
    if missing:
        raise ValueError(
            f"train json has no category with id {missing[:10]}; expected the ground truth's "
            f"category ids {list(category_ids)[:20]}"
        )
    index = {cid: k for k, cid in enumerate(category_ids)}
    instances = [0] * len(category_ids)
    images: list[set] = [set() for _ in category_ids]
    for ann in train["annotations"]:
        k = index.get(ann["category_id"])
        if k is not None and not ann.get("iscrowd", 0):
            instances[k] += 1
            images[k].add(ann["image_id"])
    declared = [by_id[cid].get("frequency") for cid in category_ids]
    return instances, [len(s) for s in images], declared if all(g in GROUPS for g in declared) else None


def resolve_groups(gt: dict, train: dict | None = None, groups: Sequence[str] | None = None) -> list[str] | None:
    """The r/c/f group of every ground-truth category (see the module docstring for the order of sources)."""
    category_ids = [c["id"] for c in gt["categories"]]
    if groups is not None:
        groups = list(groups)
        if len(groups) != len(category_ids) or any(g not in GROUPS for g in groups):
            raise ValueError(
                f"groups {groups[:20]} must give one of 'r', 'c', 'f' for each of the {len(category_ids)} categories"
            )
        return groups
    if train is not None:
        _, images, declared = train_statistics(train, category_ids)
        if declared is not None:
            return declared
        from detbalance.weights import frequency_groups

        return frequency_groups(images)
    declared = [c.get("frequency") for c in gt["categories"]]
    return declared if all(g in GROUPS for g in declared) else None


def build_report(
    metrics: Mapping[str, Sequence[ClassMetrics]],
    *,
    baseline: str | None = None,
    oracle: str | None = None,
    groups: Sequence[str] | None = None,
    train_instances: Sequence[int] | None = None,
    train_images: Sequence[int] | None = None,
    sources: Mapping[str, Sequence[str]] | None = None,
    score_threshold: float = 0.0,
) -> Report:
    """Assemble a :class:`Report` from already computed per-run metrics (all on the same ground truth)."""
    if not metrics:
        raise ValueError("no methods given; expected at least one NAME with result files")
    names = list(metrics)
    baseline = names[0] if baseline is None else baseline
    for role, name in (("baseline", baseline), ("oracle", oracle)):
        if name is not None and name not in metrics:
            raise ValueError(f"{role} {name!r} is not one of the methods {names}")
    first = next(iter(metrics.values()))[0]
    methods = {}
    for name, runs in metrics.items():
        if not runs:
            raise ValueError(f"method {name!r} has no result files")
        for run in runs:
            if run.category_ids != first.category_ids:
                raise ValueError(
                    f"method {name!r} was evaluated on categories {run.category_ids[:20]}; expected "
                    f"{first.category_ids[:20]} (the same ground truth for every method)"
                )
        values = {m: np.stack([getattr(run, m) for run in runs]) for m in METRICS}
        run_sources = list(sources[name]) if sources else [f"{name}#{i}" for i in range(len(runs))]
        methods[name] = MethodRuns(name=name, sources=run_sources, values=values)
    k = len(first.category_ids)
    for what, seq in (("groups", groups), ("train_instances", train_instances), ("train_images", train_images)):
        if seq is not None and len(seq) != k:
            raise ValueError(f"{what} has {len(seq)} entries; expected one per category ({k})")
    frequency = train_instances if train_instances is not None else train_images
    order = sorted(range(k), key=lambda i: -frequency[i]) if frequency is not None else list(range(k))
    return Report(
        category_ids=list(first.category_ids),
        class_names=list(first.class_names),
        groups=list(groups) if groups is not None else None,
        train_instances=list(train_instances) if train_instances is not None else None,
        train_images=list(train_images) if train_images is not None else None,
        methods=methods,
        baseline=baseline,
        oracle=oracle,
        order=order,
        score_threshold=check_score_threshold(score_threshold),
    )


def compare(
    gt_json: str | os.PathLike,
    results: Mapping[str, Sequence[str | os.PathLike]],
    *,
    baseline: str | None = None,
    oracle: str | None = None,
    train_json: str | os.PathLike | None = None,
    groups: Sequence[str] | None = None,
    score_threshold: float = 0.0,
) -> Report:
    """Evaluate every result file of every method on ``gt_json`` and build the report.

    Args:
        gt_json: COCO ground-truth json of the test split.
        results: method name -> COCO results json files (one per run/seed).
        baseline: the method deltas are taken against (default: the first).
        oracle: the method trained on a balanced set, for the rare-class gap closed (optional).
        train_json: COCO/LVIS train json: class frequencies for ordering and r/c/f groups (optional).
        groups: explicit r/c/f per ground-truth category (overrides the train json's).
        score_threshold: evaluate only detections scoring at least this much (default 0: all of them).
    """
    score_threshold = check_score_threshold(score_threshold)
    gt = validate_ground_truth(load_json(gt_json, "ground-truth"), f"ground truth {gt_json}")
    train = load_json(train_json, "train") if train_json is not None else None
    category_ids = [c["id"] for c in gt["categories"]]
    instances = images = None
    if train is not None:
        instances, images, _ = train_statistics(train, category_ids)
    resolved = resolve_groups(gt, train, groups)
    metrics: dict[str, list[ClassMetrics]] = {}
    for name, paths in results.items():
        if not paths:
            raise ValueError(f"method {name!r} has no result files")
        metrics[name] = []
        for path in paths:
            detections = load_json(path, f"results of {name!r}")
            try:
                metrics[name].append(evaluate_detections(gt, detections, score_threshold))
            except ValueError as e:
                raise ValueError(f"{path}: {e}") from e
    return build_report(
        metrics,
        baseline=baseline,
        oracle=oracle,
        groups=resolved,
        train_instances=instances,
        train_images=images,
        sources={n: [str(p) for p in ps] for n, ps in results.items()},
        score_threshold=score_threshold,
    )
