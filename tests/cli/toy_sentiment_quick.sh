#!/usr/bin/env bash
# The toy sentiment example (examples/toy_sentiment, shipped generated data): a short training
# run must get clearly above chance (0.5) on the test split, and `predict` labels new lines.
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$rnnflow" run "$src/examples/toy_sentiment/toy_sentiment.yaml" --out "$work/run" --quiet \
  --set train.epochs=4 > "$work/out.txt"
grep -q "done in" "$work/out.txt"
for f in checkpoints/best.safetensors acc/test.confusion.tsv acc/test.predictions.tsv; do
  [ -s "$work/run/$f" ] || { echo "missing $f in the run folder"; exit 1; }
done
# The test line reports acc=<accuracy>; well above chance for two balanced classes.
acc=$(sed -n 's/^test:.* acc=\([0-9.]*\).*/\1/p' "$work/out.txt")
[ -n "$acc" ] || { echo "no test accuracy in:"; cat "$work/out.txt"; exit 1; }
awk -v a="$acc" 'BEGIN { exit !(a >= 0.85) }' || { echo "test accuracy $acc < 0.85"; exit 1; }
# predict: one label per input line, in order.
printf '%s\n' "the movie was really good" "the movie was not good" > "$work/lines.txt"
"$rnnflow" predict "$work/run" < "$work/lines.txt" > "$work/pred.txt"
[ "$(wc -l < "$work/pred.txt")" = 2 ]
grep -qx '[01]' "$work/pred.txt"
echo "toy sentiment quick run: ok (test accuracy $acc)"
