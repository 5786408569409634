#!/usr/bin/env bash
# Opt-in MMDetection backend for model=faster_rcnn_mmdet (`make mmdet`): about 17 CPU-minutes of
# compiling, 10-25 minutes on 2 cores.
#
# mmdet 3.3.0 needs mmcv >=2.0.0rc4,<2.2.0 with its compiled ops. mmcv 2.1.0 has no wheel for
# the pinned torch, and its setup.py (a) imports pkg_resources, which current setuptools no
# longer ships, and (b) asks for -std=c++14/17, while this torch's headers need C++20. So the
# source is fetched with pip, patched for both, and built against the installed torch; then
# mmengine and mmdet come from PyPI. Packages already installed (the project's pins) are
# constraints: nothing of the pinned stack is up- or downgraded.
#
# The built mmcv wheel is kept outside the checkout, in the user's cache folder
# (${SWEEP_CACHE:-${XDG_CACHE_HOME:-~/.cache}/sweep}/wheels/, one folder per torch version and
# CPU/CUDA build): the second build on a machine, from any clone, is a reinstall of that wheel
# (seconds). Installed already with its compiled ops: nothing is done.
#
# Usage: scripts/install_mmdet.sh [python]   (default: .venv/bin/python, else python3)
# Environment: MAX_JOBS (parallel compiler jobs, default: CPU count); FORCE_CUDA=1 builds the
# CUDA ops on a machine without a visible GPU (needs nvcc matching torch's CUDA); SWEEP_CACHE
# (the cache folder).
set -euo pipefail

MMCV_VERSION=2.1.0
MMDET_VERSION=3.3.0
MMENGINE_SPEC="mmengine>=0.7.1,<1.0.0"

cd "$(dirname "$0")/.."
PY="${1:-}"
if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
"$PY" -c "import torch" 2>/dev/null || {
    echo "install_mmdet: $PY cannot import torch; run 'make install' first" >&2
    exit 1
}

if "$PY" -c "import mmdet, mmengine; from mmcv.ops import RoIAlign, nms" 2>/dev/null; then
    echo "install_mmdet: mmdet and mmcv with its ops are installed already"
    exit 0
fi

torch_build="$("$PY" -c 'import torch; print(torch.__version__.replace("+", "-"))')"
flavour=cpu
if [[ "${FORCE_CUDA:-0}" == 1 ]] || "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    flavour=cuda
fi
cache_root="${SWEEP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sweep}"
wheels="$cache_root/wheels/mmcv-$MMCV_VERSION-torch-$torch_build-$flavour"
mkdir -p "$wheels"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The installed packages, less the ones this script installs, pin everything else.
"$PY" -m pip freeze --exclude-editable \
    | grep -viE '^(mmcv|mmdet|mmengine)([=@ ]|$)' >"$work/constraints.txt" || true

wheel="$(ls "$wheels"/mmcv-*.whl 2>/dev/null | head -n 1 || true)"
if [[ -z "$wheel" ]]; then
# (not indented: the here-document's end marker must start its line)
echo "install_mmdet: fetching the mmcv $MMCV_VERSION source"
# pip prepares the source's metadata in an isolated environment: give it a setuptools that
# still has pkg_resources (torch is absent there, so no ops are compiled in that step).
# pip 25.3+ takes --build-constraint (and no longer applies PIP_CONSTRAINT to build
# environments); older pips read PIP_CONSTRAINT there.
echo "setuptools<81" >"$work/build-constraints.txt"
if "$PY" -m pip download --help | grep -q -- "--build-constraint"; then
    "$PY" -m pip download --quiet --no-deps --build-constraint "$work/build-constraints.txt" \
        --no-binary :all: "mmcv==$MMCV_VERSION" -d "$work"
else
    PIP_CONSTRAINT="$work/build-constraints.txt" "$PY" -m pip download --quiet --no-deps \
        --no-binary :all: "mmcv==$MMCV_VERSION" -d "$work"
fi
tar -xzf "$work/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
source_dir="$work/mmcv-$MMCV_VERSION"

echo "install_mmdet: patching setup.py (C++20, no pkg_resources)"
"$PY" - "$source_dir/setup.py" <<'PATCH'
import re
import sys

path = sys.argv[1]
text = open(path, encoding="utf-8").read()
shim = (
    "from importlib.metadata import PackageNotFoundError as DistributionNotFound\n"
    "from importlib.metadata import distribution as get_distribution\n"
    "from packaging.version import parse as parse_version\n"
)
text, imports = re.subn(r"^from pkg_resources import .*\n", shim, text, flags=re.M)
text, flags = re.subn(r"-std=c\+\+1[47]", "-std=c++20", text)
if imports != 1 or flags == 0 or "pkg_resources" in text:
    sys.exit(f"install_mmdet: {path} is not the expected mmcv setup.py; patch it by hand")
open(path, "w", encoding="utf-8").write(text)
print(f"  replaced the pkg_resources import and {flags} C++ standard flags")
PATCH

# wheel: bdist_wheel for the setuptools a Python 3.11 venv starts with; ninja: parallel compiles
# (without it MAX_JOBS has no effect and the files compile one by one).
"$PY" -m pip install --quiet -c "$work/constraints.txt" wheel ninja

echo "install_mmdet: building the mmcv $MMCV_VERSION wheel with ops against torch $torch_build ($flavour) into $wheels"
MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip wheel --no-build-isolation \
    --no-deps -w "$work/built" "$source_dir"
mv "$work"/built/mmcv-*.whl "$wheels/"  # whole, once built: a killed build leaves no wheel
wheel="$(ls "$wheels"/mmcv-*.whl | head -n 1)"
else
    echo "install_mmdet: reinstalling the cached $wheel (no build)"
fi
"$PY" -m pip install -c "$work/constraints.txt" "$wheel"

echo "install_mmdet: installing mmdet $MMDET_VERSION and $MMENGINE_SPEC"
"$PY" -m pip install -c "$work/constraints.txt" "$MMENGINE_SPEC" "mmdet==$MMDET_VERSION"

"$PY" - <<'CHECK'
import mmcv
import mmdet
import mmengine
from mmcv.ops import RoIAlign, nms  # noqa: F401  the compiled ops load

print(f"install_mmdet: mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, "
      f"mmengine {mmengine.__version__}: model=faster_rcnn_mmdet is available")
CHECK
