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

run_pass() {  # run_pass DIR [cmake options...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DRNNFLOW_WERROR=ON "$@"
  cmake --build "$dir" -j"$(nproc)"
  ctest --test-dir "$dir" --output-on-failure -j"$(nproc)"
}
sanitized() {
  run_pass build-asan -DRNNFLOW_SANITIZE="$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRNNFLOW_BUILD_BENCH=OFF
}

if [ -n "${RNNFLOW_SANITIZE:-}" ]; then
  sanitized "$RNNFLOW_SANITIZE"
  exit 0
fi
run_pass build
if [ "${1:-}" != "--quick" ]; then
  sanitized address,undefined
  if [ "${RNNFLOW_FUZZ_SECONDS:-10}" != 0 ]; then bash scripts/fuzz.sh "${RNNFLOW_FUZZ_SECONDS:-10}"; fi
fi
