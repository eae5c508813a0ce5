"""Human-readable output for class statistics and weights: table, warnings, repeat-factor summary, plot."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..weights import WeightsFile
from ..weights.file import write_bytes_atomic

__all__ = ["EXTREME_RATIO", "format_table", "weight_ratio_warning", "rfs_summary", "plot_weights"]

#: A max/min weight ratio above this is reported as extreme: with ratio 10 one box of the rarest class counts as
#: much as ten of the most common one, and beyond that the rare-class gradients start to dominate the loss scale
#: and destabilize training (Cui et al. 2019 and the LVIS baselines use far gentler effective ratios).
EXTREME_RATIO = 10.0


def format_table(wf: WeightsFile) -> str:
    """One row per class: label, class, instances, images, group, weight."""
    s = wf.stats
    width = max(5, *(len(n) for n in s.class_names))
    head = f"{'label':>5}  {'class':<{width}}  {'instances':>9}  {'images':>7}  {'group':>5}  {'weight':>8}"
    lines = [head, "-" * len(head)]
    for i, name in enumerate(s.class_names):
        lines.append(
            f"{i:>5}  {name:<{width}}  {s.instance_counts[i]:>9}  {s.image_counts[i]:>7}  {wf.groups[i]:>5}  "
            f"{wf.weights[i]:>8.4f}"
        )
    groups = {g: wf.groups.count(g) for g in "rcf"}
    lines.append("-" * len(head))
    lines.append(
        f"{s.num_classes} classes ({groups['r']} r / {groups['c']} c / {groups['f']} f), "
        f"{sum(s.instance_counts)} instances, {s.num_images} images; scheme {wf.scheme}, "
        f"background weight {wf.background_weight:g}"
    )
    return "\n".join(lines)


def weight_ratio_warning(weights: Sequence[float], class_names: Sequence[str]) -> str | None:
    """A warning when ``max(w) / min(w)`` exceeds :data:`EXTREME_RATIO`, else ``None``."""
    w = np.asarray(weights, dtype=np.float64)
    ratio = w.max() / w.min()
    if ratio <= EXTREME_RATIO:
        return None
    return (
        f"max/min class weight ratio is {ratio:.1f} (> {EXTREME_RATIO:g}): {class_names[int(w.argmax())]!r} "
        f"weighs {ratio:.1f}x {class_names[int(w.argmin())]!r}; such weights can destabilize training. "
        "Consider --max-ratio, --power < 1, or a softer scheme (sqrt_inverse, effective_number)."
    )


def rfs_summary(image_labels: Sequence[Sequence[int]], threshold: float) -> str:
    """What repeat-factor sampling with ``threshold`` does to an epoch (see ``detbalance.weights.repeat_factors``)."""
    from ..weights import repeat_factors

    r = repeat_factors(image_labels, threshold).double()
    n = r.numel()
    repeated = int((r > 1).sum())
    return (
        f"repeat factor sampling, threshold {threshold:g}: {repeated} of {n} images repeated "
        f"({100.0 * repeated / n:.1f}%), factor mean {r.mean():.3f}, max {r.max():.2f}; "
        f"epoch length {r.sum():.0f} images ({float(r.sum()) / n:.2f}x)"
    )


def plot_weights(path: str | os.PathLike, wf: WeightsFile, *, count: str = "instances") -> None:
    """Bar chart of per-class counts (log scale, sorted, coloured by r/c/f group) with the weights overlaid.

    Written atomically (temporary file in the same folder + ``os.replace``); the format follows the suffix.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = wf.stats
    counts = np.asarray(s.instance_counts if count == "instances" else s.image_counts, dtype=np.float64)
    order = np.argsort(-counts, kind="stable")
    x = np.arange(len(order))
    colors = {"r": "tab:red", "c": "tab:orange", "f": "tab:blue"}
    fig, ax = plt.subplots(figsize=(min(4 + 0.25 * len(order), 16), 5), dpi=100)
    try:
        ax.bar(
            x,
            np.maximum(counts[order], 0.8),
            width=1.0 if len(order) > 60 else 0.8,
            color=[colors[wf.groups[i]] for i in order],
        )
        ax.set_yscale("log")
        ax.set_ylabel(f"{count} per class (log)")
        ax.set_xlabel("classes, sorted by frequency")
        if len(order) <= 60:
            ax.set_xticks(x, [s.class_names[i] for i in order], rotation=90, fontsize=8)
        else:
            ax.set_xticks([])
        ax2 = ax.twinx()
        ax2.plot(x, np.asarray(wf.weights)[order], color="black", marker="." if len(order) <= 60 else None, lw=1.2)
        ax2.set_ylabel(f"weight ({wf.scheme})")
        ax2.set_ylim(bottom=0)
        handles = [plt.Rectangle((0, 0), 1, 1, color=colors[g]) for g in "rcf"]
        handles.append(plt.Line2D([], [], color="black"))
        ax.legend(
            handles,
            ["rare (1-10 images)", "common (11-100)", "frequent (>100)", "weight"],
            loc="upper right",
            fontsize=8,
        )
        ax.set_title(f"{s.num_classes} classes, {sum(s.instance_counts)} instances, {s.num_images} images")
        fig.tight_layout()
        path = Path(path)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=path.suffix.lstrip(".") or "png")
        write_bytes_atomic(path, buffer.getvalue())
    finally:
        plt.close(fig)
