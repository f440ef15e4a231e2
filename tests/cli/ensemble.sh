#!/usr/bin/env bash
# `rnnflow ensemble`: members given as run folders (the predictions file found in the stage
# folder, or chosen with --stage) or as files; the averaged prediction's accuracy; --out files
# that read back as a member; bad input exits 2 naming the file.
set -euo pipefail
rnnflow=$1
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
expect_fail() {  # expect_fail PATTERN -- command...
  local pattern=$1; shift 2
  set +e; "$@" > "$work/out" 2>&1; local got=$?; set -e
  [ "$got" = 2 ] || { echo "FAIL: expected exit 2, got $got: $*"; cat "$work/out"; exit 1; }
  grep -qF -- "$pattern" "$work/out" || { echo "FAIL: expected '$pattern' in output of $*:"; cat "$work/out"; exit 1; }
}
mkdir -p "$work/r1/acc" "$work/r2/acc" "$work/r3/acc" "$work/r3/other"
# Three members: 2 of 3, 1 of 3 and 2 of 3 right; the mean is right on all three.
printf 'item\tgold\tpredicted\tp.neg\tp.pos\n0\tneg\tneg\t0.9\t0.1\n1\tpos\tneg\t0.6\t0.4\n2\tpos\tpos\t0.3\t0.7\n' > "$work/r1/acc/test.predictions.tsv"
printf 'item\tgold\tpredicted\tp.pos\tp.neg\n0\tneg\tpos\t0.6\t0.4\n1\tpos\tpos\t0.9\t0.1\n2\tpos\tneg\t0.45\t0.55\n' > "$work/r2/acc/test.predictions.tsv"
printf 'item\tgold\tpredicted\tp.neg\tp.pos\n0\tneg\tneg\t0.8\t0.2\n1\tpos\tpos\t0.45\t0.55\n2\tpos\tneg\t0.6\t0.4\n' > "$work/r3/acc/test.predictions.tsv"
cp "$work/r3/acc/test.predictions.tsv" "$work/r3/other/"
cp "$work/r1/acc/test.predictions.tsv" "$work/r1/acc/valid.predictions.tsv"

"$rnnflow" ensemble "$work/r1" "$work/r2" "$work/r3/acc/test.predictions.tsv" --out "$work/ens" > "$work/out"
grep -qE "^$work/r1/acc/test.predictions.tsv +0.6667$" "$work/out" || { echo "FAIL: member line"; cat "$work/out"; exit 1; }
grep -qE "^$work/r2/acc/test.predictions.tsv +0.3333$" "$work/out" || { echo "FAIL: member line"; cat "$work/out"; exit 1; }
grep -qE "^ensemble \(mean of 3\) +1.0000$" "$work/out" || { echo "FAIL: ensemble line"; cat "$work/out"; exit 1; }
grep -qF "test (3 items):  accuracy 1  macro_f1 1" "$work/out" || { echo "FAIL: metrics line"; cat "$work/out"; exit 1; }
for f in test.predictions.tsv test.confusion.tsv test.confusion.png test.metrics.tsv members.txt; do
  [ -s "$work/ens/$f" ] || { echo "FAIL: --out did not write $f"; exit 1; }
done
printf 'gold\\predicted\tneg\tpos\nneg\t1\t0\npos\t0\t2\n' | cmp - "$work/ens/test.confusion.tsv"
grep -qx "accuracy	1" "$work/ens/test.metrics.tsv"
[ "$(wc -l < "$work/ens/members.txt")" = 3 ]
# Item 1: p(neg) = (0.6 + 0.1 + 0.45) / 3 = 0.38333334 as a float.
grep -qx "1	pos	pos	0.38333336	0.6166667" "$work/ens/test.predictions.tsv" \
  || grep -qP "^1\tpos\tpos\t0\.383333\d*\t0\.61666\d*$" "$work/ens/test.predictions.tsv" \
  || { echo "FAIL: averaged probabilities"; cat "$work/ens/test.predictions.tsv"; exit 1; }
# The ensemble's own file is a member too; another split by --split.
"$rnnflow" ensemble "$work/ens/test.predictions.tsv" "$work/r1" > /dev/null
expect_fail "r2 has no valid.predictions.tsv in any stage folder" -- "$rnnflow" ensemble "$work/r1" "$work/r2" --split valid
expect_fail "several evaluators wrote test.predictions.tsv (acc, other)" -- "$rnnflow" ensemble "$work/r1" "$work/r3"
"$rnnflow" ensemble "$work/r3" "$work/r1/acc/test.predictions.tsv" --stage other > /dev/null
expect_fail "other/test.predictions.tsv does not exist" -- "$rnnflow" ensemble "$work/r1" "$work/r2" --stage other
expect_fail "two or more members, got 1" -- "$rnnflow" ensemble "$work/r1"
expect_fail "$work/nope: no such run folder or predictions file" -- "$rnnflow" ensemble "$work/r1" "$work/nope"
printf 'item\tgold\tpredicted\n0\tneg\tneg\n1\tpos\tneg\n2\tpos\tpos\n' > "$work/old.tsv"
expect_fail "old.tsv has no class probabilities" -- "$rnnflow" ensemble "$work/r1" "$work/old.tsv"
printf 'item\tgold\tpredicted\tp.neg\tp.pos\n0\tneg\tneg\t0.9\t0.1\n1\tneg\tneg\t0.6\t0.4\n2\tpos\tpos\t0.3\t0.7\n' > "$work/gold.tsv"
expect_fail "item 1 has gold label 'neg'" -- "$rnnflow" ensemble "$work/r1" "$work/gold.tsv"
expect_fail "--out $work/old.tsv is a file, not a folder" -- "$rnnflow" ensemble "$work/r1" "$work/r2" --out "$work/old.tsv"
# A failed ensemble leaves an existing --out folder as it was.
cp -r "$work/ens" "$work/ens.before"
expect_fail "item 1 has gold label" -- "$rnnflow" ensemble "$work/r1" "$work/gold.tsv" --out "$work/ens"
diff -r "$work/ens.before" "$work/ens"
echo "ok"
