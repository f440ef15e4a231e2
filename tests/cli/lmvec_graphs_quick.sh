#!/usr/bin/env bash
# The LM-pretrained-vectors pipeline of issue 5 on ../shared/data, shortened to a few batches with
# small layers: scripts/lm_corpus.sh writes the SST-2/UD training text, graphs/lm_embeddings.yaml
# trains the LM, `rnnflow vectors` exports its embedding, and graphs/sst2_bilstm_lmvec.yaml and
# graphs/ud_pos_bilstm_lmvec.yaml train with it (coverage and extend_from logged), test and
# predict; graphs/sst2_bilstm_lmrnn.yaml loads the LM's LSTM as well, and `rnnflow ensemble`
# averages the two SST-2 runs. Skipped where ../shared is absent.
set -euo pipefail
rnnflow=$1; src=$2
data="$src/../shared/data"
for f in ptb/ptb.train.txt sst2/sentence_level/stsa.binary.train sst2/glue_phrases_alps/train.tsv \
         ud_english_ewt/en_ewt-ud-train.conllu; do
  if [ ! -f "$data/$f" ]; then
    echo "SKIP: $data/$f not found (../shared/data exists only on developer machines and in CI)"
    exit 77
  fi
done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
bash "$src/scripts/lm_corpus.sh" "$data" "$work/corpus" > /dev/null
[ "$(wc -l < "$work/corpus/sst2_train.txt")" = 6920 ]
[ "$(wc -l < "$work/corpus/ud_ewt_train.txt")" = 12544 ]
if grep -q -- '-lrb-\|	' "$work/corpus/sst2_train.txt" "$work/corpus/ud_ewt_train.txt"; then
  echo "FAIL: lm_corpus.sh left -lrb- or a tab"; exit 1
fi
small=(--quiet --headline --set train.epochs=1 --set train.max_batches=3)
"$rnnflow" run "$src/graphs/lm_embeddings.yaml" --out "$work/lm" "${small[@]}" --set vars.corpus="$work/corpus" \
  --set vars.dim=16 --set vars.hidden=16 > /dev/null
"$rnnflow" vectors "$work/lm" --out "$work/vec.txt" 2> "$work/vec.err"
grep -q "^stage 'embed' (best.safetensors): [0-9]* vectors of dim 16 written to $work/vec.txt; 2 specials left out$" "$work/vec.err"
"$rnnflow" run "$src/graphs/sst2_bilstm_lmvec.yaml" --out "$work/sst" "${small[@]}" --set vars.vectors="$work/vec.txt" \
  --set vars.hidden=16 --set vars.dim=16 > "$work/sst.txt" 2> "$work/sst.err"
grep -q "^test: .* acc.accuracy=" "$work/sst.txt"
grep -q "^stage 'vocab': [0-9]* tokens added from $work/vec.txt" "$work/sst.err"
grep -q "^stage 'embed': pretrained vectors $work/vec.txt" "$work/sst.err"
[ "$(echo "a gorgeous , witty , seductive movie ." | "$rnnflow" predict "$work/sst" | grep -cx '[01]')" = 1 ]
# The LM's recurrent layer too (init: from its checkpoint, logged: no --quiet), then both SST-2
# runs as an ensemble.
"$rnnflow" run "$src/graphs/sst2_bilstm_lmrnn.yaml" --out "$work/sstrnn" "${small[@]:1}" --set vars.vectors="$work/vec.txt" \
  --set vars.lm="$work/lm/checkpoints/best.safetensors" --set vars.hidden=16 --set vars.dim=16 --set vars.lm_hidden=16 \
  > "$work/sstrnn.txt" 2> "$work/sstrnn.err"
grep -q "^test: .* acc.accuracy=" "$work/sstrnn.txt"
grep -q "^stage 'lmrnn': 3 parameters from $work/lm/checkpoints/best.safetensors (prefix rnn.)$" "$work/sstrnn.err" \
  || { echo "FAIL: init line:"; cat "$work/sstrnn.err"; exit 1; }
"$rnnflow" ensemble "$work/sst" "$work/sstrnn" --out "$work/ens" > "$work/ens.txt"
grep -qE "^ensemble \(mean of 2\) +[01]\.[0-9]{4}$" "$work/ens.txt" || { echo "FAIL: ensemble:"; cat "$work/ens.txt"; exit 1; }
[ "$(cut -f1-2 "$work/ens/test.predictions.tsv")" = "$(cut -f1-2 "$work/sst/acc/test.predictions.tsv")" ]  # same items, gold
"$rnnflow" run "$src/graphs/ud_pos_bilstm_lmvec.yaml" --out "$work/ud" "${small[@]}" --set vars.vectors="$work/vec.txt" \
  --set vars.hidden=16 --set embed.dim=16 --set chars.hidden=8 > "$work/ud.txt" 2> "$work/ud.err"
grep -q "^test: .* acc.accuracy=" "$work/ud.txt"
grep -q "^stage 'embed': pretrained vectors $work/vec.txt" "$work/ud.err"
tags=$(echo "I saw Paris ." | "$rnnflow" predict "$work/ud")
[ "$(echo "$tags" | wc -w)" = 4 ] || { echo "expected 4 tags, got: $tags"; exit 1; }
echo "LM-vector graphs quick runs: ok"
