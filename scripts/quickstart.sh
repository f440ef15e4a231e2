#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (as root) to a trained model: install the
# packages, build, and run the main job on text every Debian system ships.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DRNNFLOW_BUILD_TESTS=OFF
cmake --build build -j"$(nproc)"
./build/rnnflow run graphs/char_lm.yaml --out runs/char-lm/quickstart-$(date +%Y%m%d-%H%M%S)
