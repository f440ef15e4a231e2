#!/usr/bin/env bash
# Build with warnings as errors and run every test. RNNFLOW_SANITIZE=address,undefined in the
# environment builds and tests a sanitizer build instead (in build-asan/).
set -euo pipefail
cd "$(dirname "$0")/.."
# On a fresh machine the packages come first (as root; a no-op when they are all there).
if [ "$(id -u)" = 0 ]; then bash scripts/install-deps.sh; fi
dir=build
extra=()
if [ -n "${RNNFLOW_SANITIZE:-}" ]; then
  dir=build-asan
  extra=(-DRNNFLOW_SANITIZE="$RNNFLOW_SANITIZE" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRNNFLOW_BUILD_BENCH=OFF)
fi
cmake -S . -B "$dir" -G Ninja -DRNNFLOW_WERROR=ON "${extra[@]}"
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)"
