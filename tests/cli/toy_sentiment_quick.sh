#!/usr/bin/env bash
# The toy sentiment example (examples/toy_sentiment, shipped generated data): a short training
# run must get clearly above chance (0.5) on the test split, and `predict` labels new lines.
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$rnnflow" run "$src/examples/toy_sentiment/toy_sentiment.yaml" --out "$work/run" --quiet --headline \
  --set train.epochs=4 > "$work/out.txt"
grep -q "done in" "$work/out.txt"
for f in checkpoints/best.safetensors acc/test.confusion.tsv acc/test.predictions.tsv; do
  [ -s "$work/run/$f" ] || { echo "missing $f in the run folder"; exit 1; }
done
# The test line reports acc.accuracy=<accuracy>; well above chance for two balanced classes.
acc=$(sed -n 's/^test:.* acc.accuracy=\([0-9.]*\).*/\1/p' "$work/out.txt")
[ -n "$acc" ] || { echo "no test accuracy in:"; cat "$work/out.txt"; exit 1; }
awk -v a="$acc" 'BEGIN { exit !(a >= 0.85) }' || { echo "test accuracy $acc < 0.85"; exit 1; }
# predict: one label per input line, in order; a blank line gets an empty line, not a label.
printf '%s\n' "the movie was really good" "" "the movie was not good" > "$work/lines.txt"
"$rnnflow" predict "$work/run" < "$work/lines.txt" > "$work/pred.txt"
[ "$(wc -l < "$work/pred.txt")" = 3 ]
[ "$(grep -cx '[01]' "$work/pred.txt")" = 2 ] && [ -z "$(sed -n 2p "$work/pred.txt")" ] || { cat -A "$work/pred.txt"; exit 1; }
# A run folder from elsewhere (its base_dir missing here): eval says how to re-root it, and does.
cp -r "$work/run" "$work/moved"
sed -i 's|^base_dir: .*|base_dir: "/nonexistent/rnnflow-graphs"|' "$work/moved/resolved.yaml"
set +e; "$rnnflow" eval "$work/moved" --quiet > /dev/null 2> "$work/moved.err"; code=$?; set -e
[ "$code" = 2 ] && grep -qF "add --set base_dir=DIR" "$work/moved.err" \
  || { echo "FAIL: eval of a moved run (exit $code):"; cat "$work/moved.err"; exit 1; }
"$rnnflow" eval "$work/moved" --quiet --set base_dir="$src/examples/toy_sentiment" | grep -q "^test (best.safetensors):  loss"
echo "toy sentiment quick run: ok (test accuracy $acc)"
