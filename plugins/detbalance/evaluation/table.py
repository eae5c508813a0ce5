"""Plain-text tables of a :class:`~detbalance.evaluation.report.Report`.

One table per metric: a row per class (most frequent train class first) with each method's value and, for every
method but the baseline, its delta to the baseline; then the class mean, APr/APc/APf (mean ± std over runs when a
method has several) and, when an oracle is given, the fraction of the rare-class gap each method closes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .report import GROUPS, METRIC_DESCRIPTIONS, METRICS, Report

__all__ = ["format_report", "format_table"]

_NA = "n/a"


def _value(v: float) -> str:
    return f"{v:.1f}" if math.isfinite(v) else _NA


def _delta(v: float) -> str:
    return f"{v:+.1f}" if math.isfinite(v) else _NA


def _summary(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return _NA
    return f"{mean:.1f}±{std:.1f}" if math.isfinite(std) else f"{mean:.1f}"


def format_table(report: Report, metric: str = "ap") -> str:
    """The table of one metric (``'ap'``, ``'ap50'`` or ``'recall'``)."""
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r}; expected one of {list(METRICS)}")
    names = list(report.methods)
    label = METRICS[metric]
    header = ["class", "group", "train inst/img"]
    for name in names:
        header.append(name)
        if name != report.baseline:
            header.append(f"Δ{name}")
    rows: list[list[str]] = []
    per_class = {n: report.methods[n].per_class(metric) for n in names}
    for k in report.order:
        row = [
            report.class_names[k],
            report.groups[k] if report.groups else "",
            f"{report.train_instances[k]}/{report.train_images[k]}" if report.train_instances else "",
        ]
        for name in names:
            row.append(_value(per_class[name][k]))
            if name != report.baseline:
                row.append(_delta(per_class[name][k] - per_class[report.baseline][k]))
        rows.append(row)
    summary_rows: list[list[str]] = []
    for group in (None, *GROUPS):
        if group is not None and not (report.groups and group in report.groups):
            continue
        count = len(report.class_names) if group is None else report.groups.count(group)
        row = [
            f"{label} (mean)" if group is None else f"{label}{group}",
            "",
            f"{count} class" + ("es" if count != 1 else ""),
        ]
        for name in names:
            row.append(_summary(*report.summary(name, metric, group)))
            if name != report.baseline:
                row.append(_delta(report.delta(name, metric, group)))
        summary_rows.append(row)
    if metric == "ap" and report.oracle is not None:
        row = ["rare gap closed", "", f"vs {report.oracle}"]
        for name in names:
            gap = report.gap_closed(name)
            shown = math.isfinite(gap) and name not in (report.baseline, report.oracle)
            row.append(f"{100 * gap:.0f}%" if shown else "")
            if name != report.baseline:
                row.append("")
        summary_rows.append(row)
    runs = ", ".join(f"{n}: {report.methods[n].num_runs}" for n in names)
    kept = f"detections scoring >= {report.score_threshold:g}; " if report.score_threshold > 0 else ""
    title = (
        f"{METRIC_DESCRIPTIONS[metric]}, per class, percent; {kept}mean over runs [{runs}]; "
        f"Δ = method - {report.baseline}; n/a = no ground truth"
    )
    return title + "\n" + _align(header, rows, summary_rows)


def _align(header: Sequence[str], rows: list[list[str]], summary: list[list[str]]) -> str:
    table = [list(header), *rows, *summary]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *map(line, rows), rule, *map(line, summary)])


def format_report(report: Report, metrics: Sequence[str] = ("ap", "ap50", "recall")) -> str:
    """The tables of several metrics, separated by blank lines."""
    return "\n\n".join(format_table(report, m) for m in metrics)
