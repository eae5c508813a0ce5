"""Output a person can read in a log: progress without a terminal is a few plain lines, and the tools' output
carries no third-party deprecation warnings."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from tqdm import tqdm
from wf_helpers import TOOLS, run_tool

from detbalance.stats.progress import LOG_STEP_PERCENT, LogProgress, progress_bar

NOISE = ("DeprecationWarning", "FutureWarning", "pkg_resources is deprecated", "No CUDA runtime is found")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_without_a_terminal_is_one_line_per_step():
    stream = io.StringIO()
    bar = progress_bar(total=1200, desc="train", stream=stream)
    assert isinstance(bar, LogProgress)
    for i in range(1200):
        bar.update(1)
        if i % 20 == 0:
            bar.set_postfix(loss="0.500")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 100 // LOG_STEP_PERCENT and "\r" not in stream.getvalue()
    assert lines[0] == "train: 10% (120/1200) loss=0.500" and lines[-1].startswith("train: 100% (1200/1200)")


def test_progress_wrapping_an_iterable_and_stopping_early():
    stream = io.StringIO()
    assert list(progress_bar(range(7), total=7, desc="test", stream=stream)) == list(range(7))
    assert stream.getvalue().splitlines()[-1] == "test: 100% (7/7)"
    stream = io.StringIO()
    bar = LogProgress(total=50, desc="stopped", stream=stream)
    bar.update(3)
    bar.close()
    assert stream.getvalue().splitlines() == ["stopped: 6% (3/50)"]
    with pytest.raises(ValueError, match="step_percent=0"):
        LogProgress(total=5, step_percent=0)


def test_progress_on_a_terminal_is_tqdm_and_disabled_is_silent():
    assert isinstance(progress_bar(total=3, desc="x", stream=_Terminal()), tqdm)
    stream = io.StringIO()
    bar = progress_bar(total=3, desc="x", enabled=False, stream=stream)
    bar.update(3)
    bar.close()
    assert stream.getvalue() == ""


@pytest.mark.parametrize(
    "tool", ["train_net.py", "train.py", "test.py", "demo.py", "compute_weights.py", "eval_report.py"]
)
@pytest.mark.slow
def test_tools_print_no_third_party_warnings(tool, tmp_path):
    result = run_tool([TOOLS / tool, "--help"], cwd=tmp_path, timeout=180)
    assert result.returncode == 0 and "usage:" in result.stdout
    assert not [n for n in NOISE if n in result.stderr], result.stderr[-2000:]


@pytest.mark.slow
def test_framework_imports_are_quiet_after_the_filters(tmp_path):
    code = (
        "from detbalance.cli_warnings import quiet_third_party_warnings\n"
        "quiet_third_party_warnings()\n"
        "import detectron2.model_zoo, detectron2.engine, mmdet.models, mmengine.runner\n"
        "from torch.utils import cpp_extension\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not [n for n in NOISE if n in result.stderr], result.stderr[-2000:]
