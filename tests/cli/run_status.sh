#!/usr/bin/env bash
# Results at a glance (issue 26): status.json in every run folder — finished, failed during
# preparation, interrupted (then resumed with the command it records), killed — the headline in the
# terminal and summary.txt, the per-class table of a tagger, `report` and `compare` on a failed
# run, and `rnnflow runs` over the mixed folder (text, TSV, JSON, --sort, --experiment, --html).
set -euo pipefail
rnnflow=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); src=$(cd "$2" && pwd)
work=${KEEP_WORK:-$(mktemp -d)}; [ -n "${KEEP_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
py=/usr/bin/python3
fail() { echo "FAIL: $*"; exit 1; }
export OMP_WAIT_POLICY=passive
small=(--threads 1 --set train.epochs=2 --set train.max_batches=4 --set rnn.hidden=16 --set rnn.layers=1
       --set embed.dim=8 --set train.sample_length=0)
# field FILE KEY: a value of a JSON file ("" when absent).
field() { "$py" -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2], ""); print(v)' "$1" "$2"; }

# 1. Finished: the last lines and summary.txt lead with the headline; status.json says so.
"$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/runs/ok" "${small[@]}" > "$work/ok.out" 2> /dev/null
grep -q "^done in " "$work/ok.out" || { cat "$work/ok.out"; fail "no done line"; }
grep -Eq "^test ppl[.a-z]*: [0-9.]+ \(kept checkpoint best.safetensors\)$" "$work/ok.out" || { cat "$work/ok.out"; fail "no test headline"; }
grep -Eq "^best valid ppl[.a-z]*: [0-9.]+ at epoch [12] \(lower is better\)$" "$work/ok.out" || fail "no best valid line"
grep -Eq "^parameters: [0-9]+$" "$work/ok.out" || fail "no parameter count"
head -1 "$work/runs/ok/summary.txt" | grep -Eq "^test ppl[.a-z]*: " || { cat "$work/runs/ok/summary.txt"; fail "summary.txt does not lead with the headline"; }
grep -q "^wall time: .* s$" "$work/runs/ok/summary.txt"   # compare reads these two
grep -q "^training throughput: .* items/s$" "$work/runs/ok/summary.txt"
ok=$work/runs/ok/status.json
[ "$(field "$ok" state)" = finished ] || { cat "$ok"; fail "state of a finished run"; }
[ "$(field "$ok" epochs_done)" = 2 ] && [ "$(field "$ok" epochs)" = 2 ] || fail "epochs in status.json"
[ "$(field "$ok" experiment)" = char-lm ] || fail "experiment in status.json"
[ -n "$(field "$ok" ended)" ] && [ -z "$(field "$ok" error)" ] && [ -z "$(field "$ok" resume_command)" ] || fail "a finished run's fields"
# The test value in status.json is the one in metrics.jsonl's test row.
"$py" - "$work/runs/ok" <<'PY'
import json, sys
d = sys.argv[1]
s = json.load(open(d + "/status.json"))
test = [json.loads(l) for l in open(d + "/metrics.jsonl") if '"epoch":0,' in l][-1]
assert s["test"] == test[s["metric"]], (s, test)
assert s["test_loss"] == test["loss"], (s, test)
valid = [json.loads(l) for l in open(d + "/metrics.jsonl") if '"split":"valid"' in l]
best = min(valid, key=lambda r: r[s["metric"]])
assert s["best_valid"] == best[s["metric"]] and s["best_epoch"] == best["epoch"], (s, valid)
assert s["parameters"] > 0 and s["seconds"] > 0
PY

# 2. Failed during preparation: the folder says so and why; report and compare show it.
set +e; "$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/runs/bad" "${small[@]}" --quiet \
  --set vars.licenses=/nonexistent > "$work/bad.out" 2> "$work/bad.err"; code=$?; set -e
