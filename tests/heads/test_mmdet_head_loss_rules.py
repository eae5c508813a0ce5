"""MMDetection: which loss serves which head, decided when the model is built (one table,
``detbalance.losses.dense_head_losses``), and per-box weights refused by the dense heads, which cannot apply them.
Real tiny models from the repository's configs, trained a step on CPU."""

from __future__ import annotations

import mmcv.ops  # noqa: F401  (compiled ops: `make setup` builds them; their absence is an error)
import pytest
import torch
from heads_helpers import MMDET_CONFIGS, NUM_CLASSES, mmdet_batch, write_weights_file
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config

import detbalance.mmdet  # noqa: F401  (registers the DB* components)
from detbalance.losses import DENSE_LOSSES, LOSSES, dense_head_losses

register_all_modules(init_default_scope=True)

TINY = MMDET_CONFIGS / "tiny"
#: config -> the dense head class it builds (detbalance's, which checks its loss and batches)
DENSE_CONFIGS = {
    "retinanet_r18_fpn_tiny_efl.py": "DBRetinaHead",
    "fcos_r18_fpn_tiny_efl.py": "DBFCOSHead",
    "atss_r18_fpn_tiny_efl.py": "DBATSSHead",
}
#: losses of the box-head table that a dense head refuses: not K sigmoid logits per anchor
REFUSED_BY_DENSE = sorted(set(LOSSES) - set(dense_head_losses()))
#: K-column losses of the box-head table that dense heads take too
BOX_LOSSES_IN_DENSE = sorted(set(LOSSES) & set(dense_head_losses()))


@pytest.fixture(scope="module")
def weights_path(tmp_path_factory):
    return str(write_weights_file(tmp_path_factory.mktemp("head_rules") / "weights.json"))


def loss_config(name: str, weights_path: str) -> dict:
    """``loss_cls`` of the registered ``DB<name>`` with its statistics (if any) from the weights file."""
    config = dict(type=f"DB{name}", num_classes=NUM_CLASSES)
    stats_arg = MODELS.get(f"DB{name}").stats_arg
    if stats_arg is not None:
        config[stats_arg] = weights_path
    return config


def dense_model_config(config: str, loss_cls: dict):
    cfg = Config.fromfile(str(TINY / config))
    cfg.model.bbox_head.loss_cls = loss_cls
    return cfg.model


def train_step(model, data):
    model.train()
    losses = model(**model.data_preprocessor(data, True), mode="loss")
    loss, _ = model.parse_losses(losses)
    loss.backward()
    return loss


def test_the_rule_splits_the_box_table():
    # K + 1 + G, K + 1, K + 2, K + 1
    assert REFUSED_BY_DENSE == ["BAGSLoss", "EQLv2Loss", "SeesawLoss", "WeightedCrossEntropyLoss"]
    assert BOX_LOSSES_IN_DENSE == ["ClassBalancedFocalLoss", "EqualizationLoss", "FederatedLoss"]  # K columns


@pytest.mark.parametrize("config", sorted(DENSE_CONFIGS))
@pytest.mark.parametrize("name", REFUSED_BY_DENSE)
def test_dense_head_refuses_a_loss_it_cannot_serve_when_built(config, name, weights_path):
    head = DENSE_CONFIGS[config]
    with pytest.raises(ValueError, match=rf"loss {name} cannot serve the dense head {head} \(loss_cls DB{name}\)"):
        MODELS.build(dense_model_config(config, loss_config(name, weights_path)))


@pytest.mark.parametrize("config", ["faster-rcnn_r18_fpn_tiny.py", "cascade-rcnn_r18_fpn_tiny_seesaw.py"])
@pytest.mark.parametrize("name", sorted(DENSE_LOSSES))
def test_box_head_refuses_a_dense_only_loss_when_built(config, name, weights_path):
    cfg = Config.fromfile(str(TINY / config))
    heads = cfg.model.roi_head.bbox_head
    loss_cls = loss_config(name, weights_path) | dict(use_sigmoid=True)
    for head in heads if isinstance(heads, list) else [heads]:
        head.loss_cls = loss_cls
    with pytest.raises(ValueError, match=rf"'{name}', which cannot serve the box head BBoxHead"):
        MODELS.build(cfg.model)


@pytest.mark.parametrize("name", BOX_LOSSES_IN_DENSE)
@pytest.mark.slow
def test_k_column_box_loss_trains_a_dense_head_with_k_sigmoid_channels(name, weights_path):
    model = MODELS.build(dense_model_config("retinanet_r18_fpn_tiny_efl.py", loss_config(name, weights_path)))
    head = model.bbox_head
    assert head.use_sigmoid_cls and head.cls_out_channels == NUM_CLASSES
    assert head.retina_cls.out_channels == head.num_base_priors * NUM_CLASSES
    loss = train_step(model, mmdet_batch())
    assert torch.isfinite(loss) and float(head.retina_cls.weight.grad.abs().sum()) > 0
    model.eval()
    with torch.no_grad():
        results = model(**model.data_preprocessor(mmdet_batch(seed=1), False), mode="predict")
    for result in results:  # K class scores: no detection of a background "class" K
        pred = result.pred_instances
        assert len(pred) > 0 and bool((pred.labels < NUM_CLASSES).all()) and bool((pred.scores <= 1).all())


@pytest.mark.parametrize("config", sorted(DENSE_CONFIGS))
@pytest.mark.slow
def test_dense_head_refuses_per_box_weights_instead_of_ignoring_them(config):
    model = MODELS.build(Config.fromfile(str(TINY / config)).model)
    head = DENSE_CONFIGS[config]
    with pytest.raises(ValueError, match=rf"the dense head {head} got per-box weights \(gt_instances.weights\)"):
        train_step(model, mmdet_batch(weights=[[0.0, 1.0], [1.0, 1.0]]))
    # weights of 1 change nothing, and test batches are not training batches
    assert torch.isfinite(train_step(model, mmdet_batch(weights=[[1.0, 1.0], [1.0, 1.0]])))
    model.eval()
    with torch.no_grad():
        model(**model.data_preprocessor(mmdet_batch(weights=[[0.0, 1.0], [1.0, 1.0]]), False), mode="predict")
