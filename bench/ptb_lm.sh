#!/bin/bash
# PTB word LM (Zaremba et al. 2014 small and medium): rnnflow against PyTorch in one run, 2 threads,
# plus the oneDNN fp32 matmul ceiling and the whole step's GFLOP/s against it.
# Usage: [SETUPS=t2-default,t2-passive,t1-passive] bench/ptb_lm.sh [build dir=build] [steps=100]
#          [configs=small,medium] [data dir]
#   data dir defaults to ../shared/data/ptb next to the repository; SETUPS are the threading
#   set-ups (threads, OMP_WAIT_POLICY) run on both sides; each side's best is compared.
# rnnflow is timed through the real engine: `rnnflow run graphs/ptb_<cfg>.yaml` for one epoch
# limited to warm-up + steps batches, tokens/s taken between the progress events after the
# warm-up and after the last step (so graph loading, data preparation, primitive creation and the
# validation pass are not counted). Peak RSS is the whole process's (/usr/bin/time).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
steps=${2:-100}
configs=${3:-small,medium}
data=${4:-$here/../../shared/data/ptb}
setups=${SETUPS:-t2-default,t2-passive,t1-passive}
warmup=10
if [ ! -f "$data/ptb.train.txt" ]; then
    echo "no PTB data at $data (ptb.train.txt); give its folder as the 4th argument" >&2
    exit 1
fi
data=$(cd "$data" && pwd)
steps=$(( (steps + warmup - 1) / warmup * warmup ))  # a multiple of the progress interval
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== oneDNN fp32 matmul ceiling (2 threads)"
"$build/bench/matmul_ceiling" 2 10 | tee "$tmp/ceiling"
ceiling=$(awk '/^CEILING/ {print $2}' "$tmp/ceiling")

# Forward GEMM flops per step (x3 for forward + backward): per LSTM layer 2·T·N·4H·(C + H),
# output projection 2·T·N·H·V; V = 10000, N = 20, C = H.
flops() {  # T H
    python3 -c "T, H = $1, $2; N, V = 20, 10000; print(3 * (2 * 2*T*N*4*H*(H + H) + 2*T*N*H*V))"
}

: > "$tmp/rnnflow"
for cfg in ${configs//,/ }; do
    case $cfg in
        small) T=20 H=200 ;;
        medium) T=35 H=650 ;;
        *) echo "unknown configuration '$cfg' (small, medium)" >&2; exit 1 ;;
    esac
    # The same threading set-ups as PyTorch's script, each in a fresh process (libgomp reads the
    # wait policy at start-up); t2-default is oneDNN's default (spinning) OpenMP threads. Then the
    # best of them again in bf16 (fp32 master weights), twice: the LSTM and the output layer
    # (rnn.dtype=bf16, logits.dtype=bf16): "<set-up>-bf16"; the output layer only
    # (logits.dtype=bf16): "<set-up>-bf16out" — oneDNN 2.6.3's bf16 LSTM backward is slower than
    # its fp32 one at 200 units, so which is faster depends on the configuration.
    for setup in ${setups//,/ } bf16 bf16out; do
        extra=()
        if [ "$setup" = bf16 ] || [ "$setup" = bf16out ]; then
            best=$(awk -v c="$cfg" '$1 == "RNNFLOW" && $2 == c && $3 !~ /-bf16/ {
                       split($4, f, "="); if (f[2] + 0 > b) { b = f[2] + 0; s = $3 } } END { print s }' \
                   "$tmp/rnnflow")
            if [ "$setup" = bf16 ]; then
                extra=(--set rnn.dtype=bf16 --set logits.dtype=bf16)
            else
                extra=(--set logits.dtype=bf16)
            fi
            setup=$best-$setup
        fi
        base=${setup%-bf16out}
        case ${base%-bf16} in
            t2-default) threads=2 policy= ;;
            t2-passive) threads=2 policy=passive ;;
            t1-passive) threads=1 policy=passive ;;
            *) echo "unknown set-up '$setup' (t2-default, t2-passive, t1-passive)" >&2; exit 1 ;;
        esac
        echo "== rnnflow $cfg $setup: $warmup warm-up + $steps timed steps"
        env ${policy:+OMP_WAIT_POLICY=$policy} /usr/bin/time -f "%M" -o "$tmp/rss" \
            "$build/rnnflow" run "$here/../graphs/ptb_$cfg.yaml" \
            --out "$tmp/run-$cfg-$setup" --threads $threads --log-format json \
            --set vars.data="$data" --set train.epochs=1 \
            --set train.max_batches=$((warmup + steps)) --set train.log_every=$warmup "${extra[@]}" \
            > "$tmp/log-$cfg" 2>&1 || { cat "$tmp/log-$cfg"; exit 1; }
        python3 - "$tmp/log-$cfg" "$warmup" "$((warmup + steps))" "$T" "$(flops $T $H)" "$(cat "$tmp/rss")" \
            "$ceiling" "$cfg" "$setup" <<'EOF' | tee -a "$tmp/rnnflow"
import json, sys
log, w, last, T, flops, rss_kb, ceiling, cfg, setup = sys.argv[1:]
w, last, T, flops, ceiling = int(w), int(last), int(T), float(flops), float(ceiling)
ev = {}
for line in open(log):
    line = line.strip()
    if not line.startswith("{"):
        continue
    e = json.loads(line)
    if e.get("event") == "progress" and e.get("phase") == "train" and e.get("batch") in (w, last):
        ev[e["batch"]] = e
if w not in ev or last not in ev:
    sys.exit(f"progress events for batches {w} and {last} not found in {log}")
items = lambda b: b * T * 20
secs = lambda b: items(b) / ev[b]["items_per_second"]
dt = secs(last) - secs(w)
tps = (items(last) - items(w)) / dt
step_s = dt / (last - w)
print(f"RNNFLOW {cfg} {setup} tokens_per_s={tps:.0f} step_ms={1e3 * step_s:.1f} "
      f"gflops={flops / step_s / 1e9:.1f} ceiling_share={flops / step_s / 1e9 / ceiling:.2f} "
      f"peak_rss_mb={int(rss_kb) / 1024:.0f} loss={ev[last].get('loss', float('nan')):.3f}")
EOF
    done
done

# The ceiling again after the rnnflow runs: a machine that was busy during either measurement
# shows as a difference. The higher of the two is used for the shares.
echo "== oneDNN fp32 matmul ceiling again (2 threads)"
"$build/bench/matmul_ceiling" 2 10 > "$tmp/ceiling2"
ceiling2=$(awk '/^CEILING/ {print $2}' "$tmp/ceiling2")
ceiling=$(python3 - "$ceiling" "$ceiling2" <<'EOF'
import sys
a, b = float(sys.argv[1]), float(sys.argv[2])
print(f"CEILING first {a:.1f}, again {b:.1f} GFLOP/s; using {max(a, b):.1f}", file=sys.stderr)
if abs(a - b) > 0.1 * max(a, b):
    print("WARNING: the two ceiling measurements differ by more than 10%: the machine was busy "
          "during at least one of them, and every figure of this run is suspect", file=sys.stderr)
print(f"{max(a, b):.1f}")
EOF
)

echo "== PyTorch (Debian python3-torch): $steps timed steps after 5 warm-ups"
/usr/bin/python3 "$here/pytorch_ptb.py" --data "$data" --configs "$configs" --steps "$steps" \
    --warmup 5 --setups "$setups" --rnnflow "$tmp/rnnflow" --ceiling "$ceiling"
