#!/usr/bin/env bash
# Every graph the project ships loads and compiles; `graph --dot` draws it.
set -euo pipefail
rnnflow=$1; src=$2
for g in "$src"/graphs/*.yaml; do
  "$rnnflow" validate "$g"
  dot=$("$rnnflow" graph "$g" --dot)
  case "$dot" in *digraph*) ;; *) echo "no digraph from $g"; exit 1;; esac
done
all=$("$rnnflow" stages)
for t in text_file tokenize vocabulary lm_batches embedding lstm linear cross_entropy sgd adam perplexity sampler \
         parallel_text date_pairs seq2seq_batches translation_metrics \
         pool concat dropout char_word_encoder word_dropout; do
  grep -q "^$t " <<< "$all" || { echo "stages does not list $t"; exit 1; }
done
one=$("$rnnflow" stages lstm)
case "$one" in *layers*) ;; *) echo "stages lstm lacks 'layers'"; exit 1;; esac
