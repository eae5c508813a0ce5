"""Bar chart of per-class AP, grouped by method, classes sorted by train frequency (matplotlib, Agg canvas).

Each class gets one bar per method (with the std over runs as an error bar when a method has several runs); the
x labels carry the class name, its r/c/f group and its train instance count, and the background of each frequency
group is shaded. The figure is drawn on an Agg canvas (no display, no global pyplot state) and written
atomically: a temporary file in the same folder, then ``os.replace``.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np

from ..weights.file import write_bytes_atomic
from .report import METRICS, Report

__all__ = ["plot_report"]

_SHADE = {"r": "#f6d5d5", "c": "#f6ecd0", "f": "#dcebd9"}


def plot_report(report: Report, path: str | os.PathLike, metric: str = "ap", title: str | None = None) -> Path:
    """Write the bar chart of ``metric`` to ``path`` (format from the suffix: png, pdf, svg); returns the path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if metric not in METRICS:
        raise ValueError(f"metric {metric!r}; expected one of {list(METRICS)}")
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("png", "pdf", "svg"):
        raise ValueError(f"plot path {path} has suffix {path.suffix!r}; expected .png, .pdf or .svg")
    names = list(report.methods)
    order = report.order
    k, m = len(order), len(names)
    fig = Figure(figsize=(max(7.0, 0.9 * k + 4.0), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / m
    x = np.arange(k)
    if report.groups:
        for i, cls in enumerate(order):
            ax.axvspan(i - 0.5, i + 0.5, color=_SHADE[report.groups[cls]], zorder=0, lw=0)
    for j, name in enumerate(names):
        runs = report.methods[name].values[metric][:, order]
        mean = np.array([np.nanmean(c) if np.isfinite(c).any() else 0.0 for c in runs.T])
        std = np.array([np.nanstd(c, ddof=1) if np.isfinite(c).sum() > 1 else 0.0 for c in runs.T])
        ax.bar(
            x - 0.4 + width * (j + 0.5),
            mean,
            width,
            yerr=std if runs.shape[0] > 1 else None,
            label=f"{name} ({_summary_label(report, name, metric)})",
            zorder=2,
            capsize=2,
        )
    labels = []
    for cls in order:
        label = report.class_names[cls]
        if report.groups:
            label += f"\n[{report.groups[cls]}]"
        if report.train_instances:
            label += f"\n{report.train_instances[cls]}"
        labels.append(label)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlim(-0.5, k - 0.5)
    ax.set_ylim(0, 100)
    ax.set_ylabel(f"{METRICS[metric]} (%)")
    ax.set_xlabel(
        "class (most frequent in training first)" + ("; [group]; train instances" if report.train_instances else "")
    )
    ax.set_title(title or f"Per-class {METRICS[metric]} by method")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.grid(axis="y", alpha=0.3, zorder=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=120)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _summary_label(report: Report, name: str, metric: str) -> str:
    mean = report.summary(name, metric)[0]
    text = f"{METRICS[metric]} {mean:.1f}" if math.isfinite(mean) else METRICS[metric] + " n/a"
    rare = report.summary(name, metric, "r")[0]
    if report.groups and "r" in report.groups and math.isfinite(rare):
        text += f", {METRICS[metric]}r {rare:.1f}"
    return text
