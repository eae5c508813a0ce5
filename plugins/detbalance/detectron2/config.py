"""The ``DETBALANCE`` config node and a yaml loader whose ``_BASE_`` can name a detectron2 model-zoo config.

Config node (added by :func:`add_detbalance_config`, defaults shown)::

    DETBALANCE:
      LOSS: "WeightedCrossEntropyLoss"   # a key of detbalance.losses.LOSSES
      WEIGHTS_FILE: ""                   # detbalance weights file; "" -> statistics of DATASETS.TRAIN
      CLS_PRIOR_PROB: None               # sigmoid losses: initial class probability; None -> the loss's reference
      WEIGHTED_CE: {DENOMINATOR: "proposals"}
      CLASS_BALANCED_FOCAL: {BETA: 0.999, GAMMA: 2.0, BACKGROUND_WEIGHT: 1.0}
      EQUALIZATION: {LAMBDA: 0.00176}
      EQLV2: {MU: 0.8, GAMMA: 12.0, ALPHA: 4.0}
      SEESAW: {P: 0.8, Q: 2.0, EPS: 0.01}
      FEDERATED: {NUM_SAMPLED: 50, FREQ_POWER: 0.5}
      FOCAL: {ALPHA: 0.25, GAMMA: 2.0}                       # dense heads (BalancedRetinaNet) only,
      EQUALIZED_FOCAL: {GAMMA: 2.0, SCALE: 8.0, ALPHA: 0.25}  # table DENSE_HYPER_PARAMETER_KEYS
      CALIBRATION: {METHOD: "", GAMMA: None, FILE: ""}   # test-time scores: detbalance.detectron2.calibration

Only the sub-node of the selected ``LOSS`` is read (table :data:`HYPER_PARAMETER_KEYS`). ``CLS_PRIOR_PROB``
overrides the probability a sigmoid loss's classifier starts at (its bias ``-log((1 - p) / p)``; by default
each loss's reference value, see ``initial_bias`` of the loss); it must stay None with a softmax loss. The
model uses the node when ``MODEL.ROI_HEADS.NAME`` is ``"BalancedROIHeads"``. Repeat-factor sampling reuses
detectron2's own ``DATALOADER.SAMPLER_TRAIN: "RepeatFactorTrainingSampler"`` and ``DATALOADER.REPEAT_THRESHOLD``
(see :mod:`detbalance.detectron2.sampling`); per-box weights come from an annotation key ``"weight"`` (see
:mod:`detbalance.detectron2.mapper`).

yaml files: ``_BASE_`` may be a path relative to the file, an absolute path, or ``model_zoo://<path>`` naming a
config shipped inside the detectron2 package, e.g. ``model_zoo://COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml``.
Load such files with :func:`get_config` (plain ``cfg.merge_from_file`` does not know ``model_zoo://``).
"""
from __future__ import annotations

import os
from typing import Iterable

import yaml

from detectron2 import model_zoo
from detectron2.config import CfgNode, get_cfg

from .calibration import add_calibration_config

__all__ = ["add_detbalance_config", "get_config", "HYPER_PARAMETER_KEYS", "DENSE_HYPER_PARAMETER_KEYS",
           "MODEL_ZOO_PREFIX"]

MODEL_ZOO_PREFIX = "model_zoo://"

#: loss name -> (sub-node of cfg.DETBALANCE, {config key: keyword argument of the loss}).
HYPER_PARAMETER_KEYS: dict[str, tuple[str, dict[str, str]]] = {
    "WeightedCrossEntropyLoss": ("WEIGHTED_CE", {"DENOMINATOR": "denominator"}),
    "ClassBalancedFocalLoss": (
        "CLASS_BALANCED_FOCAL",
        {"BETA": "beta", "GAMMA": "gamma", "BACKGROUND_WEIGHT": "background_weight"},
    ),
    "EqualizationLoss": ("EQUALIZATION", {"LAMBDA": "lambda_"}),
    "EQLv2Loss": ("EQLV2", {"MU": "mu", "GAMMA": "gamma", "ALPHA": "alpha"}),
    "SeesawLoss": ("SEESAW", {"P": "p", "Q": "q", "EPS": "eps"}),
    "FederatedLoss": ("FEDERATED", {"NUM_SAMPLED": "num_sampled", "FREQ_POWER": "freq_power"}),
}

#: The same for the losses of ``detbalance.losses.DENSE_LOSSES`` (dense heads only).
DENSE_HYPER_PARAMETER_KEYS: dict[str, tuple[str, dict[str, str]]] = {
    "FocalLoss": ("FOCAL", {"ALPHA": "alpha", "GAMMA": "gamma"}),
    "EqualizedFocalLoss": ("EQUALIZED_FOCAL", {"GAMMA": "gamma", "SCALE": "scale", "ALPHA": "alpha"}),
}


