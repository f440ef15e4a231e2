#!/usr/bin/env bash
# Polyphonic music through the real program: note_sets (generated JSON) -> frame_batches -> lstm
# -> linear -> binary_cross_entropy -> adam, frame_metrics with the repeat baseline
# (tests/cli/music_quick.yaml). The chords move every step, so repeating the last frame is wrong
# and a few epochs beat it; the kept checkpoint is the best valid NLL. Malformed JSON and a note
# outside the range stop a run with file:line:column and exit status 2.
set -euo pipefail
rnnflow=$1; src=$2
work=${KEEP_WORK:-$(mktemp -d)}; [ -n "${KEEP_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
# Pieces of 12 to 30 steps: a triad (root, +4, +7) whose root rises 2 semitones a step within
# MIDI 48..71, with a rest now and then.
/usr/bin/python3 - "$work" <<'PY'
import json, random, sys
rnd = random.Random(5)
def piece():
    root = rnd.randrange(48, 72)
    steps = []
    for _ in range(rnd.randrange(12, 31)):
        steps.append([] if rnd.random() < 0.05 else [root, root + 4, root + 7])
        root = 48 + (root - 48 + 2) % 24
    return steps
data = {"train": [piece() for _ in range(40)], "valid": [piece() for _ in range(8)], "test": [piece() for _ in range(8)]}
json.dump(data, open(sys.argv[1] + "/music.json", "w"))
PY
"$rnnflow" run "$src/tests/cli/music_quick.yaml" --set "vars.data=$work" --out "$work/run" --quiet > "$work/out.txt"
/usr/bin/python3 - "$work/run/metrics.jsonl" <<'PY'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
valid = [r for r in rows if r["split"] == "valid"]
test = [r for r in rows if r["split"] == "test"]
assert len(valid) == 8 and len(test) == 1, rows
for r in valid + test:
    for k in ("music", "music.accuracy", "music.f1", "music.baseline_nll", "music.baseline_accuracy", "loss"):
        assert math.isfinite(r[k]), (k, r)
    assert abs(r["music"] - r["loss"]) < 1e-3 * r["loss"], r   # the metric's NLL is the loss
t = test[0]
assert t["music"] < t["music.baseline_nll"] and t["music.accuracy"] > t["music.baseline_accuracy"], t
print("test NLL %.3f (baseline %.3f), accuracy %.3f (baseline %.3f)" % (
    t["music"], t["music.baseline_nll"], t["music.accuracy"], t["music.baseline_accuracy"]))
PY
[ -s "$work/run/checkpoints/best.safetensors" ] || { echo "no best checkpoint"; exit 1; }

bad=0
expect_bad() {  # expect_bad JSON PATTERN: the run stops with exit 2 and the message
    printf '%s' "$1" > "$work/music.json"
    status=0; bad=$((bad + 1))
    "$rnnflow" run "$src/tests/cli/music_quick.yaml" --set "vars.data=$work" --out "$work/bad$bad" --quiet \
      > /dev/null 2> "$work/bad.err" || status=$?
    [ "$status" = 2 ] || { cat "$work/bad.err"; echo "exit $status, expected 2"; exit 1; }
    grep -q "$2" "$work/bad.err" || { cat "$work/bad.err"; echo "expected: $2"; exit 1; }
}
expect_bad $'{"train": [[[60], [62]]],\n "valid": [[[60], [61],]]}' 'music.json:2:24: .\]. after a .,.'
expect_bad '{"train": [[[60], [90]]], "valid": [[[60]]], "test": [[[60]]]}' 'music.json:1:20: train\[0\]\[1\]: note 90 is outside \[48, 83\]'
echo "music: note sets -> LSTM beats the repeat baseline; bad JSON and notes located"
