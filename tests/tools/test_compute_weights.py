"""tools/compute_weights.py, run in-process through ``main(argv)``: outputs, report, options."""

import importlib.util
import json
import math

import numpy as np
import pytest

from detbalance.weights import load_weights
from helpers import TOOLS

TOOL = TOOLS / "compute_weights.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("compute_weights_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def coco(tmp_path):
    cats = [{"id": 2, "name": "common"}, {"id": 9, "name": "rare"}, {"id": 5, "name": "mid"}]
    images = [{"id": i, "file_name": f"{i}.jpg", "height": 16, "width": 16} for i in range(1, 31)]
    anns = []
    for i in range(1, 31):
        anns += [{"image_id": i, "category_id": 2, "bbox": [0, 0, 4, 4]}] * 3
        if i % 5 == 0:
            anns.append({"image_id": i, "category_id": 5, "bbox": [1, 1, 4, 4]})
    anns.append({"image_id": 7, "category_id": 9, "bbox": [2, 2, 3, 3]})
    anns.append({"image_id": 8, "category_id": 9, "bbox": [2, 2, 3, 3], "iscrowd": 1})
    for j, a in enumerate(anns):
        anns[j] = dict(a, id=j + 1, area=float(a["bbox"][2] * a["bbox"][3]))
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def test_bccd_report_file_and_plot(tool, bccd_root, tmp_path, capsys):
    root = bccd_root
    out, png = tmp_path / "w.json", tmp_path / "plot.png"
    argv = [
        "--voc",
        str(root),
        "--classes",
        "RBC",
        "WBC",
        "Platelets",
        "--scheme",
        "inverse",
        "-o",
        str(out),
        "--plot",
        str(png),
    ]
    assert tool.main(argv) == 0
    captured = capsys.readouterr()
    wf = load_weights(out, num_classes=3)
    assert wf.stats.instance_counts == [4155, 372, 361] and wf.stats.image_counts == [349, 358, 201]
    assert wf.groups == ["f", "f", "f"] and wf.scheme == "inverse"
    n = np.array([4155, 372, 361.0])
    np.testing.assert_allclose(wf.weights, (1 / n) * n.sum() / 3)  # an average instance weighs 1
    lines = captured.out.splitlines()
    assert any(line.split() == ["0", "RBC", "4155", "349", "f", f"{wf.weights[0]:.4f}"] for line in lines)
    assert "label  class" in captured.out and "3 classes (0 r / 0 c / 3 f)" in captured.out
    assert captured.err.count("zero-area box") == 2 and "BloodImage_00338.jpg" in captured.err
    assert "max/min class weight ratio is 11.5 (> 10)" in captured.err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png", "w.json"]  # no temporary files left


def test_options_reach_the_file(tool, coco, tmp_path, capsys):
    out = tmp_path / "w.json"
    argv = [
        "--coco",
        str(coco),
        "--scheme",
        "effective_number",
        "--beta",
        "0.99",
        "--count",
        "images",
        "--max-ratio",
        "3",
        "--background-weight",
        "0.25",
        "-o",
        str(out),
    ]
    assert tool.main(argv) == 0
    captured = capsys.readouterr()
    wf = load_weights(out)
    assert wf.stats.class_names == ["common", "mid", "rare"]  # by category id 2, 5, 9
    assert wf.stats.instance_counts == [90, 6, 1] and wf.stats.image_counts == [30, 6, 1]
    assert wf.background_weight == 0.25
    assert wf.params["count"] == "images" and wf.params["beta"] == 0.99 and wf.params["max_ratio"] == 3
    assert max(wf.weights) / min(wf.weights) == pytest.approx(3.0)
    assert wf.groups == ["c", "r", "r"]
    assert "weight ratio" not in captured.err
    assert "1 crowd/ignored/difficult boxes: not counted" in captured.out
    # the crowd box counts when asked
    assert tool.main(["--coco", str(coco), "--include-ignored", "-o", str(out)]) == 0
    assert load_weights(out).stats.instance_counts == [90, 6, 2]


