#!/usr/bin/env bash
# Captioning through the real program: the features reader (.npy region grids and TSV captions,
# several per item) -> caption_batches -> linear -> attention_decoder -> cross_entropy -> adam,
# one epoch (tests/cli/captioning_quick.yaml); the loss is finite and a checkpoint is written.
# `rnnflow translate` on the run is refused (features are not text lines); a captions line
# naming no item stops a run with file:line and exit status 2.
set -euo pipefail
rnnflow=$1; src=$2
work=${KEEP_WORK:-$(mktemp -d)}; [ -n "${KEEP_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
# Items of 4 regions of D = 6: region f of an item with colour c is one-hot c plus f / 4; the
# caption names the colour. Written as numpy.save writes version 1.0 '<f4' (no numpy needed).
/usr/bin/python3 - "$work" <<'PY'
import random, struct, sys
out = sys.argv[1]
colours = ["red", "green", "blue"]
rnd = random.Random(3)
def npy(path, rows):
    n, f, d = len(rows), 4, 6
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d, %d), }" % (n, f, d)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as o:
        o.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        for item in rows:
            o.write(struct.pack("<%df" % len(item), *item))
def split(name, n):
    rows, lines = [], []
    for i in range(n):
        c = rnd.randrange(3)
        rows.append([(1.0 if k == c else 0.0) + f / 4 for f in range(4) for k in range(6)])
        lines.append("%d\ta %s shape" % (i, colours[c]))
        lines.append("%d\tthe shape is %s" % (i, colours[c]))
    npy("%s/%s.npy" % (out, name), rows)
    with open("%s/%s.tsv" % (out, name), "w") as o:
        o.write("\n".join(lines) + "\n")
split("train", 40)
split("valid", 8)
PY
"$rnnflow" run "$src/tests/cli/captioning_quick.yaml" --set "vars.data=$work" --out "$work/run" --quiet > "$work/out.txt"
/usr/bin/python3 - "$work/run/metrics.jsonl" <<'PY'
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
valid = [r for r in rows if r["split"] == "valid"]
assert len(valid) == 1 and math.isfinite(valid[0]["loss"]), rows
PY
[ -s "$work/run/checkpoints/last.safetensors" ] || { echo "no checkpoint"; exit 1; }

# Prediction runs give text lines, not features: refused with exit status 2 and a reason.
status=0
echo "0" | "$rnnflow" translate "$work/run" > /dev/null 2> "$work/translate.err" || status=$?
[ "$status" = 2 ] || { cat "$work/translate.err"; echo "translate: exit $status, expected 2"; exit 1; }
grep -q "prediction runs are not supported" "$work/translate.err" || { cat "$work/translate.err"; exit 1; }

printf '0\ta red shape\n99\tno such item\n' > "$work/train.tsv"
status=0
"$rnnflow" run "$src/tests/cli/captioning_quick.yaml" --set "vars.data=$work" --out "$work/bad" --quiet \
  > /dev/null 2> "$work/bad.err" || status=$?
[ "$status" = 2 ] || { cat "$work/bad.err"; echo "bad captions: exit $status, expected 2"; exit 1; }
grep -q "train.tsv:2: item '99' is not a row of .*train.npy (0 to 39)" "$work/bad.err" || { cat "$work/bad.err"; exit 1; }
echo "captioning: one epoch from .npy features, bad captions line located"
