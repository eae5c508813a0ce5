"""Repeat-factor sampling (LVIS, Gupta et al. CVPR 2019) in MMDetection: ``DBRepeatFactorSampler``.

The same statistics and sampling as detectron2's ``RepeatFactorTrainingSampler``: with ``f(c)`` the fraction of
the dataset's images with an instance of class ``c`` (ignored/crowd instances included, as detectron2 counts
them), ``r(c) = max(1, sqrt(t / f(c)))``, an image's factor is the largest over its classes (1 for an image
without instances) and every epoch repeats image ``i`` ``floor(r_i) + Bernoulli(r_i - floor(r_i))`` times, in a
shuffled order drawn from ``(seed, epoch)``. The maths is :mod:`detbalance.weights.sampling`; this class only
reads the dataset's classes (``get_cat_ids``) and shards the epoch across ranks as mmengine's ``DefaultSampler``
does (padded to a multiple of the world size, rank ``r`` takes every ``world_size``-th index from ``r``).

Config::

    custom_imports = dict(imports=['detbalance.mmdet'], allow_failed_imports=False)
    train_dataloader = dict(sampler=dict(type='DBRepeatFactorSampler', threshold=0.001, seed=0))

It is epoch-based: ``EpochBasedTrainLoop`` calls ``set_epoch`` before each epoch, and ``IterBasedTrainLoop``
starts the next epoch (``set_epoch``) whenever one is exhausted, so it serves both loops.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ..weights.sampling import repeat_factor_epoch, repeat_factors

__all__ = ["DBRepeatFactorSampler"]


@DATA_SAMPLERS.register_module()
class DBRepeatFactorSampler(Sampler):
    """Repeat-factor sampler over an MMDetection dataset (module docstring).

    Args:
        dataset: a dataset with ``get_cat_ids(idx)`` (every ``BaseDetDataset`` and mmengine's wrappers).
        threshold: frequency threshold ``t`` > 0 (LVIS: 0.001 for ~100k images).
        seed: seed of every epoch's draws and order, the same on every rank (None: one shared random seed).
        shuffle: shuffle each epoch's repeated indices.

    Raises:
        ValueError: a threshold that is not a positive number, a dataset without ``get_cat_ids``.
    """

    def __init__(self, dataset: Sized, threshold: float, seed: int | None = None, shuffle: bool = True) -> None:
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not (math.isfinite(threshold) and threshold > 0)
        ):
            raise ValueError(
                f"DBRepeatFactorSampler: threshold={threshold!r}; expected a number > 0 (e.g. 0.001, LVIS's)"
            )
        if not isinstance(shuffle, bool):
            raise ValueError(f"DBRepeatFactorSampler: shuffle={shuffle!r}; expected True or False")
        if not hasattr(dataset, "get_cat_ids"):
            raise ValueError(
                f"DBRepeatFactorSampler: the dataset {type(dataset).__name__} has no get_cat_ids(idx); "
                "expected an MMDetection dataset (BaseDetDataset or a wrapper of one)"
            )
        self.rank, self.world_size = get_dist_info()
        self.dataset = dataset
        self.threshold = float(threshold)
        self.seed = sync_random_seed() if seed is None else seed
        self.shuffle = shuffle
        self.repeat_factors = repeat_factors([dataset.get_cat_ids(i) for i in range(len(dataset))], self.threshold)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the repeats and order of ``epoch`` (the loops call it before each epoch)."""
        self.epoch = epoch
        indices = repeat_factor_epoch(self.repeat_factors, self.seed, epoch, shuffle=self.shuffle).tolist()
        self.num_samples = math.ceil(len(indices) / self.world_size)
        total = self.num_samples * self.world_size
        if indices:
            indices = (indices * (total // len(indices) + 1))[:total]
        self._indices = indices[self.rank : total : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices)

    def __len__(self) -> int:
        """Samples of this rank in the current epoch."""
        return self.num_samples
