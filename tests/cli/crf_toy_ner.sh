#!/usr/bin/env bash
# The shipped toy NER example (examples/toy_ner) with a `crf` head (iob2 constraints) in place of
# its softmax: entity_metrics reads crf.decoded as its logits, reaches a high test entity F1, and
# `predict` prints bracketed entities from the Viterbi tags. The graph is the example's own, its
# loss and metric lines rewritten, so the two cannot drift apart.
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
ex=$src/examples/toy_ner
sed -e "s|train: train.txt, valid: valid.txt, test: test.txt|train: $ex/train.txt, valid: $ex/valid.txt, test: $ex/test.txt|" \
    -e 's|{type: cross_entropy, logits: logits, target: batch.labels}|{type: crf, scores: logits, target: batch.labels, constraints: iob2}|' \
    -e 's|minimize: loss|minimize: loss.loss|' \
    -e 's|{type: entity_metrics, logits: logits,|{type: entity_metrics, logits: loss.decoded,|' "$ex/toy_ner.yaml" > "$work/crf.yaml"
[ "$(grep -c 'type: crf\|loss\.loss\|loss\.decoded' "$work/crf.yaml")" = 3 ] || { echo "the example changed: update the sed lines"; exit 1; }
"$rnnflow" run "$work/crf.yaml" --out "$work/run" --quiet --headline --set train.epochs=2 > "$work/out.txt"
f1=$(sed -n 's/^test:.* ner.f1=\([0-9.]*\).*/\1/p' "$work/out.txt")
[ -n "$f1" ] || { echo "no test entity F1 in:"; cat "$work/out.txt"; exit 1; }
awk -v f="$f1" 'BEGIN { exit !(f >= 0.9) }' || { echo "test entity F1 $f1 < 0.9"; cat "$work/out.txt"; exit 1; }
printf '%s\n' "Ann Lee visited New York ." "" "Reuters opened an office in Lima ." > "$work/lines.txt"
"$rnnflow" predict "$work/run" < "$work/lines.txt" > "$work/pred.txt"
[ "$(wc -l < "$work/pred.txt")" = 3 ] && [ -z "$(sed -n 2p "$work/pred.txt")" ] || { cat -A "$work/pred.txt"; exit 1; }
grep -qxF "[PER Ann Lee] visited [LOC New York] ." "$work/pred.txt" || { cat "$work/pred.txt"; exit 1; }
grep -qxF "[ORG Reuters] opened an office in [LOC Lima] ." "$work/pred.txt" || { cat "$work/pred.txt"; exit 1; }
