"""The gradient-clipped rows of the pretrained regime: they exist there only, differ from their unclipped rows by
the clipping alone, and clip the whole model's gradient in both frameworks."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from bench_helpers import tiny_settings

from dbbench.benchmark import get_method, pending
from dbbench.benchmark.methods import CLIP_GRAD_NORM, METHODS, definition_hash, method_loss
from dbbench.benchmark.runner import run_matrix

CLIPPED = {"eqlv2-clip": "eqlv2", "rfs-eqlv2-clip": "rfs-eqlv2-t0.1", "mmdet-eqlv2-clip": "mmdet-eqlv2"}


@pytest.mark.parametrize("key,unclipped", sorted(CLIPPED.items()))
def test_clipped_rows_differ_from_their_unclipped_row_by_the_clipping_only(key, unclipped):
    row, base = get_method(key), get_method(unclipped)
    assert row.clip_grad_norm == CLIP_GRAD_NORM and base.clip_grad_norm is None
    assert dataclasses.replace(row, key=base.key, label=base.label, clip_grad_norm=None, regimes=base.regimes) == base
    for framework in row.frameworks:
        assert pending(row, framework, "pretrained") is None
        assert "exists only in the regimes ('pretrained',)" in pending(row, framework, "scratch")


def test_rows_without_the_new_fields_keep_their_hash():
    row = get_method("eqlv2")
    with_defaults = dataclasses.replace(row, clip_grad_norm=None)
    assert definition_hash(row, {}) == definition_hash(with_defaults, {})
    assert definition_hash(get_method("eqlv2-clip"), {}) != definition_hash(row, {})
    assert all(
        m.regimes == ("scratch", "pretrained")
        for k, m in METHODS.items()
        if k not in {*CLIPPED, "eqlv2-prior", "crt-seesaw-normed", "crt-seesaw-normed-f1"}
    )


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), True, "35"])
def test_runspec_refuses_a_bad_clip_grad_norm(tmp_path, bad):
    from dbbench.training import LOSS_SETTINGS, Schedule
    from dbbench.training.run import RunSpec

    with pytest.raises(ValueError, match=r"clip_grad_norm=.*expected None or a number > 0"):
        RunSpec(
            framework="detectron2",
            loss=LOSS_SETTINGS["ce"],
            seed=0,
            data=None,
            schedule=Schedule(iters=1),
            weights_file=tmp_path,
            work_dir=tmp_path,
            clip_grad_norm=bad,
        )


def test_the_prior_row_starts_eqlv2s_classifier_at_probability_0_01():
    row = get_method("eqlv2-prior")
    loss = method_loss(row)
    assert loss.loss == "EQLv2Loss" and loss.settings()["prior_prob"] == 0.01
    assert row.regimes == ("pretrained",) and row.clip_grad_norm is None


def test_a_row_of_an_unknown_regime_is_refused():
    with pytest.raises(ValueError, match=r"regimes=\('finetuned',\); expected a non-empty subset"):
        dataclasses.replace(get_method("eqlv2-clip"), regimes=("finetuned",))


@pytest.mark.slow
def test_clipped_eqlv2_trains_in_both_frameworks_with_the_gradient_clipped(tmp_path):
    settings = dataclasses.replace(tiny_settings(tmp_path), regime="pretrained")
    records = run_matrix(settings, ["detectron2", "mmdet"], ["eqlv2-clip"], [0], log=lambda line: None)
    assert [(r["framework"], r["method"], r["regime"]) for r in records] == [
        ("detectron2", "eqlv2-clip", "pretrained"),
        ("mmdet", "eqlv2-clip", "pretrained"),
    ]
    work = next((tmp_path / "work").rglob("mmdet/eqlv2-clip/seed0"))
    assert f"clip_grad=dict(max_norm={CLIP_GRAD_NORM}, norm_type=2)" in (work / "config.py").read_text()
    assert all(torch.isfinite(torch.tensor(r["metrics"]["AP"])) for r in records)
