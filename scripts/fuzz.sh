#!/usr/bin/env bash
# Fuzz rnnflow's readers with libFuzzer (docs/fuzzing.md): builds build-fuzz/ with clang
# (-fsanitize=fuzzer,address,undefined) and runs each target for SECONDS on its corpus, the
# committed seeds in tests/fuzz/corpus/<target>/ plus what earlier runs found
# (build-fuzz/corpus/<target>/). A finding (crash, sanitizer report, hang, an exception other
# than rnnflow::Error) fails the script; its input is saved in build-fuzz/artifacts/.
#   bash scripts/fuzz.sh [SECONDS] [TARGET ...]     default: 10 s each (CI), every target
#   bash scripts/fuzz.sh 3600 graph                  an hour on the graph loader
# Targets: graph sweep checkpoint text vocab. Without clang it says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(graph sweep checkpoint text vocab)
cc=${RNNFLOW_FUZZ_CC:-clang-14}; cxx=${RNNFLOW_FUZZ_CXX:-clang++-14}
if ! command -v "$cxx" > /dev/null; then
  echo "fuzz: skipped: $cxx not found (Debian: apt-get install clang-14 libclang-rt-14-dev; scripts/install-deps.sh)"
  exit 0
fi
CC=$cc CXX=$cxx cmake -S . -B build-fuzz -G Ninja -DRNNFLOW_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build-fuzz -j2 --target $(printf 'fuzz_%s ' "${targets[@]}")
mkdir -p build-fuzz/artifacts
status=0
for t in "${targets[@]}"; do
  case $t in
    checkpoint) max_len=16384 ;;
    graph) max_len=8192 ;;
    *) max_len=4096 ;;
  esac
  dict=(); [ -f "tests/fuzz/$t.dict" ] && dict=(-dict="tests/fuzz/$t.dict")
  mkdir -p "build-fuzz/corpus/$t"
  log="build-fuzz/fuzz_$t.log"
  rc=0
  # New inputs go to the first folder (build-fuzz/corpus), never into the committed seeds.
  "build-fuzz/tests/fuzz/fuzz_$t" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" "${dict[@]}" \
    -seed=1 -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len" \
    -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t-" > "$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$rc" != 0 ]; then
    status=1
    echo "fuzz_$t: FINDING after ${runs:-?} runs (exit $rc); log $log, input in build-fuzz/artifacts/"
    grep -E "ERROR|finding:|SUMMARY|Test unit written" "$log" | head -10
  else
    echo "fuzz_$t: ${runs:-?} runs in $secs s, no finding (corpus $(ls "build-fuzz/corpus/$t" | wc -l) + $(ls "tests/fuzz/corpus/$t" | wc -l) seeds)"
  fi
done
exit $status
