"""Helpers of the reliability tests: tiny detectron2 and MMDetection Faster R-CNNs with a detbalance loss,
deterministic synthetic batches (optionally without ground truth), weights files and state comparisons."""

from __future__ import annotations

import copy
import functools
import json
import socket
from pathlib import Path

import torch

from detbalance.losses import LOSS_TABLE
from helpers import D2_TINY_CONFIG, MMDET_TINY_CONFIG, NUM_CLASSES, d2_config
from helpers import long_tail_weights as weights_contents
from helpers import write_weights_file as write_weights  # noqa: F401  (the tests call H.write_weights)

SIZE = 128
LOSS_NAMES = (
    "WeightedCrossEntropyLoss",
    "ClassBalancedFocalLoss",
    "EqualizationLoss",
    "EQLv2Loss",
    "SeesawLoss",
    "FederatedLoss",
)
STATEFUL = ("EQLv2Loss", "SeesawLoss")
#: core loss name -> the DB* loss's statistics argument (given the weights file path), None for stateful losses
MMDET_STATS_ARG = {name: LOSS_TABLE[name].stats_arg for name in LOSS_NAMES}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------- weights files
def valid_weights_json(num_classes: int = NUM_CLASSES) -> dict:
    return weights_contents(num_classes).to_json()


def write_raw(path: Path, data: dict) -> Path:
    """``data`` as JSON without validation (NaN/Infinity written as the non-standard literals)."""
    path.write_text(json.dumps(data, allow_nan=True), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------- detectron2
def d2_cfg(
    loss: str, weights_file: Path | None = None, *, frozen_bn: bool = False, roi_batch: int = 32, proposals: int = 32
):
    """The tiny detectron2 config with ``loss``; ``frozen_bn`` and a RoI batch larger than the proposals make
    each image's computation independent of the others in its batch (no batch statistics, no RoI subsampling)."""
    opts = [
        "MODEL.RPN.POST_NMS_TOPK_TRAIN",
        str(proposals),
        "MODEL.RPN.POST_NMS_TOPK_TEST",
        str(proposals),
        "MODEL.RPN.PRE_NMS_TOPK_TRAIN",
        "200",
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
        str(roi_batch),
        "MODEL.ROI_BOX_HEAD.FC_DIM",
        "64",
        "MODEL.FPN.OUT_CHANNELS",
        "32",
    ]
    if frozen_bn:
        opts += ["MODEL.RESNETS.NORM", "FrozenBN"]
    return d2_config(D2_TINY_CONFIG, loss, weights_file, opts)


def d2_batch(num_images: int = 2, seed: int = 0, empty: tuple[int, ...] = ()) -> list[dict]:
    """detectron2 training inputs: noisy images with bright boxes; images listed in ``empty`` have no boxes."""
    from detectron2.structures import Boxes, Instances

    g = torch.Generator().manual_seed(seed)
    batch = []
    for i in range(num_images):
        image = (torch.rand(3, SIZE, SIZE, generator=g) * 120 + 60).round()
        n = 0 if i in empty else 3
        xy = torch.randint(0, SIZE - 48, (n, 2), generator=g).float()
        wh = torch.randint(16, 48, (n, 2), generator=g).float()
        boxes = torch.cat([xy, xy + wh], dim=1)
        for x0, y0, x1, y1 in boxes.long().tolist():
            image[:, y0:y1, x0:x1] = 230.0
        instances = Instances((SIZE, SIZE))
        instances.gt_boxes = Boxes(boxes.reshape(-1, 4))
        instances.gt_classes = torch.randint(0, NUM_CLASSES, (n,), generator=g)
        batch.append({"image": image, "height": SIZE, "width": SIZE, "instances": instances})
    return batch


def d2_build(cfg):
    from detectron2.modeling import build_model

    return build_model(cfg)


def d2_step(model, inputs, optimizer=None, iteration: int = 0) -> dict:
    """One detectron2 training step (forward in an EventStorage, backward, optional optimizer step)."""
    from detectron2.utils.events import EventStorage

    model.train()
    with EventStorage(iteration):
        losses = model(inputs)
        total = sum(losses.values())
        if optimizer is not None:
            optimizer.zero_grad()
        total.backward()
        if optimizer is not None:
            optimizer.step()
    return {k: v.detach() for k, v in losses.items()}


# ---------------------------------------------------------------------------------------------- MMDetection
@functools.lru_cache(maxsize=1)
def _mmdet_base_model_cfg():
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    import detbalance.mmdet  # noqa: F401  (registers the DB* components)

    register_all_modules(init_default_scope=True)
    return Config.fromfile(str(MMDET_TINY_CONFIG)).model


def mmdet_model_cfg(
    loss: str | None,
    weights_file: Path | None = None,
    *,
    norm_eval: bool = False,
    rcnn_num: int = 32,
    proposals: int = 32,
    **loss_settings,
):
    """Tiny MMDetection Faster R-CNN config; ``loss`` None keeps MMDetection's CrossEntropyLoss.

    ``norm_eval`` and ``rcnn_num`` larger than the proposals make each image independent of its batch."""
    cfg = copy.deepcopy(_mmdet_base_model_cfg())
    cfg.neck.out_channels = 32
    cfg.rpn_head.update(in_channels=32, feat_channels=32)
    cfg.roi_head.bbox_roi_extractor.out_channels = 32
    cfg.roi_head.bbox_head.update(in_channels=32, fc_out_channels=64)
    cfg.backbone.norm_eval = norm_eval
    cfg.train_cfg.rcnn.sampler.num = rcnn_num
    cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=proposals)
    cfg.test_cfg.rpn.update(nms_pre=200, max_per_img=proposals)
    if loss is not None:
        settings = dict(type=f"DB{loss}", num_classes=NUM_CLASSES, **loss_settings)
        stats_arg = MMDET_STATS_ARG[loss]
        if stats_arg is not None:
            settings[stats_arg] = str(weights_file)
        cfg.roi_head.bbox_head.loss_cls = settings
    return cfg


