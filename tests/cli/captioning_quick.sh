#!/usr/bin/env bash
# Captioning through the real program: the features reader (.npy region grids and TSV captions,
# several per item) -> caption_batches -> linear -> attention_decoder -> cross_entropy -> adam,
# one epoch (tests/cli/captioning_quick.yaml); the loss is finite and a checkpoint is written.
# Evaluation scores each item once (groups); `rnnflow caption` captions every item of a .npy
# file or one (FILE#k), and an item past the end is an error; a captions line naming no item
# stops a run with file:line and exit status 2.
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

# Evaluation scores each item once against both its captions.
[ "$(wc -l < "$work/run/metrics/valid.captions.tsv")" -ge 8 ] || { cat "$work/run/metrics/valid.captions.tsv"; exit 1; }

# rnnflow caption: every item of a file (FILE#k), or one item; from another folder (paths are
# the user's, not the run's).
"$rnnflow" run "$src/tests/cli/captioning_quick.yaml" --set "vars.data=$work" --set train.epochs=12 \
  --out "$work/trained" --quiet > /dev/null
(cd "$work" && "$rnnflow" caption trained valid.npy valid.npy#3 --quiet) > "$work/captions.txt"
/usr/bin/python3 - "$work" <<'PY'
import sys
work = sys.argv[1]
lines = [l.rstrip("\n").split("\t") for l in open(work + "/captions.txt")]
assert [l[0] for l in lines] == ["valid.npy#%d" % k for k in range(8)] + ["valid.npy#3"], lines
assert lines[3][1] == lines[8][1], lines
colour = {}
for l in open(work + "/valid.tsv"):
    k, cap = l.rstrip("\n").split("\t")
    colour[int(k)] = cap.split()[-1] if cap.startswith("the") else cap.split()[1]
right = sum(colour[k] in lines[k][1].split() for k in range(8))
assert right >= 7, (right, lines)  # the caption names the item's colour
PY
status=0
"$rnnflow" caption "$work/trained" "$work/valid.npy#8" > /dev/null 2> "$work/caption.err" || status=$?
[ "$status" = 2 ] || { cat "$work/caption.err"; echo "caption #8: exit $status, expected 2"; exit 1; }
grep -q "valid.npy#8: the file holds 8 items (0 to 7)" "$work/caption.err" || { cat "$work/caption.err"; exit 1; }

printf '0\ta red shape\n99\tno such item\n' > "$work/train.tsv"
status=0
"$rnnflow" run "$src/tests/cli/captioning_quick.yaml" --set "vars.data=$work" --out "$work/bad" --quiet \
  > /dev/null 2> "$work/bad.err" || status=$?
[ "$status" = 2 ] || { cat "$work/bad.err"; echo "bad captions: exit $status, expected 2"; exit 1; }
grep -q "train.tsv:2: item '99' is not a row of .*train.npy (0 to 39)" "$work/bad.err" || { cat "$work/bad.err"; exit 1; }
echo "captioning: one epoch from .npy features, rnnflow caption on new files, bad captions line located"
