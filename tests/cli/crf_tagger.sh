#!/usr/bin/env bash
# The crf stage through the real engine: a bi-LSTM + crf tagger (tests/cli/crf_tagger.yaml)
# trains on IOB2 name / place tags and its validation accuracy rises; `rnnflow eval` reports the
# kept checkpoint's; `rnnflow predict` prints the Viterbi tags, one line per input line, blank
# lines kept as empty lines.
set -euo pipefail
rnnflow=$1; src=$2
work=${KEEP_WORK:-$(mktemp -d)}; [ -n "${KEEP_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
# "jordan" is a first name (B-PER) and a surname (I-PER): its tag depends on its neighbour.
/usr/bin/python3 - "$work" <<'PY'
import random, sys
out = sys.argv[1]
first = ["anna", "jordan", "omar", "li", "maria"]
last = ["smith", "jordan", "khan", "garcia", "chen"]
towns = [["paris"], ["oslo"], ["new", "york"], ["san", "jose"]]
rnd = random.Random(5)
def sentence():
    s = []
    if rnd.random() < 0.5:
        s.append(("today", "O"))
    s.append((rnd.choice(first), "B-PER"))
    if rnd.random() < 0.7:
        s.append((rnd.choice(last), "I-PER"))
    s.append((rnd.choice(["visited", "left", "saw"]), "O"))
    town = rnd.choice(towns)
    s += [(w, ("B-LOC" if i == 0 else "I-LOC")) for i, w in enumerate(town)]
    return s
def write(name, n):
    with open(f"{out}/{name}", "w") as f:
        for i in range(n):
            f.write(f"# sent_id = {i}\n")
            for k, (w, t) in enumerate(sentence(), 1):
                f.write(f"{k}\t{w}\t{w}\t{t}\t_\t_\t0\tdep\t_\t_\n")
            f.write("\n")
write("train.conllu", 240); write("dev.conllu", 40); write("test.conllu", 40)
PY
"$rnnflow" run "$src/tests/cli/crf_tagger.yaml" --set vars.data="$work" --out "$work/run" --quiet --headline > "$work/out.txt"
grep -q "^test:" "$work/out.txt"
"$rnnflow" eval "$work/run" --split valid --log-format json > "$work/eval.json"
/usr/bin/python3 - "$work/run/metrics.jsonl" "$work/eval.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
train = [r["acc"] for r in rows if r["split"] == "train"]  # over each epoch's batches, as it learns
acc = [r["acc"] for r in rows if r["split"] == "valid"]
print("train accuracy by epoch:", " ".join(f"{a:.4f}" for a in train))
print("valid accuracy by epoch:", " ".join(f"{a:.4f}" for a in acc))
assert train[0] < 0.9 < 0.95 < train[-1], train  # it starts near chance and learns
assert max(acc) > 0.95, acc  # the tags are learnable from the word and its neighbours
got = json.load(open(sys.argv[2]))
assert abs(got["acc"] - max(acc)) < 1e-9, (got["acc"], max(acc))
PY
printf 'anna jordan visited new york\n\njordan khan left oslo\n \t\ntoday li saw paris\n' > "$work/in.txt"
"$rnnflow" predict "$work/run" < "$work/in.txt" > "$work/pred.txt"
[ "$(wc -l < "$work/pred.txt")" = 5 ] || { cat -A "$work/pred.txt"; exit 1; }
[ "$(sed -n 1p "$work/pred.txt")" = "B-PER I-PER O B-LOC I-LOC" ] || { cat "$work/pred.txt"; exit 1; }
[ "$(sed -n 3p "$work/pred.txt")" = "B-PER I-PER O B-LOC" ] || { cat "$work/pred.txt"; exit 1; }
[ "$(sed -n 5p "$work/pred.txt")" = "O B-PER O B-LOC" ] || { cat "$work/pred.txt"; exit 1; }
[ -z "$(sed -n 2p "$work/pred.txt")" ] && [ -z "$(sed -n 4p "$work/pred.txt")" ] || { cat -A "$work/pred.txt"; exit 1; }
