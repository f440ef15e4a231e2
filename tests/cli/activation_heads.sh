#!/usr/bin/env bash
# The activation stage through the real engine, in MLP heads (linear -> activation -> linear):
# the shipped toy sentiment classifier (one vector per sentence) and the toy NER tagger (one per
# token, ragged batches: padded steps must not disturb training) learn with it; every function
# trains to a finite loss; `predict` runs it; an unknown function is a located load error. The
# graphs are the examples' own, their logits line rewritten, so they cannot drift apart.
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$rnnflow" stages > "$work/stages.txt"
grep -q "^activation — elementwise nonlinearity" "$work/stages.txt"
"$rnnflow" stages activation > "$work/activation.txt"
grep -qF "function: string relu|leaky_relu|tanh|sigmoid|gelu = relu" "$work/activation.txt"

# mlp EXAMPLE OUT FILES_SED: the example graph with its data files made absolute (FILES_SED) and
# its logits line `{type: linear, in: X, out_dim: Y}` replaced by X -> proj (32) -> act -> logits.
mlp() {
  local in=$1 out=$2 files=$3 x y
  read -r x y < <(sed -n 's|^  logits: *{type: linear, in: \([a-z_.]*\), out_dim: \([a-z_.]*\)}$|\1 \2|p' "$in")
  [ "$(grep -c '^  logits:' "$in")" = 1 ] && [ -n "$y" ] || { echo "$in: its logits line changed; update $0"; exit 1; }
  sed -e "$files" -e "s|^  logits:.*|  proj: {type: linear, in: $x, out_dim: 32}\n  act: {type: activation, in: proj, function: relu}\n  logits: {type: linear, in: act, out_dim: $y}|" \
      "$in" > "$out"
}
ex=$src/examples/toy_sentiment
mlp "$ex/toy_sentiment.yaml" "$work/cls.yaml" \
    "s|train: train.tsv, valid: valid.tsv, test: test.tsv|train: $ex/train.tsv, valid: $ex/valid.tsv, test: $ex/test.tsv|"
ex=$src/examples/toy_ner
mlp "$ex/toy_ner.yaml" "$work/tag.yaml" \
    "s|train: train.txt, valid: valid.txt, test: test.txt|train: $ex/train.txt, valid: $ex/valid.txt, test: $ex/test.txt|"

# The classifier with relu: well above chance (0.5) after 2 epochs; predict labels new lines.
"$rnnflow" run "$work/cls.yaml" --out "$work/cls" --quiet --headline --set train.epochs=2 > "$work/cls.txt"
acc=$(sed -n 's/^test:.* acc.accuracy=\([0-9.]*\).*/\1/p' "$work/cls.txt")
awk -v a="$acc" 'BEGIN { exit !(a >= 0.85) }' || { echo "classifier test accuracy '$acc' < 0.85"; cat "$work/cls.txt"; exit 1; }
printf '%s\n' "the movie was really good" "the movie was not good" | "$rnnflow" predict "$work/cls" > "$work/pred.txt"
[ "$(grep -cx '[01]' "$work/pred.txt")" = 2 ] || { cat -A "$work/pred.txt"; exit 1; }

# The tagger, per token on ragged batches, with each function: a high entity F1 after 2 epochs,
# finite losses, and each function its own numbers (the setting reaches the stage).
for f in relu leaky_relu tanh sigmoid gelu; do
  "$rnnflow" run "$work/tag.yaml" --out "$work/tag_$f" --quiet --headline --set train.epochs=2 \
    --set act.function=$f > "$work/tag_$f.txt"
  f1=$(sed -n 's/^test:.* ner.f1=\([0-9.]*\).*/\1/p' "$work/tag_$f.txt")
  awk -v v="$f1" 'BEGIN { exit !(v >= 0.9) }' || { echo "$f: tagger test entity F1 '$f1' < 0.9"; cat "$work/tag_$f.txt"; exit 1; }
  /usr/bin/python3 - "$work/tag_$f/metrics.jsonl" <<'PY'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert rows and all(math.isfinite(r["loss"]) for r in rows), rows
PY
  sed -n 's/^1,train,\([^,]*\),.*/\1/p' "$work/tag_$f/metrics.csv" >> "$work/first_losses.txt"
done
[ "$(sort -u "$work/first_losses.txt" | wc -l)" = 5 ] || { echo "functions gave equal losses:"; cat "$work/first_losses.txt"; exit 1; }

# An unknown function in the file: exit 2, its line and column, the stage and the choices.
sed 's|function: relu|function: swish|' "$work/tag.yaml" > "$work/bad.yaml"
line=$(grep -n "function: swish" "$work/bad.yaml" | cut -d: -f1)
col=$(( $(sed -n "${line}p" "$work/bad.yaml" | grep -bo swish | cut -d: -f1) + 1 ))
set +e; "$rnnflow" run "$work/bad.yaml" --out "$work/bad" --quiet > /dev/null 2> "$work/bad.err"; code=$?; set -e
[ "$code" = 2 ] && grep -qxF "$work/bad.yaml:$line:$col: error: stage 'act' (activation): 'function' must be one of relu, leaky_relu, tanh, sigmoid, gelu, got 'swish'" "$work/bad.err" \
  || { echo "FAIL: unknown function (exit $code), expected at $line:$col:"; cat "$work/bad.err"; exit 1; }
echo "activation heads: ok (classifier accuracy $acc)"
