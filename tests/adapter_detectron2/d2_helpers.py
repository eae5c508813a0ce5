"""Helpers of the detectron2 adapter tests: configs, a weights file, synthetic images and proposals."""
from __future__ import annotations

from pathlib import Path

import torch

from detbalance.detectron2 import _compat  # noqa: F401  (before any detectron2 import)
from detbalance.detectron2 import get_config
from detbalance.weights import ClassStats, WeightsFile, compute_class_weights, frequency_groups, save_weights
from detectron2.structures import Boxes, Instances

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "detectron2"
BASE_CONFIG = CONFIG_DIR / "Base-Balanced-RCNN-FPN.yaml"
TINY_CONFIG = CONFIG_DIR / "faster_rcnn_R_18_FPN_tiny_cpu.yaml"
PER_LOSS_CONFIGS = {
    "WeightedCrossEntropyLoss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_weighted_ce.yaml",
    "ClassBalancedFocalLoss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_cb_focal.yaml",
    "EqualizationLoss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_eql.yaml",
    "EQLv2Loss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_eqlv2.yaml",
    "SeesawLoss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_seesaw.yaml",
    "FederatedLoss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_federated.yaml",
}
SIGMOID_LOSSES = ("ClassBalancedFocalLoss", "EqualizationLoss", "EQLv2Loss", "FederatedLoss")
NUM_CLASSES = 8  # the tiny config's
CLASS_NAMES = ["circle", "square", "triangle", "cross", "ring", "hexagon", "star", "diamond"]
INSTANCE_COUNTS = [1500, 753, 378, 189, 95, 48, 24, 12]
IMAGE_COUNTS = [700, 500, 300, 150, 80, 40, 20, 10]
NUM_IMAGES = 1169


def class_stats(num_classes: int = NUM_CLASSES) -> ClassStats:
    return ClassStats(CLASS_NAMES[:num_classes], INSTANCE_COUNTS[:num_classes], IMAGE_COUNTS[:num_classes],
                      NUM_IMAGES)


def write_weights_file(path: Path, num_classes: int = NUM_CLASSES, background_weight: float = 1.0) -> Path:
    stats = class_stats(num_classes)
    weights = compute_class_weights(stats.instance_counts, "sqrt_inverse")
    save_weights(path, WeightsFile(stats=stats, scheme="sqrt_inverse", params={}, weights=weights.tolist(),
                                   background_weight=background_weight,
                                   groups=frequency_groups(stats.image_counts)))
    return path


def tiny_cfg(loss: str, weights_file: Path | None = None, opts: tuple = ()):
    """The tiny CPU config with ``loss`` and, when given, ``weights_file``."""
    extra = ["DETBALANCE.LOSS", loss]
    if weights_file is not None:
        extra += ["DETBALANCE.WEIGHTS_FILE", str(weights_file)]
    return get_config(TINY_CONFIG, extra + list(opts))


def synthetic_batch(num_images: int = 2, size: int = 128) -> list[dict]:
    """Images with two bright/dark rectangles each, labelled with a head and a tail class."""
    g = torch.Generator().manual_seed(0)
    batch = []
    for i in range(num_images):
        image = (torch.rand(3, size, size, generator=g) * 255).round()
        image[:, 20:60, 30:70] = 230.0
        image[:, 80:110, 70:120] = 20.0
        instances = Instances((size, size))
        instances.gt_boxes = Boxes(torch.tensor([[30.0, 20.0, 70.0, 60.0], [70.0, 80.0, 120.0, 110.0]]))
        instances.gt_classes = torch.tensor([i % NUM_CLASSES, NUM_CLASSES - 1])
        batch.append({"image": image, "height": size, "width": size, "instances": instances})
    return batch


def random_proposals(num_images: int = 2, per_image: int = 12, num_classes: int = NUM_CLASSES,
                     seed: int = 0) -> list[Instances]:
    """Labelled proposals as ``label_and_sample_proposals`` returns them (every class, background included)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(num_images):
        p = Instances((128, 128))
        xy = torch.rand(per_image, 2, generator=g) * 80
        wh = torch.rand(per_image, 2, generator=g) * 40 + 8
        p.proposal_boxes = Boxes(torch.cat([xy, xy + wh], dim=1))
        p.gt_boxes = Boxes(p.proposal_boxes.tensor + torch.randn(per_image, 4, generator=g))
        labels = torch.arange(i, i + per_image) % (num_classes + 1)
        p.gt_classes = labels
        out.append(p)
    return out
