"""Build the box head's classification loss from a loss name, a weights file or the training datasets.

Statistics come from the weights file when one is given (``load_weights``, class count checked against
``num_classes``), else from ``DatasetCatalog``/``MetadataCatalog`` for the training datasets
(:func:`detbalance.detectron2.stats.class_stats_from_catalog`, the images the training loader iterates), printed
so the run records what it trained with. Losses that learn their statistics while training (EQLv2, Seesaw) need
neither: their statistics are buffers, saved in and restored from checkpoints.

A model built for inference only (``DefaultPredictor``) needs neither the weights file nor the training set:
when the file does not exist, the training datasets are not registered (or their files are absent) or none is
named, the loss is built :func:`~detbalance.losses.without_statistics.without_statistics` (test-time scores use
no statistics) and its first training step raises the error, naming the missing file or datasets. A weights
file or dataset that is there but does not fit (another number of classes, malformed) fails the build.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from torch import nn

from ..losses import LOSS_TABLE, LOSSES
from ..losses.without_statistics import without_statistics
from ..weights import ClassStats, WeightsFile, load_weights

__all__ = ["build_classification_loss", "load_class_statistics", "TRAINED_STATISTICS_LOSSES"]

#: Losses that accumulate their class statistics while training (registered buffers): without a weights file
#: they are built from ``num_classes`` alone; with one, its class count is still checked.
TRAINED_STATISTICS_LOSSES = frozenset(name for name in LOSSES if not LOSS_TABLE[name].needs_statistics)


def build_classification_loss(
    name: str,
    num_classes: int,
    *,
    weights_file: str | None = None,
    dataset_names: Sequence[str] = (),
    filter_empty: bool = True,
    hyper_params: Mapping[str, float] | None = None,
) -> nn.Module:
    """``LOSSES[name].from_stats(num_classes, statistics, **hyper_params)``.

    Args:
        name: a key of :data:`detbalance.losses.LOSSES`.
        num_classes: K foreground classes of the detector.
        weights_file: detbalance weights file; its class count must equal ``num_classes``.
        dataset_names: registered detectron2 datasets to count when ``weights_file`` is None.
        filter_empty: ``DATALOADER.FILTER_EMPTY_ANNOTATIONS``: count only the images with a non-crowd box, as
            the training loader iterates them.
        hyper_params: keyword arguments of the loss (e.g. ``{"beta": 0.999, "gamma": 2.0}``).

    Raises:
        ValueError: unknown ``name``; a weights file or datasets with a class count other than ``num_classes``,
            or a malformed weights file. A source that is not here (see the module docstring) raises only when
            the loss first trains.

    Example::

        loss = build_classification_loss("SeesawLoss", 8, hyper_params={"p": 0.8, "q": 2.0})
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}, expected one of {sorted(LOSSES)}")
    hyper_params = dict(hyper_params or {})
    if name in TRAINED_STATISTICS_LOSSES and not weights_file:
        return LOSSES[name](num_classes, **hyper_params)
    missing = _missing_source(weights_file, dataset_names)
    if missing is None:
        try:
            statistics = load_class_statistics(
                num_classes, weights_file=weights_file, dataset_names=dataset_names, filter_empty=filter_empty
            )
        except OSError as error:  # a registered dataset whose files are not on this machine
            missing = error
    if missing is not None:
        return without_statistics(LOSSES[name], num_classes, missing, **hyper_params)
    return LOSSES[name].from_stats(num_classes, statistics, **hyper_params)


def _missing_source(weights_file: str | None, dataset_names: Sequence[str]) -> Exception | None:
    """The error of a statistics source that is not here (None when it is)."""
    if weights_file:
        found = os.path.isfile(weights_file)
        return None if found else FileNotFoundError(f"weights file {weights_file} does not exist")
    if not dataset_names:
        return ValueError(
            "no class statistics: expected a weights file (DETBALANCE.WEIGHTS_FILE) or training "
            "datasets (DATASETS.TRAIN), got neither"
        )
    from detectron2.data import DatasetCatalog

    unregistered = [n for n in dataset_names if n not in DatasetCatalog.list()]
    if unregistered:
        return ValueError(f"training datasets {unregistered} are not registered in Detectron2's DatasetCatalog")
    return None


def load_class_statistics(
    num_classes: int,
    *,
    weights_file: str | None = None,
    dataset_names: Sequence[str] = (),
    filter_empty: bool = True,
) -> WeightsFile | ClassStats:
    """The weights file's contents, else the statistics of ``dataset_names`` (printed); K checked."""
    if weights_file:
        contents = load_weights(weights_file)
        if contents.num_classes != num_classes:
            raise ValueError(
                f"weights file {weights_file} describes {contents.num_classes} classes, expected {num_classes} "
                "(MODEL.ROI_HEADS.NUM_CLASSES / num_classes)"
            )
        return contents
    if not dataset_names:
        raise ValueError(
            "no class statistics: expected a weights file (DETBALANCE.WEIGHTS_FILE) or training datasets "
            "(DATASETS.TRAIN), got neither"
        )
    from .stats import class_stats_from_catalog

    stats = class_stats_from_catalog(list(dataset_names), filter_empty=filter_empty)
    if stats.num_classes != num_classes:
        raise ValueError(
            f"datasets {list(dataset_names)} have {stats.num_classes} classes, expected {num_classes} "
            "(MODEL.ROI_HEADS.NUM_CLASSES / num_classes)"
        )
    print(_describe(stats, dataset_names))
    return stats


def _describe(stats: ClassStats, dataset_names: Sequence[str]) -> str:
    rows = [f"detbalance: class statistics of {', '.join(dataset_names)} ({stats.num_images} images):"]
    width = max(len(n) for n in stats.class_names)
    for name, instances, images in zip(stats.class_names, stats.instance_counts, stats.image_counts):
        rows.append(f"  {name:<{width}}  instances {instances:>8}  images {images:>8}")
    return "\n".join(rows)