[ "$code" = 2 ] || fail "a missing data file gave exit $code"
[ ! -s "$work/bad.out" ] || fail "--quiet printed on standard output for a failed run"
bad=$work/runs/bad/status.json
[ "$(field "$bad" state)" = failed ] || { cat "$bad"; fail "state of a run that failed in prepare"; }
[[ "$(field "$bad" error)" == *"stage 'corpus' (text_file"* ]] || { cat "$bad"; fail "the error message"; }
[ -z "$(field "$bad" resume_command)" ] || fail "a run without a checkpoint has no resume command"
[ "$(field "$bad" epochs_done)" = 0 ] || fail "epochs done of a failed run"
"$rnnflow" report "$work/runs/bad" > /dev/null
grep -q "failed: stage &#39;corpus&#39; (text_file" "$work/runs/bad/report.html" || fail "report of a failed run"
(cd "$work" && "$rnnflow" compare runs/ok runs/bad > compare.out)
grep -Eq "^bad +char-lm +0 .* failed$" "$work/compare.out" || { cat "$work/compare.out"; fail "compare does not mark the failed run"; }
grep -Eq "^ok +char-lm +2 .* finished$" "$work/compare.out" || { cat "$work/compare.out"; fail "compare's finished run"; }

# 3. Interrupted (SIGINT during a training step): the resume command is recorded, and works.
set +e; RNNFLOW_FAULT=interrupt@batch:6 "$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/runs/int" "${small[@]}" \
  --quiet > /dev/null 2> "$work/int.err"; code=$?; set -e
[ "$code" = 130 ] || { cat "$work/int.err"; fail "an interrupted run gave exit $code"; }
st=$work/runs/int/status.json
[ "$(field "$st" state)" = interrupted ] || { cat "$st"; fail "state of an interrupted run"; }
[ "$(field "$st" epochs_done)" = 1 ] || { cat "$st"; fail "epochs done of the interrupted run"; }
[[ "$(field "$st" error)" == *SIGINT* ]] || { cat "$st"; fail "the interruption's message"; }
cmd=$(field "$st" resume_command)
grep -qxF "resume with: $cmd" "$work/int.err" || { cat "$work/int.err"; fail "status.json's resume command is not the printed one: $cmd"; }
cp -r "$work/runs/int" "$work/runs/int2"   # stays interrupted for the table below
[ "$(field "$work/runs/int2/status.json" state)" = interrupted ]
case $cmd in "rnnflow run --resume "*) ;; *) fail "unexpected resume command: $cmd";; esac
eval "\"\$rnnflow\" ${cmd#rnnflow } --quiet"
[ "$(field "$st" state)" = finished ] || { cat "$st"; fail "the resumed run did not finish"; }
[ "$(field "$st" epochs_done)" = 2 ] || fail "epochs done after resume"
[ "$(field "$st" started)" = "$(field "$work/runs/int2/status.json" started)" ] || fail "resume changed the start time"

# 3b. Killed (SIGKILL: no chance to write anything): status.json still says running, and the
# table tells that its process is gone.
set +e; (RNNFLOW_FAULT=kill@batch:3 "$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/runs/kill" "${small[@]}" \
  --quiet; exit $?) > /dev/null 2>&1; code=$?; set -e
[ "$code" = 137 ] || fail "a killed run gave exit $code"
[ "$(field "$work/runs/kill/status.json" state)" = running ] || fail "a killed run's status file"

# 4. A tagger: per-class values in test.per_class.tsv, not in the last lines or summary.txt.
"$py" - "$work" <<'PY'
import random, sys
out = sys.argv[1]
lex = {"DET": ["the", "a"], "NOUN": ["cat", "dog", "walk"], "VERB": ["sees", "walk"]}  # walk: either
rnd = random.Random(5)
def write(name, n):
    with open(f"{out}/{name}", "w") as f:
        for i in range(n):
            for k, t in enumerate(["DET", "NOUN", "VERB", "DET", "NOUN"], 1):
                w = rnd.choice(lex[t])
                f.write(f"{k}\t{w}\t{w}\t{t}\t_\t_\t0\tdep\t_\t_\n")
            f.write("\n")
write("train.conllu", 60); write("dev.conllu", 10); write("test.conllu", 10)
PY
"$rnnflow" run "$src/tests/cli/tiny_tagger.yaml" --set vars.data="$work" --set train.epochs=1 --out "$work/runs/tag" \
  --threads 1 > "$work/tag.out" 2> /dev/null
