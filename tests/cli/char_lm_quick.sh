#!/usr/bin/env bash
# The README's main job, shortened: run, then generate from the run folder.
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/run" --quiet \
  --set train.epochs=2 --set train.max_batches=8 --set rnn.hidden=64 --set train.sample_length=50 > "$work/out.txt"
grep -q "done in" "$work/out.txt"
grep -q "^test:" "$work/out.txt"
for f in resolved.yaml graph.dot metrics.jsonl metrics.csv summary.txt samples.txt command.txt \
         checkpoints/last.safetensors checkpoints/best.safetensors state/vocab/vocab.tsv; do
  [ -s "$work/run/$f" ] || { echo "missing $f in the run folder"; exit 1; }
done
[ "$(grep -c '"split":"train"' "$work/run/metrics.jsonl")" = 2 ]
# Curves drawn by the engine after each epoch (PLplot), valid PNG files.
for p in loss ppl lr grad_norm; do
  [ "$(head -c 4 "$work/run/plots/$p.png" | tail -c 3)" = PNG ] || { echo "plots/$p.png is not a PNG"; exit 1; }
done
text=$("$rnnflow" generate "$work/run" --prime "This License" -n 40 --seed 5)
case "$text" in "This License"*) ;; *) echo "generate did not start with the prime: $text"; exit 1;; esac
[ "$text" = "$("$rnnflow" generate "$work/run" --prime "This License" -n 40 --seed 5)" ]
# The run folder must not be overwritten.
if "$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/run" --quiet 2> "$work/err.txt"; then exit 1; fi
grep -q "already holds a run" "$work/err.txt"
echo "char_lm quick run: ok"
