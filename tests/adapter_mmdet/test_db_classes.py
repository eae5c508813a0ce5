"""Every loss of ``detbalance.losses.LOSS_TABLE`` has its ``DB<name>`` class, written out as a class statement
(greppable, one jump away) and registered in MMDetection's ``MODELS``; its arguments come from the table."""

from __future__ import annotations

import inspect

import pytest
from mmdet.registry import MODELS

import detbalance.mmdet
from detbalance.losses import LOSS_TABLE
from detbalance.mmdet._loss_base import DBLossBase


@pytest.mark.parametrize("name", sorted(LOSS_TABLE))
def test_every_table_loss_has_its_explicit_registered_class(name):
    where = "detbalance/mmdet/dense_losses.py" if LOSS_TABLE[name].dense else "detbalance/mmdet/losses.py"
    cls = MODELS.get(f"DB{name}")
    assert cls is not None, (
        f"LOSS_TABLE has {name} but MMDetection's MODELS has no DB{name}: add "
        f"`@MODELS.register_module() class DB{name}(DBLossBase): spec = LOSS_TABLE[{name!r}]` to {where}"
    )
    assert issubclass(cls, DBLossBase) and cls.spec is LOSS_TABLE[name]
    source = inspect.getsource(inspect.getmodule(cls))
    assert f"class DB{name}(" in source, f"DB{name} must be a class statement in {where}"
    assert getattr(detbalance.mmdet, f"DB{name}", None) is cls, f"detbalance.mmdet does not export DB{name}"
    assert f"DB{name}" in detbalance.mmdet.__all__


def test_a_class_named_for_another_loss_is_refused():
    with pytest.raises(TypeError, match="DBSeesaw adapts SeesawLoss; expected the name DBSeesawLoss"):

        class DBSeesaw(DBLossBase):
            spec = LOSS_TABLE["SeesawLoss"]


def test_dense_focal_loss_takes_class_weights_and_keyword_hyper_parameters():
    parameters = inspect.signature(MODELS.get("DBFocalLoss")).parameters
    assert list(parameters) == [
        "num_classes",
        "class_weight",
        "alpha",
        "gamma",
        "reduction",
        "use_sigmoid",
        "loss_weight",
    ]
    assert parameters["class_weight"].default is None
    assert all(parameters[n].kind is inspect.Parameter.KEYWORD_ONLY for n in list(parameters)[2:])
