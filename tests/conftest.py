"""Shared test fixtures: repository paths, the read-only reference data, deterministic torch settings, and the
framework markers (``detectron2``, ``mmdet``) applied by folder, by name and by what a test module imports.

Paths, the weights-file writer and the config builders live in ``helpers.py`` (importable as ``helpers``).
"""

from __future__ import annotations

import os
import re
import types
from pathlib import Path

import pytest
import torch

from helpers import REPO_ROOT, shared_path

torch.set_num_threads(min(2, os.cpu_count() or 1))

#: folder of tests/ -> the framework every test in it exercises
_FOLDER_FRAMEWORK = {"adapter_detectron2": "detectron2", "adapter_mmdet": "mmdet"}
#: words of a test's id (file, function, parameters) that name a framework
_WORDS = {
    "detectron2": "detectron2",
    "d2": "detectron2",
    "d2main": "detectron2",
    "mmdet": "mmdet",
    "mmdetection": "mmdet",
    "mmengine": "mmdet",
}
_FRAMEWORK_PACKAGES = {
    "detectron2": ("detectron2", "detbalance.detectron2"),
    "mmdet": ("mmdet", "mmcv", "mmengine", "detbalance.mmdet"),
}


def _module_frameworks(module) -> set[str]:
    """Frameworks whose modules, classes or functions a test module holds at its top level."""
    found = set()
    for value in vars(module).values():
        if isinstance(value, types.ModuleType):
            name = value.__name__
        else:
            name = getattr(value, "__module__", None)
            if not isinstance(name, str):
                continue
        for framework, packages in _FRAMEWORK_PACKAGES.items():
            if any(name == p or name.startswith(p + ".") for p in packages):
                found.add(framework)
    return found


def _frameworks(item: pytest.Item) -> set[str]:
    path = Path(item.path)
    folder = path.parent.name
    words = set(re.split(r"[^a-z0-9]+", f"{path.stem} {item.name}".lower())) | (
        {"detectron2"} if "train_net" in path.stem else set()
    )
    named = {_WORDS[w] for w in words if w in _WORDS}
    if folder in _FOLDER_FRAMEWORK:
        named.add(_FOLDER_FRAMEWORK[folder])
    if named:
        return named
    module = getattr(item, "module", None)
    return _module_frameworks(module) if module is not None else set()


def pytest_collection_modifyitems(config, items):
    for item in items:
        for framework in sorted(_frameworks(item)):
            item.add_marker(getattr(pytest.mark, framework))


#: a test without the ``slow`` mark that takes longer than this (set-up and call) is named at the end of the run
UNMARKED_SLOW_S = 5.0
_unmarked_slow: dict[str, float] = {}


def pytest_runtest_logreport(report):
    if report.when in ("setup", "call") and "slow" not in report.keywords:
        _unmarked_slow[report.nodeid] = _unmarked_slow.get(report.nodeid, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    over = sorted(((t, n) for n, t in _unmarked_slow.items() if t > UNMARKED_SLOW_S), reverse=True)
    if over:
        terminalreporter.section(f"tests over {UNMARKED_SLOW_S:.0f} s without the slow mark (make test-fast runs them)")
        for seconds, nodeid in over:
            terminalreporter.write_line(f"{seconds:6.1f} s  {nodeid}")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only reference data folder: skips where it is absent (a user's machine), fails instead with
    ``DETBALANCE_REQUIRE_SHARED=1`` (CI)."""
    return shared_path()


@pytest.fixture(scope="session")
def lvis_v1_stats() -> Path:
    """The LVIS v1 per-category statistics file of the reference data (see :func:`shared_data`)."""
    return shared_path("lvis_v1_train_stats.json")


@pytest.fixture(scope="session")
def bccd_root() -> Path:
    """The BCCD Pascal VOC folder of the reference data (see :func:`shared_data`)."""
    return shared_path("bccd", "BCCD")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
