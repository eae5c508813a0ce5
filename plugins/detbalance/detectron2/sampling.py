"""Repeat-factor sampling (LVIS, Gupta et al. CVPR 2019) with detectron2's ``RepeatFactorTrainingSampler``.

Image ``I`` is repeated ``r(I) = max_{c in I} max(1, sqrt(t / f(c)))`` times per epoch on average, where ``f(c)``
is the fraction of training images with a box of class ``c``, crowd boxes included (as detectron2 counts it; the
``image_counts`` of the class statistics leave crowd boxes out by default, so the two differ where a crowd box is the
only box of its class in an image), and ``t`` the threshold. The factors come from
:func:`detbalance.weights.repeat_factors`; the sampler is detectron2's own.

yaml configs need no code: detectron2 builds the same sampler (identical factors) from::

    DATALOADER:
      SAMPLER_TRAIN: "RepeatFactorTrainingSampler"
      REPEAT_THRESHOLD: 0.001

Python (e.g. a LazyConfig ``dataloader.train.sampler``, or with per-box weights)::

    dicts = get_detection_dataset_dicts(cfg.DATASETS.TRAIN)
    loader = build_detection_train_loader(
        cfg, dataset=dicts, mapper=WeightedDatasetMapper(cfg, is_train=True),
        sampler=build_repeat_factor_sampler(dicts, repeat_thresh=cfg.DATALOADER.REPEAT_THRESHOLD))
"""

from __future__ import annotations

from collections.abc import Sequence

from detectron2.data.samplers import RepeatFactorTrainingSampler

from ..weights import repeat_factors

__all__ = ["build_repeat_factor_sampler"]


def build_repeat_factor_sampler(
    dataset_dicts: Sequence[dict], repeat_thresh: float, *, seed: int | None = None
) -> RepeatFactorTrainingSampler:
    """detectron2 ``RepeatFactorTrainingSampler`` over ``dataset_dicts`` (detectron2 dataset format).

    Args:
        dataset_dicts: the training images, in the order the data loader indexes them; each image's
            ``annotations[*]["category_id"]`` (contiguous ids, as DatasetCatalog provides) are its classes.
        repeat_thresh: frequency threshold ``t`` > 0; a class in fewer than ``t * N`` of the N images repeats.
        seed: shuffle seed, the same on every process (None: a seed shared by all processes).
    """
    labels = [[a["category_id"] for a in d.get("annotations", ())] for d in dataset_dicts]
    return RepeatFactorTrainingSampler(repeat_factors(labels, repeat_thresh), seed=seed)
