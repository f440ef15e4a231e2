#!/usr/bin/env bash
# Kill-and-resume equality (docs/resume.md): the char LM, killed with SIGKILL at several points
# (mid-epoch, before any checkpoint, halfway through writing `last` and `best`, twice in a row)
# or interrupted (SIGINT during training and during validation, a real signal, a double Ctrl-C),
# then resumed with `rnnflow run --resume`, ends with the same metrics, samples and checkpoint
# tensors, bit for bit, as the run that was never interrupted. Faults are injected at exact
# points with RNNFLOW_FAULT (pipeline/exec/resume.hpp).
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# Small enough for seconds: 3 epochs of 12 batches, a checkpoint every 5 batches; dropout and
# sampling exercise the random streams, carry_state the carried recurrent state.
opts=(--quiet --threads 1 --set train.epochs=3 --set train.max_batches=12 --set rnn.hidden=64
      --set rnn.dropout=0.1 --set train.checkpoint_every=5 --set train.sample_length=40)
"$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/ref" "${opts[@]}" > /dev/null

# Under the sanitizers (5-10x slower) a subset covers each kind of stop.
sanitized=0
if ldd "$rnnflow" | grep -q 'libasan\|libtsan'; then sanitized=1; fi

fail() { echo "FAIL: $*"; exit 1; }
same() {  # same RUN: equal to the reference
  python3 "$src/tests/support/same_run.py" "$work/ref" "$1" || fail "$2: the resumed run differs"
}
# run_until CODE FAULT RUN: start (or, when RUN exists, resume) with a fault; expect exit CODE.
run_until() {
  local code=$1 fault=$2 run=$3 got=0
  # (in a subshell whose stderr is dropped: bash reports the SIGKILL there)
  if [ -d "$run" ]; then
    ( RNNFLOW_FAULT=$fault exec "$rnnflow" run --resume "$run" --threads 1 --quiet > "$run.out" 2>&1 ) 2> /dev/null || got=$?
  else
    ( RNNFLOW_FAULT=$fault exec "$rnnflow" run "$src/graphs/char_lm.yaml" --out "$run" "${opts[@]}" > "$run.out" 2>&1 ) 2> /dev/null || got=$?
  fi
  [ "$got" = "$code" ] || { cat "$run.out"; fail "$fault on $run: exit $got, expected $code"; }
}
resume() {  # resume RUN: to the end
  "$rnnflow" run --resume "$1" --threads 1 --quiet > "$1.out" 2>&1 || { cat "$1.out"; fail "resume of $1 failed"; }
}

# SIGKILL after a training step, at the given global step (epochs of 12 batches).
kills=(7 30)
[ $sanitized = 1 ] && kills=(7)
for k in "${kills[@]}"; do
  run_until 137 "kill@batch:$k" "$work/kill$k"
  resume "$work/kill$k"
  same "$work/kill$k" "SIGKILL after step $k"
  echo "SIGKILL after step $k, resumed: identical"
done

# SIGKILL halfway through writing the n-th checkpoint file: batch 5, batch 10, then `best` (3)
# and `last` (4) at the end of epoch 1. The previous file stays readable; the resume redoes the
# rest.
ckpts=(3 4)
[ $sanitized = 1 ] && ckpts=(3)
for n in "${ckpts[@]}"; do
  run_until 137 "kill@checkpoint:$n" "$work/ckpt$n"
  ls "$work/ckpt$n/checkpoints/"*.tmp > /dev/null 2>&1 || fail "kill@checkpoint:$n left no partial file"
  resume "$work/ckpt$n"
  same "$work/ckpt$n" "SIGKILL while writing checkpoint $n"
  echo "SIGKILL while writing checkpoint file $n, resumed: identical"
done

# Killed twice: the resumed run is killed again, then resumed to the end.
run_until 137 kill@batch:7 "$work/twice"
run_until 137 kill@batch:9 "$work/twice"
resume "$work/twice"
same "$work/twice" "two kills"
echo "SIGKILL twice, resumed twice: identical"

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
  "$rnnflow" run "$src/graphs/char_lm.yaml" --out "$run" "${opts[@]}" > "$run.out" 2>&1 &
  pid=$!
  for _ in $(seq 600); do [ -s "$run/metrics.jsonl" ] && break; sleep 0.05; done
  for s in $sigs; do kill -s "$s" "$pid" 2> /dev/null || true; sleep 0.02; done
  got=0; wait "$pid" || got=$?
  case "$got" in 0|130|143) ;; *) cat "$run.out"; fail "kill -$sigs: exit $got";; esac
  if [ "$got" != 0 ]; then resume "$run"; fi
  same "$run" "kill -$sigs"
  echo "kill -$sigs (exit $got), resumed: identical"
done
