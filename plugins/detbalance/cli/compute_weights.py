"""Command line of ``tools/compute_weights.py`` (``detbalance-weights``) and the function behind it.

:func:`compute_weights_file`: a dataset -> class statistics -> weights file (and plot), with the report the
command prints. It sits above the framework adapters: ``--d2-dataset``/``--register-coco`` read through
``detbalance.detectron2.stats`` and ``--mmdet-config`` through ``detbalance.mmdet.stats``, imported only when
that source is asked for; ``--coco`` and ``--voc`` need neither framework.

Exit status: 0 on success, 2 on bad input (missing file, malformed json/xml, unknown category or image id, empty
dataset, zero-count classes without ``--missing max``, bad option values); nothing is written in that case.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

from ..stats.progress import LARGE_FILE_BYTES, LARGE_ITEM_COUNT, PROGRESS_MODES, show_progress
from ..stats.report import format_table, plot_weights, rfs_summary, weight_ratio_warning
from ..stats.summary import DatasetStats
from ..weights import (
    DEFAULT_NORMALIZATION,
    NORMALIZATIONS,
    SCHEMES,
    WeightsFile,
    compute_class_weights,
    frequency_groups,
    save_weights,
)

__all__ = ["WeightsResult", "build_parser", "compute_weights_file", "main"]

_MAX_LISTED_ISSUES = 20


@dataclass(frozen=True)
class WeightsResult:
    """What :func:`compute_weights_file` computed.

    Attributes:
        weights: the weights file's contents (written to ``output`` when one was given).
        dataset: the statistics read, with the suspicious boxes (``issues``) and per-image labels.
        report: the text the command prints: source, per-class table, ignored boxes, repeat-factor summary.
        warnings: suspicious boxes and a large weight ratio, one sentence each.
    """

    weights: WeightsFile
    dataset: DatasetStats
    report: str
    warnings: list[str]


def compute_weights_file(
    *,
    coco: str | None = None,
    voc: str | None = None,
    d2_dataset: str | None = None,
    register_coco: Sequence[str] | None = None,
    mmdet_config: str | None = None,
    classes: Sequence[str] | None = None,
    voc_split: str | None = None,
    keep_empty: bool = False,
    include_ignored: bool = False,
    scheme: str = "sqrt_inverse",
    count: str = "instances",
    beta: float = 0.999,
    power: float = 1.0,
    max_ratio: float | None = None,
    missing: str = "error",
    normalize: str = DEFAULT_NORMALIZATION,
    background_weight: float = 1.0,
    rfs_threshold: float | None = None,
    output: str | os.PathLike | None = None,
    plot: str | os.PathLike | None = None,
    progress: str = "auto",
) -> WeightsResult:
    """Class statistics of one training set and its weights file; the options of ``tools/compute_weights.py``.

    Exactly one source: ``coco`` (COCO/LVIS json), ``voc`` (Pascal VOC folder, ``voc_split`` selecting
    ``ImageSets/Main/<split>.txt``), ``d2_dataset`` (a Detectron2 registered name), ``register_coco``
    (``(name, json, image_root)``, registered in Detectron2 first) or ``mmdet_config``. The weights follow
    :func:`detbalance.weights.compute_class_weights` (``scheme``, ``count``, ``beta``, ``power``, ``max_ratio``,
    ``missing``, ``normalize``); ``plot`` and ``output`` are written atomically, nothing when the input is bad.

    Raises:
        ValueError, OSError, KeyError: bad input (the command turns them into exit status 2).

    Example::

        result = compute_weights_file(coco="train.json", scheme="sqrt_inverse", output="weights.json")
        print(result.report)
    """
    args = SimpleNamespace(**locals())  # the options above, under the names the command line gives them
    sources = [s for s in _SOURCES if getattr(args, s) is not None]
    if len(sources) != 1:
        raise ValueError(f"sources {sources}; expected exactly one of {list(_SOURCES)}")
    ds = _read(args)
    wf = _weights_file(args, ds)
    rfs = rfs_summary(ds.image_labels, rfs_threshold) if rfs_threshold is not None else None
    if plot:
        plot_weights(plot, wf, count=count)
    if output:
        save_weights(output, wf)

    lines = [f"source: {ds.source}", format_table(wf)]
    ignored = sum(ds.ignored_counts)
    if ignored:
        how = "counted (--include-ignored)" if ds.include_ignored else "not counted (--include-ignored counts them)"
        lines.append(f"{ignored} crowd/ignored/difficult boxes: {how}")
    if rfs:
        lines.append(rfs)
    warnings = [f"{issue} (counted)" for issue in ds.issues[:_MAX_LISTED_ISSUES]]
    if len(ds.issues) > _MAX_LISTED_ISSUES:
        warnings.append(f"... and {len(ds.issues) - _MAX_LISTED_ISSUES} more suspicious boxes")
    ratio_msg = weight_ratio_warning(wf.weights, wf.stats.class_names)
    if ratio_msg:
        warnings.append(ratio_msg)
    return WeightsResult(weights=wf, dataset=ds, report="\n".join(lines), warnings=warnings)


#: The options of :func:`compute_weights_file` and their defaults (the command line's defaults too).
_DEFAULTS = {name: p.default for name, p in inspect.signature(compute_weights_file).parameters.items()}
_SOURCES = ("coco", "voc", "d2_dataset", "register_coco", "mmdet_config")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="compute_weights.py",
        description="Per-class statistics and loss weights of a detection training set, in the model's label order.",
    )
    src = p.add_argument_group("source (exactly one)").add_mutually_exclusive_group(required=True)
    src.add_argument("--coco", metavar="JSON", help="COCO or LVIS instances json (streamed)")
    src.add_argument("--voc", metavar="DIR", help="Pascal VOC folder containing Annotations/")
    src.add_argument("--d2-dataset", metavar="NAME", help="dataset registered in Detectron2's DatasetCatalog")
    src.add_argument(
        "--register-coco",
        nargs=3,
        metavar=("NAME", "JSON", "IMGDIR"),
        help="register a COCO json in Detectron2 under NAME, then read it like --d2-dataset",
    )
    src.add_argument("--mmdet-config", metavar="CFG", help="MMDetection config; reads train_dataloader.dataset")
    p.add_argument(
        "--classes",
        nargs="+",
        metavar="NAME",
        help="--coco/--voc: the model's class names in label order (default: by category id / sorted)",
    )
    p.add_argument("--voc-split", metavar="SPLIT", help="--voc: only images of ImageSets/Main/SPLIT.txt")
    p.add_argument(
        "--keep-empty",
        action="store_true",
        help="--d2-dataset/--register-coco: count the images without a non-crowd box too, as a loader "
        "with DATALOADER.FILTER_EMPTY_ANNOTATIONS False (default: drop them, as detectron2's "
        "default loader; --mmdet-config follows the config's filter_cfg)",
    )
    p.add_argument(
        "--include-ignored",
        action="store_true",
        help="count crowd/ignored/difficult boxes too (default: report them, do not count them)",
    )

    w = p.add_argument_group("weights")
    w.add_argument("--scheme", choices=SCHEMES, default=_DEFAULTS["scheme"])
    w.add_argument(
        "--count",
        choices=("instances", "images"),
        default=_DEFAULTS["count"],
        help="class frequency the scheme uses: boxes per class or images containing the class",
    )
    w.add_argument("--beta", type=float, default=_DEFAULTS["beta"], help="effective_number: beta in [0, 1)")
    w.add_argument(
        "--power", type=float, default=_DEFAULTS["power"], help="exponent on the scheme's weights (0 = uniform)"
    )
    w.add_argument("--max-ratio", type=float, default=_DEFAULTS["max_ratio"], help="cap max/min weight ratio")
    w.add_argument(
        "--missing",
        choices=("error", "max"),
        default=_DEFAULTS["missing"],
        help="classes without boxes: fail (default) or give them the largest weight",
    )
    w.add_argument(
        "--normalize",
        choices=NORMALIZATIONS,
        default=_DEFAULTS["normalize"],
        help="scale the weights so that an average counted instance weighs 1 (instances: background proposals, "
        "weighted --background-weight, keep their balance against objects) or their mean over classes is 1",
    )
    w.add_argument(
        "--background-weight",
        type=float,
        default=_DEFAULTS["background_weight"],
        help="weight stored for the background class",
    )
    w.add_argument(
        "--rfs-threshold",
        type=float,
        default=_DEFAULTS["rfs_threshold"],
        help="also summarize repeat factor sampling with this frequency threshold (LVIS: 0.001)",
    )

    o = p.add_argument_group("output")
    o.add_argument("-o", "--output", metavar="JSON", help="weights file to write (atomically)")
    o.add_argument("--plot", metavar="PNG", help="bar chart of class frequencies with the weights overlaid")
    o.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default=_DEFAULTS["progress"],
        help=f"progress bar; auto = for inputs over {LARGE_FILE_BYTES >> 20} MiB or {LARGE_ITEM_COUNT} files/images",
    )
    return p


def _read(args: SimpleNamespace) -> DatasetStats:
    if (args.classes or args.voc_split) and not (args.coco or args.voc):
        raise ValueError("--classes and --voc-split apply to --coco/--voc; framework sources define their classes")
    if args.keep_empty and not (args.d2_dataset or args.register_coco):
        raise ValueError(
            "--keep-empty applies to --d2-dataset/--register-coco; --coco/--voc count every image "
            "and --mmdet-config follows its filter_cfg"
        )
    if args.coco:
        from ..stats.coco import read_coco

        large = os.path.isfile(args.coco) and os.path.getsize(args.coco) > LARGE_FILE_BYTES
        return read_coco(
            args.coco,
            classes=args.classes,
            include_ignored=args.include_ignored,
            progress=show_progress(args.progress, large),
        )
    if args.voc:
        from ..stats.voc import read_voc

        ann = os.path.join(args.voc, "Annotations")
        large = os.path.isdir(ann) and len(os.listdir(ann)) > LARGE_ITEM_COUNT
        return read_voc(
            args.voc,
            split=args.voc_split,
            classes=args.classes,
            include_ignored=args.include_ignored,
            progress=show_progress(args.progress, large),
        )
    if args.mmdet_config:
        from detbalance.mmdet.stats import stats_from_mmdet_config

        return stats_from_mmdet_config(args.mmdet_config, include_ignored=args.include_ignored, progress=args.progress)
    from detbalance.detectron2.stats import register_coco, stats_from_detectron2

    name = args.d2_dataset
    if args.register_coco:
        name, json_file, image_root = args.register_coco
        register_coco(name, json_file, image_root)
    return stats_from_detectron2(
        name, include_ignored=args.include_ignored, filter_empty=not args.keep_empty, progress=args.progress
    )


def _weights_file(args: SimpleNamespace, ds: DatasetStats) -> WeightsFile:
    s = ds.stats
    counts = s.instance_counts if args.count == "instances" else s.image_counts
    weights = compute_class_weights(
        counts,
        args.scheme,
        beta=args.beta,
        power=args.power,
        max_ratio=args.max_ratio,
        missing=args.missing,
        normalize=args.normalize,
        image_counts=s.image_counts if args.scheme == "median_frequency" and args.count == "instances" else None,
        class_names=s.class_names,
    )
    if not args.background_weight >= 0:
        raise ValueError(f"--background-weight must be >= 0, got {args.background_weight}")
    params = {
        "count": args.count,
        "beta": args.beta,
        "power": args.power,
        "max_ratio": args.max_ratio,
        "missing": args.missing,
        "normalize": args.normalize,
        "include_ignored": ds.include_ignored,
        "source": ds.source,
    }
    if args.rfs_threshold is not None:
        params["rfs_threshold"] = args.rfs_threshold
    wf = WeightsFile(
        stats=s,
        scheme=args.scheme,
        params=params,
        weights=[float(v) for v in weights],
        background_weight=float(args.background_weight),
        groups=frequency_groups(s.image_counts),
    )
    problems = wf.problems()
    if problems:
        raise ValueError(f"inconsistent statistics from {ds.source}: field '{problems[0][0]}' {problems[0][1]}")
    return wf


def run(args: argparse.Namespace) -> int:
    """Execute parsed arguments; bad input raises (``main`` turns it into exit status 2)."""
    result = compute_weights_file(**vars(args))
    print(result.report)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run; returns the exit status (2 on bad input, with the reason on stderr)."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, OSError, KeyError) as e:
        msg = str(e)
        if isinstance(e, KeyError) and e.args:  # raised by a framework's loader: a sentence, or just the key
            msg = str(e.args[0]) if " " in str(e.args[0]) else f"missing key {e.args[0]!r} in the dataset"
        print(f"error: {msg}", file=sys.stderr)
        return 2
