"""The docstring examples of every module of the framework-free packages run and pass (one test per module).

Run here rather than with ``--doctest-modules``: that option also collects the tests' own ``conftest.py`` files,
several of which share a name outside packages, and pytest then refuses them as an import mismatch.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

#: the packages below the framework adapters (they import neither Detectron2 nor MMDetection)
FRAMEWORK_FREE = ("losses", "weights", "backbones", "layers", "decouple", "calibration", "stats", "evaluation", "data")
#: the framework-free packages of the experiments (benchmarks/dbbench)
EXPERIMENTS = ("dbbench.data",)


def _modules_with_examples() -> list[str]:
    finder = doctest.DocTestFinder()
    names = ["dbbench.checks"]
    for package in [f"detbalance.{name}" for name in FRAMEWORK_FREE] + list(EXPERIMENTS):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{root.__name__}."):
            module = importlib.import_module(info.name)
            if any(test.examples for test in finder.find(module, module=module)):
                names.append(info.name)
    return sorted(names)


MODULES = _modules_with_examples()


def test_every_framework_free_package_is_searched():
    for package in FRAMEWORK_FREE:
        assert any(name.startswith(f"detbalance.{package}.") for name in MODULES), f"no example in {package}"
    for package in EXPERIMENTS:
        assert any(name.startswith(f"{package}.") for name in MODULES), f"no example in {package}"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False, report=True)
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (see above)"
