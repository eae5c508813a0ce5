"""One table of losses: the Detectron2 config node, the MMDetection registrations and the statistics-free set
agree with each core loss's signature, the one place a default is written."""

from __future__ import annotations

import inspect

import pytest
from detectron2.config import get_cfg
from mmdet.registry import MODELS

import detbalance.mmdet  # noqa: F401  (registers the DB* losses)
from detbalance.detectron2 import HYPER_PARAMETER_KEYS, add_detbalance_config
from detbalance.detectron2.config import DENSE_HYPER_PARAMETER_KEYS
from detbalance.detectron2.loss_builder import TRAINED_STATISTICS_LOSSES
from detbalance.losses import DENSE_LOSSES, LOSS_TABLE, LOSSES

# What each loss is tuned by, written out here independently of the table.
EXPECTED_HYPER_PARAMETERS = {
    "WeightedCrossEntropyLoss": ("WEIGHTED_CE", {"DENOMINATOR": "denominator"}),
    "ClassBalancedFocalLoss": (
        "CLASS_BALANCED_FOCAL",
        {"BETA": "beta", "GAMMA": "gamma", "BACKGROUND_WEIGHT": "background_weight"},
    ),
    "EqualizationLoss": ("EQUALIZATION", {"LAMBDA": "lambda_"}),
    "EQLv2Loss": ("EQLV2", {"MU": "mu", "GAMMA": "gamma", "ALPHA": "alpha", "PRIOR_PROB": "prior_prob"}),
    "SeesawLoss": ("SEESAW", {"P": "p", "Q": "q", "EPS": "eps"}),
    "FederatedLoss": ("FEDERATED", {"NUM_SAMPLED": "num_sampled", "FREQ_POWER": "freq_power"}),
    "BAGSLoss": ("BAGS", {"BIN_EDGES": "bin_edges", "OTHERS_SAMPLE_RATIO": "others_sample_ratio"}),
    "FocalLoss": ("FOCAL", {"ALPHA": "alpha", "GAMMA": "gamma"}),
    "EqualizedFocalLoss": ("EQUALIZED_FOCAL", {"GAMMA": "gamma", "SCALE": "scale", "ALPHA": "alpha"}),
}


def _signature_defaults(fn) -> dict:
    return {n: p.default for n, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


def test_the_config_keys_users_write_are_unchanged():
    assert {**HYPER_PARAMETER_KEYS, **DENSE_HYPER_PARAMETER_KEYS} == EXPECTED_HYPER_PARAMETERS
    assert set(HYPER_PARAMETER_KEYS) == set(LOSSES) and set(DENSE_HYPER_PARAMETER_KEYS) == set(DENSE_LOSSES)


@pytest.mark.parametrize("name", sorted(EXPECTED_HYPER_PARAMETERS))
def test_detectron2_node_and_mmdet_class_defaults_equal_the_loss_signature(name):
    core = _signature_defaults(LOSS_TABLE[name].cls)
    from_stats = _signature_defaults(LOSS_TABLE[name].cls.from_stats)
    registered = _signature_defaults(MODELS.get(f"DB{name}"))
    cfg = get_cfg()
    add_detbalance_config(cfg)
    sub_node, keys = EXPECTED_HYPER_PARAMETERS[name]
    assert set(cfg.DETBALANCE[sub_node]) == set(keys)
    for key, argument in keys.items():
        assert argument in core, (name, argument)
        assert cfg.DETBALANCE[sub_node][key] == core[argument], (name, key)
        assert type(cfg.DETBALANCE[sub_node][key]) is type(core[argument]), (name, key)
        assert registered[argument] == core[argument], (name, argument)
        assert from_stats[argument] == core[argument], (name, argument)
    # every other keyword default of the core loss (prior_prob, reduction, seed) is the registered class's too
    for argument, default in core.items():
        if argument != "ignore_index" and argument in registered:
            assert registered[argument] == default, (name, argument)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_registered_box_loss_takes_exactly_the_core_arguments(name):
    core = [n for n in inspect.signature(LOSSES[name]).parameters if n != "ignore_index"]
    registered = list(inspect.signature(MODELS.get(f"DB{name}")).parameters)
    assert registered == core + ["loss_weight", "calibration"]
    stats = () if LOSS_TABLE[name].stats_arg is None else ([1.0, 1.0, 1.0],)
    with pytest.raises(TypeError, match=f"DB{name}.*unexpected keyword argument 'not_an_argument'"):
        MODELS.get(f"DB{name}")(3, *stats, not_an_argument=1)


def test_statistics_free_losses():
    assert TRAINED_STATISTICS_LOSSES == {"EQLv2Loss", "SeesawLoss"}
    for name in LOSSES:
        assert (MODELS.get(f"DB{name}").stats_arg is None) == (name in TRAINED_STATISTICS_LOSSES), name
    assert {n for n, s in LOSS_TABLE.items() if not s.needs_statistics} == {
        "EQLv2Loss",
        "SeesawLoss",
        "EqualizedFocalLoss",
    }


def test_default_build_holds_the_signature_defaults():
    loss = MODELS.build(dict(type="DBEQLv2Loss", num_classes=3))
    assert (loss.core.mu, loss.core.gamma, loss.core.alpha) == (0.8, 12.0, 4.0)
    loss = MODELS.build(dict(type="DBSeesawLoss", num_classes=3, p=0.5))
    assert (loss.core.p, loss.core.q, loss.core.eps) == (0.5, 2.0, 0.01)


def test_table_rejects_an_argument_the_loss_does_not_take():
    spec = LOSS_TABLE["SeesawLoss"]
    with pytest.raises(ValueError, match=r"\['r'\] are not arguments of SeesawLoss"):
        type(spec)(spec.cls, "SEESAW", "trained", None, ("p", "r"))
    with pytest.raises(ValueError, match="stats_arg='counts'; expected None exactly for trained"):
        type(spec)(spec.cls, "SEESAW", "trained", "counts", ("p",))


def test_table_doctest():
    import doctest

    from detbalance.losses import table

    result = doctest.testmod(table)
    assert result.attempted >= 4 and result.failed == 0
