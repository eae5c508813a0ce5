"""Helpers of the head tests: config paths, a weights file and synthetic detectron2 batches with masks."""

from __future__ import annotations

import torch

from helpers import D2_CONFIGS, MMDET_CONFIGS, NUM_CLASSES, write_weights_file  # noqa: F401  (imported from here)

D2_HEADS = D2_CONFIGS / "heads"


#: Two boxes per image: (x0, y0, x1, y1); image i labels them class i and class K - 1.
BOXES = [[30.0, 20.0, 70.0, 60.0], [70.0, 80.0, 120.0, 110.0]]


def d2_batch(num_images: int = 2, size: int = 128, weights=None, masks: bool = False) -> list[dict]:
    """detectron2 inputs: a bright and a dark rectangle per image, optional ``gt_weights`` and polygon masks."""
    from detectron2.structures import Boxes, Instances, PolygonMasks

    g = torch.Generator().manual_seed(0)
    batch = []
    for i in range(num_images):
        image = (torch.rand(3, size, size, generator=g) * 255).round()
        image[:, 20:60, 30:70] = 230.0
        image[:, 80:110, 70:120] = 20.0
        instances = Instances((size, size))
        instances.gt_boxes = Boxes(torch.tensor(BOXES))
        instances.gt_classes = torch.tensor([i % NUM_CLASSES, NUM_CLASSES - 1])
        if weights is not None:
            instances.gt_weights = torch.tensor(weights[i], dtype=torch.float32)
        if masks:  # a diamond inside each box
            polygons = []
            for x0, y0, x1, y1 in BOXES:
                cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                polygons.append([[cx, y0, x1, cy, cx, y1, x0, cy]])
            instances.gt_masks = PolygonMasks(polygons)
        batch.append({"image": image, "height": size, "width": size, "instances": instances})
    return batch


def mmdet_batch(
    num_classes: int = NUM_CLASSES,
    num_images: int = 2,
    size: int = 128,
    seed: int = 0,
    weights=None,
    masks: bool = False,
) -> dict:
    """A ``model.data_preprocessor`` input: the two rectangles of :func:`d2_batch` per image (classes ``i`` and
    K - 1), optional ``gt_instances.weights`` and bitmap masks (a diamond in each box)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData

    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(num_images):
        image = torch.randint(60, 120, (3, size, size), dtype=torch.uint8, generator=g)
        image[:, 20:60, 30:70] = 230
        image[:, 80:110, 70:120] = 20
        sample = DetDataSample(
            metainfo=dict(
                img_id=i,
                img_path=f"{i}.png",
                ori_shape=(size, size),
                img_shape=(size, size),
                scale_factor=(1.0, 1.0),
                pad_shape=(size, size),
                batch_input_shape=(size, size),
            )
        )
        gt = InstanceData(bboxes=torch.tensor(BOXES), labels=torch.tensor([i % num_classes, num_classes - 1]))
        if weights is not None:
            gt.weights = torch.tensor(weights[i], dtype=torch.float32)
        if masks:
            bitmaps = torch.zeros(len(BOXES), size, size, dtype=torch.uint8)
            ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
            for k, (x0, y0, x1, y1) in enumerate(BOXES):
                cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
                bitmaps[k] = ((xs - cx).abs() / hw + (ys - cy).abs() / hh <= 1).to(torch.uint8)
            gt.masks = BitmapMasks(bitmaps.numpy(), size, size)
        sample.gt_instances = gt
        inputs.append(image)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)
