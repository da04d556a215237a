#!/usr/bin/env bash
# Installs what is missing, builds, and runs the test suite on both torches: Debian's 1.13
# (build/, every test) and a current pip torch 2.x (build-torch2/, .venv-torch2; scripts/setup.sh).
# The fast tier by default (what CI runs): everything but the ctest label "full" on 1.13, the
# end-to-end and install tests but the zoo on 2.x. --full: every test on both (the whole zoo, the
# C++ tests on 2.x too, long runs at full length, a 10-minute fuzz run). Other arguments go to
# ctest (e.g. -R e2e_training). Ends with one line "test.sh: N passed, N failed" over ctest's
# tests and the sanitizer runs'.
set -uo pipefail
cd "$(dirname "$0")/.."

full=0
ctest_args=()
for arg in "$@"; do
  case $arg in
    --full) full=1 ;;
    *) ctest_args+=("$arg") ;;
  esac
done
tier=(-LE full)
tier2=(-LE 'full|zoo')
torch2_build=(-DRDNA1_BUILD_GTESTS=OFF)
if ((full)); then
  tier=()
  tier2=()
  torch2_build=(-DRDNA1_BUILD_GTESTS=ON)
  export RDNA1_FUZZ_SECONDS=${RDNA1_FUZZ_SECONDS:-600}
fi

stage_times=()
stage() { stage_times+=("$(printf '%-10s %5ds' "$1" $((SECONDS - $2)))"); }

start=$SECONDS
scripts/setup.sh -DRDNA1_BUILD_GTESTS=ON || exit 1 # ON again after the demo's build
stage setup "$start"

start=$SECONDS
scripts/setup.sh --torch2 "${torch2_build[@]}" || exit 1
stage setup-2.x "$start"

start=$SECONDS
echo "test.sh: torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') (Debian), build/"
ctest --test-dir build --output-on-failure -j2 "${tier[@]}" "${ctest_args[@]}" 2>&1 | tee build/ctest.log
ctest_status=${PIPESTATUS[0]}
stage ctest-1.13 "$start"

start=$SECONDS
echo "test.sh: torch $(.venv-torch2/bin/python -c 'import torch; print(torch.__version__)') (pip), build-torch2/"
ctest --test-dir build-torch2 --output-on-failure -j2 "${tier2[@]}" "${ctest_args[@]}" 2>&1 | tee build-torch2/ctest.log
((PIPESTATUS[0] == 0)) || ctest_status=1
stage ctest-2.x "$start"

# ASan+UBSan+LSan over the C++ tests, a bounded fuzz run of the rewrite, TSan over concurrent use.
start=$SECONDS
scripts/sanitize.sh
sanitize_status=$?
stage sanitize "$start"

# "N% tests passed, F tests failed out of T" from each ctest run (sanitizer runs' logs too).
passed=0
failed=0
for log in build/ctest.log build-torch2/ctest.log build-asan/test.log build-tsan/test.log; do
  [[ -f $log ]] || continue
  read -r f t < <(sed -nE 's/.*tests passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1 \2/p' "$log" | tail -n 1) || continue
  failed=$((failed + f))
  passed=$((passed + t - f))
done
((ctest_status == 0 && sanitize_status == 0)) || ((failed > 0)) || failed=1

echo "test.sh: stage times"
printf '  %s\n' "${stage_times[@]}"
echo "test.sh: $passed passed, $failed failed"
((ctest_status == 0 && sanitize_status == 0))
