"""Command line and settings of the demo: defaults, --quick, and clear errors for bad values."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from dbbench.demo import DEMO_LOSSES, DemoSettings, Schedule, parse_losses
from dbbench.demo.datasets import folder_data
from helpers import REPO_ROOT as REPO
from helpers import shared_path


def _tool():
    spec = importlib.util.spec_from_file_location("demo_tool", REPO / "tools" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parse_losses_puts_baseline_first_and_rejects_unknown():
    assert [d.key for d in parse_losses("seesaw, wce,seesaw")] == ["ce", "seesaw", "wce"]
    with pytest.raises(ValueError, match="unknown loss 'focal'"):
        parse_losses("ce,focal")
    assert set(DEMO_LOSSES) == {
        *("ce", "wce", "cbfocal", "cbfocal-b0.9", "eql", "eqlv2", "eqlv2-p0.01", "seesaw", "federated", "bags")
    }


def test_default_and_quick_settings():
    tool = _tool()
    default = tool.settings_from_args(tool.build_parser().parse_args([]))
    assert default.frameworks == ("detectron2",) and default.schedule.iters == 1200
    assert [d.key for d in default.losses] == ["ce", "wce", "seesaw"]
    quick = tool.settings_from_args(tool.build_parser().parse_args(["--quick", "--framework", "both"]))
    assert quick.frameworks == ("detectron2", "mmdet") and quick.schedule.iters == 150
    assert tool.main(["--oracle", "--data", str(REPO)]) == 2


def test_bad_values_name_the_value():
    with pytest.raises(ValueError, match="iters=0"):
        Schedule(iters=0)
    with pytest.raises(ValueError, match="'caffe'"):
        DemoSettings(
            frameworks=("caffe",), losses=tuple(parse_losses("ce")), seeds=(0,), schedule=Schedule(), out_dir=Path("x")
        )
    assert Schedule(iters=1000).steps == (750, 920)
    with pytest.raises(ValueError, match="not a folder"):
        folder_data(REPO / "missing", REPO)


def test_voc_folder_is_converted_to_coco(tmp_path):
    data = folder_data(shared_path("bccd"), tmp_path)
    assert data.class_names == ("Platelets", "RBC", "WBC")
    train = json.loads(data.train_json.read_text())
    test = json.loads(data.test_json.read_text())
    assert len(train["images"]) == 292 and len(test["images"]) == 72
    assert all(a["bbox"][2] > 0 and a["bbox"][3] > 0 for a in train["annotations"] + test["annotations"])
    assert (data.train_images / train["images"][0]["file_name"]).is_file()
    assert data.stats_source[0] == "--voc"
