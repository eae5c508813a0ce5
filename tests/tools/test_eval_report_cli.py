"""tools/eval_report.py: table, plot and json outputs; exit status 2 and no output file on bad input."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import TOOLS

TOOL = TOOLS / "eval_report.py"

GT = {
    "images": [{"id": 1, "width": 64, "height": 64}, {"id": 2, "width": 64, "height": 64}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 3, "bbox": [2, 2, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 8, "bbox": [30, 30, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 3, "bbox": [10, 10, 24, 16], "area": 384, "iscrowd": 0},
    ],
    "categories": [{"id": 3, "name": "head", "frequency": "f"}, {"id": 8, "name": "tail", "frequency": "r"}],
}


def _load_tool():
    spec = importlib.util.spec_from_file_location("eval_report_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tool():
    return _load_tool()


@pytest.fixture
def files(tmp_path):
    def write(name, data):
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return str(path)

    perfect = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 0.8}
        for a in GT["annotations"]
    ]
    return {
        "gt": write("gt.json", GT),
        "perfect": write("perfect.json", perfect),
        "head_only": write("head_only.json", [d for d in perfect if d["category_id"] == 3]),
        "half": write("half.json", perfect[:1] + perfect[1:2]),
        "write": write,
        "dir": tmp_path,
    }


def test_table_plot_and_json(tool, files, capsys):
    out_png, out_json = files["dir"] / "ap.png", files["dir"] / "report.json"
    rc = tool.main(
        [
            "--gt",
            files["gt"],
            "--results",
            f"ce={files['head_only']}",
            f"loss={files['half']},{files['perfect']}",
            f"oracle={files['perfect']}",
            "--oracle",
            "oracle",
            "--plot",
            str(out_png),
            "--json",
            str(out_json),
            "--metrics",
            "ap",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    assert rows["tail"][:4] == ["tail", "r", "0.0", "100.0"]  # ce found no tail object; loss: mean of 2 runs
    assert rows["APr"][-5:] == ["0.0", "100.0±0.0", "+100.0", "100.0", "+100.0"]
    assert "rare gap closed" in text and "100%" in text
    assert out_png.read_bytes()[:4] == b"\x89PNG"
    report = json.loads(out_json.read_text())
    assert report["baseline"] == "ce" and report["methods"]["loss"]["rare_gap_closed"] == 1.0
    assert report["methods"]["loss"]["runs"] == [files["half"], files["perfect"]]


def test_score_threshold_drops_low_scored_detections(tool, files, capsys):
    low_tail = [
        {**d, "score": 0.01 if d["category_id"] == 8 else 0.8} for d in json.loads(Path(files["perfect"]).read_text())
    ]
    path, out_json = files["write"]("low_tail.json", low_tail), files["dir"] / "report.json"
    assert (
        tool.main(
            [
                "--gt",
                files["gt"],
                "--results",
                f"m={path}",
                "--metrics",
                "ap",
                "--score-thr",
                "0.05",
                "--json",
                str(out_json),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    assert "detections scoring >= 0.05" in text and rows["tail"][-1] == "0.0" and rows["head"][-1] == "100.0"
    assert json.loads(out_json.read_text())["score_threshold"] == 0.05
    assert tool.main(["--gt", files["gt"], "--results", f"m={path}", "--metrics", "ap"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert rows["tail"][-1] == "100.0"
    assert tool.main(["--gt", files["gt"], "--results", f"m={path}", "--score-thr", "-1"]) == 2
    assert "score_threshold=-1.0; expected a finite number >= 0" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_runs_as_a_script(files):
    proc = subprocess.run(
        [sys.executable, str(TOOL), "--gt", files["gt"], "--results", f"a={files['perfect']}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "AP at IoU .50:.95" in proc.stdout and "APr" in proc.stdout


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "does not exist"),
        ("malformed", "is not valid json: Expecting ',' delimiter at line 1"),
        ("unknown_category", "category_id 4; expected one of the ground-truth category ids [3, 8]"),
        ("unknown_baseline", "baseline 'nope' is not one of the methods"),
    ],
)
def test_bad_input_exits_2_with_a_clear_error_and_no_output(tool, files, capsys, case, expected):
    results = files["perfect"]
    extra = []
    if case == "missing":
        results = str(files["dir"] / "nope.json")
    elif case == "malformed":
        bad = files["dir"] / "bad.json"
        bad.write_text('[{"image_id": 1 "category_id": 3}]')
        results = str(bad)
    elif case == "unknown_category":
        results = files["write"](
            "unknown.json", [{"image_id": 1, "category_id": 4, "bbox": [0, 0, 1, 1], "score": 1.0}]
        )
    else:
        extra = ["--baseline", "nope"]
    out_png = files["dir"] / "out.png"
    rc = tool.main(["--gt", files["gt"], "--results", f"m={results}", "--plot", str(out_png), *extra])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("eval_report: error:") and expected in err
    assert not out_png.exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--results", "ce"], "expected NAME=PATH[,PATH...]"),
        (["--results", "a=x.json", "a=y.json"], "must be distinct"),
        (["--results", "a=x.json", "--metrics", "ap,map"], "--metrics 'ap,map'"),
        (["--results", "a=x.json", "--plot", "out.jpg"], "expected a path ending in .png"),
    ],
)
def test_usage_errors_exit_2(tool, files, capsys, argv, expected):
    with pytest.raises(SystemExit) as exc:
        tool.main(["--gt", files["gt"], *argv])
    assert exc.value.code == 2
    assert expected in capsys.readouterr().err
