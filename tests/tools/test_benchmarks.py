"""The benchmark scripts run end to end at a tiny size and print their ratios (no timing is asserted here)."""

import importlib.util
import json
import sys

import pytest

from helpers import TOOLS

#: MMDetection's own losses the loss benchmark times beside detbalance's (mmdet is installed by `make setup`)
MMDET_REFERENCES = {"mmdet CrossEntropyLoss(class_weight)", "mmdet SeesawLoss", "mmdet EQLV2Loss"}


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def test_bench_losses_reports_every_loss_against_ce(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert _load("bench_losses").main(["--scales", "small", "--repeats", "1", "--warmup", "0", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = json.loads(out.read_text())["small"]
    names = {r["loss"] for r in rows}
    for loss in (
        "WeightedCrossEntropyLoss",
        "ClassBalancedFocalLoss",
        "EqualizationLoss",
        "EQLv2Loss",
        "SeesawLoss",
        "FederatedLoss",
    ):
        assert loss in names and loss in printed
    assert MMDET_REFERENCES <= names, f"MMDetection's reference losses missing: {MMDET_REFERENCES - names}"
    assert all(r["time_ms"] > 0 and r["time_vs_ce"] > 0 for r in rows)
    by_name = {r["loss"]: r for r in rows}
    ce = by_name["F.cross_entropy"]
    for row in rows:  # every ratio is its time over the plain cross-entropy's
        assert row["time_vs_ce"] == pytest.approx(row["time_ms"] / ce["time_ms"], rel=1e-9)
    for loss, reference in (("SeesawLoss", "mmdet SeesawLoss"), ("EQLv2Loss", "mmdet EQLV2Loss")):
        target = by_name[loss]["target"]
        assert target["reference"] == reference
        assert target["ratio"] == pytest.approx(by_name[loss]["time_ms"] / by_name[reference]["time_ms"], rel=1e-9)
        assert target["met"] == (target["ratio"] <= target["limit"])


@pytest.mark.slow
def test_bench_compute_weights_checks_the_counts(lvis_v1_stats, tmp_path, capsys):
    """On every 10th LVIS category with counts capped (the full set is ~1.3 M boxes): the benchmark builds the json,
    reads it back and verifies the per-category counts itself."""
    data = json.loads(lvis_v1_stats.read_text())
    small = []
    for c in data["categories"][::10]:
        images = min(c["image_count"], 300)
        small.append(dict(c, image_count=images, instance_count=min(c["instance_count"], 3 * images)))
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(dict(data, categories=small)))
    assert _load("bench_compute_weights").main(["--stats", str(path), "--repeats", "1", "--num-images", "1000"]) == 0
    printed = capsys.readouterr().out
    assert f"{len(small)} categories" in printed and "statistics verified" in printed
