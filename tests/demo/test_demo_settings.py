"""Command line and settings of the demo: defaults, --quick, the method rows it runs, and clear errors for bad
values."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from dbbench.benchmark.methods import RFS_THRESHOLD, get_method
from dbbench.demo import DemoSettings, demo_methods, parse_methods
from dbbench.demo.datasets import folder_data
from dbbench.demo.pipeline import demo_jobs
from dbbench.training import Schedule
from dbbench.training.data import RunData
from helpers import REPO_ROOT as REPO
from helpers import shared_path


def _tool():
    spec = importlib.util.spec_from_file_location("demo_tool", REPO / "tools" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


D2 = ("detectron2",)


def _settings(methods: str, *, seeds=(0,), oracle: bool = False) -> DemoSettings:
    return DemoSettings(
        frameworks=D2,
        methods=tuple(parse_methods(methods, D2)),
        seeds=seeds,
        schedule=Schedule(),
        out_dir=Path("out"),
        oracle=oracle,
    )


def _data(name: str) -> RunData:
    """Paths only: building the runs reads no file."""
    return RunData(
        name, Path(f"{name}.json"), Path(name), Path("test.json"), Path("test"), ("a",), (1,), ("r",), 64, 64, ()
    )


def test_parse_methods_puts_baseline_first_and_rejects_unknown():
    assert [m.key for m in parse_methods("seesaw, wce,seesaw", D2)] == ["ce", "seesaw", "wce"]
    with pytest.raises(ValueError, match="unknown method 'focal'; expected a comma-separated list of \\['ce'"):
        parse_methods("ce,focal", D2)
    assert {"ce", "wce", "cbfocal", "eql", "eqlv2", "seesaw", "federated", "rfs", "rfs-seesaw"} <= set(demo_methods(D2))
    assert "mmdet-seesaw" in demo_methods(("mmdet",)) and "mmdet-seesaw" not in demo_methods(D2)


def test_the_demo_runs_a_method_row_with_repeat_factor_sampling():
    jobs = demo_jobs(_settings("ce,rfs-seesaw", seeds=(0, 1)), {"train": _data("train")}, Path("weights.json"))
    assert [(j.method.key, j.spec.seed) for j in jobs] == [("ce", 0), ("ce", 1), ("rfs-seesaw", 0), ("rfs-seesaw", 1)]
    spec = jobs[2].spec
    assert spec.sampler == "rfs" and spec.rfs_threshold == RFS_THRESHOLD == get_method("rfs-seesaw").rfs_threshold
    assert spec.loss.key == "seesaw" and spec.regime == "scratch" and spec.data.name == "train"
    assert spec.work_dir == Path("out/runs/detectron2/rfs-seesaw/seed0") and spec.weights_file == Path("weights.json")
    assert jobs[0].spec.sampler is None and jobs[0].spec.loss.key == "ce"


def test_the_oracle_row_trains_on_the_balanced_split():
    settings = _settings("ce", oracle=True)
    jobs = demo_jobs(settings, {"train": _data("train"), "train_balanced": _data("balanced")}, Path("w.json"))
    assert [(j.method.key, j.spec.data.name) for j in jobs] == [("ce", "train"), ("oracle", "balanced")]
    with pytest.raises(ValueError, match="'oracle' trains on split 'train_balanced'; expected one of \\['train'\\]"):
        demo_jobs(settings, {"train": _data("train")}, Path("w.json"))


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("crt", "re-trains the classifier of the model of 'ce'"),
        ("bags", "decouple='classifier'"),
        ("ce-norcal", "calibrates the trained model of 'ce'"),
        ("retinanet-focal", "trains model 'retinanet'"),
        ("eqlv2-clip", "exists only in the regimes"),
        ("oracle", "the oracle: --oracle"),
        ("mmdet-seesaw", "exists only in"),
    ],
)
def test_rows_the_demo_cannot_train_end_to_end_are_refused_by_name(key, reason):
    with pytest.raises(ValueError, match=f"method '{key}' cannot run in the demo: .*{reason}") as error:
        parse_methods(f"ce,{key}", D2)
    assert "expected a row the demo trains end to end in ['detectron2'], one of ['ce', 'wce'," in str(error.value)
    with pytest.raises(ValueError, match=f"method '{key}' cannot run in the demo"):
        DemoSettings(
            frameworks=D2,
            methods=(get_method("ce"), get_method(key)),
            seeds=(0,),
            schedule=Schedule(),
            out_dir=Path("x"),
        )


def test_default_and_quick_settings():
    tool = _tool()
    default = tool.settings_from_args(tool.build_parser().parse_args([]))
    assert default.frameworks == ("detectron2",) and default.schedule.iters == 1200
    assert [m.key for m in default.methods] == ["ce", "wce", "seesaw"]
    quick = tool.settings_from_args(tool.build_parser().parse_args(["--quick", "--framework", "both"]))
    assert quick.frameworks == ("detectron2", "mmdet") and quick.schedule.iters == 150
    assert [m.key for m in quick.methods] == ["ce", "wce"]
    for flag in ("--losses", "--methods"):
        args = tool.build_parser().parse_args(["--framework", "mmdet", flag, "rfs,mmdet-seesaw"])
        assert [m.key for m in tool.settings_from_args(args).methods] == ["ce", "rfs", "mmdet-seesaw"]
    assert tool.main(["--oracle", "--data", str(REPO)]) == 2
    assert tool.main(["--losses", "ce,crt"]) == 2


def test_bad_values_name_the_value():
    with pytest.raises(ValueError, match="iters=0"):
        Schedule(iters=0)
    with pytest.raises(ValueError, match="'caffe'"):
        DemoSettings(
            frameworks=("caffe",), methods=(get_method("ce"),), seeds=(0,), schedule=Schedule(), out_dir=Path("x")
        )
    with pytest.raises(ValueError, match="methods \\['wce'\\]; expected a list starting with the baseline 'ce'"):
        DemoSettings(frameworks=D2, methods=(get_method("wce"),), seeds=(0,), schedule=Schedule(), out_dir=Path("x"))
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
