#!/usr/bin/env bash
# Installs what is missing, builds, makes a sample model (a scripted torchvision resnet18 with
# random weights), rewrites it, and compares the rewritten model with the original.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what the demo runs: the tool and its libraries, not the tests (nor their packages).
RDNA1_SETUP=tool RDNA1_BUILD_TARGETS=rdna1-rewrite scripts/setup.sh -DRDNA1_BUILD_GTESTS=OFF
/usr/bin/python3 samples/make_samples.py build/samples --only resnet18 >/dev/null
build/bin/rdna1-rewrite build/samples/resnet18_scripted.pt build/samples/resnet18_scripted.rdna1.pt
/usr/bin/python3 samples/compare.py build/samples/resnet18_scripted.pt build/samples/resnet18_scripted.rdna1.pt 2x3x64x64
