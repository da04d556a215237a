#!/usr/bin/env bash
# Installs the Debian packages that are missing, then configures and builds. Idempotent and quiet
# when there is nothing to do.
#   scripts/setup.sh [CMAKE_ARGS...]          build/ against Debian's torch 1.13 (libtorch-dev)
#   scripts/setup.sh --torch2 [CMAKE_ARGS...] build-torch2/ against a current pip torch, in the
#                                             project-local venv .venv-torch2 (made when missing)
# RDNA1_TORCH2 overrides the pip requirements of that venv (default: TORCH2_PINS below);
# RDNA1_BUILD_TARGETS builds only those targets (default: all). RDNA1_SETUP=tool installs only what
# the tool's build needs (the demo: no GoogleTest, no clang for the sanitizer build, no pip); pass
# -DRDNA1_BUILD_GTESTS=OFF with it.
set -euo pipefail
cd "$(dirname "$0")/.."

# The pip torch the project is tested with: the device machine's.
TORCH2_PINS="torch==2.11.0 torchvision==0.26.0"

packages=(build-essential cmake ccache libtorch-dev python3-torch python3-torchvision
          llvm-dev libamdhip64-dev zlib1g-dev)
if [[ ${RDNA1_SETUP:-all} != tool ]]; then
  packages+=(libgtest-dev clang-14 libclang-rt-14-dev python3-pip python3-venv python3-setuptools)
fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

build=build
torch_args=()
if [[ ${1:-} == --torch2 ]]; then
  shift
  build=build-torch2
  venv=.venv-torch2
  pins=${RDNA1_TORCH2:-$TORCH2_PINS}
  # Reused while it holds the pinned versions; pip's cache keeps a remake from downloading again.
  if ! "$venv/bin/python" -c 'import torch, torchvision' 2>/dev/null ||
     [[ $(cat "$venv/.pins" 2>/dev/null) != "$pins" ]]; then
    echo "setup: making $venv with $pins (pip)"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/python" -m pip install -q --disable-pip-version-check $pins
    echo "$pins" >"$venv/.pins"
  fi
  torch_args=(-DRDNA1_PYTHON="$PWD/$venv/bin/python")
fi

mkdir -p "$build"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${torch_args[@]}" "$@" >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log"; exit 1; }
targets=()
for target in ${RDNA1_BUILD_TARGETS:-}; do targets+=(--target "$target"); done
if ! cmake --build "$build" -j2 "${targets[@]}" >"$build/build.log" 2>&1; then
  grep -E -A5 'error|Error' "$build/build.log" | head -60
  echo "setup: build failed; full log in $build/build.log" >&2
  exit 1
fi
torch=$(sed -n 's/^-- rdna1: building against torch \([^ ]*\).*/\1/p' "$build/configure.log")
echo "setup: built $build/bin/rdna1-rewrite and $build/lib/librdna1_runtime.so for torch $torch"
