"""Build the box head's classification loss from a loss name, a weights file or the training datasets.

Statistics come from the weights file when one is given (``load_weights``, class count checked against
``num_classes``), else from ``DatasetCatalog``/``MetadataCatalog`` for the training datasets
(:func:`detbalance.detectron2.stats.class_stats_from_catalog`), printed so the run records what it trained with.
Losses that learn their statistics while training (EQLv2, Seesaw) need neither.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

from torch import nn

from ..losses import LOSSES
from ..weights import ClassStats, WeightsFile, load_weights

__all__ = ["build_classification_loss", "load_class_statistics", "TRAINED_STATISTICS_LOSSES"]

#: Losses that accumulate their class statistics while training (registered buffers): without a weights file
#: they are built from ``num_classes`` alone; with one, its class count is still checked.
TRAINED_STATISTICS_LOSSES = frozenset({"EQLv2Loss", "SeesawLoss"})


def build_classification_loss(
    name: str,
    num_classes: int,
    *,
    weights_file: Optional[str] = None,
    dataset_names: Sequence[str] = (),
    hyper_params: Optional[Mapping[str, float]] = None,
) -> nn.Module:
    """``LOSSES[name].from_stats(num_classes, statistics, **hyper_params)``.

    Args:
        name: a key of :data:`detbalance.losses.LOSSES`.
        num_classes: K foreground classes of the detector.
        weights_file: detbalance weights file; its class count must equal ``num_classes``.
        dataset_names: registered detectron2 datasets to count when ``weights_file`` is None.
        hyper_params: keyword arguments of the loss (e.g. ``{"beta": 0.999, "gamma": 2.0}``).

    Raises:
        ValueError: unknown ``name``; a weights file or datasets with a class count other than ``num_classes``;
            neither a weights file nor datasets for a loss that needs statistics.

    Example::

        loss = build_classification_loss("SeesawLoss", 8, hyper_params={"p": 0.8, "q": 2.0})
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}, expected one of {sorted(LOSSES)}")
    hyper_params = dict(hyper_params or {})
    if name in TRAINED_STATISTICS_LOSSES and not weights_file:
        return LOSSES[name](num_classes, **hyper_params)
    statistics = load_class_statistics(num_classes, weights_file=weights_file, dataset_names=dataset_names)
    return LOSSES[name].from_stats(num_classes, statistics, **hyper_params)


def load_class_statistics(
    num_classes: int, *, weights_file: Optional[str] = None, dataset_names: Sequence[str] = ()
) -> "WeightsFile | ClassStats":
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

    stats = class_stats_from_catalog(list(dataset_names))
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
