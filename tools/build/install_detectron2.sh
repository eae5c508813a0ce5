#!/usr/bin/env bash
# Install detectron2 into the venv given as $1: v0.6 (default) or upstream main built with its C++ ops.
#
#   install_detectron2.sh VENV                      detectron2 v0.6 (PyPI copy pb1-detectron2==0.6) into VENV
#   install_detectron2.sh VENV main SRC [TARGET]    upstream main from SRC (a source folder, a .tar.gz/.tgz/.zip of
#                                                   one, or a git URL), compiled with its C++ ops; into VENV, or with
#                                                   TARGET into that folder only (pip --target; use it through
#                                                   PYTHONPATH=TARGET, which shadows the venv's v0.6)
#
# v0.6: the sdist is a byte-identical copy of upstream v0.6 but lacks the C++ sources (detectron2/layers/csrc), so
# it is built with `ext_modules=[]`, with its model-zoo yamls copied next to setup.py (installed as package data,
# read by `detectron2.model_zoo.get_config_file`), and with two fixes so that the installed detectron2 works on
# its own (its scripts, spawned ranks), without importing detbalance first:
#   - detectron2/_C.py: a placeholder for the compiled extension (tools/build/detectron2_placeholder_C.py) whose
#     ops raise an ImportError naming the op; nothing on the standard Faster R-CNN path needs them (v0.6 uses
#     torchvision's roi_align/nms);
#   - Pillow >= 10 removed Image.LINEAR (an alias of BILINEAR that v0.6 uses as a default argument): the source
#     says Image.BILINEAR instead.
# main: compiled with tools/build/cxx20 (torch 2.14's headers need C++20); its C++ ops are real.
# Each variant is skipped when already installed from the same source.
set -euo pipefail
venv=${1:?usage: install_detectron2.sh VENV [v0.6 | main SRC [TARGET]]}
variant=${2:-v0.6}
root=$(cd "$(dirname "$0")/../.." && pwd)
py="$venv/bin/python"
pip=("$py" -m pip --disable-pip-version-check)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

install_v06() {
  if "$py" - "$root/tools/build/detectron2_placeholder_C.py" <<'PY' 2>/dev/null; then
import filecmp, importlib.metadata as m, importlib.util as u, os, sys
v = m.version("pb1-detectron2")
pkg = os.path.dirname(u.find_spec("detectron2").origin)
zoo = os.path.join(pkg, "model_zoo", "configs", "COCO-Detection", "faster_rcnn_R_50_FPN_1x.yaml")
placeholder = os.path.join(pkg, "_C.py")
transform = open(os.path.join(pkg, "data", "transforms", "transform.py")).read()
ok = (v == "0.6" and os.path.isfile(zoo) and os.path.isfile(placeholder)
      and filecmp.cmp(placeholder, sys.argv[1], shallow=False) and "Image.LINEAR" not in transform)
sys.exit(0 if ok else 1)
PY
    echo "detectron2 0.6 already installed"; return 0
  fi
  "${pip[@]}" uninstall -y -q detectron2 2>/dev/null || true  # a main build installed by this script
  "${pip[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$work" "pb1-detectron2==0.6"
  tar -xzf "$work"/pb1*detectron2-0.6.tar.gz -C "$work"
  local src
  src=$(find "$work" -maxdepth 1 -mindepth 1 -type d | head -1)
  "$py" - "$src" <<'PY'
import pathlib, re, sys
src = pathlib.Path(sys.argv[1])
setup = src / "setup.py"
text, n = re.subn(r"ext_modules\s*=\s*get_extensions\(\)", "ext_modules=[]", setup.read_text())
if n != 1:
    sys.exit(f"{setup}: expected one 'ext_modules=get_extensions()', found {n}; the sdist changed")
setup.write_text(text)
patched = 0
for path in (src / "detectron2").rglob("*.py"):
    text = path.read_text()
    if "Image.LINEAR" in text:
        path.write_text(text.replace("Image.LINEAR", "Image.BILINEAR"))
        patched += 1
if patched == 0:
    sys.exit(f"{src}: no Image.LINEAR found; the sdist changed")
PY
  cp "$root/tools/build/detectron2_placeholder_C.py" "$src/detectron2/_C.py"
  if [ ! -d "$src/configs" ]; then cp -r "$src/detectron2/model_zoo/configs" "$src/configs"; fi
  "${pip[@]}" install -q --no-deps --no-build-isolation --force-reinstall "$src"
}

install_main() {
  local from=${1:?usage: install_detectron2.sh VENV main SRC [TARGET]} target=${2:-} src stamp identity
  case "$from" in
    *://*|git@*) identity="git $from" ;;
    *) [ -e "$from" ] || { echo "error: DETECTRON2_SRC $from does not exist; expected a folder, tarball or git URL" >&2; exit 2; }
       from=$(cd "$(dirname "$from")" && pwd)/$(basename "$from")
       identity="$from $(stat -c '%s %Y' "$from")" ;;
  esac
  if [ -n "$target" ]; then stamp="$target/.detbalance-detectron2-src"; else stamp="$venv/.detbalance-detectron2-main"; fi
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$identity" ] && \
     PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}" "$py" -c 'import detectron2._C, detectron2.modeling' 2>/dev/null; then
    echo "detectron2 main already built from $from"; return 0
  fi
  case "$from" in
    *://*|git@*) git clone -q --depth 1 "$from" "$work/src"; src="$work/src" ;;
    *.tar.gz|*.tgz) tar -xzf "$from" -C "$work"; src=$(dirname "$(find "$work" -maxdepth 2 -name setup.py | head -1)") ;;
    *.zip) "$py" -m zipfile -e "$from" "$work"; src=$(dirname "$(find "$work" -maxdepth 2 -name setup.py | head -1)") ;;
    *) src="$from" ;;
  esac
  [ -f "$src/setup.py" ] || { echo "error: no detectron2 setup.py in $from" >&2; exit 2; }
  local dest=()
  if [ -n "$target" ]; then
    rm -rf "$target"; mkdir -p "$target"; dest=(--target "$target")
  else
    "${pip[@]}" uninstall -y -q pb1-detectron2 detectron2 2>/dev/null || true
  fi
  CXX="$root/tools/build/cxx20" FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
    "${pip[@]}" install -q --no-deps --no-build-isolation "${dest[@]}" "$src"
  PYTHONPATH="$target${PYTHONPATH:+:$PYTHONPATH}" "$py" -c 'import detectron2._C, detectron2.modeling' || {
    echo "error: detectron2 main installed without its C++ ops" >&2; exit 1; }
  echo "$identity" > "$stamp"
}

case "$variant" in
  v0.6) install_v06 ;;
  main) shift 2; install_main "$@" ;;
  *) echo "error: detectron2 variant '$variant'; expected v0.6 or main" >&2; exit 2 ;;
esac
