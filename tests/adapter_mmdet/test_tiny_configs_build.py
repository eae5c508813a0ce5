"""Every tiny MMDetection config builds with ``MODELS.build(Config.fromfile(path).model)`` in a fresh process,
where no default scope is set (the tests' own process sets one through ``register_all_modules``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import MMDET_CONFIGS, REPO_ROOT

TINY = sorted(p.relative_to(REPO_ROOT).as_posix() for p in (MMDET_CONFIGS / "tiny").glob("*.py"))

_BUILD = """
import json, sys, warnings
warnings.filterwarnings("ignore")
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope

built = {}
for path in sys.argv[1:]:
    scope = DefaultScope.get_current_instance()
    try:
        if scope is not None:
            raise RuntimeError(f"a default scope ({scope.scope_name}) is set before the build")
        built[path] = type(MODELS.build(Config.fromfile(path).model)).__name__
    except Exception as error:
        built[path] = f"{type(error).__name__}: {error}"
print(json.dumps(built))
"""


@pytest.mark.slow
def test_every_tiny_config_builds_without_a_default_scope():
    assert len(TINY) > 10
    run = subprocess.run(
        [sys.executable, "-c", _BUILD, *TINY], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )
    assert run.returncode == 0, run.stderr[-3000:]
    built = json.loads(run.stdout.strip().splitlines()[-1])
    failed = {path: result for path, result in built.items() if ":" in result}
    assert failed == {} and sorted(built) == TINY
