#!/usr/bin/env bash
# The test command (README, CI): build with warnings as errors and run every test, then build
# and run the whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/),
# then fuzz each reader for a few seconds on its committed corpus (scripts/fuzz.sh, build-fuzz/).
#   bash scripts/test.sh            all three passes
#   bash scripts/test.sh --quick    the normal build only
# RNNFLOW_FUZZ_SECONDS (default 10) sets the fuzzing time per target; 0 skips it.
# RNNFLOW_SANITIZE=thread (or another value) in the environment: only that sanitizer pass.
set -euo pipefail
cd "$(dirname "$0")/.."
# On a fresh machine the packages come first (as root; a no-op when they are all there).
if [ "$(id -u)" = 0 ]; then bash scripts/install-deps.sh; fi

# Every option a pass depends on is given here, so a folder configured before (the quick start
# configures build/ without tests) never decides what is tested; a pass that runs no test fails.
run_pass() {  # run_pass DIR [cmake options...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DRNNFLOW_WERROR=ON -DRNNFLOW_BUILD_TESTS=ON -DRNNFLOW_FUZZ=OFF -DRNNFLOW_MPI=AUTO "$@"
  cmake --build "$dir" -j"$(nproc)"
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -j"$(nproc)"
}
sanitized() {
  run_pass build-asan -DRNNFLOW_SANITIZE="$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRNNFLOW_BUILD_BENCH=OFF
}

if [ -n "${RNNFLOW_SANITIZE:-}" ]; then
  sanitized "$RNNFLOW_SANITIZE"
  exit 0
fi
run_pass build -DRNNFLOW_SANITIZE= -DCMAKE_BUILD_TYPE=Release -DRNNFLOW_BUILD_BENCH=ON
if [ "${1:-}" != "--quick" ]; then
  sanitized address,undefined
  if [ "${RNNFLOW_FUZZ_SECONDS:-10}" != 0 ]; then bash scripts/fuzz.sh "${RNNFLOW_FUZZ_SECONDS:-10}"; fi
fi
