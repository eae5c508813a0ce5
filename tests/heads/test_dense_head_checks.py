"""The framework-free checks both adapters' dense heads apply (:mod:`detbalance.losses.dense_head_checks`) and the
statistics source both adapters build a loss from (:mod:`detbalance.losses.statistics_source`)."""

from __future__ import annotations

import pytest
import torch

from detbalance.losses import ClassBalancedFocalLoss, EqualizedFocalLoss, SeesawLoss
from detbalance.losses.dense_head_checks import check_dense_head, refuse_box_weights
from detbalance.losses.statistics_source import build_from_statistics, missing_weights_file
from helpers import long_tail_stats


def test_refuse_box_weights_names_the_head_the_field_and_the_box_heads():
    refuse_box_weights([None, torch.ones(3)], "H", "w", ["A", "B"])  # none, or all 1: nothing to refuse
    with pytest.raises(
        ValueError, match=r"the dense head H got per-box weights \(w\) other than 1, expected none.*\(A, B\) do"
    ):
        refuse_box_weights([torch.ones(2), torch.tensor([1.0, 0.5])], "H", "w", ["A", "B"])


def test_check_dense_head_names_the_loss_the_head_and_the_key():
    check_dense_head(EqualizedFocalLoss(4), "H", 4, "KEY")
    with pytest.raises(ValueError, match="loss SeesawLoss cannot serve the dense head H"):
        check_dense_head(SeesawLoss(4), "H", 4, "KEY")
    with pytest.raises(
        ValueError, match=r"loss EqualizedFocalLoss of H was built for num_classes=4, expected 5 \(KEY\)"
    ):
        check_dense_head(EqualizedFocalLoss(4), "H", 5, "KEY")


def test_missing_source_builds_for_inference_and_a_present_one_from_its_statistics(tmp_path):
    missing = missing_weights_file(tmp_path / "absent.json")
    assert isinstance(missing, FileNotFoundError) and "absent.json does not exist" in str(missing)
    stats = long_tail_stats(4)
    loaded = build_from_statistics(ClassBalancedFocalLoss, 4, {"beta": 0.9}, None, lambda: stats)
    assert loaded.samples_per_class.tolist() == stats.instance_counts[:4] and loaded.beta == 0.9

    def unreadable():
        raise PermissionError("datasets' images are not on this machine")

    for source in ({"missing": missing, "load": unreadable}, {"missing": None, "load": unreadable}):
        loss = build_from_statistics(ClassBalancedFocalLoss, 4, {}, source["missing"], source["load"])
        with pytest.raises(OSError, match="was built without its class statistics"):
            loss(torch.zeros(2, 4), torch.tensor([0, 4]))


def test_a_source_that_does_not_fit_fails_the_build():
    def wrong():
        raise ValueError("describes 3 classes, expected 4")

    with pytest.raises(ValueError, match="describes 3 classes"):
        build_from_statistics(ClassBalancedFocalLoss, 4, {}, None, wrong)
