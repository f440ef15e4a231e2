#!/usr/bin/env bash
# Trials per hour for a fixed 8-trial sweep on the char LM: --parallel 1 with 2 threads per
# trial, --parallel 2 with 1 thread each, and mpirun -np 2 (1 trial per rank, 1 thread each).
#   bash bench/sweep_throughput.sh [build/rnnflow] [batches per trial=40]
# Prints a Markdown table: wall time, trials/hour, mean seconds per trial, slowdown per trial.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rnnflow=${1:-$here/build/rnnflow}
batches=${2:-40}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive
cat > "$work/bench.yaml" <<YAML
graph: $here/graphs/char_lm.yaml
set: {train.epochs: 1, train.max_batches: $batches, train.test: false, train.sample_length: 0,
      rnn.layers: 1, batch.bptt: 32}
grid:
  rnn.hidden: [128, 256]
  optim.lr: [2.0e-3, 4.0e-3]
seeds: [1, 2]
objective: {metric: ppl}
YAML
mpi=(mpirun -np 2 --oversubscribe --bind-to none)   # no core pinning: the machine is shared
[ "$(id -u)" = 0 ] && mpi+=(--allow-run-as-root)
run() {  # run NAME command...
  local name=$1; shift
  local t0=$(date +%s.%N)
  "$@" --out "$work/$name" --quiet > "$work/$name.log" 2>&1 || { cat "$work/$name.log"; exit 1; }
  local t1=$(date +%s.%N)
  local wall=$(echo "$t1 - $t0" | bc -l)
  local mean=$(awk -F, 'NR > 1 { s += $8; n++ } END { printf "%.2f", s / n }' "$work/$name/trials.csv")
  local done=$(awk -F, 'NR > 1 && $4 == "done" { n++ } END { print n + 0 }' "$work/$name/trials.csv")
  echo "$name $wall $mean $done"
}
r1=$(run p1 "$rnnflow" sweep "$work/bench.yaml" --parallel 1 --threads-per-trial 2)
r2=$(run p2 "$rnnflow" sweep "$work/bench.yaml" --parallel 2 --threads-per-trial 1)
if command -v mpirun > /dev/null; then
  r3=$(run mpi "${mpi[@]}" "$rnnflow" sweep "$work/bench.yaml" --threads-per-trial 1)
else
  r3="mpi nan nan 0"
fi
base=$(echo "$r1" | cut -d' ' -f3)
echo "| setting | trials done | wall s | trials/hour | mean s per trial | per-trial slowdown |"
echo "| --- | --- | --- | --- | --- | --- |"
for r in "$r1" "$r2" "$r3"; do
  read -r name wall mean done <<< "$r"
  case $name in
    p1) label="--parallel 1 --threads-per-trial 2";;
    p2) label="--parallel 2 --threads-per-trial 1";;
    mpi) label="mpirun -np 2, --threads-per-trial 1";;
  esac
  printf '| %s | %s | %.1f | %.0f | %s | %.2fx |\n' "$label" "$done" "$wall" "$(echo "3600 * $done / $wall" | bc -l)" \
    "$mean" "$(echo "$mean / $base" | bc -l)"
done
echo
echo "load average during the runs: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
