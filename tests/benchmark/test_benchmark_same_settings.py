"""One method, one loss: both runners set every hyper-parameter of a row's detbalance loss (its defaults, then the
row's own), so a framework's config file cannot train another loss under the same name."""

import pytest
from bench_helpers import tiny_settings

from dbbench.benchmark.methods import METHODS, method_loss
from dbbench.benchmark.runs import run_spec
from dbbench.data.longtail import get_longtail_dataset
from dbbench.training import detectron2_runner, mmdet_runner
from dbbench.training.models import DEFAULT_MODEL
from detbalance.losses import LOSS_TABLE

ROWS = sorted(
    {m.loss: key for key, m in METHODS.items() if method_loss(m).loss is not None and m.model == DEFAULT_MODEL}.values()
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    settings = tiny_settings(tmp_path_factory.mktemp("same"))
    return settings, get_longtail_dataset(settings.spec, cache_dir=settings.cache_dir)


@pytest.mark.slow
@pytest.mark.parametrize("key", ROWS)
def test_detectron2_and_mmdet_configs_hold_the_same_loss_settings(key, dataset, tmp_path):
    settings, data = dataset
    method = METHODS[key]
    loss = method_loss(method)
    spec = LOSS_TABLE[loss.loss]
    expected = {**spec.defaults(), **loss.hyper}
    d2 = detectron2_runner.build_cfg(run_spec(settings, data, tmp_path / "w.json", "detectron2", method, 0))
    node = d2.DETBALANCE[spec.key]
    assert d2.DETBALANCE.LOSS == loss.loss
    assert {argument: node[key] for key, argument in spec.config_keys().items()} == expected
    mm = mmdet_runner.build_cfg(run_spec(settings, data, tmp_path / "w.json", "mmdet", method, 0))
    loss_cls = mm.model.roi_head.bbox_head.loss_cls
    assert loss_cls.type == f"DB{loss.loss}"
    assert {argument: loss_cls[argument] for argument in expected} == expected
    if key == "federated":  # the tiny MMDetection config once set num_sampled=4 where Detectron2 trained with 50
        assert loss_cls.num_sampled == node.NUM_SAMPLED == 50
