"""LVIS frequency groups and repeat-factor sampling (Gupta et al., "LVIS", CVPR 2019, Appendix B.2)."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

import numpy as np
import torch

__all__ = ["RARE_MAX_IMAGES", "COMMON_MAX_IMAGES", "frequency_groups", "repeat_factors"]

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


def repeat_factors(
    image_labels: Iterable[Iterable[Hashable]], threshold: float, *, sqrt: bool = True
) -> torch.Tensor:
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
