#!/usr/bin/env bash
# Kill-and-resume equality for the char LM (docs/resume.md): killed with SIGKILL at several points
# (mid-epoch, before any checkpoint, halfway through writing `best` and `last`, twice in a row) or
# interrupted (SIGINT during training and during validation, SIGTERM and a double SIGINT sent by
# this script), then resumed with `rnnflow run --resume`, it ends with the same metrics, samples
# and checkpoint tensors, bit for bit, as the run that was never interrupted.
# tests/cli/resume_kill_classify.sh does the same for a classification graph.
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
graph=$src/graphs/char_lm.yaml
# Small enough for seconds: 3 epochs of 12 batches, a checkpoint every 5 batches; dropout and
# sampling exercise the random streams, carry_state the carried recurrent state.
opts=(--quiet --threads 1 --set train.epochs=3 --set train.max_batches=12 --set rnn.hidden=64
      --set rnn.dropout=0.1 --set train.checkpoint_every=5 --set train.sample_length=40)
. "$src/tests/support/kill_resume.sh"
reference

# SIGKILL after a training step (global step numbers; epochs of 12 batches).
kill_and_resume kill7 kill@batch:7
[ $sanitized = 1 ] || kill_and_resume kill30 kill@batch:30

# SIGKILL halfway through writing a checkpoint file: the 1st and 2nd are `last` at batches 5 and
# 10, the 3rd `best` and the 4th `last` at the end of epoch 1. The previous file stays readable
# (a partial .tmp is left) and the resume redoes the rest.
for n in 3 4; do
  [ $sanitized = 1 ] && [ $n = 4 ] && continue
  run_until 137 "kill@checkpoint:$n" "$work/ckpt$n"
  ls "$work/ckpt$n/checkpoints/"*.tmp > /dev/null 2>&1 || fail "kill@checkpoint:$n left no partial file"
  resume "$work/ckpt$n"
  same "$work/ckpt$n" "SIGKILL while writing checkpoint $n"
  echo "kill@checkpoint:$n (mid-write), resumed: identical"
done

# Killed twice: the resumed run is killed again, then resumed to the end.
run_until 137 kill@batch:7 "$work/twice"
run_until 137 kill@batch:9 "$work/twice"
resume "$work/twice"
same "$work/twice" "two kills"
echo "killed twice, resumed twice: identical"

# Killed before the first checkpoint: nothing to resume, said so, exit 2.
run_until 137 kill@batch:3 "$work/early"
if "$rnnflow" run --resume "$work/early" --threads 1 --quiet > "$work/early.out" 2>&1; then fail "resume without a checkpoint succeeded"; fi
grep -q "has no checkpoint to resume from" "$work/early.out" || { cat "$work/early.out"; fail "no-checkpoint message"; }

# SIGINT during training: a checkpoint, the resume command, exit 130.
run_until 130 interrupt@batch:17 "$work/int"
grep -q "^error: interrupted by SIGINT at epoch 2, after batch 5; checkpoint written: $work/int/checkpoints/last.safetensors$" "$work/int.out" \
  || { cat "$work/int.out"; fail "interrupt message"; }
grep -qx "resume with: rnnflow run --resume $work/int --threads 1" "$work/int.out" || { cat "$work/int.out"; fail "resume command"; }
cmd=$(sed -n 's/^resume with: rnnflow //p' "$work/int.out")
# shellcheck disable=SC2086  # the printed command, word for word
"$rnnflow" $cmd --quiet > /dev/null 2>&1 || fail "the printed resume command failed"
same "$work/int" "SIGINT during training"
echo "SIGINT during training, resumed with the printed command: identical"

# SIGINT during validation: the checkpoint is the end of the training pass.
run_until 130 interrupt@eval:3 "$work/val"
grep -q "during validation; checkpoint written" "$work/val.out" || { cat "$work/val.out"; fail "validation interrupt message"; }
resume "$work/val"
same "$work/val" "SIGINT during validation"
echo "SIGINT during validation, resumed: identical"

[ $sanitized = 1 ] && exit 0

# Real signals, sent by this script: SIGTERM once the first epoch is recorded, and a double
# SIGINT (the second stops at once; the files stay consistent).
for sigs in TERM "INT INT"; do
  run="$work/sig${sigs// /}"
  "$rnnflow" run "$graph" --out "$run" "${opts[@]}" > "$run.out" 2>&1 &
  pid=$!
  for _ in $(seq 600); do [ -s "$run/metrics.jsonl" ] && break; sleep 0.05; done
  for s in $sigs; do kill -s "$s" "$pid" 2> /dev/null || true; sleep 0.02; done
  got=0; wait "$pid" || got=$?
  case "$got" in 0|130|143) ;; *) cat "$run.out"; fail "kill -$sigs: exit $got";; esac
  if [ "$got" != 0 ]; then resume "$run"; fi
  same "$run" "kill -$sigs"
  echo "kill -$sigs (exit $got), resumed: identical"
done
