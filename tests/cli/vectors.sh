#!/usr/bin/env bash
# `rnnflow vectors`: a trained embedding exported as GloVe text reads back through another run's
# `embedding` with `pretrained:` as the same floats, bit for bit, with full coverage reported.
# Run A trains examples/toy_sentiment for an epoch and is exported; run B loads A's file into a
# frozen embedding (so training leaves it as loaded) and is exported again: the two files must
# be byte-identical, and each value's text (shortest round-trip form) is a function of its float.
set -euo pipefail
rnnflow=$1; src=$2
work=${KEEP_WORK:-$(mktemp -d)}; [ -n "${KEEP_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
graph="$src/examples/toy_sentiment/toy_sentiment.yaml"
quick=(--set train.epochs=1 --set train.threads=1 --quiet)
"$rnnflow" run "$graph" "${quick[@]}" --out "$work/a" > /dev/null
"$rnnflow" vectors "$work/a" --out "$work/a.txt" 2> "$work/a.err"
grep -q "^stage 'embed' (best.safetensors): [0-9]* vectors of dim 16 written to $work/a.txt; 2 specials left out$" "$work/a.err" \
  || { echo "FAIL: export summary:"; cat "$work/a.err"; exit 1; }
# One line per token of the vocabulary but <pad> and <unk>, in id order, 1 + 16 fields each.
vocab="$work/a/state/vocab/vocab.tsv"
tail -n +2 "$vocab" | cut -f2 | grep -vxE '<pad>|<unk>' > "$work/tokens.txt"
cut -d' ' -f1 "$work/a.txt" | cmp - "$work/tokens.txt" || { echo "FAIL: exported tokens are not the vocabulary's"; exit 1; }
awk 'NF != 17 { print "FAIL: line " NR " has " NF " fields"; bad = 1 } END { exit bad }' "$work/a.txt"
# Standard output by default, the same text.
"$rnnflow" vectors "$work/a" --stage embed 2> /dev/null | cmp - "$work/a.txt"

"$rnnflow" run "$graph" "${quick[@]}" --set embed.pretrained="$work/a.txt" --set embed.freeze=true \
  --out "$work/b" > /dev/null 2> "$work/b.err"
n=$(wc -l < "$work/a.txt")
grep -q "stage 'embed': pretrained vectors $work/a.txt ($n rows, dim 16): $n of $n vocabulary tokens found (100.0%; 0 by lowercase), covering 100.0% of training token occurrences" "$work/b.err" \
  || { echo "FAIL: coverage line:"; cat "$work/b.err"; exit 1; }
"$rnnflow" vectors "$work/b" --out "$work/b.txt" 2> /dev/null
cmp "$work/a.txt" "$work/b.txt" || { echo "FAIL: the vectors did not survive export -> pretrained: -> export"; exit 1; }
# The last checkpoint (and an explicit file) work too; the same frozen rows.
"$rnnflow" vectors "$work/b" --checkpoint last 2> /dev/null | cmp - "$work/a.txt"
"$rnnflow" vectors "$work/b" --checkpoint "$work/b/checkpoints/last.safetensors" 2> /dev/null | cmp - "$work/a.txt"
# Decimal text that parses back to the same float32: compare against the checkpoint's bytes.
/usr/bin/python3 - "$work/a/checkpoints/best.safetensors" "$work/a.txt" "$vocab" <<'PY'
import json, struct, sys
ckpt, vec, vocab = sys.argv[1:]
raw = open(ckpt, "rb").read()
hlen = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + hlen])
e = head["embed.weight"]
V, C = e["shape"]
a, b = e["data_offsets"]
data = raw[8 + hlen + a: 8 + hlen + b]
rows = [struct.unpack_from("<%df" % C, data, 4 * C * v) for v in range(V)]
ids = {}
for line in open(vocab, encoding="utf-8").read().splitlines()[1:]:
    i, tok, _ = line.split("\t")
    ids[tok] = int(i)
for line in open(vec, encoding="utf-8"):
    f = line.split()
    got = [struct.unpack("<f", struct.pack("<f", float(x)))[0] for x in f[1:]]
    want = list(rows[ids[f[0]]])
    assert got == want, (f[0], got[:3], want[:3])
print("ok")
PY
echo "vectors: round trip ok ($n rows)"
