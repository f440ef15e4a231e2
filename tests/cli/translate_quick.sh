#!/usr/bin/env bash
# The date translation graph, tiny: run, then translate (stdin and file) and eval from the run folder.
set -euo pipefail
rnnflow=$1; src=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$rnnflow" run "$src/graphs/date_translation.yaml" --out "$work/run" \
  --set train.epochs=1 --set dates.train=640 --set dates.valid=40 --set dates.test=30 \
  --set vars.hidden=16 --set train.max_batches=10 > "$work/out.txt"
# The last line and summary.txt name the main metric (BLEU) and round values (issue 20:
# "metrics=100.00000000000004"); metrics.jsonl keeps every digit (checked below).
grep -qE "^test: .*metrics.bleu=[0-9]+(\.[0-9]+)? " "$work/out.txt" || { cat "$work/out.txt"; exit 1; }
grep -q "^final test: .*metrics.bleu=" "$work/run/summary.txt" || { cat "$work/run/summary.txt"; exit 1; }
grep -q "^metrics.bleu: the main metric of stage 'metrics'" "$work/run/summary.txt"
! grep -E "=-?[0-9]*\.[0-9]{8,}" "$work/out.txt" "$work/run/summary.txt" || { echo "a value with all its digits"; exit 1; }
for f in metrics/valid.translations.txt metrics/test.translations.txt metrics/valid.attention_0.png \
         metrics/valid.attention_0.tsv state/src_vocab/vocab.tsv state/tgt_vocab/vocab.tsv checkpoints/last.safetensors; do
  [ -s "$work/run/$f" ] || { echo "missing $f in the run folder"; exit 1; }
done
# One translation per item, in item order.
[ "$(wc -l < "$work/run/metrics/test.translations.txt")" = 30 ]
[ "$(wc -l < "$work/run/metrics/valid.translations.txt")" = 40 ]

# translate: one line out per line in, from standard input or a file, the same either way. A
# blank line (empty, or only spaces) has nothing to encode: its output line is empty and the
# others are translated as without it (issue 20: it used to abort the whole input).
printf '3 may 1979\nTuesday, March 4, 2003\n05/03/79\n' > "$work/in.txt"
"$rnnflow" translate "$work/run" "$work/in.txt" > "$work/t_file.txt"
"$rnnflow" translate "$work/run" < "$work/in.txt" > "$work/t_stdin.txt"
[ "$(wc -l < "$work/t_file.txt")" = 3 ]
cmp "$work/t_file.txt" "$work/t_stdin.txt"
"$rnnflow" translate "$work/run" "$work/in.txt" -o "$work/t_out.txt"
cmp "$work/t_file.txt" "$work/t_out.txt"
printf '3 may 1979\nTuesday, March 4, 2003\n\n05/03/79\n \t \n' > "$work/in_blank.txt"
"$rnnflow" translate "$work/run" "$work/in_blank.txt" > "$work/t_blank.txt"
{ sed -n 1,2p "$work/t_file.txt"; echo; sed -n 3p "$work/t_file.txt"; echo; } > "$work/t_expected.txt"
cmp "$work/t_blank.txt" "$work/t_expected.txt" || { diff "$work/t_expected.txt" "$work/t_blank.txt"; exit 1; }
# Only blank lines: as many empty lines out.
printf '\n  \n' | "$rnnflow" translate "$work/run" > "$work/t_empty.txt"
[ "$(cat "$work/t_empty.txt" | tr -d '\n')" = "" ] && [ "$(wc -l < "$work/t_empty.txt")" = 2 ]
# Invalid UTF-8 after a blank line: the message names the line as the user counts it (3), the
# exit status is 2 and nothing is written to the output file.
printf '3 may 1979\n\n05/03/79 \xff\n' > "$work/in_bad.txt"
status=0
"$rnnflow" translate "$work/run" "$work/in_bad.txt" -o "$work/t_bad.txt" 2> "$work/t_bad.err" || status=$?
[ "$status" = 2 ] || { cat "$work/t_bad.err"; echo "invalid UTF-8 input: exit $status, expected 2"; exit 1; }
grep -q "in_bad.txt:3:10: invalid UTF-8 byte 0xff" "$work/t_bad.err" || { cat "$work/t_bad.err"; exit 1; }
[ ! -e "$work/t_bad.txt" ]

# eval regenerates the data (same seed), loads the vocabularies and the kept checkpoint: the
# test metrics equal the run's own test line.
"$rnnflow" eval "$work/run" --split test --log-format json > "$work/eval.json"
/usr/bin/python3 - "$work/eval.json" "$work/run/metrics.jsonl" <<'PY'
import json, sys
got = json.load(open(sys.argv[1]))
assert got["split"] == "test", got
for k in ("metrics", "metrics.bleu_lc", "metrics.exact", "metrics.token_accuracy"):
    assert k in got, (k, got)
rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
test = [r for r in rows if r["split"] == "test"]
assert test, rows
for k in ("metrics", "metrics.exact"):
    assert abs(test[-1][k] - got[k]) < 1e-9, (k, test[-1][k], got[k])
PY
[ -s "$work/run/metrics/test.translations.txt" ]
echo "translate quick run: ok"
