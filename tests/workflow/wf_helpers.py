"""Helpers of the workflow tests: repository paths and a runner for the tools as a user runs them (a subprocess
with the repository's Python, always under a timeout)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO_ROOT as REPO  # noqa: F401  (the tests import REPO and TOOLS from here)
from helpers import TOOLS  # noqa: F401


def run_tool(args, *, cwd: Path, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python <args>`` in ``cwd`` as a user runs it; fails the test (never hangs) past ``timeout`` seconds.

    The tool runs in its own process group, killed whole on timeout: ranks it spawned go with it.
    """
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    command = [sys.executable, *map(str, args)]
    with subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        start_new_session=True,
    ) as process:
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
