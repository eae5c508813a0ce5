"""detbalance as a real package: build the wheel from the sources, install it non-editably (no dependencies) into
a temporary folder, then run every console script's --help and import the package from there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
from wf_helpers import REPO

import detbalance

#: console scripts the package must provide (the test runs every script the wheel declares)
SCRIPTS = ("detbalance-weights", "detbalance-report", "detbalance-calibrate")
#: what the wheel must not ship: the experiments (benchmarks/dbbench) and their console script
EXPERIMENTS = (
    "detbalance/benchmark/",
    "detbalance/demo/",
    "detbalance/data/synthetic.py",
    "detbalance/data/longtail.py",
)


def _declared_scripts(wheel) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = z.read(name).decode()
    section = text.split("[console_scripts]", 1)[1].split("\n[", 1)[0]
    return [line.split("=")[0].strip() for line in section.splitlines() if "=" in line]


def _run(args, *, cwd, timeout, env=None):
    try:
        return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{args} ran past {timeout} s:\n{e.stdout}\n{e.stderr}")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(wheel, site folder) of a wheel built from a copy of the sources and installed with pip --target."""
    tmp = tmp_path_factory.mktemp("package")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    src.mkdir()
    for name in ("setup.py", "README.md", "pyproject.toml"):
        shutil.copy(REPO / name, src / name)
    for name in ("plugins", "configs"):
        shutil.copytree(REPO / name, src / name, symlinks=True, ignore=ignore)
    dist, site = tmp / "dist", tmp / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, src], cwd=tmp, timeout=240)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("detbalance-*.whl")
    done = _run([*pip, "install", "-q", "--no-deps", "--no-index", "--target", site, wheel], cwd=tmp, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return wheel, site


@pytest.mark.slow
def test_wheel_metadata_and_package_data(installed):
    wheel, _ = installed
    assert wheel.name.startswith(f"detbalance-{detbalance.__version__}-")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = z.read(meta_name).decode()
        (entry_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = z.read(entry_name).decode()
    assert "Requires-Python: >=3.10" in meta
    required = {
        re.split(r"[ ;<>=!\[]", line.split(": ", 1)[1])[0].lower()
        for line in meta.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert {"torch", "numpy", "tqdm", "pillow", "matplotlib", "pycocotools"} <= required
    assert 'extra == "mmdet"' in meta and 'extra == "detectron2"' in meta
    for script in SCRIPTS:
        assert f"{script} = " in entry_points
    assert "detbalance/configs/detectron2/faster_rcnn_R_18_FPN_tiny_cpu.yaml" in names
    assert "detbalance/configs/detectron2/Base-Balanced-RCNN-FPN.yaml" in names
    assert "detbalance/configs/mmdet/tiny/faster-rcnn_r18_fpn_tiny_seesaw.py" in names
    assert [n for n in names if n.startswith(EXPERIMENTS) or n.startswith("dbbench")] == []
    assert "detbalance-demo" not in entry_points


@pytest.mark.slow
def test_console_scripts_and_imports_from_the_installed_wheel(installed, tmp_path):
    wheel, site = installed
    env = dict(os.environ, PYTHONPATH=str(site))
    scripts = _declared_scripts(wheel)
    assert set(SCRIPTS) <= set(scripts)
    for script in scripts:
        result = _run([sys.executable, site / "bin" / script, "--help"], cwd=tmp_path, timeout=120, env=env)
        assert result.returncode == 0, f"{script}: {result.stderr[-2000:]}"
        assert "usage:" in result.stdout and "--" in result.stdout
    # the experiments next to the installed wheel find its configs through the package, as a user's code would
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO / "benchmarks")])
    code = (
        "import detbalance, detbalance.losses, detbalance.weights, detbalance.evaluation, detbalance.stats\n"
        "from dbbench.training.config_files import D2_TINY_CONFIG, MMDET_TINY_DIR\n"
        f"assert detbalance.__file__.startswith({str(site)!r}), detbalance.__file__\n"
        "assert D2_TINY_CONFIG.is_file() and (MMDET_TINY_DIR / 'faster-rcnn_r18_fpn_tiny.py').is_file()\n"
        f"assert {str(REPO)!r} not in str(D2_TINY_CONFIG.resolve())\n"
        "print(detbalance.__version__)"
    )
    result = _run([sys.executable, "-c", code], cwd=tmp_path, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == detbalance.__version__
