#!/usr/bin/env bash
# rdna1 installed and used as a user would, from the build tree:
#  1. `cmake --install` into a temporary prefix, then moved elsewhere (the install is relocatable);
#     its rdna1-rewrite rewrites a sample;
#  2. an outside CMake project (samples/, built on its own) that only says find_package(rdna1):
#     with rdna1::runtime it runs the rewritten model, matching the original; with
#     rdna1::rewriter it rewrites one in-process;
# (pip install: test_pip_install.sh.)
# Usage: test_install.sh BUILD_DIR SOURCE_DIR SAMPLES_DIR
set -euo pipefail
build=$1 source=$2 samples=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset RDNA1_RUNTIME PYTHONPATH
quiet() { local log=$work/step.log; "$@" >"$log" 2>&1 || { cat "$log"; exit 1; }; }

quiet cmake --install "$build" --prefix "$work/staged"
mv "$work/staged" "$work/prefix"
"$work/prefix/bin/rdna1-rewrite" "$samples/audio_scripted.pt" "$work/audio.pt"
readelf -d "$work/prefix/lib/librdna1_runtime.so" | grep -E 'SONAME.*librdna1_runtime\.so\.[0-9]+\.[0-9]+'
readelf -d "$work/prefix/lib/librdna1_rewriter.so" | grep -E 'RUNPATH.*\$ORIGIN'

quiet cmake -S "$source/samples" -B "$work/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix"
quiet cmake --build "$work/consumer" -j2
"$work/consumer/rdna1-rewrite-model" "$samples/audio_traced.pt" "$work/audio-cpp.pt" |
  grep -E '^rewrote 2 convolution layers'
"$work/consumer/rdna1-run-model" "$work/audio.pt" 2x1x1600 --compare "$samples/audio_scripted.pt" |
  tee "$work/run.log"
"$work/consumer/rdna1-run-model" "$work/audio-cpp.pt" 2x1x1600 --compare "$samples/audio_traced.pt" |
  tee -a "$work/run.log"
grep -E '^max \|original - rewritten\| = [0-9.e-]+$' "$work/run.log" |
  awk '{ if ($NF > 1e-4) { print "difference too large: " $NF; exit 1 } }'

echo "install test passed"
