#!/usr/bin/env bash
# A tiny tagging run end to end: conllu → classify_batches → bi-LSTM → classification_metrics;
# then `rnnflow eval` (metrics again from the kept checkpoint, confusion and predictions files)
# and `rnnflow predict` (one line of tags per input line, in input order).
set -euo pipefail
rnnflow=$1; src=$2
work=${KEEP_WORK:-$(mktemp -d)}; [ -n "${KEEP_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
# A language where each word has one tag: DET ADJ? NOUN VERB DET NOUN, seeded.
/usr/bin/python3 - "$work" <<'PY'
import random, sys
out = sys.argv[1]
lex = {"DET": ["the", "a", "every"], "ADJ": ["big", "small", "red", "old"],
       "NOUN": ["cat", "dog", "bird", "house", "tree"], "VERB": ["sees", "likes", "finds"]}
rnd = random.Random(7)
def sentence():
    tags = ["DET"] + (["ADJ"] if rnd.random() < 0.5 else []) + ["NOUN", "VERB", "DET", "NOUN"]
    return [(rnd.choice(lex[t]), t) for t in tags]
def write(name, n):
    with open(f"{out}/{name}", "w") as f:
        for i in range(n):
            f.write(f"# sent_id = {i}\n")
            for k, (w, t) in enumerate(sentence(), 1):
                f.write(f"{k}\t{w}\t{w}\t{t}\t_\t_\t0\tdep\t_\t_\n")
            f.write("\n")
write("train.conllu", 240); write("dev.conllu", 40); write("test.conllu", 40)
PY
"$rnnflow" run "$src/tests/cli/tiny_tagger.yaml" --set vars.data="$work" --out "$work/run" --quiet --headline > "$work/out.txt"
grep -q "^test:" "$work/out.txt"
for f in state/words/vocab.tsv state/tags/vocab.tsv state/batch/chars.tsv acc/test.confusion.tsv acc/test.confusion.png acc/test.predictions.tsv; do
  [ -s "$work/run/$f" ] || { echo "missing $f in the run folder"; exit 1; }
done
# eval: the kept checkpoint's validation accuracy is the best the run logged.
"$rnnflow" eval "$work/run" --split valid --log-format json > "$work/eval.json"
/usr/bin/python3 - "$work/run/metrics.jsonl" "$work/eval.json" "$work/run/acc/valid.confusion.tsv" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = max(r["acc"] for r in rows if r["split"] == "valid")
got = json.load(open(sys.argv[2]))
assert abs(got["acc"] - best) < 1e-9, (got["acc"], best)
assert got["acc"] > 0.9, got  # each word has one tag: a working tagger learns it
assert "acc.macro_f1" in got and "acc.f1.NOUN" in got, got
lines = open(sys.argv[3]).read().splitlines()
assert lines[0].split("\t")[0] == "gold\\predicted", lines[0]
assert sorted(lines[0].split("\t")[1:]) == ["ADJ", "DET", "NOUN", "VERB"], lines[0]
total = sum(int(x) for l in lines[1:] for x in l.split("\t")[1:])
assert total == sum(1 for l in open(sys.argv[3].replace("valid.confusion.tsv", "../../dev.conllu")) if l[:1].isdigit()), total
PY
# Batching and padding do not change results: other batch sizes and no bucketing (so columns of
# very different lengths share a batch) give the same accuracy and, up to float sums, loss.
"$rnnflow" eval "$work/run" --split valid --log-format json --set batch.batch=3 --set batch.bucket=false > "$work/eval3.json"
/usr/bin/python3 - "$work/eval.json" "$work/eval3.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
assert a["acc"] == b["acc"], (a["acc"], b["acc"])
assert abs(a["loss"] - b["loss"]) < 1e-5 * max(1.0, abs(a["loss"])), (a["loss"], b["loss"])
PY
# predict: one line of tags per input line, as many tags as words, in input order (also an
# unknown word); a blank line (empty, or only spaces and tabs) gives an empty line in its place.
printf 'the cat sees a dog\n\nevery big bird likes the zebra\n \t\na tree\n' > "$work/in.txt"
"$rnnflow" predict "$work/run" < "$work/in.txt" > "$work/pred.txt"
[ "$(wc -l < "$work/pred.txt")" = 5 ]
[ "$(sed -n 1p "$work/pred.txt")" = "DET NOUN VERB DET NOUN" ] || { cat "$work/pred.txt"; exit 1; }
[ -z "$(sed -n 2p "$work/pred.txt")" ] && [ -z "$(sed -n 4p "$work/pred.txt")" ] || { cat -A "$work/pred.txt"; exit 1; }
[ "$(sed -n 3p "$work/pred.txt" | wc -w)" = 6 ]
[ "$(sed -n 5p "$work/pred.txt")" = "DET NOUN" ] || { cat "$work/pred.txt"; exit 1; }
# The same lines from a file with -o give the same output.
"$rnnflow" predict "$work/run" "$work/in.txt" -o "$work/pred2.txt"
cmp "$work/pred.txt" "$work/pred2.txt"
