#!/usr/bin/env bash
# The toy NER example (examples/toy_ner, shipped generated data): a short training run must reach
# a high entity F1 (conlleval's counting) on the test split, write its predictions as CoNLL
# columns in the file's IOB1 scheme, print bracketed entities in `predict`, and report entity F1
# in `eval --split test`.
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$rnnflow" run "$src/examples/toy_ner/toy_ner.yaml" --out "$work/run" --quiet --headline --set train.epochs=2 > "$work/out.txt"
f1=$(sed -n 's/^test:.* ner.f1=\([0-9.]*\).*/\1/p' "$work/out.txt")
[ -n "$f1" ] || { echo "no test entity F1 in:"; cat "$work/out.txt"; exit 1; }
awk -v f="$f1" 'BEGIN { exit !(f >= 0.9) }' || { echo "test entity F1 $f1 < 0.9"; cat "$work/out.txt"; exit 1; }
# CoNLL columns: "word gold predicted" or a blank line after each sentence; IOB1 tags (the file's
# scheme, not the IOB2 trained on); as many sentences as test.txt has (its blank lines but the
# one after -DOCSTART-).
pred=$work/run/ner/test.predictions.conll
awk 'NF != 0 && NF != 3 { print "bad line " NR ": " $0; bad = 1 }
     NF == 3 && ($2 !~ /^(O|[BI]-(PER|LOC|ORG))$/ || $3 !~ /^(O|[BI]-(PER|LOC|ORG))$/) { print "bad tag " NR ": " $0; bad = 1 }
     END { exit bad }' "$pred"
[ "$(grep -c '^$' "$pred")" = "$(( $(grep -c '^$' "$src/examples/toy_ner/test.txt") - 1 ))" ] \
  || { echo "sentence count differs from test.txt"; exit 1; }
grep -q '^[A-Z][a-z]* I-PER I-PER$' "$pred"  # IOB1: an entity after O starts with I-
grep -q '^processed [0-9]* tokens with [0-9]* phrases; found: [0-9]* phrases; correct: [0-9]*\.$' \
  "$work/run/ner/test.conlleval.txt"
# predict: entities in brackets; a blank line gets an empty line.
printf '%s\n' "Ann Lee visited New York ." "" "Reuters opened an office in Lima ." > "$work/lines.txt"
"$rnnflow" predict "$work/run" < "$work/lines.txt" > "$work/pred.txt"
[ "$(wc -l < "$work/pred.txt")" = 3 ] && [ -z "$(sed -n 2p "$work/pred.txt")" ] || { cat -A "$work/pred.txt"; exit 1; }
grep -qxF "[PER Ann Lee] visited [LOC New York] ." "$work/pred.txt" || { cat "$work/pred.txt"; exit 1; }
grep -qxF "[ORG Reuters] opened an office in [LOC Lima] ." "$work/pred.txt" || { cat "$work/pred.txt"; exit 1; }
# eval --split test reports the entity F1 again (the kept checkpoint).
"$rnnflow" eval "$work/run" --split test --quiet > "$work/eval.txt"
grep -q "^test (best.safetensors): .* ner.f1 [0-9.]*" "$work/eval.txt" || { cat "$work/eval.txt"; exit 1; }
echo "toy NER quick run: ok (test entity F1 $f1)"
