"""LVIS frequency groups and repeat-factor sampling (Gupta et al., "LVIS", CVPR 2019, Appendix B.2)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import torch

__all__ = [
    "RARE_MAX_IMAGES",
    "COMMON_MAX_IMAGES",
    "frequency_groups",
    "repeat_factors",
    "stochastic_repeats",
    "epoch_generator",
    "repeat_factor_epoch",
]

#: LVIS rule: a class is rare ('r') in 1-10 training images, common ('c') in 11-100, frequent ('f') in more.
RARE_MAX_IMAGES = 10
COMMON_MAX_IMAGES = 100


def frequency_groups(image_counts: Sequence[int]) -> list[str]:
    """LVIS frequency group ``'r'``, ``'c'`` or ``'f'`` of each class from the number of images containing it.

    ``'r'``: at most 10 images, ``'c'``: 11-100, ``'f'``: more than 100. A class that occurs in no image is
    counted as rare (LVIS itself has none).

    Args:
        image_counts: ``m[K]``, non-negative integers.

    Example:
        >>> frequency_groups([1, 10, 11, 100, 101])
        ['r', 'r', 'c', 'c', 'f']
    """
    m = np.asarray(image_counts)
    if m.ndim != 1:
        raise ValueError(f"image_counts must be 1-D (one entry per class), got shape {m.shape}")
    if m.size and (not np.issubdtype(m.dtype, np.number) or (m < 0).any() or (m != np.floor(m)).any()):
        raise ValueError(f"image_counts must be non-negative integers, got {m.tolist()[:10]}")
    return ["r" if c <= RARE_MAX_IMAGES else "c" if c <= COMMON_MAX_IMAGES else "f" for c in m.tolist()]


def repeat_factors(image_labels: Iterable[Iterable[Hashable]], threshold: float, *, sqrt: bool = True) -> torch.Tensor:
    r"""Per-image repeat factors for repeat-factor sampling (RFS).

    With :math:`f(c)` the fraction of images containing class *c*, the class factor is
    :math:`r(c) = \max(1, \sqrt{t / f(c)})` (or :math:`\max(1, t/f(c))` with ``sqrt=False``) and an image's factor
    is the largest class factor among its labels (1 for an image without labels). Same values as detectron2's
    ``RepeatFactorTrainingSampler.repeat_factors_from_category_frequency``, computed from labels alone, when
    ``image_labels`` lists the images the loader iterates (after its empty-image filter) with every annotation's
    class, crowd ones included, as detectron2 counts them (``DatasetStats.image_labels`` of the bridges).

    Args:
        image_labels: for each of the N images, the labels of its instances; repeats are allowed.
        threshold: frequency threshold ``t`` > 0 (LVIS uses 0.001); a class in ``t/4`` of the images repeats 2x.
        sqrt: use the square-root rule (the LVIS paper's and detectron2's default).

    Returns:
        ``Tensor[N]``, float32, each >= 1 (the type detectron2's ``RepeatFactorTrainingSampler`` takes).

    Example:
        >>> repeat_factors([[0], [0, 1], [0], [0]], threshold=0.5).tolist()
        [1.0, 1.4142135381698608, 1.0, 1.0]
    """
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a positive number, got {threshold}")
    label_sets = [frozenset(labels) for labels in image_labels]
    num_images = len(label_sets)
    if num_images == 0:
        return torch.zeros(0, dtype=torch.float32)
    images_with = Counter(c for labels in label_sets for c in labels)
    class_factor = {}
    for c, count in images_with.items():
        ratio = threshold / (count / num_images)
        class_factor[c] = max(1.0, math.sqrt(ratio) if sqrt else ratio)
    factors = [max((class_factor[c] for c in labels), default=1.0) for labels in label_sets]
    return torch.tensor(factors, dtype=torch.float32)


def _check_factors(factors) -> torch.Tensor:
    f = torch.as_tensor(factors, dtype=torch.float64)
    if f.ndim != 1 or not torch.isfinite(f).all() or (f < 1).any():
        raise ValueError(
            f"repeat factors must be a 1-D sequence of finite numbers >= 1, got "
            f"{f.flatten().tolist()[:10] if f.numel() else f.tolist()} (shape {tuple(f.shape)})"
        )
    return f


def stochastic_repeats(factors, generator: torch.Generator) -> torch.Tensor:
    r"""Integer repeats of each image for one epoch by stochastic rounding of its repeat factor.

    :math:`n_i = \lfloor r_i \rfloor + b_i` with :math:`b_i \sim \mathrm{Bernoulli}(r_i - \lfloor r_i \rfloor)`,
    so :math:`\mathbb{E}[n_i] = r_i` (LVIS, Appendix B.2; detectron2's ``RepeatFactorTrainingSampler`` rounds the
    same way).

    Args:
        factors: ``r[N]``, each >= 1 (:func:`repeat_factors`).
        generator: CPU generator the N Bernoulli draws come from.

    Returns:
        ``Tensor[N]``, int64, each ``floor(r_i)`` or ``floor(r_i) + 1``.

    Example:
        >>> stochastic_repeats([1.0, 2.0, 3.0], torch.Generator().manual_seed(0)).tolist()
        [1, 2, 3]
    """
    f = _check_factors(factors)
    whole = torch.floor(f)
    draws = torch.rand(f.numel(), generator=generator, dtype=torch.float64)
    return whole.long() + (draws < f - whole).long()


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch)`` (one independent stream per epoch, the same on every rank)."""
    for name, value in (("seed", seed), ("epoch", epoch)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name}={value!r}; expected an integer >= 0")
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def repeat_factor_epoch(factors, seed: int, epoch: int, *, shuffle: bool = True) -> torch.Tensor:
    """The image indices of one repeat-factor sampling epoch: image ``i`` appears :func:`stochastic_repeats` times.

    Args:
        factors: ``r[N]``, each >= 1.
        seed, epoch: integers >= 0; the epoch's draws and order come from :func:`epoch_generator` of the pair.
        shuffle: shuffle the repeated indices (else ascending).

    Returns:
        ``Tensor[M]``, int64 indices into the N images, ``M = sum(n_i)`` (about ``sum(r_i)``).

    Example:
        >>> repeat_factor_epoch([1.0, 2.0], seed=0, epoch=0, shuffle=False).tolist()
        [0, 1, 1]
    """
    generator = epoch_generator(seed, epoch)
    repeats = stochastic_repeats(factors, generator)
    indices = torch.repeat_interleave(torch.arange(repeats.numel()), repeats)
    if shuffle:
        indices = indices[torch.randperm(indices.numel(), generator=generator)]
    return indices
