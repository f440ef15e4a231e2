# Helpers of the kill-and-resume tests (tests/cli/resume_kill*.sh), sourced, not run. The caller
# sets: rnnflow (the program), src (the source folder), work (a scratch folder), graph (the graph
# file) and opts (an array of `rnnflow run` options: --quiet --threads 1 --set ...), then calls
# `reference` once. Faults are injected at exact points with RNNFLOW_FAULT
# (pipeline/exec/resume.hpp); every resumed run is compared with the uninterrupted one by
# tests/support/same_run.py.

fail() { echo "FAIL: $*"; exit 1; }

# Under the sanitizers (5-10x slower) callers run a subset.
sanitized=0
if ldd "$rnnflow" | grep -q 'libasan\|libtsan'; then sanitized=1; fi

reference() { "$rnnflow" run "$graph" --out "$work/ref" "${opts[@]}" > /dev/null; }

same() {  # same RUN WHAT: the run equals the reference
  python3 "$src/tests/support/same_run.py" "$work/ref" "$1" || fail "$2: the resumed run differs"
}

# run_until CODE FAULT RUN: start (or, when RUN exists, resume) with a fault; expect exit CODE.
# (Inside { } 2> /dev/null: bash's "Killed" report goes nowhere.)
run_until() {
  local code=$1 fault=$2 run=$3 got=0
  if [ -d "$run" ]; then
    { ( RNNFLOW_FAULT=$fault exec "$rnnflow" run --resume "$run" --threads 1 --quiet > "$run.out" 2>&1 ); } 2> /dev/null || got=$?
  else
    { ( RNNFLOW_FAULT=$fault exec "$rnnflow" run "$graph" --out "$run" "${opts[@]}" > "$run.out" 2>&1 ); } 2> /dev/null || got=$?
  fi
  [ "$got" = "$code" ] || { cat "$run.out"; fail "$fault on $run: exit $got, expected $code"; }
}

resume() {  # resume RUN: to the end
  "$rnnflow" run --resume "$1" --threads 1 --quiet > "$1.out" 2>&1 || { cat "$1.out"; fail "resume of $1 failed"; }
}

# kill_and_resume NAME FAULT: stopped by FAULT (exit 137 for kill@..., 130 for interrupt@...),
# resumed to the end, equal to the reference.
kill_and_resume() {
  local code=137
  case $2 in interrupt@*) code=130 ;; esac
  run_until "$code" "$2" "$work/$1"
  resume "$work/$1"
  same "$work/$1" "$2"
  echo "$2, resumed: identical"
}
