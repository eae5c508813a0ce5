"""detbalance: class-imbalance losses, weights and reports for Detectron2 and MMDetection 3.x."""
from setuptools import find_packages, setup

setup(
    name="detbalance",
    version="0.1.0",
    description="Class-imbalanced object detection for Detectron2 and MMDetection 3.x",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    package_dir={"": "plugins"},
    packages=find_packages("plugins"),
    install_requires=["torch>=2.0", "numpy", "tqdm"],
    extras_require={
        # mmcv must be built with its compiled ops; `make setup` does that (see tools/build/setup_env.sh).
        "mmdet": ["mmengine==0.10.7", "mmcv==2.1.0", "mmdet==3.3.0"],
        # detectron2 is not on PyPI; `make setup` installs pb1-detectron2==0.6 without its C++ sources.
        "detectron2": ["fvcore>=0.1.5,<0.1.6", "iopath>=0.1.7,<0.1.10", "omegaconf>=2.1", "hydra-core>=1.1",
                       "pycocotools"],
        "dev": ["pytest", "hypothesis", "matplotlib", "pycocotools", "faster-coco-eval"],
    },
    entry_points={"console_scripts": [
        "detbalance-calibrate = detbalance.evaluation.calibrate_cli:main",
    ]},
)
