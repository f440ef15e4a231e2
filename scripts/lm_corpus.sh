#!/usr/bin/env bash
# Writes the plain-text pieces of graphs/lm_embeddings.yaml's corpus that are not plain text in
# ../shared/data: the TRAINING sentences of SST-2 and of UD English EWT, one sentence a line,
# tokens separated by single spaces (the LM graph lower-cases them). Dev/test text of SST and UD
# is never read: the embeddings must not have seen the sentences the downstream graphs are
# tested on.
#   bash scripts/lm_corpus.sh [DATA_DIR [OUT_DIR]]
# DATA_DIR defaults to ../shared/data next to the repository, OUT_DIR to runs/lm_corpus in the
# repository (runs/ is not committed).
# Writes OUT_DIR/sst2_train.txt (sst2/sentence_level/stsa.binary.train without its label, with
# -lrb-/-rrb- written as ( ) as in the GLUE files the SST graph reads) and OUT_DIR/ud_ewt_train.txt
# (the FORM column of en_ewt-ud-train.conllu; multi-word token lines and empty nodes skipped, so
# the words are the ones the tagger looks up). Each file is written to a temporary name and
# renamed, so an interrupted run leaves no half file.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$here/../shared/data}
out=${2:-$here/runs/lm_corpus}
sst=$data/sst2/sentence_level/stsa.binary.train
ud=$data/ud_english_ewt/en_ewt-ud-train.conllu
for f in "$sst" "$ud"; do
  [[ -f $f ]] || { echo "lm_corpus.sh: '$f' not found (give the data folder as the first argument)" >&2; exit 1; }
done
mkdir -p "$out"
# stsa.binary.train: "<label> <sentence>" per line.
sed -E 's/^[01] //; s/(^| )-lrb-( |$)/\1(\2/g; s/(^| )-rrb-( |$)/\1)\2/g' "$sst" > "$out/sst2_train.txt.tmp"
mv "$out/sst2_train.txt.tmp" "$out/sst2_train.txt"
# CoNLL-U: tab-separated ID FORM ...; sentences end at an empty line; comments start with '#'.
awk -F'\t' '
  /^#/ { next }
  NF == 0 || $0 == "" { if (n) print line; line = ""; n = 0; next }
  $1 ~ /[-.]/ { next }
  { line = n ? line " " $2 : $2; n++ }
  END { if (n) print line }' "$ud" > "$out/ud_ewt_train.txt.tmp"
mv "$out/ud_ewt_train.txt.tmp" "$out/ud_ewt_train.txt"
wc -lw "$out/sst2_train.txt" "$out/ud_ewt_train.txt"
