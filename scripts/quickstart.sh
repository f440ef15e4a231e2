#!/usr/bin/env bash
# One command from a fresh Debian 12 machine (as root) to a trained model: install the
# packages, build, and run the main job: an encoder-decoder with attention that learns to write
# human-written dates as ISO yyyy-mm-dd, on data rnnflow generates itself (graphs/date_translation.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DRNNFLOW_BUILD_TESTS=OFF
cmake --build build -j"$(nproc)"
run=runs/date-translation/quickstart-$(date +%Y%m%d-%H%M%S)
./build/rnnflow run graphs/date_translation.yaml --out "$run"
echo "translate with it:  echo 'tuesday, may 3, 1979' | ./build/rnnflow translate $run"
echo "attention maps and translations of the test dates: $run/metrics/" 
