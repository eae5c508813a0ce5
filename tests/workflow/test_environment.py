"""The environment's detectron2 works on its own (no detbalance import first), in this process and in spawned
ones, and it is the variant the run expects (DETBALANCE_EXPECT_DETECTRON2=main in the main variant of CI)."""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys

import pytest

EXPECTED = os.environ.get("DETBALANCE_EXPECT_DETECTRON2", "")


def _fresh_python(code: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_detectron2_imports_and_spawns_without_detbalance(tmp_path):
    code = (
        "import multiprocessing as mp, sys\n"
        "import detectron2.modeling, detectron2.engine, detectron2.data, detectron2.evaluation\n"
        "from detectron2.data import transforms as T\n"
        "from detectron2.utils.collect_env import collect_env_info\n"
        "assert not [m for m in sys.modules if m.startswith('detbalance')]\n"
        "T.ExtentTransform((0, 0, 4, 4), (2, 2))  # v0.6's default interp was Image.LINEAR\n"
        "if __name__ == '__main__':\n"
        "    p = mp.get_context('spawn').Process(target=collect_env_info)  # a fresh rank imports detectron2\n"
        "    p.start(); p.join(120)\n"
        "    sys.exit(p.exitcode)\n"
    )
    result = _fresh_python(code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_detectron2_under_test_is_consistent_and_expected():
    from detbalance.detectron2._compat import HAS_COMPILED_OPS

    launch = importlib.import_module("detectron2.engine.launch")
    starts_cpu_ranks = "GLOO" in inspect.getsource(launch._distributed_worker)
    # upstream main: compiled ops and gloo CPU ranks; v0.6 from pb1-detectron2: placeholder ops, NCCL only
    assert HAS_COMPILED_OPS == starts_cpu_ranks
    if EXPECTED == "main":
        assert HAS_COMPILED_OPS and starts_cpu_ranks, "DETBALANCE_EXPECT_DETECTRON2=main but v0.6 was imported"
    elif EXPECTED:
        assert EXPECTED == "v0.6", f"DETBALANCE_EXPECT_DETECTRON2={EXPECTED!r}; expected main or v0.6"
        assert not HAS_COMPILED_OPS


def test_placeholder_ops_name_the_op():
    from detectron2 import _C

    if not getattr(_C, "DETBALANCE_PLACEHOLDER", False):
        pytest.skip("this detectron2 has its compiled ops")
    with pytest.raises(ImportError, match="'deform_conv_forward' is not available"):
        _C.deform_conv_forward  # noqa: B018
    assert "placeholder" in _C.get_compiler_version() and _C.has_cuda() is False
