"""Detectron2: which loss serves which head, decided when the model is built (one table,
``detbalance.losses.dense_head_losses``), and per-box weights refused by the dense heads, which cannot apply them.
Real tiny models from the repository's configs, trained a step on CPU."""

from __future__ import annotations

import pytest
import torch
from detectron2.config import instantiate
from detectron2.modeling import build_model
from heads_helpers import d2_batch
from test_d2_heads import TINY_CASCADE, TINY_MASK, TINY_RETINANET, cfg_of, tiny_fcos, train_step

from detbalance.losses import DENSE_LOSSES, LOSSES, dense_head_losses

#: losses of the box-head table that a dense head refuses: not K sigmoid logits per anchor
REFUSED_BY_DENSE = sorted(set(LOSSES) - set(dense_head_losses()))


@pytest.mark.parametrize("name", REFUSED_BY_DENSE)
def test_retinanet_and_fcos_refuse_a_loss_they_cannot_serve_when_built(name, heads_weights_file):
    with pytest.raises(ValueError, match=f"loss {name} cannot serve the dense head BalancedRetinaNet"):
        build_model(cfg_of(TINY_RETINANET, name, heads_weights_file))
    with pytest.raises(ValueError, match=f"loss {name} cannot serve the dense head BalancedFCOS"):
        instantiate(tiny_fcos(name, heads_weights_file))


@pytest.mark.parametrize("path", [TINY_MASK, TINY_CASCADE], ids=["BalancedROIHeads", "BalancedCascadeROIHeads"])
@pytest.mark.parametrize("name", sorted(DENSE_LOSSES))
def test_box_heads_refuse_a_dense_only_loss_when_built(path, name, heads_weights_file):
    head = "BalancedCascadeROIHeads" if path == TINY_CASCADE else "BalancedROIHeads"
    with pytest.raises(ValueError, match=f"DETBALANCE.LOSS is '{name}', which cannot serve the box head {head}"):
        build_model(cfg_of(path, name, heads_weights_file))


@pytest.mark.slow
def test_fcos_refuses_per_box_weights_instead_of_ignoring_them():
    model = instantiate(tiny_fcos("EqualizedFocalLoss"))
    with pytest.raises(ValueError, match="BalancedFCOS got per-box weights"):
        train_step(model, d2_batch(weights=[[0.0, 1.0], [1.0, 1.0]]))
    losses = train_step(model, d2_batch(weights=[[1.0, 1.0], [1.0, 1.0]]))  # weights of 1 change nothing
    assert all(bool(torch.isfinite(v)) for v in losses.values())


@pytest.mark.slow
def test_retinanet_refuses_per_box_weights_instead_of_ignoring_them():
    model = build_model(cfg_of(TINY_RETINANET, "FocalLoss"))
    with pytest.raises(ValueError, match="BalancedRetinaNet got per-box weights"):
        train_step(model, d2_batch(weights=[[1.0, 2.0], [1.0, 1.0]]))
