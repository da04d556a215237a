#!/usr/bin/env bash
# The sanitizer runs (CMakePresets.json, clang-14): configures and builds build-asan/ and
# build-tsan/, then runs pass_tests and runtime_tests under ASan+UBSan+LSan, the rewrite fuzzer
# over its seeds and for RDNA1_FUZZ_SECONDS (default 60), and the concurrency stress test under
# ThreadSanitizer. Prints a summary; exits non-zero if anything fails. Needs clang-14 and
# libclang-rt-14-dev (scripts/setup.sh installs them).
set -uo pipefail
cd "$(dirname "$0")/.."

# clang's precompiled headers carry defines and timestamps that ccache would otherwise refuse.
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
fuzz_seconds=${RDNA1_FUZZ_SECONDS:-60}
summary=()
failed=0

# step NAME LOG COMMAND...: runs COMMAND into LOG and records the outcome and its time.
step() {
  local name=$1 log=$2 start=$SECONDS status=ok
  shift 2
  if ! "$@" >"$log" 2>&1; then
    status=FAILED
    failed=1
    echo "sanitize: $name failed; the end of $log:" >&2
    tail -n 60 "$log" >&2
  fi
  summary+=("$(printf '%-16s %-6s %4ds' "$name" "$status" $((SECONDS - start)))")
  [[ $status == ok ]]
}

total_start=$SECONDS
for preset in asan tsan; do
  dir=build-$preset
  mkdir -p "$dir"
  rm -f "$dir/test.log" "$dir/Testing/Temporary/LastTest.log"
  step "configure $preset" "$dir/configure.log" \
    cmake --preset "$preset" -DRDNA1_FUZZ_SECONDS="$fuzz_seconds" &&
    step "build $preset" "$dir/build.log" cmake --build --preset "$preset" &&
    step "test $preset" "$dir/test.log" ctest --preset "$preset"
  # ctest's line per test ("name .....   Passed    4.95 sec").
  if [[ -f $dir/test.log ]]; then
    while read -r line; do summary+=("  ${line#*: }"); done < <(grep -E 'Test +#[0-9]+:' "$dir/test.log")
  fi
  # libFuzzer's final statistics, from the fuzz run's part of ctest's full log.
  if [[ -f $dir/Testing/Temporary/LastTest.log ]]; then
    while read -r line; do summary+=("  fuzz: $line"); done < <(
      awk '/Testing: rewrite_fuzz$/ { on = 1 } /"rewrite_fuzz" end time/ { on = 0 } on' \
        "$dir/Testing/Temporary/LastTest.log" |
        grep -E '^(Done [0-9]+ runs|stat::new_units_added|rewrite_fuzzer: skipped)')
  fi
done

echo "sanitize: summary"
printf '  %s\n' "${summary[@]}"
echo "  total                   $((SECONDS - total_start))s"
if ((failed)); then
  echo "sanitize: FAILED" >&2
  exit 1
fi
echo "sanitize: all clean"
