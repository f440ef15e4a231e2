#!/usr/bin/env bash
# The README's main job, shortened: run, then generate from the run folder.
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/run" --quiet --headline \
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
# eval reads the data again and loads the fitted vocabulary: the kept (best) checkpoint gives the
# validation loss the run logged for its best epoch.
"$rnnflow" eval "$work/run" --split valid --log-format json > "$work/eval.json"
/usr/bin/python3 - "$work/run/metrics.jsonl" "$work/eval.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = min(r["loss"] for r in rows if r["split"] == "valid")
got = json.load(open(sys.argv[2]))
assert got["split"] == "valid", got
assert abs(got["loss"] - best) < 1e-6, (got["loss"], best)
PY
if "$rnnflow" eval "$work/run" --split dev 2> "$work/err.txt"; then exit 1; fi
grep -q "not a split" "$work/err.txt"
# A language model has no evaluator that labels lines: predict says so (exit 2).
set +e; echo "some text" | "$rnnflow" predict "$work/run" 2> "$work/err.txt"; rc=$?; set -e
[ "$rc" = 2 ] && grep -q "no stage that predicts" "$work/err.txt"
# The run folder must not be overwritten.
if "$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/run" --quiet 2> "$work/err.txt"; then exit 1; fi
grep -q "already holds a run" "$work/err.txt"
echo "char_lm quick run: ok"
