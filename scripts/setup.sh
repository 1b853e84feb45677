#!/usr/bin/env bash
# Set up lift3d on a fresh Debian/Ubuntu machine: the system libraries Open3D needs (and the
# software OpenGL used for headless renders), a virtual environment in .venv, and lift3d in it.
#   bash scripts/setup.sh          # the package
#   bash scripts/setup.sh --dev    # plus the test tools (and Ray, for `lift3d batch`)
set -euo pipefail
cd "$(dirname "$0")/.."

# libvulkan1 + mesa-vulkan-drivers: Open3D 0.20 renders offscreen through Vulkan; on a machine
# without a GPU, Mesa's lavapipe is that Vulkan (`lift3d view OUT --render x.png`).
APT_PACKAGES="libusb-1.0-0 libgl1 libgomp1 libegl1 libegl-mesa0 libgl1-mesa-dri libvulkan1 mesa-vulkan-drivers"
# --dev: a virtual X server, so the test of the interactive viewer's window runs too
[ "${1:-}" = "--dev" ] && APT_PACKAGES="$APT_PACKAGES xvfb xauth"
if command -v apt-get >/dev/null 2>&1; then
  missing=""
  for p in $APT_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "lift3d setup: installing system packages:$missing"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
PIP=".venv/bin/python -m pip"
# torch and torchvision first, at the versions lift3d is tested with (pyproject keeps them
# loose for users who bring their own build).
.venv/bin/python -c "import torch, torchvision" 2>/dev/null \
  || $PIP install -q "torch==2.14.1" "torchvision==0.29.1"
extras=""
[ "${1:-}" = "--dev" ] && extras="[dev,cluster]"  # CI runs the Ray tests of `lift3d batch` too
$PIP install -q -e ".${extras}"
echo "lift3d setup: done (.venv/bin/lift3d)"
