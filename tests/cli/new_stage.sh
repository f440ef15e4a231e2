#!/usr/bin/env bash
# `rnnflow new-stage`: the files it writes, name checks, and no overwriting. (Building the
# scaffold against the installed SDK is in plugins_sdk.sh.)
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
expect_fail() {  # expect_fail CODE PATTERN -- command...
  local code=$1 pattern=$2; shift 3
  set +e; "$@" > "$work/out" 2>&1; local got=$?; set -e
  [ "$got" = "$code" ] || { echo "expected exit $code, got $got: $*"; cat "$work/out"; exit 1; }
  grep -qF -- "$pattern" "$work/out" || { echo "expected '$pattern' in output of $*:"; cat "$work/out"; exit 1; }
}
cd "$work"
"$rnnflow" new-stage layer_gain > out.txt
for f in CMakeLists.txt layer_gain.hpp layer_gain.cpp plugin.cpp layer_gain_test.cpp layer_gain.yaml README.md; do
  [ -s "layer_gain/$f" ] || { echo "new-stage did not write $f"; exit 1; }
done
grep -q "class LayerGain final : public rnnflow::ModelStage" layer_gain/layer_gain.hpp
grep -q "RNNFLOW_PLUGIN(layer_gain," layer_gain/plugin.cpp
grep -q "find_package(rnnflow" layer_gain/CMakeLists.txt
grep -q "add_library(layer_gain MODULE" layer_gain/CMakeLists.txt
grep -q "check_gradients" layer_gain/layer_gain_test.cpp
grep -q "plugins: \[build/liblayer_gain.so\]" layer_gain/layer_gain.yaml
grep -q "layer_gain: {type: layer_gain, in: rnn" layer_gain/layer_gain.yaml
if grep -rn "@name@\|@Class@\|@prefix@\|@version" layer_gain; then echo "placeholders left"; exit 1; fi
# --dir, and never over an existing folder
"$rnnflow" new-stage gate2 --dir "$work/sub/g" > /dev/null
[ -f "$work/sub/g/gate2.cpp" ]
expect_fail 2 "layer_gain already exists; new-stage writes only into a new folder" -- "$rnnflow" new-stage layer_gain
mkdir empty
expect_fail 2 "empty already exists" -- "$rnnflow" new-stage other --dir empty
# names: snake_case, not a stage type that exists, not a CMake reserved target name
expect_fail 2 "stage name 'LayerGain' must be snake_case" -- "$rnnflow" new-stage LayerGain
expect_fail 2 "stage name 'gain__x' must be snake_case" -- "$rnnflow" new-stage gain__x
expect_fail 2 "stage name '2gain' must be snake_case" -- "$rnnflow" new-stage 2gain
expect_fail 2 "'lstm' is already a stage type (built-in)" -- "$rnnflow" new-stage lstm
expect_fail 2 "'test' cannot name a plug-in" -- "$rnnflow" new-stage test
[ ! -e LayerGain ] && [ ! -e lstm ] && [ ! -e test ]
echo "new-stage: ok"