! grep -q "precision\." "$work/tag.out" "$work/runs/tag/summary.txt" || fail "per-class values in the last lines or summary.txt"
grep -qxF "per-class values: $work/runs/tag/test.per_class.tsv" "$work/tag.out" || { cat "$work/tag.out"; fail "no per-class pointer"; }
"$py" - "$work/runs/tag" <<'PY'
import json, sys
d = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(d + "/test.per_class.tsv")]
assert rows[0] == ["stage", "class", "support", "precision", "recall", "f1", "accuracy"], rows[0]
by = {r[1]: r for r in rows[1:]}
assert sorted(by) == ["DET", "NOUN", "VERB"], by
test = [json.loads(l) for l in open(d + "/metrics.jsonl") if '"epoch":0,' in l][-1]
for c, r in by.items():
    assert r[0] == "acc"
    for i, m in enumerate(["precision", "recall", "f1", "accuracy"], 3):
        assert float(r[i]) == test["acc.%s.%s" % (m, c)], (c, m, r, test)
assert any(float(r[i]) < 1 for r in by.values() for i in range(3, 7)), by  # not a table of ones
# support: the gold counts, 2 DET, 2 NOUN and 1 VERB per sentence of 10 sentences
assert (by["DET"][2], by["NOUN"][2], by["VERB"][2]) == ("20", "20", "10"), by
PY

# 5. The run table over the mixed folder.
"$rnnflow" runs "$work/runs" --format tsv > "$work/runs.tsv"
"$py" - "$work" <<'PY'
import json, sys
work = sys.argv[1]
rows = [l.rstrip("\n").split("\t") for l in open(work + "/runs.tsv")]
head = rows[0]
assert head == ["experiment", "started", "status", "epochs", "metric", "best_valid", "best_epoch", "test", "wall_s", "folder"], head
by = {r[-1].rsplit("/", 1)[-1]: dict(zip(head, r)) for r in rows[1:]}
assert sorted(by) == ["bad", "int", "int2", "kill", "ok", "tag"], by
assert by["kill"]["status"] == "killed" and by["kill"]["epochs"] == "0/2", by["kill"]
assert by["ok"]["status"] == "finished" and by["ok"]["epochs"] == "2/2"
assert by["bad"]["status"] == "failed" and by["bad"]["epochs"] == "0/2" and by["bad"]["test"] == ""
assert by["int2"]["status"] == "interrupted" and by["int2"]["epochs"] == "1/2" and by["int2"]["test"] == ""
assert by["int"]["status"] == "finished"
assert by["tag"]["experiment"] == "tiny-tagger" and by["tag"]["metric"] == "acc.accuracy" and by["tag"]["epochs"] == "1/1"
s = json.load(open(work + "/runs/ok/status.json"))
for col in ("best_valid", "test"):
    assert abs(float(by["ok"][col]) - s[col]) <= 5e-4 * abs(s[col]), (col, by["ok"], s)
assert by["ok"]["best_epoch"] == str(s["best_epoch"])
assert by["int2"]["best_valid"] != "" and by["int2"]["best_epoch"] == "1"
PY
"$rnnflow" runs "$work/runs" --experiment tiny-tagger --format json > "$work/runs.json"
"$py" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert [x["experiment"] for x in r] == ["tiny-tagger"], r; assert r[0]["status"] == "finished" and isinstance(r[0]["test"], (int, float)), r' "$work/runs.json"
"$rnnflow" runs "$work/runs" --sort status --format tsv | cut -f3 | tail -n +2 | tr '\n' ' ' > "$work/sorted"
[ "$(cat "$work/sorted")" = "failed finished finished finished interrupted killed " ] || { cat "$work/sorted"; fail "--sort status"; }
(cd "$work" && "$rnnflow" runs > runs.txt)   # default: runs/
grep -Eq "^experiment +started +status " "$work/runs.txt" && [ "$(wc -l < "$work/runs.txt")" = 7 ] || { cat "$work/runs.txt"; fail "the text table"; }
set +e; "$rnnflow" runs "$work/runs" --sort nope > /dev/null 2> "$work/err"; code=$?; set -e
[ "$code" = 2 ] && grep -q "no such column" "$work/err" || fail "--sort with a bad column"
"$rnnflow" runs "$work/runs" --html "$work/runs.html" > /dev/null 2>&1
for r in ok bad int int2 kill tag; do
  grep -qF "href=\"runs/$r/report.html\"" "$work/runs.html" || fail "no link to $r's report"
  [ -s "$work/runs/$r/report.html" ] || fail "no report for $r"
done
echo "run status, headline and run table: ok"
