#!/usr/bin/env bash
# Installs the Debian packages that are missing, then configures and builds into build/.
# Idempotent and quiet when there is nothing to do. Extra arguments go to CMake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ccache libtorch-dev python3-torch python3-torchvision
          llvm-dev libamdhip64-dev libgtest-dev zlib1g-dev clang-14 libclang-rt-14-dev
          python3-pip python3-venv python3-setuptools)
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

mkdir -p build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >build/configure.log 2>&1 ||
  { cat build/configure.log; exit 1; }
if ! cmake --build build -j2 >build/build.log 2>&1; then
  grep -E -A5 'error|Error' build/build.log | head -60
  echo "setup: build failed; full log in build/build.log" >&2
  exit 1
fi
echo "setup: built build/bin/rdna1-rewrite and build/lib/librdna1_runtime.so"
