#!/usr/bin/env bash
# Quick start 2: install what the tests need, build, and run every test;
# then build again with AddressSanitizer + UndefinedBehaviorSanitizer and run
# the suite once more. SKIP_SANITIZERS=1 skips the second configuration.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/install-deps.sh" --tests
"$root/scripts/install-aimock.sh"
export BGAGENT_AIMOCK="$root/.deps/bin/aimock"

# A unity build (CMake's: 8 source files a compile) takes about half the
# time: each file repeats the same heavy includes (CAF, Catch2,
# nlohmann/json) and instantiates the same templates. File-local names
# are therefore kept distinct across files. Configure without it
# (-DCMAKE_UNITY_BUILD=OFF) to rebuild faster after editing one file.
unity=(-DCMAKE_UNITY_BUILD=ON)

echo "== build (RelWithDebInfo) =="
"$root/scripts/build.sh" "$root/build" "${unity[@]}"
echo "== tests =="
(cd "$root/build" && ctest --output-on-failure -j 2 --timeout 600)

if [ "${SKIP_SANITIZERS:-0}" != "1" ]; then
  echo "== build (ASan + UBSan) =="
  # What the tests run, not the benchmarks (they measure the plain build).
  BUILD_TARGETS="bgagent bgagent-testbin bgagent_tests" \
    "$root/scripts/build.sh" "$root/build-asan" -DBGAGENT_SANITIZE=ON "${unity[@]}"
  echo "== tests under ASan + UBSan =="
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  (cd "$root/build-asan" && ctest --output-on-failure -j 2 --timeout 900)
fi