def test_rfs_summary(tool, coco, capsys):
    assert tool.main(["--coco", str(coco), "--rfs-threshold", "0.3"]) == 0
    out = capsys.readouterr().out
    # 30 images; 'rare' in 2 (f=2/30: its crowd box counts for sampling, as detectron2's and MMEngine's
    # samplers count it), 'mid' in 6 (f=0.2), 'common' in all: an image repeats max over its classes of
    # max(1, sqrt(t / f_c)) times (Gupta et al. 2019), here sqrt(4.5) for 2 images, sqrt(1.5) for 6, 1 for 22.
    factors = [math.sqrt(0.3 / (2 / 30))] * 2 + [math.sqrt(0.3 / 0.2)] * 6 + [1.0] * 22
    assert (
        f"repeat factor sampling, threshold 0.3: 8 of 30 images repeated (26.7%), factor mean "
        f"{sum(factors) / 30:.3f}, max 2.12; epoch length {sum(factors):.0f} images"
    ) in out
    assert "factor mean 1.120, max 2.12; epoch length 34 images" in out


def test_missing_max_and_zero_count_classes(tool, coco, tmp_path, capsys):
    data = json.loads(coco.read_text())
    data["categories"].append({"id": 11, "name": "never"})
    coco.write_text(json.dumps(data))
    out = tmp_path / "w.json"
    assert tool.main(["--coco", str(coco), "-o", str(out)]) == 2
    assert "1 class(es) have zero count: never" in capsys.readouterr().err and not out.exists()
    assert tool.main(["--coco", str(coco), "--missing", "max", "-o", str(out)]) == 0
    wf = load_weights(out)
    assert wf.weights[-1] == max(wf.weights) and wf.groups[-1] == "r"


@pytest.mark.parametrize("listing", ["by_id", "shuffled"])
def test_framework_sources_match_raw_json(tool, coco, tmp_path, capsys, listing):
    """Non-contiguous category ids 2, 5, 9. Detectron2 numbers labels by sorted id, MMDetection by the json's
    listing order: listed by id, all sources agree; shuffled, MMDetection's labels really are permuted and its
    statistics say so (names follow the categories behind the labels, with a warning)."""
    import uuid

    data = json.loads(coco.read_text())
    if listing == "by_id":
        data["categories"] = sorted(data["categories"], key=lambda c: c["id"])
    coco.write_text(json.dumps(data))

    cfg = tmp_path / "cfg.py"
    cfg.write_text(
        "default_scope = 'mmdet'\n"
        "train_dataloader = dict(batch_size=1, num_workers=0, dataset=dict(type='CocoDataset', "
        f"data_root={str(tmp_path)!r}, ann_file={coco.name!r}, data_prefix=dict(img=''), "
        "metainfo=dict(classes=('common', 'mid', 'rare')), filter_cfg=None, pipeline=[]))\n"
    )
    files = {}
    for source in (
        ["--coco", str(coco)],
        ["--mmdet-config", str(cfg)],
        ["--register-coco", f"cw_{uuid.uuid4().hex[:8]}", str(coco), str(tmp_path)],
    ):
        out = tmp_path / f"{source[0][2:]}.json"
        if listing == "shuffled" and source[0] == "--mmdet-config":
            with pytest.warns(UserWarning, match="json's category order"):
                assert tool.main(source + ["-o", str(out)]) == 0, capsys.readouterr().err
        else:
            assert tool.main(source + ["-o", str(out)]) == 0, capsys.readouterr().err
        files[source[0]] = load_weights(out)
    stats = {k: v.stats for k, v in files.items()}
    assert stats["--coco"] == stats["--register-coco"]
    assert stats["--coco"].class_names == ["common", "mid", "rare"]
    assert stats["--coco"].instance_counts == [90, 6, 1]
    if listing == "by_id":
        assert stats["--mmdet-config"] == stats["--coco"]
        assert [v.weights for v in files.values()].count(files["--coco"].weights) == 3
    else:  # json lists common (2), rare (9), mid (5): MMDetection's label 1 is 'rare'
        assert stats["--mmdet-config"].class_names == ["common", "rare", "mid"]
        assert stats["--mmdet-config"].instance_counts == [90, 1, 6]
