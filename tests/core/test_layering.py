"""The framework-free layers import no framework and no adapter: each of their modules imports with detectron2,
mmdet, mmengine and mmcv blocked, and none of their import statements (also those inside functions) names a
framework, an adapter or a layer above.

The experiments (``benchmarks/dbbench``: the benchmark, the demo, their synthetic data) live outside the package:
detbalance holds none of their code and never imports them, and they import detbalance as a user would (absolute
imports of public names)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import dbbench
import detbalance

PACKAGE = Path(detbalance.__file__).resolve().parent
EXPERIMENTS = Path(dbbench.__file__).resolve().parent
FRAMEWORK_FREE = ("losses", "weights", "backbones", "layers", "decouple", "calibration", "stats", "evaluation", "data")
FRAMEWORKS = ("detectron2", "mmdet", "mmengine", "mmcv")
ABOVE = ("detectron2", "mmdet", "cli")  # detbalance.<these>: adapters and top layers


def _modules() -> list[str]:
    names = ["detbalance._checks"]
    for layer in FRAMEWORK_FREE:
        for path in sorted((PACKAGE / layer).glob("*.py")):
            names.append(f"detbalance.{layer}" + ("" if path.stem == "__init__" else f".{path.stem}"))
    return names


_BLOCKED_IMPORT = """
import importlib, json, sys
BLOCKED = set(sys.argv[1].split(","))

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: a framework-free module imported it")
        return None

sys.meta_path.insert(0, Block())
failed = {}
for module in sys.argv[2:]:
    try:
        importlib.import_module(module)
    except Exception as error:
        failed[module] = f"{type(error).__name__}: {error}"
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps({"failed": failed, "leaked": leaked}))
"""


@pytest.mark.slow
def test_framework_free_modules_import_with_the_frameworks_blocked():
    modules = _modules()
    assert len(modules) > 30 and "detbalance.losses.table" in modules
    run = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT, ",".join(FRAMEWORKS), *modules],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {"failed": {}, "leaked": []}


def test_the_block_catches_a_framework_import():
    run = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT, ",".join(FRAMEWORKS), "detbalance.mmdet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    failed = json.loads(run.stdout.strip().splitlines()[-1])["failed"]
    assert "is blocked" in failed["detbalance.mmdet"]


def _imported(tree: ast.AST, module: str) -> list[str]:
    """Absolute names of everything ``module`` imports, at any depth (function bodies included)."""
    package = module.rsplit(".", 1)[0]  # detbalance.stats for detbalance.stats.cli and detbalance.stats.__init__
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module)
    return names


def test_no_import_statement_reaches_a_framework_or_an_upper_layer():
    bad = []
    for layer in FRAMEWORK_FREE:
        for path in sorted((PACKAGE / layer).glob("*.py")):
            module = f"detbalance.{layer}.{path.stem}"
            for name in _imported(ast.parse(path.read_text(encoding="utf-8")), module):
                parts = name.split(".")
                if parts[0] in FRAMEWORKS or (parts[0] == "detbalance" and len(parts) > 1 and parts[1] in ABOVE):
                    bad.append(f"{module} imports {name}")
    assert bad == []


def test_the_scan_resolves_relative_and_nested_imports():
    source = "from ..detectron2 import x\nfrom . import summary\ndef f():\n    import mmdet.registry\n"
    assert _imported(ast.parse(source), "detbalance.stats.cli") == [
        "detbalance.detectron2",
        "detbalance.stats",
        "mmdet.registry",
    ]


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts)  # dbbench.demo.__init__ keeps __init__: its package is dbbench.demo


def _package_modules(root: Path) -> dict[str, ast.AST]:
    return {
        _module_name(path, root): ast.parse(path.read_text(encoding="utf-8")) for path in sorted(root.rglob("*.py"))
    }


def test_the_package_holds_no_experiment_code():
    assert [p.name for p in PACKAGE.iterdir() if p.name in ("benchmark", "demo")] == []
    assert sorted(p.name for p in (PACKAGE / "data").glob("*.py")) == ["__init__.py", "box_weights.py"]
    bad = [
        f"{module} imports {name}"
        for module, tree in _package_modules(PACKAGE).items()
        if not module.startswith("detbalance.configs")
        for name in _imported(tree, module)
        if name.split(".")[0] == "dbbench"
    ]
    assert bad == []


def test_the_experiments_import_detbalance_as_a_user_would():
    """No relative import leaves dbbench, and no imported detbalance module or name is private (``_name``)."""
    modules = _package_modules(EXPERIMENTS)
    assert "dbbench.benchmark.runner" in modules and "dbbench.demo.pipeline" in modules
    bad = []
    for module, tree in modules.items():
        depth = module.count(".")  # dbbench.training.run: 2 (level 2 reaches dbbench, level 3 would leave it)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > depth:
                bad.append(f"{module}: relative import of level {node.level} leaves dbbench")
            if isinstance(node, ast.ImportFrom) and not node.level and node.module.split(".")[0] == "detbalance":
                names = node.module.split(".") + [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [
                    part
                    for alias in node.names
                    if alias.name.startswith("detbalance")
                    for part in alias.name.split(".")
                ]
            else:
                continue
            bad += [f"{module} imports the private {name}" for name in names if name.startswith("_")]
    assert bad == []


def _experiment_imports() -> dict[str, set[str]]:
    """``{module: modules of dbbench it imports}`` (function bodies included); a package is named without
    ``__init__``, and ``from package import name`` names the submodule where ``name`` is one."""
    trees = {name.removesuffix(".__init__"): tree for name, tree in _package_modules(EXPERIMENTS).items()}
    graph: dict[str, set[str]] = {}
    for module, tree in trees.items():
        inside = module if (EXPERIMENTS.parent / (module.replace(".", "/") + "/__init__.py")).is_file() else None
        package = inside or module.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                for alias in node.names:
                    targets.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in trees else base)
        graph[module] = {t for t in targets if t in trees and t != module}
    return graph


def test_the_experiments_import_no_private_name_and_no_module_imports_itself_back():
    private = []
    for module, tree in _package_modules(EXPERIMENTS).items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module != "__future__":
                names = (node.module or "").split(".") + [alias.name for alias in node.names]
                private += [f"{module} imports {name}" for name in names if name.startswith("_")]
    assert private == []
    graph = _experiment_imports()
    assert "dbbench.benchmark.runs" in graph["dbbench.benchmark.runner"]
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph[module]):
            if target in path:
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in done:
                visit(target, path + [target])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert cycles == []


#: The experiments' layers in import order (``dbbench/__init__.py``): a module imports its own layer and the ones
#: before it (and ``dbbench.checks``).
EXPERIMENT_LAYERS = ("data", "training", "benchmark", "demo")


def test_each_experiment_layer_imports_only_the_layers_before_it():
    """A module's package ``__init__`` runs before the module: a layer importing a later one would close an import
    circle at run time through the packages even where the modules form none."""
    graph = _experiment_imports()
    packages = {m.split(".")[1] for m in graph if m.count(".") and (EXPERIMENTS / m.split(".")[1]).is_dir()}
    assert packages == set(EXPERIMENT_LAYERS)

    def rank(module: str) -> int:
        parts = module.split(".")
        return EXPERIMENT_LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in EXPERIMENT_LAYERS else -1

    bad = sorted(f"{m} imports {t}" for m, targets in graph.items() for t in targets if rank(t) > rank(m))
    assert bad == []