def add_detbalance_config(cfg: CfgNode) -> None:
    """Add the ``DETBALANCE`` node (documented in this module) to ``cfg`` in place; a no-op if present."""
    if "DETBALANCE" in cfg:
        return
    _C = cfg
    _C.DETBALANCE = CfgNode()
    # Classification loss of the box head: a key of detbalance.losses.LOSSES.
    _C.DETBALANCE.LOSS = "WeightedCrossEntropyLoss"
    # Weights file written by detbalance (class statistics, class weights). When empty, the statistics are
    # computed from DatasetCatalog/MetadataCatalog for DATASETS.TRAIN at build time.
    _C.DETBALANCE.WEIGHTS_FILE = ""
    # Initial probability of the class logits of a sigmoid loss (classifier bias -log((1 - p) / p)). None: the
    # loss's reference initialisation (EQL 0.001, class-balanced focal 1/K, Federated 0.01, EQLv2 bias 0).
    _C.DETBALANCE.CLS_PRIOR_PROB = None

    # Weighted cross-entropy: denominator of the mean, "proposals" (number of proposals with weight > 0, as
    # every loss and MMDetection) or "weights" (sum of the class and box weights, as F.cross_entropy(weight=)).
    _C.DETBALANCE.WEIGHTED_CE = CfgNode()
    _C.DETBALANCE.WEIGHTED_CE.DENOMINATOR = "proposals"

    # Class-balanced focal loss (Cui et al., CVPR 2019): effective-number beta, focusing gamma, weight of the
    # background proposals.
    _C.DETBALANCE.CLASS_BALANCED_FOCAL = CfgNode()
    _C.DETBALANCE.CLASS_BALANCED_FOCAL.BETA = 0.999
    _C.DETBALANCE.CLASS_BALANCED_FOCAL.GAMMA = 2.0
    _C.DETBALANCE.CLASS_BALANCED_FOCAL.BACKGROUND_WEIGHT = 1.0
    # Equalization loss (Tan et al., CVPR 2020): classes with image frequency below LAMBDA are "rare".
    _C.DETBALANCE.EQUALIZATION = CfgNode()
    _C.DETBALANCE.EQUALIZATION.LAMBDA = 1.76e-3
    # Equalization loss v2 (Tan et al., CVPR 2021): gradient-guided reweighting mapping parameters.
    _C.DETBALANCE.EQLV2 = CfgNode()
    _C.DETBALANCE.EQLV2.MU = 0.8
    _C.DETBALANCE.EQLV2.GAMMA = 12.0
    _C.DETBALANCE.EQLV2.ALPHA = 4.0
    # Seesaw loss (Wang et al., CVPR 2021): mitigation exponent P, compensation exponent Q, EPS.
    _C.DETBALANCE.SEESAW = CfgNode()
    _C.DETBALANCE.SEESAW.P = 0.8
    _C.DETBALANCE.SEESAW.Q = 2.0
    _C.DETBALANCE.SEESAW.EPS = 1e-2
    # Federated loss (Zhou et al., 2021): negative classes sampled per iteration, frequency exponent.
    _C.DETBALANCE.FEDERATED = CfgNode()
    _C.DETBALANCE.FEDERATED.NUM_SAMPLED = 50
    _C.DETBALANCE.FEDERATED.FREQ_POWER = 0.5
    # Focal loss of dense heads (Lin et al., ICCV 2017): ALPHA, scaled per class by the weights file's class
    # weights when one is given (detbalance.losses.alpha_from_weights), and the focusing GAMMA.
    _C.DETBALANCE.FOCAL = CfgNode()
    _C.DETBALANCE.FOCAL.ALPHA = 0.25
    _C.DETBALANCE.FOCAL.GAMMA = 2.0
    # Equalized focal loss (Li et al., CVPR 2022): base focusing GAMMA, its growth SCALE for rare classes, ALPHA.
    _C.DETBALANCE.EQUALIZED_FOCAL = CfgNode()
    _C.DETBALANCE.EQUALIZED_FOCAL.GAMMA = 2.0
    _C.DETBALANCE.EQUALIZED_FOCAL.SCALE = 8.0
    _C.DETBALANCE.EQUALIZED_FOCAL.ALPHA = 0.25
    add_calibration_config(_C)  # DETBALANCE.CALIBRATION, documented in detbalance.detectron2.calibration


def get_config(path: str | os.PathLike, opts: Iterable[str] = ()) -> CfgNode:
    """detectron2 default config + ``DETBALANCE`` node, merged with the yaml ``path`` and then ``opts``.

    ``_BASE_`` (a path or a list of paths) is resolved relative to the file that names it, except
    ``model_zoo://<path>``, which names a config inside the installed detectron2 package. ``opts`` is a flat
    ``[KEY, VALUE, ...]`` list, as detectron2's ``--opts``.

    Example::

        from detbalance.detectron2 import get_config
        cfg = get_config("configs/detectron2/faster_rcnn_R_50_FPN_1x_seesaw.yaml", ["MODEL.DEVICE", "cpu"])
    """
    cfg = get_cfg()
    add_detbalance_config(cfg)
    _merge_yaml(cfg, os.fspath(path))
    cfg.merge_from_list(list(opts))
    return cfg


def _merge_yaml(cfg: CfgNode, path: str) -> None:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} does not exist")
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path!r} must hold a mapping, got {type(data).__name__}")
    bases = data.pop("_BASE_", [])
    for base in [bases] if isinstance(bases, str) else bases:
        if base.startswith(MODEL_ZOO_PREFIX):
            # detectron2's own merge resolves the model zoo file's relative bases and config versions.
            cfg.merge_from_file(model_zoo.get_config_file(base[len(MODEL_ZOO_PREFIX):]))
        else:
            base = os.path.expanduser(base)
            _merge_yaml(cfg, base if os.path.isabs(base) else os.path.join(os.path.dirname(path), base))
    cfg.merge_from_other_cfg(CfgNode(data))
