#!/usr/bin/env bash
# The plug-in SDK as an outside author meets it: install this build into a temporary prefix,
# build every plugins/* project and a freshly scaffolded one against the INSTALLED SDK (never
# the build tree), run their Catch2 tests, and train a few batches of each plug-in's graph with
# the installed rnnflow. The build folder is the one holding the rnnflow binary.
set -euo pipefail
rnnflow=$1; src=$(cd "$2" && pwd)
build=$(cd "$(dirname "$rnnflow")" && pwd)
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
# Plug-ins built without the sanitizer cannot load into a sanitized library (the runtime must
# come first); the normal build (scripts/test.sh) checks the SDK.
if grep -q "^RNNFLOW_SANITIZE:STRING=." "$build/CMakeCache.txt" 2> /dev/null; then
  echo "SKIP: sanitizer build; the installed SDK is checked by the normal build"
  exit 77
fi
jobs=2
gen=(); if command -v ninja > /dev/null; then gen=(-G Ninja); fi
fail() { echo "plugins_sdk: $*"; exit 1; }
step() { echo "== $*"; }

step "install into $prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log" || { cat "$work/install.log"; fail "install failed"; }
for f in bin/rnnflow include/rnnflow/stage.hpp include/rnnflow/registry.hpp include/rnnflow/testing/gradcheck.hpp \
         include/rnnflow/testing/harness.hpp lib/cmake/rnnflow/rnnflowConfig.cmake \
         lib/cmake/rnnflow/rnnflowConfigVersion.cmake lib/pkgconfig/rnnflow.pc; do
  [ -e "$prefix/$f" ] || fail "the install lacks $f"
done
ls "$prefix"/lib/librnnflow.so* "$prefix"/lib/librnnflow_testing.a > /dev/null
# The package and the program must not point back into the build or source tree.
if grep -rIl -e "$build" -e "$src/" "$prefix/lib/cmake" "$prefix/lib/pkgconfig"; then fail "the install refers to the build tree"; fi
grep -q "librnnflow.so.* => $prefix/" <<< "$(ldd "$prefix/bin/rnnflow")" || { ldd "$prefix/bin/rnnflow"; fail "installed rnnflow does not use the installed library"; }
rf=$prefix/bin/rnnflow

# configure, build and test a plug-in project against the install
build_project() {  # SOURCE_DIR BUILD_DIR
  local s=$1 b=$2 log=$2.log
  step "build and test $(basename "$s") against the install"
  # -O1: flow-based warnings still fire, and Catch2's main compiles in half the -O3 time.
  { cmake -S "$s" -B "$b" "${gen[@]}" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_COMPILE_WARNING_AS_ERROR=ON \
      -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O1 &&
    cmake --build "$b" -j"$jobs" && ctest --test-dir "$b" --output-on-failure; } > "$log" 2>&1 ||
    { cat "$log"; fail "$(basename "$s") did not build or pass its tests"; }
  grep -q "^rnnflow_DIR:PATH=$prefix/" "$b/CMakeCache.txt" || fail "$(basename "$s") found rnnflow outside the install"
  grep -q "tests passed" "$log" || { cat "$log"; fail "$(basename "$s") ran no tests"; }
}

