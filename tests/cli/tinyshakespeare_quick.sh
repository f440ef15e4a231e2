#!/usr/bin/env bash
# The Tiny Shakespeare graph on ../shared/data, shortened; skipped where ../shared is absent.
set -euo pipefail
rnnflow=$1; src=$2
data="$src/../shared/data/tinyshakespeare/input.txt"
if [ ! -f "$data" ]; then
  echo "SKIP: $data not found (../shared/data exists only on developer machines and in CI)"
  exit 77
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$rnnflow" run "$src/graphs/tinyshakespeare_char.yaml" --out "$work/run" --quiet --headline \
  --set train.epochs=1 --set train.max_batches=5 --set rnn.hidden=64 --set train.sample_length=0 | grep -q "done in"
grep -q '"split":"valid"' "$work/run/metrics.jsonl"
