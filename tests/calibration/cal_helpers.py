"""Helpers of the calibration tests: the NorCal reference transcription, a weights file, synthetic batches."""

from __future__ import annotations

from pathlib import Path

import torch

from detbalance.weights import ClassStats, WeightsFile, frequency_groups, save_weights
from helpers import D2_TINY_CONFIG, MMDET_TINY_CONFIG, NUM_CLASSES  # noqa: F401  (the tests import them here)

SIZE = 128
NAMES = ["circle", "square", "triangle", "cross", "ring", "hexagon", "star", "diamond"]
IMAGE_COUNTS = [700, 500, 300, 150, 80, 40, 20, 10]


def write_weights(path: Path) -> Path:
    stats = ClassStats(NAMES, [2 * n for n in IMAGE_COUNTS], IMAGE_COUNTS, 1200)
    save_weights(
        path,
        WeightsFile(stats=stats, scheme="uniform", weights=[1.0] * NUM_CLASSES, groups=frequency_groups(IMAGE_COUNTS)),
    )
    return path


def reference_norcal_probs(logits: torch.Tensor, counts, gamma: float) -> torch.Tensor:
    """NorCal on probabilities with renormalisation, written out in float64 (background last, unscaled)."""
    x = logits.detach().to(torch.float64)
    p = torch.exp(x - x.max(dim=1, keepdim=True).values)
    p = p / p.sum(dim=1, keepdim=True)
    factor = torch.tensor([1.0 / n**gamma for n in counts] + [1.0], dtype=torch.float64)
    q = p * factor
    return q / q.sum(dim=1, keepdim=True)


def boxes_and_labels(num_images: int, seed: int):
    """Per image: three bright boxes (xyxy) on noise and their labels, deterministic."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_images):
        image = (torch.rand(3, SIZE, SIZE, generator=g) * 120 + 60).round()
        xy = torch.randint(0, SIZE - 48, (3, 2), generator=g).float()
        wh = torch.randint(16, 48, (3, 2), generator=g).float()
        boxes = torch.cat([xy, xy + wh], dim=1)
        for x0, y0, x1, y1 in boxes.long().tolist():
            image[:, y0:y1, x0:x1] = 230.0
        out.append((image, boxes, torch.randint(0, NUM_CLASSES, (3,), generator=g)))
    return out