plugin_path=
for dir in "$src"/plugins/*/; do
  [ -f "$dir/CMakeLists.txt" ] || continue
  name=$(basename "$dir")
  build_project "$dir" "$work/build-$name"
  plugin_path=$plugin_path${plugin_path:+:}$work/build-$name
done
[ -f "$work/build-highway/libhighway.so" ] && [ -f "$work/build-token_noise/libtoken_noise.so" ] || fail "example plug-ins missing"
export RNNFLOW_PLUGIN_PATH=$plugin_path

step "the scaffold"
"$rf" new-stage chan_scale --dir "$work/chan_scale" > "$work/new.txt"
grep -q "cmake -S $work/chan_scale" "$work/new.txt" || { cat "$work/new.txt"; fail "new-stage printed no next steps"; }
if "$rf" new-stage chan_scale --dir "$work/chan_scale" 2> "$work/err.txt"; then fail "new-stage overwrote a folder"; fi
grep -q "already exists" "$work/err.txt" || { cat "$work/err.txt"; fail "no 'already exists' message"; }
build_project "$work/chan_scale" "$work/chan_scale/build"
# The same sources build with only pkg-config and g++.
pc_flags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs rnnflow)
g++ -shared -fPIC -fvisibility=hidden -fvisibility-inlines-hidden -Wall -Wextra -Werror -O1 \
  "$work/chan_scale/plugin.cpp" "$work/chan_scale/chan_scale.cpp" $pc_flags -o "$work/libchan_scale_pc.so"
out=$("$rf" stages --plugin "$work/libchan_scale_pc.so" chan_scale)
grep -q "from $work/libchan_scale_pc.so" <<< "$out" || fail "the pkg-config build does not load"

step "stages --plugin documents plug-in types with their origin"
out=$("$rf" stages --plugin highway --plugin token_noise highway token_noise)
grep -q "^highway — " <<< "$out" || fail "stages lacks highway"
grep -q "from $work/build-highway/libhighway.so" <<< "$out" || { echo "$out"; fail "no origin for highway"; }
grep -q "gate_bias" <<< "$out" || fail "stages highway lacks gate_bias"
grep -q "from $work/build-token_noise/libtoken_noise.so" <<< "$out" || fail "no origin for token_noise"
md=$("$rf" stages --plugin highway --markdown)  # captured: grep -q on a pipe could SIGPIPE it
grep -q "^## \`highway\`" <<< "$md" || fail "markdown lacks highway"
grep -q "From plug-in \`$work/build-highway/libhighway.so\`" <<< "$md" || fail "markdown lacks the plug-in's origin"

schema=$("$rf" schema --plugin highway)
grep -q '"stage.highway"' <<< "$schema" || fail "schema --plugin lacks the plug-in's type"

step "train with each plug-in graph (installed rnnflow, a few batches)"
short=(--quiet --headline --set train.epochs=1 --set train.max_batches=3 --set vars.hidden=32 --set train.sample_length=20)
for g in "$src/plugins/highway/char_lm_highway.yaml" "$src/plugins/token_noise/char_lm_noise.yaml" \
         "$work/chan_scale/chan_scale.yaml"; do
  name=$(basename "$g" .yaml)
  "$rf" validate "$g" > /dev/null
  "$rf" run "$g" --out "$work/run-$name" "${short[@]}" > "$work/run-$name.txt" || fail "run of $g failed"
  grep -q "done in" "$work/run-$name.txt" || fail "no result line for $g"
  [ "$(grep -c '"split":"train"' "$work/run-$name/metrics.jsonl")" = 1 ] || fail "no train row for $g"
  [ -s "$work/run-$name/checkpoints/last.safetensors" ] || fail "no checkpoint for $g"
done
step "a sweep over the scaffolded stage's parameter (docs/plugins.md, step 6)"
cat > "$work/chan_scale/sweep.yaml" <<SWEEP
sweep: chan-scale-gain
graph: chan_scale.yaml
set: {train.epochs: 1, train.max_batches: 2, vars.hidden: 16, train.sample_length: 0, train.test: false}
grid:
  chan_scale.init_gain: [0.5, 2.0]
objective: {metric: ppl, split: valid}
SWEEP
"$rf" sweep "$work/chan_scale/sweep.yaml" --out "$work/sweep-chan" --parallel 2 --threads-per-trial 1 --quiet \
  > "$work/sweep.txt" || { cat "$work/sweep.txt"; fail "the plug-in sweep failed"; }
grep -q "2 done, 0 pruned, 0 failed" "$work/sweep.txt" || { cat "$work/sweep.txt"; fail "the plug-in sweep did not finish both trials"; }
"$rf" validate "$work/sweep-chan/best.yaml" > /dev/null || fail "the plug-in sweep's best.yaml does not load"

# The highway run's weights are in its checkpoint, and the run folder samples again.
grep -q "skip.weights_h" "$work/run-char_lm_highway/checkpoints/last.safetensors" || fail "no highway weights saved"
"$rf" generate "$work/run-char_lm_highway" --prime "This " -n 20 --seed 1 > /dev/null

step "an installed plug-in is found by name without RNNFLOW_PLUGIN_PATH"
cmake --install "$work/build-highway" --prefix "$prefix" > /dev/null
out=$(env -u RNNFLOW_PLUGIN_PATH "$rf" stages --plugin highway highway)
grep -q "from $prefix/lib/rnnflow/plugins/libhighway.so" <<< "$out" || fail "the installed plug-in folder is not searched"
set +e
env -u RNNFLOW_PLUGIN_PATH "$rf" stages --plugin token_noise > /dev/null 2> "$work/err.txt"; code=$?
set -e
[ "$code" = 2 ] || fail "a missing plug-in name gave exit $code"
grep -q "token_noise: plug-in not found on the search path (tried .*$prefix/lib/rnnflow/plugins/libtoken_noise.so" "$work/err.txt" ||
  { cat "$work/err.txt"; fail "the not-found message does not list what was tried"; }
grep -q "RNNFLOW_PLUGIN_PATH is not set" "$work/err.txt" || fail "the hint does not mention RNNFLOW_PLUGIN_PATH"
echo "plugins SDK: ok"
