#!/usr/bin/env bash
# The device machine's one script: build the runtime against the local (pip) torch, check that
# rewritten models never reach cuDNN/MIOpen and match their originals, then benchmark.
#
#   bench/device.sh [benchmark.py options]   check, then benchmark
#   bench/device.sh zoo [device_zoo.py options]   zoo and model shapes on device inputs
#   bench/device.sh long                          long runs and CUDA training parity
#
# Models are made and rewritten there (rdna1.rewrite needs no LLVM).
# Writes logs to $OUT when set (the device tool's result folder).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build-device/out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-device -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DRDNA1_BUILD_TOOL=OFF -DRDNA1_WITH_HIP=OFF -DRDNA1_BUILD_TESTS=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 >"$out/configure.log" 2>&1 ||
  { tail -40 "$out/configure.log"; exit 1; }
cmake --build build-device -j16 >"$out/build.log" 2>&1 || { grep -A5 error "$out/build.log" | head -60; exit 1; }
echo "built $(ls build-device/lib/librdna1_runtime.so) against torch $(python3 -c 'import torch; print(torch.__version__)')"
export RDNA1_RUNTIME=$PWD/build-device/lib/librdna1_runtime.so

export PYTHONPATH=$PWD/python
case "${1:-}" in
  zoo) shift; python3 bench/device_zoo.py "$@" 2>&1 | grep -v -i warn | tee "$out/device_zoo.log"; exit "${PIPESTATUS[0]}" ;;
  long) shift; python3 bench/device_long.py "$@" 2>&1 | tee "$out/device_long.log"; exit "${PIPESTATUS[0]}" ;;
esac
python3 samples/make_samples.py build-device/samples --only resnet18 >/dev/null
python3 -c 'import rdna1; print(rdna1.rewrite("build-device/samples/resnet18_scripted.pt", "build-device/samples/resnet18_scripted.rdna1.pt"))'
python3 bench/device_check.py build-device/samples/resnet18_scripted.rdna1.pt 2>&1 | grep -v -i warn | tee "$out/device_check.log"
python3 bench/benchmark.py --out "$out" "$@" 2>&1 | tee "$out/benchmark.log"
