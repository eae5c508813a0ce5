"""compute_weights_file: the function behind tools/compute_weights.py, as the demo calls it."""

import inspect
import json

import pytest

from detbalance.cli.compute_weights import build_parser, compute_weights_file
from detbalance.weights import load_weights


@pytest.fixture
def coco(tmp_path):
    cats = [{"id": 1, "name": "head"}, {"id": 2, "name": "tail"}]
    images = [{"id": i, "file_name": f"{i}.jpg", "height": 16, "width": 16} for i in range(1, 9)]
    anns = [{"image_id": i, "category_id": 1, "bbox": [0, 0, 4, 4]} for i in range(1, 9)]
    anns += [
        {"image_id": 1, "category_id": 2, "bbox": [2, 2, 0, 3]},  # zero width: counted and reported
        {"image_id": 2, "category_id": 2, "bbox": [1, 1, 3, 3], "iscrowd": 1},
    ]
    anns = [dict(a, id=j + 1, area=float(a["bbox"][2] * a["bbox"][3])) for j, a in enumerate(anns)]
    path = tmp_path / "train.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


def test_writes_the_file_and_returns_what_the_command_prints(coco, tmp_path):
    out, png = tmp_path / "w.json", tmp_path / "w.png"
    result = compute_weights_file(coco=str(coco), scheme="inverse", output=out, plot=png, progress="never")
    assert load_weights(out) == result.weights and png.stat().st_size > 0
    assert result.weights.stats.instance_counts == [8, 1] and result.weights.stats.num_images == 8
    # inverse counts 1/8 and 1/1, scaled so that an average of the 9 instances weighs 1: 8 w0 + w1 = 9
    assert result.weights.weights == pytest.approx([9 / 16, 9 / 2])
    assert result.weights.params["normalize"] == "instances"
    by_class = compute_weights_file(coco=str(coco), scheme="inverse", normalize="classes", progress="never")
    assert (
        by_class.weights.weights == pytest.approx([2 / 9, 16 / 9]) and by_class.weights.params["normalize"] == "classes"
    )
    assert (
        result.report.startswith(f"source: {coco}") and "1 crowd/ignored/difficult boxes: not counted" in result.report
    )
    assert len(result.warnings) == 1 and "zero-area box" in result.warnings[0]


def test_command_line_defaults_are_the_function_defaults():
    args = vars(build_parser().parse_args(["--coco", "x.json"]))
    defaults = {n: p.default for n, p in inspect.signature(compute_weights_file).parameters.items()}
    assert args == {**defaults, "coco": "x.json"}


def test_exactly_one_source(coco, tmp_path):
    with pytest.raises(ValueError, match=r"sources \['coco', 'voc'\]; expected exactly one of"):
        compute_weights_file(coco=str(coco), voc=str(tmp_path))
    with pytest.raises(ValueError, match=r"sources \[\]; expected exactly one of"):
        compute_weights_file()
    assert not (tmp_path / "w.json").exists()