def mmdet_build(cfg):
    from mmdet.registry import MODELS

    _mmdet_base_model_cfg()  # registries ready
    model = MODELS.build(cfg)
    # As mmengine's Runner does. Without it the random default initialisation yields denormal activations
    # that make CPU convolutions several times slower.
    model.init_weights()
    return model


def mmdet_batch(num_images: int = 2, seed: int = 0, empty: tuple[int, ...] = ()) -> dict:
    """``data_preprocessor`` input: uint8 images with bright boxes; images in ``empty`` have no boxes."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(num_images):
        image = torch.randint(60, 180, (3, SIZE, SIZE), dtype=torch.uint8, generator=g)
        n = 0 if i in empty else 3
        xy = torch.randint(0, SIZE - 48, (n, 2), generator=g).float()
        wh = torch.randint(16, 48, (n, 2), generator=g).float()
        boxes = torch.cat([xy, xy + wh], dim=1).reshape(-1, 4)
        for x0, y0, x1, y1 in boxes.long().tolist():
            image[:, y0:y1, x0:x1] = 230
        sample = DetDataSample(
            metainfo=dict(
                img_id=i, img_path=f"{i}.png", ori_shape=(SIZE, SIZE), img_shape=(SIZE, SIZE), scale_factor=(1.0, 1.0)
            )
        )
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.randint(0, NUM_CLASSES, (n,), generator=g))
        inputs.append(image)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def mmdet_step(model, data: dict, optimizer=None) -> dict:
    """One MMDetection training step: ``data_preprocessor``, loss, ``parse_losses``, backward, optimizer step."""
    model.train()
    processed = model.data_preprocessor(data, True)
    losses = model(**processed, mode="loss")
    total, log_vars = model.parse_losses(losses)
    if optimizer is not None:
        optimizer.zero_grad()
    total.backward()
    if optimizer is not None:
        optimizer.step()
    return {**{k: torch.as_tensor(v).detach() for k, v in log_vars.items()}, "loss": total.detach()}


# ------------------------------------------------------------------------------------------------ comparison
def loss_buffers(model) -> dict[str, torch.Tensor]:
    """The detbalance loss buffers of a model (EQLv2 pos_grad/neg_grad/pos_neg, Seesaw cum_samples)."""
    names = ("pos_grad", "neg_grad", "pos_neg", "cum_samples")
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k.rsplit(".", 1)[-1] in names}


def assert_state_equal(got: dict, want: dict, what: str = "") -> None:
    """Bit-exact equality of two state dicts (same keys, dtypes, values)."""
    assert set(got) == set(want), f"{what}: keys differ: {set(got) ^ set(want)}"
    for name, value in want.items():
        assert got[name].dtype == value.dtype, f"{what}: {name} dtype {got[name].dtype} != {value.dtype}"
        assert torch.equal(got[name], value), (
            f"{what}: {name} differs (max abs diff {(got[name].double() - value.double()).abs().max().item()})"
        )
