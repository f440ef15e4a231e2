#!/usr/bin/env bash
# The SST-2 and UD POS graphs on ../shared/data, shortened to a few batches with small layers:
# they prepare, train, evaluate and predict. Skipped where ../shared is absent.
set -euo pipefail
rnnflow=$1; src=$2
data="$src/../shared/data"
for f in sst2/glue_phrases_alps/train.tsv ud_english_ewt/en_ewt-ud-train.conllu; do
  if [ ! -f "$data/$f" ]; then
    echo "SKIP: $data/$f not found (../shared/data exists only on developer machines and in CI)"
    exit 77
  fi
done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$rnnflow" run "$src/graphs/sst2_bilstm.yaml" --out "$work/sst" --quiet --headline --set train.epochs=1 \
  --set train.max_batches=4 --set vars.hidden=16 --set vars.dim=16 > "$work/sst.txt"
grep -q "^test: .* acc.accuracy=" "$work/sst.txt"
[ -s "$work/sst/acc/test.confusion.tsv" ]
[ "$(echo "a gorgeous , witty , seductive movie ." | "$rnnflow" predict "$work/sst" | grep -cx '[01]')" = 1 ]
"$rnnflow" run "$src/graphs/ud_pos_bilstm.yaml" --out "$work/ud" --quiet --headline --set train.epochs=1 \
  --set train.max_batches=4 --set vars.hidden=16 --set embed.dim=16 --set chars.hidden=8 > "$work/ud.txt"
grep -q "^test: .* acc.accuracy=" "$work/ud.txt"
# One tag per word of the input line.
tags=$(echo "I saw her duck ." | "$rnnflow" predict "$work/ud")
[ "$(echo "$tags" | wc -w)" = 5 ] || { echo "expected 5 tags, got: $tags"; exit 1; }
echo "classification graphs quick runs: ok"
