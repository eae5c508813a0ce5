"""The ``DETBALANCE`` config node and a yaml loader whose ``_BASE_`` can name a detectron2 model-zoo config.

Config node (added by :func:`add_detbalance_config`)::

    DETBALANCE:
      LOSS: "WeightedCrossEntropyLoss"   # a key of detbalance.losses.LOSSES
      WEIGHTS_FILE: ""                   # detbalance weights file; "" -> statistics of DATASETS.TRAIN
      CLS_PRIOR_PROB: None               # sigmoid losses: initial class probability; None -> the loss's reference
      WEIGHTED_CE: {DENOMINATOR}
      CLASS_BALANCED_FOCAL: {BETA, GAMMA, BACKGROUND_WEIGHT}
      EQUALIZATION: {LAMBDA}
      EQLV2: {MU, GAMMA, ALPHA}
      SEESAW: {P, Q, EPS}
      FEDERATED: {NUM_SAMPLED, FREQ_POWER}
      BAGS: {BIN_EDGES, OTHERS_SAMPLE_RATIO}  # BIN_EDGES: a tuple, (10, 100, 1000) by default
      FOCAL: {ALPHA, GAMMA}                   # dense heads (BalancedRetinaNet) only,
      EQUALIZED_FOCAL: {GAMMA, SCALE, ALPHA}  # table DENSE_HYPER_PARAMETER_KEYS
      CALIBRATION: {METHOD: "", GAMMA: None, FILE: ""}   # test-time scores: detbalance.detectron2.calibration
      CLS_PREDICTOR: {TYPE: "Linear", TEMPERATURE: 20.0}  # or "NormedLinear": detbalance.detectron2.classifier
      DECOUPLE: {ENABLED: False, TRAIN: "classifier", REINIT_CLASSIFIER: True}  # detbalance.detectron2.decouple

and ``MODEL.EFFICIENTNET`` (the ImageNet-pretrained EfficientNet-Lite0 backbone, detbalance.detectron2.efficientnet).

One sub-node per loss of :data:`detbalance.losses.LOSS_TABLE` (its ``key``), one config key per hyper-parameter
(the keyword upper-cased, ``lambda_`` -> ``LAMBDA``), defaulting to the loss module's own default (its
signature). Only the sub-node of the selected ``LOSS`` is read (table :data:`HYPER_PARAMETER_KEYS`).
``CLS_PRIOR_PROB`` overrides the probability a sigmoid loss's classifier starts at (its bias
``-log((1 - p) / p)``; by default each loss's reference value, see ``initial_bias`` of the loss); it must stay
None with a softmax loss. The model uses the node when ``MODEL.ROI_HEADS.NAME`` is ``"BalancedROIHeads"``.
Repeat-factor sampling reuses detectron2's own ``DATALOADER.SAMPLER_TRAIN: "RepeatFactorTrainingSampler"`` and
``DATALOADER.REPEAT_THRESHOLD`` (see :mod:`detbalance.detectron2.sampling`); per-box weights come from an
annotation key ``"weight"`` (see :mod:`detbalance.detectron2.mapper`).

yaml files: ``_BASE_`` may be a path relative to the file, an absolute path, or ``model_zoo://<path>`` naming a
config shipped inside the detectron2 package, e.g. ``model_zoo://COCO-Detection/faster_rcnn_R_50_FPN_1x.yaml``.
Load such files with :func:`get_config` (plain ``cfg.merge_from_file`` does not know ``model_zoo://``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import yaml
from detectron2 import model_zoo
from detectron2.config import CfgNode, get_cfg

from ..losses import LOSS_TABLE
from .calibration import add_calibration_config
from .classifier import add_classifier_config
from .decouple import add_decouple_config
from .efficientnet import add_efficientnet_config

__all__ = [
    "add_detbalance_config",
    "get_config",
    "HYPER_PARAMETER_KEYS",
    "DENSE_HYPER_PARAMETER_KEYS",
    "MODEL_ZOO_PREFIX",
]

MODEL_ZOO_PREFIX = "model_zoo://"

#: loss name -> (sub-node of cfg.DETBALANCE, {config key: keyword argument of the loss}), from the loss table.
HYPER_PARAMETER_KEYS: dict[str, tuple[str, dict[str, str]]] = {
    name: (spec.key, spec.config_keys()) for name, spec in LOSS_TABLE.items() if not spec.dense
}

#: The same for the losses of ``detbalance.losses.DENSE_LOSSES`` (dense heads only).
DENSE_HYPER_PARAMETER_KEYS: dict[str, tuple[str, dict[str, str]]] = {
    name: (spec.key, spec.config_keys()) for name, spec in LOSS_TABLE.items() if spec.dense
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
    # loss's reference initialisation (its prior_prob default, see initial_bias of the loss).
    _C.DETBALANCE.CLS_PRIOR_PROB = None

    # One sub-node per loss, each hyper-parameter at the loss's own default (detbalance.losses.LOSS_TABLE).
    for spec in LOSS_TABLE.values():
        _C.DETBALANCE[spec.key] = CfgNode(
            {key: spec.defaults()[argument] for key, argument in spec.config_keys().items()}
        )
    add_calibration_config(_C)  # DETBALANCE.CALIBRATION, documented in detbalance.detectron2.calibration
    add_efficientnet_config(_C)  # MODEL.EFFICIENTNET, documented in detbalance.detectron2.efficientnet
    add_classifier_config(_C)  # DETBALANCE.CLS_PREDICTOR, documented in detbalance.detectron2.classifier
    add_decouple_config(_C)  # DETBALANCE.DECOUPLE, documented in detbalance.detectron2.decouple


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
            cfg.merge_from_file(model_zoo.get_config_file(base[len(MODEL_ZOO_PREFIX) :]))
        else:
            base = os.path.expanduser(base)
            _merge_yaml(cfg, base if os.path.isabs(base) else os.path.join(os.path.dirname(path), base))
    cfg.merge_from_other_cfg(CfgNode(data))
