#!/usr/bin/env bash
# Install detectron2 v0.6 (PyPI copy `pb1-detectron2==0.6`) into the venv given as $1.
#
# That sdist is a byte-identical copy of upstream v0.6 but lacks the C++ sources (detectron2/layers/csrc), so we
# build it with `ext_modules=[]` and copy its model-zoo yamls next to setup.py so that they are installed as
# package data (`detectron2.model_zoo.get_config_file` reads them). Nothing on the standard Faster R-CNN path
# needs the C++ ops (v0.6 uses torchvision's roi_align/nms); `detbalance.detectron2._compat` provides a
# placeholder `detectron2._C` that raises a clear error if one is used.
set -euo pipefail
venv=${1:?usage: install_detectron2.sh VENV}
py="$venv/bin/python"
if "$py" - <<'PY' 2>/dev/null; then
import importlib.metadata as m, importlib.util as u, os, sys
v = m.version("pb1-detectron2")
spec = u.find_spec("detectron2")
zoo = os.path.join(os.path.dirname(spec.origin), "model_zoo", "configs", "COCO-Detection",
                   "faster_rcnn_R_50_FPN_1x.yaml")
sys.exit(0 if v == "0.6" and os.path.isfile(zoo) else 1)
PY
  echo "detectron2 0.6 already installed"; exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$py" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$work" "pb1-detectron2==0.6"
tar -xzf "$work"/pb1*detectron2-0.6.tar.gz -C "$work"
src=$(find "$work" -maxdepth 1 -mindepth 1 -type d | head -1)
"$py" - "$src/setup.py" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
new, n = re.subn(r"ext_modules\s*=\s*get_extensions\(\)", "ext_modules=[]", text)
if n != 1:
    sys.exit(f"{path}: expected one 'ext_modules=get_extensions()', found {n}; the sdist changed")
open(path, "w").write(new)
PY
if [ ! -d "$src/configs" ]; then cp -r "$src/detectron2/model_zoo/configs" "$src/configs"; fi
"$py" -m pip install -q --no-deps --no-build-isolation "$src"
