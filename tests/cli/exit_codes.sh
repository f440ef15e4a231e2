#!/usr/bin/env bash
# Bad input exits 2 with file:line:col; unknown commands and options say what to do.
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
expect_fail() {  # expect_fail CODE PATTERN -- command...
  local code=$1 pattern=$2; shift 3
  set +e; "$@" > "$work/out" 2>&1; local got=$?; set -e
  [ "$got" = "$code" ] || { echo "expected exit $code, got $got: $*"; cat "$work/out"; exit 1; }
  grep -qF -- "$pattern" "$work/out" || { echo "expected '$pattern' in output of $*:"; cat "$work/out"; exit 1; }
}
printf 'stages:\n  rnn: {type: lstmm}\n' > "$work/bad.yaml"
expect_fail 2 "bad.yaml:2:15: error: stage 'rnn': unknown stage type 'lstmm'" -- "$rnnflow" validate "$work/bad.yaml"
expect_fail 2 "did you mean 'lstm'?" -- "$rnnflow" validate "$work/bad.yaml"
expect_fail 2 "unknown command 'rnu'" -- "$rnnflow" rnu
expect_fail 2 "did you mean 'run'?" -- "$rnnflow" rnu
expect_fail 2 "rnnflow run --help" -- "$rnnflow" run "$src/graphs/char_lm.yaml" --no-such-option
expect_fail 2 "error: stage 'rnn' (lstm)" -- "$rnnflow" validate "$src/graphs/char_lm.yaml" --set rnn.layers=0
# A data file that is missing is bad input too, named with the stage.
expect_fail 2 "stage 'corpus' (text_file" -- "$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/run" --quiet --set vars.licenses=/nonexistent
expect_fail 2 "not a run folder" -- "$rnnflow" generate "$work"
