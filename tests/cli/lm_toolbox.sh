#!/usr/bin/env bash
# The language-model tools on a tiny word LM trained here: score, generate --top-p, vectors
# --neighbours. rnnflow score (RMSprop, so the optimiser runs end to end too):
# scoring the test lines with the state carried from line to line gives the loss and perplexity
# of `rnnflow eval` on the same text (batch 1: one stream, state carried through the split; the
# test file starts with an empty line, so its stream starts with <eos>, as score feeds it);
# per-line scores do not depend on the other lines; --next; bad input.
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); [ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive
/usr/bin/python3 - "$work" <<'PY'
import random, sys
random.seed(5)
subj, verb, obj = ["the cat", "a dog", "the bird", "my friend"], ["sees", "eats", "likes", "finds"], ["the fish", "a bone", "the seed", "an apple", "the mat"]
def line(): return " ".join([random.choice(subj), random.choice(verb), random.choice(obj)])
d = sys.argv[1]
open(d + "/train.txt", "w").write("".join(line() + "\n" for _ in range(300)))
open(d + "/valid.txt", "w").write("".join(line() + "\n" for _ in range(20)))
test = [line() for _ in range(12)]
open(d + "/test.txt", "w").write("\n" + "".join(t + "\n" for t in test))
open(d + "/lines.txt", "w").write("".join(t + "\n" for t in test))
PY
cat > "$work/lm.yaml" <<'YAML'
experiment: score-toy
seed: 3
stages:
  corpus: {type: text_file, train: [train.txt], valid: valid.txt, test: test.txt}
  tokens: {type: tokenize, in: corpus, mode: word}
  vocab:  {type: vocabulary, in: tokens, specials: [<unk>, <eos>], append_eos: true}
  batch:  {type: lm_batches, in: vocab.out, batch: 1, bptt: 8}
  embed:  {type: embedding, in: batch.ids, dim: 8}
  rnn:    {type: lstm, in: embed, hidden: 16, carry_state: true}
  logits: {type: linear, in: rnn, out_dim: vocab.size}
  loss:   {type: cross_entropy, logits: logits, target: batch.targets}
  optim:  {type: rmsprop, minimize: loss, lr: 0.01, clip_norm: 5}
  ppl:    {type: perplexity, loss: loss}
train: {epochs: 2, keep: best(ppl.valid), threads: 1}
YAML
"$rnnflow" run "$work/lm.yaml" --out "$work/run" --quiet --threads 1 > /dev/null
"$rnnflow" eval "$work/run" --split test --log-format json --quiet --threads 1 > "$work/eval.json"
"$rnnflow" score "$work/run" "$work/lines.txt" --carry --threads 1 > "$work/carry.tsv"
"$rnnflow" score "$work/run" "$work/lines.txt" --threads 1 > "$work/lines.tsv"
head -3 "$work/lines.txt" | tail -1 | "$rnnflow" score "$work/run" --threads 1 > "$work/one.tsv"
/usr/bin/python3 - "$work" <<'PY'
import json, math, sys
d = sys.argv[1]
ev = json.load(open(d + "/eval.json"))
def table(f):
    rows = [l.rstrip("\n").split("\t") for l in open(f)]
    assert rows[0] == ["line", "tokens", "unk", "logprob", "bits", "ppl", "text"], rows[0]
    return rows[1:]
carry, lines, one = table(d + "/carry.tsv"), table(d + "/lines.tsv"), table(d + "/one.tsv")
tot = carry[-1]
assert tot[0] == "total", tot
n, lp = int(tot[1]), float(tot[3])
words = sum(len(l.split()) for l in open(d + "/lines.txt"))
assert n == words + 12, (n, words)  # every line's words and its <eos>
# The same text as eval's test pass: loss (nats per token) and perplexity agree to the printed
# precision (logprob has 4 decimals; the forward passes chunk the text differently, so float
# rounding differs by ~1e-6 relative).
assert abs(-lp / n - ev["loss"]) < 2e-5, (-lp / n, ev["loss"])
assert abs(math.exp(-lp / n) - ev["ppl"]) < 1e-3 * ev["ppl"], (math.exp(-lp / n), ev)
for r in carry[:-1] + lines[:-1]:
    t, l = int(r[1]), float(r[3])
    assert abs(float(r[4]) - l / math.log(2)) < 1e-3 and abs(float(r[5]) - math.exp(-l / t)) < 1e-3 * float(r[5]), r
# Per line from a zero state: a line's score does not depend on the lines around it; carrying
# the state changes the scores (so the comparison above is not trivially the same thing).
assert one[0][1:] == lines[2][1:], (one[0], lines[2])
assert abs(float(lines[-1][3]) - sum(float(r[3]) for r in lines[:-1])) < 1e-3
assert carry[1][3] != lines[1][3], (carry[1], lines[1])
PY
# --next K: K rows after each line, the most probable first; unknown words are <unk> (noted).
echo "the cat likes zebras" | "$rnnflow" score "$work/run" --next 3 --threads 1 > "$work/next.tsv" 2> "$work/next.err"
[ "$(grep -c '^next' "$work/next.tsv")" = 3 ]
awk -F'\t' '$1 == "1" && $3 != 1 { exit 1 } $1 == "next" { if (k++ && $4 > prev) exit 1; prev = $4 }' "$work/next.tsv"
grep -q "1 token not in the vocabulary scored as <unk>: zebras" "$work/next.err"
# After "the cat likes" the model has learnt that an object comes: its first word is in the top 3.
echo "the cat likes" | "$rnnflow" score "$work/run" --next 3 --threads 1 | grep -E '^next' | cut -f3 | grep -qE '^(the|a|an)$'
# Bad input: exit 2 with the reason.
expect_fail() {  # expect_fail TEXT CMD...: exit 2 and TEXT on stderr
    local text=$1; shift
    set +e; "$@" > /dev/null 2> "$work/err.txt"; local rc=$?; set -e
    [ "$rc" = 2 ] && grep -qF -- "$text" "$work/err.txt" || { echo "expected exit 2 and '$text' from: $*"; cat "$work/err.txt"; exit 1; }
}
printf 'the cat sees the fish\n\na dog\n' > "$work/blank.txt"
expect_fail "blank.txt:2: empty line: nothing to score" "$rnnflow" score "$work/run" "$work/blank.txt"
expect_fail "missing.txt: cannot open" "$rnnflow" score "$work/run" "$work/missing.txt"
expect_fail "--next must be at least 0" "$rnnflow" score "$work/run" "$work/lines.txt" --next -1
mkdir "$work/cls"
cp "$src/tests/cli/tiny_tagger.yaml" "$work/cls/resolved.yaml"  # a tagger's graph
expect_fail "not a language-model run" "$rnnflow" score "$work/cls" "$work/lines.txt"
expect_fail "not a run folder" "$rnnflow" score "$work" "$work/lines.txt"
# generate --top-p on the same model with a sampler (score then reads the sampler's logits): 0
# keeps the most likely token (greedy), 1 cuts nothing; out of range is refused.
sed -e 's/^train:/  sample: {type: sampler, logits: logits, vocab: vocab.vocab}\ntrain:/' "$work/lm.yaml" > "$work/lm_sample.yaml"
"$rnnflow" run "$work/lm_sample.yaml" --out "$work/srun" --quiet --threads 1 > /dev/null
gen() { "$rnnflow" generate "$work/srun" --prime "the cat" -n 12 --seed 4 --threads 1 "$@"; }
[ "$(gen --top-p 0)" = "$(gen --temperature 0)" ]
[ "$(gen --top-p 1)" = "$(gen)" ]
[ "$(gen --top-p 0.5 --top-k 3 --temperature 0.8)" = "$(gen --top-p 0.5 --top-k 3 --temperature 0.8)" ]
expect_fail "--top-p must be in [0, 1], got 1.5" gen --top-p 1.5
"$rnnflow" score "$work/srun" "$work/lines.txt" --threads 1 | tail -1 | grep -q "^total"
# vectors --neighbours: the k nearest tokens by cosine, as computed here from the exported vectors
# (the word itself and the specials left out, most similar first).
"$rnnflow" vectors "$work/run" --out "$work/vectors.txt" 2> /dev/null
"$rnnflow" vectors "$work/run" --neighbours cat -k 5 > "$work/nn.tsv"
/usr/bin/python3 - "$work" <<'PY'
import math, sys
d = sys.argv[1]
vec = {}
for l in open(d + "/vectors.txt"):
    p = l.split()
    vec[p[0]] = [float(x) for x in p[1:]]
rows = [l.rstrip("\n").split("\t") for l in open(d + "/nn.tsv")]
assert rows[0] == ["rank", "token", "cosine"], rows[0]
q = vec["cat"]
def cos(a, b): return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
want = sorted(((cos(q, v), t) for t, v in vec.items() if t != "cat"), key=lambda x: -x[0])[:5]
got = [(float(r[2]), r[1]) for r in rows[1:]]
assert [r[0] for r in rows[1:]] == ["1", "2", "3", "4", "5"], rows
assert [t for _, t in got] == [t for _, t in want], (got, want)
assert all(abs(a - b) < 1e-5 for (a, _), (b, _) in zip(got, want)), (got, want)
PY
expect_fail "'zebra' is not in the vocabulary" "$rnnflow" vectors "$work/run" --neighbours zebra
expect_fail "'the cat' is not one token" "$rnnflow" vectors "$work/run" --neighbours "the cat"
echo "lm toolbox: ok"
