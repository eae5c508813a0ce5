"""The training-step benchmark runs end to end at its smallest size, and the loss benchmark states a target for
every loss at the small scale (no timing is asserted here: the targets live in the tools' ``--check``)."""

import importlib.util
import sys

import pytest

from helpers import TOOLS


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


SMALLEST = ["--classes", "3", "--size", "64", "--images", "1", "--boxes", "1", "--repeats", "1", "--warmup", "0"]


def _rows(printed: str, framework: str) -> dict[str, float]:
    """``head -> ratio`` from the printed table's rows of ``framework``."""
    rows = {}
    for line in printed.splitlines():
        if line.startswith(framework):
            name = line[12:56].strip()
            rows[name] = float(line[56:].split()[1])
    return rows


@pytest.mark.slow
@pytest.mark.parametrize(
    "framework,own,heads",
    [
        (
            "detectron2",
            "own: StandardROIHeads",
            ["BalancedROIHeads EQLv2Loss", "BalancedROIHeads WeightedCrossEntropyLoss"],
        ),
        ("mmdet", "own: CrossEntropyLoss", ["DBEQLv2Loss", "DBWeightedCrossEntropyLoss"]),
    ],
)
def test_bench_step_times_each_head_against_the_frameworks_own(framework, own, heads, capsys):
    bench = _load("bench_step")
    assert bench.main(["--frameworks", framework, *SMALLEST]) == 0
    rows = _rows(capsys.readouterr().out, framework)
    assert list(rows) == [own, *heads]
    assert rows[own] == 1.0 and all(ratio > 0 for ratio in rows.values())


def test_bench_step_rejects_bad_options(capsys):
    bench = _load("bench_step")
    for argv, message in (
        (["--frameworks", "caffe"], "caffe"),
        (["--losses", "FocalLoss"], "FocalLoss"),
        (["--repeats", "0"], "--repeats 0"),
    ):
        with pytest.raises(SystemExit):
            bench.main(argv)
        assert message in capsys.readouterr().err


def test_bench_step_summary_compares_with_the_first_head_of_each_framework():
    bench = _load("bench_step")
    cases = [
        bench.Case("detectron2", "own: StandardROIHeads", lambda: None, [2.0, 2.0, 2.2]),
        bench.Case("detectron2", "BalancedROIHeads EQLv2Loss", lambda: None, [2.0, 2.1, 2.3]),
        bench.Case("mmdet", "own: CrossEntropyLoss", lambda: None, [3.0]),
        bench.Case("mmdet", "DBEQLv2Loss", lambda: None, [3.3]),
    ]
    rows = bench.summarize(cases)
    assert [r["ratio"] for r in rows] == pytest.approx([1.0, 2.1 / 2.0, 1.0, 1.1])
    assert [r["met"] for r in rows] == [True, True, True, False]
    assert "MISSED" in bench.format_rows(rows, "title")


def test_bench_losses_has_a_ce_target_for_every_loss_checked_at_the_lvis_scale_only():
    bench = _load("bench_losses")
    cases = bench.bench_scale(32, 3, bench.torch.device("cpu"), repeats=1, warmup=0, with_mmdet=False)
    for scale, checked in (("small", False), ("lvis", True)):
        rows = {r["loss"]: r for r in bench.summarize(cases, scale)}
        for loss in bench.DETBALANCE_LOSSES:
            target = rows[loss]["ce_target"]
            assert target["reference"] == bench.CE
            assert target["limit"] == bench.CE_TARGET
            assert target["checked"] is checked
            assert target["met"] == (target["ratio"] <= bench.CE_TARGET)
            assert target["ratio"] == pytest.approx(rows[loss]["time_vs_ce"], rel=1e-9)
        assert rows["EQLv2Loss"]["target"] is None  # without mmdet: no framework reference to compare with
        assert rows[bench.CE]["ce_target"] is None
    assert "reported" in bench.format_rows(bench.summarize(cases, "small"), "title")
