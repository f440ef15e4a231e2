#!/usr/bin/env bash
# The PTB word-LM graphs (Zaremba et al. 2014 small and medium) on ../shared/data train, shortened
# (the token counts are checked in tests/stages/data/readers_shared_data_test.cpp). Skipped where
# ../shared is absent.
set -euo pipefail
rnnflow=$1; src=$2
data="$src/../shared/data/ptb"
if [ ! -f "$data/ptb.train.txt" ]; then
  echo "SKIP: $data/ptb.train.txt not found (../shared/data exists only on developer machines and in CI)"
  exit 77
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for g in small medium; do
  "$rnnflow" run "$src/graphs/ptb_$g.yaml" --out "$work/$g" --quiet --headline \
    --set train.epochs=1 --set train.max_batches=3 --set vars.hidden=16 > "$work/$g.out"
  grep -q "done in" "$work/$g.out" || { cat "$work/$g.out"; exit 1; }
  grep -q '"split":"valid"' "$work/$g/metrics.jsonl"
  grep -q '"split":"test"' "$work/$g/metrics.jsonl"
done
