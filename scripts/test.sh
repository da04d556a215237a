#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite with ctest, then the sanitizer runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir build --output-on-failure -j2 "$@"
# ASan+UBSan+LSan over the C++ tests, a bounded fuzz run of the rewrite, TSan over concurrent use.
scripts/sanitize.sh
