#!/bin/bash
# rnnflow's recurrent stages, raw oneDNN and PyTorch side by side in one run.
# Usage: bench/run_recurrent.sh [build dir=build] [repetitions=5]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
reps=${2:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$build/bench/recurrent_bench" 2 "$reps" | tee "$out"
echo
/usr/bin/python3 "$here/pytorch_rnn.py" --reps "$reps" --rnnflow "$out"
