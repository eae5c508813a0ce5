"""The quick start's first-run blocks (docs/quickstart.md, between the quickstart markers) run verbatim, in order,
in a fresh folder laid out like the repository (.venv, tools, configs, benchmarks linked), so the documented commands cannot drift from the code.

A ```python block whose first line is ``# <name>.py: ...`` is a file the reader saves; other python blocks run
with the venv's Python; ```bash blocks run with ``bash -e``. Every block has a timeout."""

from __future__ import annotations

import re
import subprocess

import pytest
from wf_helpers import REPO

BEGIN, END = "<!-- quickstart:begin -->", "<!-- quickstart:end -->"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)
SAVED_FILE = re.compile(r"#\s*([\w./-]+\.py):")


def quickstart_blocks() -> list[tuple[str, str]]:
    text = (REPO / "docs" / "quickstart.md").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "docs/quickstart.md must hold one quickstart section"
    section = text.split(BEGIN, 1)[1].split(END, 1)[0]
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(section)]


def test_quickstart_covers_both_frameworks():
    code = "\n".join(body for _, body in quickstart_blocks())
    for command in ("tools/compute_weights.py", "tools/train_net.py", "tools/train.py", "tools/test.py"):
        assert command in code


@pytest.mark.slow
def test_quickstart_blocks_run_verbatim(tmp_path):
    for name in (".venv", "tools", "configs", "benchmarks"):
        (tmp_path / name).symlink_to(REPO / name)
    logs = []
    for kind, body in quickstart_blocks():
        first = body.splitlines()[0] if body.strip() else ""
        saved = SAVED_FILE.match(first)
        if kind == "python" and saved:
            (tmp_path / saved.group(1)).write_text(body, encoding="utf-8")
            continue
        command = {
            "bash": ["bash", "-e", "-c", body],
            "python": [str(tmp_path / ".venv" / "bin" / "python"), "-c", body],
        }
        assert kind in command, f"quickstart block of unknown kind {kind!r}"
        try:
            result = subprocess.run(command[kind], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"block ran past 600 s:\n{body}\n{e.stdout}\n{e.stderr}")
        assert result.returncode == 0, f"block failed:\n{body}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        logs.append(result.stdout + result.stderr)
    log = "\n".join(logs)
    assert (tmp_path / "data" / "shapes" / "weights.json").is_file()
    assert (tmp_path / "work_dirs" / "d2_seesaw" / "model_final.pth").is_file()
    assert (tmp_path / "work_dirs" / "mmdet_seesaw" / "iter_20.pth").is_file()
    # detectron2 training, its --eval-only and MMDetection's test each end with the per-class report
    assert log.count("APr") >= 3 and "Per-class report" in log
