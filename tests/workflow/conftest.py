"""Fixtures of the workflow tests: a tiny COCO-format data set on disk and a runner for the tools as a user runs
them (a subprocess with the repository's Python, always under a timeout)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from detbalance.data import SyntheticSpec, generate

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "tools"
# 4 classes, 64x64 images: a few seconds per tool run on 2 CPU cores.
TINY = SyntheticSpec(num_classes=4, head_instances=24, imbalance_ratio=8, test_per_class=2, image_size=64,
                     min_size=10, max_size=16, max_objects=3)


@dataclass(frozen=True)
class CocoSet:
    root: Path
    train_json: Path
    train_images: Path
    test_json: Path
    test_images: Path
    num_classes: int


@pytest.fixture(scope="session")
def coco_set(tmp_path_factory) -> CocoSet:
    data = generate(TINY, tmp_path_factory.mktemp("workflow") / "shapes")
    return CocoSet(data.root, data.train_json, data.train_images, data.test_json, data.test_images,
                   TINY.num_classes)


@pytest.fixture(scope="session")
def one_image_json(coco_set) -> Path:
    """The first train image alone (detectron2's sampler restarts its order on resume; one image has one order)."""
    train = json.loads(coco_set.train_json.read_text())
    image = train["images"][0]
    one = dict(train, images=[image], annotations=[a for a in train["annotations"] if a["image_id"] == image["id"]])
    path = coco_set.root / "one_image.json"
    path.write_text(json.dumps(one))
    return path


def run_tool(args, *, cwd: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python <args>`` in ``cwd`` as a user runs it; fails the test (never hangs) past ``timeout`` seconds.

    The tool runs in its own process group, killed whole on timeout: ranks it spawned go with it.
    """
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    command = [sys.executable, *map(str, args)]
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env=full_env, start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(f"{args[0]} ran past {timeout} s; output so far:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def assert_ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit status {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr
