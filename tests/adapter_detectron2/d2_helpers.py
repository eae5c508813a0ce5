"""Helpers of the detectron2 adapter tests: configs, a weights file, synthetic images and proposals."""

from __future__ import annotations

from pathlib import Path

import torch

from detbalance.detectron2 import _compat  # noqa: F401  (before any detectron2 import)
from helpers import D2_CONFIGS as CONFIG_DIR
from helpers import D2_TINY_CONFIG as TINY_CONFIG
from helpers import NUM_CLASSES, d2_config, write_weights_file  # noqa: F401  (the tests import them from here)
from helpers import long_tail_stats as class_stats  # noqa: F401

# isort: split
from detectron2.structures import Boxes, Instances

BASE_CONFIG = CONFIG_DIR / "Base-Balanced-RCNN-FPN.yaml"
PER_LOSS_CONFIGS = {
    "WeightedCrossEntropyLoss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_weighted_ce.yaml",
    "ClassBalancedFocalLoss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_cb_focal.yaml",
    "EqualizationLoss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_eql.yaml",
    "EQLv2Loss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_eqlv2.yaml",
    "SeesawLoss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_seesaw.yaml",
    "FederatedLoss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_federated.yaml",
    "BAGSLoss": CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_bags.yaml",
}
#: configs that change more than the loss node, each tested by its own module: the ImageNet-pretrained backbone
#: (test_d2_efficientnet_backbone.py) and Seesaw with its normalised classifier (test_d2_normed_classifier.py)
OTHER_CONFIGS = (
    CONFIG_DIR / "faster_rcnn_EfficientNetLite0_FPN_tiny_cpu.yaml",
    CONFIG_DIR / "faster_rcnn_R_50_FPN_1x_seesaw_normed.yaml",
)
SIGMOID_LOSSES = ("ClassBalancedFocalLoss", "EqualizationLoss", "EQLv2Loss", "FederatedLoss")


def tiny_cfg(loss: str, weights_file: Path | None = None, opts: tuple = ()):
    """The tiny CPU config with ``loss`` and, when given, ``weights_file``."""
    return d2_config(TINY_CONFIG, loss, weights_file, opts)


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


def random_proposals(
    num_images: int = 2, per_image: int = 12, num_classes: int = NUM_CLASSES, seed: int = 0
) -> list[Instances]:
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
