"""Build the box head's classification loss from a loss name, a weights file or the training datasets.

Statistics come from the weights file when one is given (``load_weights``, class count checked against
``num_classes``), else from ``DatasetCatalog``/``MetadataCatalog`` for the training datasets
(:func:`detbalance.detectron2.stats.class_stats_from_catalog`, the images the training loader iterates), printed
so the run records what it trained with. Losses that learn their statistics while training (EQLv2, Seesaw) need
neither: their statistics are buffers, saved in and restored from checkpoints.

A model built for inference only (``DefaultPredictor``) needs neither the weights file nor the training set:
when the file does not exist, the training datasets are not registered (or their files are absent) or none is
named, the loss is built for inference only (:mod:`detbalance.losses.statistics_source`, as in MMDetection) and
its first training step raises the error, naming the missing file or datasets. A weights file or dataset that is
there but does not fit (another number of classes, malformed) fails the build, naming ``num_classes_key``: the
config key of the head's class count (``MODEL.ROI_HEADS.NUM_CLASSES`` for the box heads,
``MODEL.RETINANET.NUM_CLASSES`` for ``BalancedRetinaNet``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from ..losses import LOSS_TABLE, LOSSES
from ..losses.statistics_source import build_from_statistics, missing_weights_file
from ..weights import ClassStats, WeightsFile, load_weights

__all__ = [
    "build_classification_loss",
    "build_loss_from_source",
    "load_class_statistics",
    "TRAINED_STATISTICS_LOSSES",
    "BOX_HEAD_CLASSES_KEY",
]

#: Losses that accumulate their class statistics while training (registered buffers): without a weights file
#: they are built from ``num_classes`` alone; with one, its class count is still checked.
TRAINED_STATISTICS_LOSSES = frozenset(name for name in LOSSES if not LOSS_TABLE[name].needs_statistics)

#: Where the box heads' class count is set: the yaml key, or the argument of a LazyConfig.
BOX_HEAD_CLASSES_KEY = "MODEL.ROI_HEADS.NUM_CLASSES / num_classes"


def build_classification_loss(
    name: str,
    num_classes: int,
    *,
    weights_file: str | None = None,
    dataset_names: Sequence[str] = (),
    filter_empty: bool = True,
    hyper_params: Mapping[str, float] | None = None,
    num_classes_key: str = BOX_HEAD_CLASSES_KEY,
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
        num_classes_key: the setting of the head's ``num_classes``, named when the statistics describe another
            number of classes.

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
    return build_loss_from_source(
        LOSSES[name],
        num_classes,
        hyper_params,
        weights_file=weights_file,
        dataset_names=dataset_names,
        filter_empty=filter_empty,
        num_classes_key=num_classes_key,
    )


def build_loss_from_source(
    loss_cls: type[nn.Module],
    num_classes: int,
    hyper_params: Mapping[str, float],
    *,
    weights_file: str | None,
    dataset_names: Sequence[str] = (),
    filter_empty: bool = True,
    num_classes_key: str,
) -> nn.Module:
    """``loss_cls.from_stats`` with the statistics of ``weights_file``, else of ``dataset_names``
    (:func:`load_class_statistics`); built for inference only where that source is not here (module docstring)."""
    return build_from_statistics(
        loss_cls,
        num_classes,
        hyper_params,
        _missing_source(weights_file, dataset_names),
        lambda: load_class_statistics(
            num_classes,
            weights_file=weights_file,
            dataset_names=dataset_names,
            filter_empty=filter_empty,
            num_classes_key=num_classes_key,
        ),
    )


def _missing_source(weights_file: str | None, dataset_names: Sequence[str]) -> Exception | None:
    """The error of a statistics source that is not here (None when it is)."""
    if weights_file:
        return missing_weights_file(weights_file)
    if not dataset_names:
        return _no_source()
    from detectron2.data import DatasetCatalog

    unregistered = [n for n in dataset_names if n not in DatasetCatalog.list()]
    if unregistered:
        return ValueError(f"training datasets {unregistered} are not registered in Detectron2's DatasetCatalog")
    return None


def _no_source() -> ValueError:
    return ValueError(
        "no class statistics: expected a weights file (DETBALANCE.WEIGHTS_FILE) or training datasets "
        "(DATASETS.TRAIN), got neither"
    )


def load_class_statistics(
    num_classes: int,
    *,
    weights_file: str | None = None,
    dataset_names: Sequence[str] = (),
    filter_empty: bool = True,
    num_classes_key: str = BOX_HEAD_CLASSES_KEY,
) -> WeightsFile | ClassStats:
    """The weights file's contents, else the statistics of ``dataset_names`` (printed); K checked against
    ``num_classes``, set by ``num_classes_key`` (named in the error)."""
    if weights_file:
        contents = load_weights(weights_file)
        if contents.num_classes != num_classes:
            raise ValueError(
                f"weights file {weights_file} describes {contents.num_classes} classes, expected {num_classes} "
                f"({num_classes_key})"
            )
        return contents
    if not dataset_names:
        raise _no_source()
    from .stats import class_stats_from_catalog

    stats = class_stats_from_catalog(list(dataset_names), filter_empty=filter_empty)
    if stats.num_classes != num_classes:
        raise ValueError(
            f"datasets {list(dataset_names)} have {stats.num_classes} classes, expected {num_classes} "
            f"({num_classes_key})"
        )
    print(_describe(stats, dataset_names))
    return stats


def _describe(stats: ClassStats, dataset_names: Sequence[str]) -> str:
    rows = [f"detbalance: class statistics of {', '.join(dataset_names)} ({stats.num_images} images):"]
    width = max(len(n) for n in stats.class_names)
    for name, instances, images in zip(stats.class_names, stats.instance_counts, stats.image_counts):
        rows.append(f"  {name:<{width}}  instances {instances:>8}  images {images:>8}")
    return "\n".join(rows)
