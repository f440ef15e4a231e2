#!/usr/bin/env bash
# Determinism as a contract: the same graph and seed give bit-identical weights, optimiser state
# and losses on 1 and on 2 threads (docs/design-notes.md, "Same numbers for any thread count").
# Shipped graphs, shortened: every tensor of `last.safetensors` and every loss in metrics.jsonl
# must match bit for bit.
# The one known exception is measured, not hidden: with ../shared/data present, the UD tagger's
# char_word_encoder (a bi-LSTM over every word of the batch, ~700 sequences) gets a few of its
# weight gradients 1 ulp apart on 2 threads, because oneDNN's sgemm splits that large reduction
# between threads; the check pins which tensors may differ and by how much after one step.
set -euo pipefail
rnnflow=$1; src=$2
if grep -q "^RNNFLOW_SANITIZE:STRING=." "$(dirname "$rnnflow")/CMakeCache.txt" 2> /dev/null; then
  echo "SKIP: sanitizer build (minutes of training there); the normal build runs this check"
  exit 77
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

run() {  # run NAME GRAPH THREADS [--set ...]
  local name=$1 graph=$2 threads=$3; shift 3
  "$rnnflow" run "$graph" --out "$work/$name.$threads" --threads "$threads" --quiet \
    --set train.epochs=1 --set train.sample_length=0 "$@" > "$work/$name.$threads.log" 2>&1 \
    || { cat "$work/$name.$threads.log"; echo "run $name on $threads thread(s) failed"; exit 1; }
}
# compare NAME [ALLOWED_PREFIX MAX_ABS_DIFF]: 1 and 2 threads agree bit for bit, or only in
# tensors named ALLOWED_PREFIX* (also under optim.) and by at most MAX_ABS_DIFF.
compare() {
  /usr/bin/python3 - "$work/$1.1" "$work/$1.2" "$1" "${2:-}" "${3:-0}" <<'PY'
import array, json, struct, sys
one, two, name, allowed, bound = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
def tensors(run):
    raw = open(run + "/checkpoints/last.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n]); head.pop("__metadata__", None)
    return {k: (v["dtype"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in head.items()}
def losses(run):
    return [(r["epoch"], r["split"], r["loss"]) for r in map(json.loads, open(run + "/metrics.jsonl"))]
a, b = tensors(one), tensors(two)
assert a.keys() == b.keys(), (name, sorted(a.keys() ^ b.keys()))
assert len(a) > 5, (name, "too few tensors to mean anything", len(a))
worst = 0.0
for k in a:
    if a[k] == b[k]:
        continue
    ok = allowed and (k.startswith(allowed) or k.startswith("optim." + allowed))
    assert ok, f"{name}: tensor {k} differs between 1 and 2 threads"
    assert a[k][0] == "F32", (k, a[k][0])
    x, y = array.array("f", a[k][1]), array.array("f", b[k][1])
    worst = max(worst, max(abs(p - q) for p, q in zip(x, y)))
assert worst <= bound, f"{name}: {allowed}* differ by {worst:.3g} > {bound:.3g}"
if not allowed:
    la, lb = losses(one), losses(two)
    assert la == lb, f"{name}: losses differ: {la} vs {lb}"
print(f"{name}: {len(a)} tensors" + (f", {allowed}* within {worst:.3g}" if allowed else " bit-identical"))
PY
}

run char_lm "$src/graphs/char_lm.yaml" 1 --set train.max_batches=12
run char_lm "$src/graphs/char_lm.yaml" 2 --set train.max_batches=12
compare char_lm
toy=$src/examples/toy_sentiment/toy_sentiment.yaml
run toy "$toy" 1 --set train.max_batches=15
run toy "$toy" 2 --set train.max_batches=15
compare toy
run dates "$src/graphs/date_translation.yaml" 1 --set train.max_batches=10
run dates "$src/graphs/date_translation.yaml" 2 --set train.max_batches=10
compare dates

shared=$src/../shared/data
if [ ! -d "$shared" ]; then
  echo "note: $shared is absent: the PTB, SST-2 and UD EWT graphs are not checked"
  exit 0
fi
for g in ptb_small sst2_bilstm; do
  run "$g" "$src/graphs/$g.yaml" 1 --set train.max_batches=6
  run "$g" "$src/graphs/$g.yaml" 2 --set train.max_batches=6
  compare "$g"
done
run ud_pos "$src/graphs/ud_pos_bilstm.yaml" 1 --set train.max_batches=1
run ud_pos "$src/graphs/ud_pos_bilstm.yaml" 2 --set train.max_batches=1
# Measured 1.0e-9 to 3.7e-9 on weights of magnitude ~0.1 (float32 rounding); 1e-7 would be ~100 ulp.
compare ud_pos chars. 1e-7
