#!/usr/bin/env bash
# Every sweep the project ships loads and expands, and each trial's graph loads (--dry-run); a
# bad sweep file exits 2 with file:line:column; a tiny sweep runs, resumes, and exports.
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for s in "$src"/graphs/sweeps/*.yaml; do
  "$rnnflow" sweep "$s" --dry-run > "$work/dry" || { cat "$work/dry"; exit 1; }
done
grep -q "^9 trials, 0 with errors" <(("$rnnflow" sweep "$src/graphs/sweeps/lm_cells.yaml" --dry-run))
printf 'graph: %s\ngrid: {rnn.hiden: [1]}\ngird: 1\n' "$src/graphs/char_lm.yaml" > "$work/bad.yaml"
set +e; "$rnnflow" sweep "$work/bad.yaml" > "$work/out" 2>&1; rc=$?; set -e
[ "$rc" = 2 ] || { echo "expected exit 2, got $rc"; cat "$work/out"; exit 1; }
grep -qF "bad.yaml:3:1: error: unknown key 'gird' in the sweep file" "$work/out" || { cat "$work/out"; exit 1; }
# A tiny real sweep: 2 trials of a few batches, then a rerun that has nothing left to do.
printf 'graph: %s\nset: {train.epochs: 1, train.max_batches: 2, train.test: false, rnn.hidden: 16, train.sample_length: 0}\ngrid: {optim.lr: [0.01, 0.02]}\nobjective: {metric: ppl}\n' \
  "$src/graphs/char_lm.yaml" > "$work/tiny.yaml"
"$rnnflow" sweep "$work/tiny.yaml" --out "$work/sw" --parallel 2 --quiet > "$work/out"
grep -q "2 done, 0 pruned, 0 failed" "$work/out" || { cat "$work/out"; exit 1; }
for f in sweep.db results.csv results.md trials.csv best.yaml curves.csv plot.gnuplot; do
  [ -f "$work/sw/$f" ] || { echo "missing $f"; exit 1; }
done
# scripts/install-deps.sh installs gnuplot; where it is, the plot is drawn as a PNG.
if command -v gnuplot > /dev/null; then
  [ "$(head -c 8 "$work/sw/plot.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || { echo "plot.png is not a PNG"; exit 1; }
fi
"$rnnflow" validate "$work/sw/best.yaml" > /dev/null
set +e; "$rnnflow" sweep "$work/tiny.yaml" --out "$work/sw" --quiet > "$work/out" 2>&1; rc=$?; set -e
[ "$rc" = 2 ] && grep -q "already holds a sweep" "$work/out" || { echo "rerun without --resume: $rc"; cat "$work/out"; exit 1; }
"$rnnflow" sweep "$work/tiny.yaml" --out "$work/sw" --resume > "$work/out" 2> "$work/err"
grep -q "2 finished trial(s) kept, 0 to run" "$work/err" || { cat "$work/err"; exit 1; }
