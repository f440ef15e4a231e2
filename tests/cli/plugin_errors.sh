#!/usr/bin/env bash
# Plug-in failures through the program: a plug-in stage that throws during training exits 1
# naming the stage, its type and its line, and points at the last good checkpoint; loading
# errors exit 2 naming the file. Uses the in-tree test plug-in (tests/plugins/faulty.cpp).
set -euo pipefail
rnnflow=$1; src=$2
build=$(cd "$(dirname "$rnnflow")" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
expect_fail() {  # expect_fail CODE PATTERN -- command...
  local code=$1 pattern=$2; shift 3
  set +e; "$@" > "$work/out" 2>&1; local got=$?; set -e
  [ "$got" = "$code" ] || { echo "expected exit $code, got $got: $*"; cat "$work/out"; exit 1; }
  grep -qF -- "$pattern" "$work/out" || { echo "expected '$pattern' in output of $*:"; cat "$work/out"; exit 1; }
}
# The char LM with the faulty stage between the LSTM and the projection, named by a bare name.
sed -e 's|^stages:|plugins: [faulty]\nstages:|' \
    -e 's|logits: {type: linear, in: rnn,|skip:   {type: faulty, in: rnn, fail_in: backward, fail_epoch: 2, fail_batch: 2}\n  logits: {type: linear, in: skip,|' \
    "$src/graphs/char_lm.yaml" > "$work/faulty.yaml"
line=$(grep -n "^  skip:" "$work/faulty.yaml" | cut -d: -f1)
short=(--set train.epochs=3 --set train.max_batches=3 --set rnn.hidden=32 --set train.sample_length=0)
expect_fail 2 "faulty: plug-in not found on the search path" -- env -u RNNFLOW_PLUGIN_PATH "$rnnflow" validate "$work/faulty.yaml"
export RNNFLOW_PLUGIN_PATH=$build/test_plugins
"$rnnflow" validate "$work/faulty.yaml" > /dev/null
# A sweep over that graph finds the plug-in the same way (it looked for $work/faulty, issue 20).
printf 'graph: %s\nset: {train.epochs: 1}\ngrid: {skip.fail_epoch: [3, 4]}\n' "$work/faulty.yaml" > "$work/sweep.yaml"
"$rnnflow" sweep "$work/sweep.yaml" --dry-run > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
grep -q "^2 trials, 0 with errors" "$work/out" || { cat "$work/out"; exit 1; }
expect_fail 1 "error: stage 'skip' (faulty, $work/faulty.yaml:$line:3) backward, train epoch 2 batch 2: failure requested in backward" \
  -- "$rnnflow" run "$work/faulty.yaml" --out "$work/run" --quiet "${short[@]}"
grep -q "last good checkpoint: $work/run/checkpoints/last.safetensors" "$work/out" || { cat "$work/out"; exit 1; }
[ "$(wc -l < "$work/run/metrics.jsonl")" = 2 ] || { echo "metrics.jsonl should hold epoch 1's two rows"; cat "$work/run/metrics.jsonl"; exit 1; }
# The kept checkpoint samples.
"$rnnflow" generate "$work/run" --checkpoint last -n 10 > /dev/null
# A prepare failure is bad input (exit 2), also with the stage named.
expect_fail 2 "stage 'skip' (faulty, $work/faulty.yaml:$line:3) prepare: failure requested in prepare" \
  -- "$rnnflow" run "$work/faulty.yaml" --out "$work/run2" --quiet "${short[@]}" --set skip.fail_in=prepare
# Loading errors name the file.
printf 'not a library\n' > "$work/libjunk.so"
expect_fail 2 "$work/libjunk.so: cannot load plug-in" -- "$rnnflow" stages --plugin "$work/libjunk.so"
expect_fail 2 "./nope.so: plug-in file not found" -- "$rnnflow" stages --plugin ./nope.so
# A plug-in whose optimiser breaks its role's contract (tests/plugins/misnamed_port.cpp: its loss
# input is 'loss', not 'minimize') is refused when it loads, naming the file, type, role and port;
# a graph training with it stops there (the engine used to look its port up as index -1).
misnamed="stage type 'misnamed_sgd' from $build/test_plugins/libmisnamed_port.so: the optimizer role requires an input 'minimize' (loss), the schema declares none"
expect_fail 2 "$misnamed" -- "$rnnflow" stages --plugin "$build/test_plugins/libmisnamed_port.so"
sed -e 's|^stages:|plugins: [misnamed_port]\nstages:|' -e 's|^  optim: .*|  optim:  {type: misnamed_sgd, loss: loss, lr: 0.1}|' \
    "$src/graphs/char_lm.yaml" > "$work/misnamed.yaml"
grep -q "type: misnamed_sgd, loss: loss" "$work/misnamed.yaml" || { echo "char_lm.yaml changed: misnamed.yaml has no misnamed_sgd"; exit 1; }
expect_fail 2 "$misnamed" -- "$rnnflow" run "$work/misnamed.yaml" --out "$work/run3" --quiet "${short[@]}"
echo "plugin errors: ok"
