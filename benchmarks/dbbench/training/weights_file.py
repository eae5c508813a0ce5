"""The class weights file of a run's train split, written with ``tools/compute_weights.py``'s function."""

from __future__ import annotations

from pathlib import Path

from .data import RunData
from .files import write_text

__all__ = ["WEIGHT_SCHEME", "write_weights_file"]

#: the weighting scheme of every run's weights file (the demo's and the benchmark's)
WEIGHT_SCHEME = "sqrt_inverse"


def write_weights_file(data: RunData, out_dir: Path) -> Path:
    """Write ``out_dir/weights.json`` (scheme :data:`WEIGHT_SCHEME`) of ``data``'s train split, its plot in
    weights.png and its report in weights.txt; returns the weights file."""
    from detbalance.cli.compute_weights import compute_weights_file

    path = out_dir / "weights.json"
    source = dict(zip(data.stats_source[::2], data.stats_source[1::2]))  # e.g. {"--coco": "train.json"}
    result = compute_weights_file(
        coco=source.get("--coco"),
        voc=source.get("--voc"),
        voc_split=source.get("--voc-split"),
        classes=data.class_names,
        scheme=WEIGHT_SCHEME,
        progress="never",
        output=path,
        plot=out_dir / "weights.png",
    )
    write_text(out_dir / "weights.txt", "\n".join([result.report, *(f"warning: {w}" for w in result.warnings)]) + "\n")
    return path
