#!/usr/bin/env bash
# Kill-and-resume equality beyond the char LM (tests/cli/resume_kill.sh), for the other tasks'
# batch sources, models and metric stages, none of which has resume code of its own but the
# metrics' running sums: the engine replays begin(epoch) + next() to the data position.
#  - classification (examples/toy_sentiment: tsv_text, classify_batches shuffling every epoch,
#    a bi-LSTM with pooling, classification_metrics with confusion counts and prediction files);
#  - sequence to sequence (graphs/date_translation: generated date pairs, seq2seq_batches
#    shuffling every epoch, a bi-GRU encoder and an attention decoder with dropout, greedy
#    decoding in validation, translation_metrics with translations and attention maps).
# Killed mid-epoch and halfway through a checkpoint write, interrupted during training and
# validation: each resumed run ends with the same metrics, output files and checkpoint tensors,
# bit for bit, as the uninterrupted run.
set -euo pipefail
rnnflow=$1; src=$2
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT
. "$src/tests/support/kill_resume.sh"

echo "classification (toy_sentiment):"
work=$root/cls; mkdir -p "$work"
graph=$src/examples/toy_sentiment/toy_sentiment.yaml
opts=(--quiet --threads 1 --set train.epochs=3 --set train.max_batches=10 --set vars.hidden=16
      --set train.checkpoint_every=4)
reference
kill_and_resume kill6 kill@batch:6           # epoch 1, after the checkpoint at batch 4
kill_and_resume ckpt2 kill@checkpoint:2      # halfway through `last` at batch 8
kill_and_resume int13 interrupt@batch:13     # epoch 2, batch 3
[ $sanitized = 1 ] || kill_and_resume kill25 kill@batch:25
[ $sanitized = 1 ] || kill_and_resume val interrupt@eval:4

echo "sequence to sequence (date_translation):"
work=$root/s2s; mkdir -p "$work"
graph=$src/graphs/date_translation.yaml
opts=(--quiet --threads 1 --set train.epochs=3 --set train.max_batches=8 --set vars.hidden=32
      --set dates.train=600 --set dates.valid=64 --set dates.test=64 --set decoder.dropout=0.2
      --set train.checkpoint_every=3)
reference
kill_and_resume kill5 kill@batch:5           # epoch 1, after the checkpoint at batch 3
kill_and_resume int11 interrupt@batch:11     # epoch 2, batch 3
[ $sanitized = 1 ] || kill_and_resume ckpt4 kill@checkpoint:4
[ $sanitized = 1 ] || kill_and_resume val interrupt@eval:2
