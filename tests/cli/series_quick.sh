#!/usr/bin/env bash
# Numeric series through the real program: series (a generated CSV: a date column, a load to
# forecast, a temperature feature) -> frame_batches -> lstm -> linear -> regression_loss -> adam,
# series_metrics with the repeat-the-last-value baseline (tests/cli/series_quick.yaml). The load
# swings by a large step every row, so repeating the last value is poor and a few epochs beat it.
# Checked: metrics finite and in the file's units, the model beating the baseline on test, the
# normalisation fitted on the training rows only and saved, the forecast CSV (one line per test
# row, in time order) and PNG, `rnnflow eval` on the run folder giving the same test numbers;
# graphs/series_forecast.yaml (generated Mackey-Glass) at toy size, its autoregressive rollouts
# (rnnflow generate), and killed and resumed to the same numbers; malformed CSV stops with file:line:column and exit status 2.
set -euo pipefail
rnnflow=$1; src=$2
work=${KEEP_WORK:-$(mktemp -d)}; [ -n "${KEEP_WORK:-}" ] || trap 'rm -rf "$work"' EXIT
export OMP_WAIT_POLICY=passive
# 400 rows: load = 500 + 200 sin(2π t / 6) + 30 sin(2π t / 37) + 2 temp, temp a slow wave.
/usr/bin/python3 - "$work" <<'PY'
import math, sys
with open(sys.argv[1] + "/load.csv", "w") as f:
    f.write("date,load,temp\n")
    for t in range(400):
        temp = 10 + 5 * math.sin(2 * math.pi * t / 90)
        load = 500 + 200 * math.sin(2 * math.pi * t / 6) + 30 * math.sin(2 * math.pi * t / 37) + 2 * temp
        f.write("d%03d,%.4f,%.3f\n" % (t, load, temp))
PY
"$rnnflow" run "$src/tests/cli/series_quick.yaml" --set "vars.data=$work" --out "$work/run" --quiet > "$work/out.txt"
/usr/bin/python3 - "$work" <<'PY'
import csv, json, math, sys
work = sys.argv[1]
rows = [json.loads(l) for l in open(work + "/run/metrics.jsonl") if l.strip()]
valid = [r for r in rows if r["split"] == "valid"]
test = [r for r in rows if r["split"] == "test"]
assert len(valid) == 12 and len(test) == 1, rows
for r in valid + test:
    for k in ("forecast", "forecast.mse", "forecast.mae", "forecast.baseline_rmse", "forecast.skill", "loss"):
        assert math.isfinite(r[k]), (k, r)
    assert abs(r["forecast"] ** 2 - r["forecast.mse"]) < 1e-9 * max(1, r["forecast.mse"]), r
t = test[0]
assert t["forecast.steps"] == 60, t                      # every test row, context not counted
# Repeating the last value is off by about 200 · 2 sin(π/6) = 200 load units.
assert 120 < t["forecast.baseline_rmse"] < 260, t
assert t["forecast"] < 0.5 * t["forecast.baseline_rmse"], t
# The normalisation: fitted on the 280 training rows only (400 - 60 valid - 60 test).
data = list(csv.DictReader(open(work + "/load.csv")))
train = [float(r["load"]) for r in data[:280]]
mean = sum(train) / len(train)
sd = math.sqrt(sum((x - mean) ** 2 for x in train) / len(train))
norm = [l.rstrip("\n").split("\t") for l in open(work + "/run/state/series/normalization.tsv")]
assert [n[0] for n in norm] == ["load", "temp"], norm
assert abs(float(norm[0][1]) - mean) < 1e-9 * abs(mean) and abs(float(norm[0][2]) - sd) < 1e-9 * sd, (norm, mean, sd)
# Metrics in the file's units: the mse is the normalised mse times the scale squared.
assert abs(t["forecast.mse"] - t["forecast.normalized_mse"] * sd * sd) < 1e-6 * t["forecast.mse"], t
# The forecast file: the last 60 rows in time order, truth as in the file.
fc = list(csv.DictReader(open(work + "/run/forecast/test.forecast.csv")))
assert [r["time"] for r in fc] == [r["date"] for r in data[340:]], fc[:3]
for r, d in zip(fc, data[340:]):
    assert abs(float(r["load"]) - float(d["load"])) < 1e-3, (r, d)
se = sum((float(r["load.forecast"]) - float(r["load"])) ** 2 for r in fc) / len(fc)
assert abs(math.sqrt(se) - t["forecast"]) < 1e-3 * t["forecast"], (se, t)
print("test RMSE %.2f (baseline %.2f), skill %.3f" % (t["forecast"], t["forecast.baseline_rmse"], t["forecast.skill"]))
PY
[ -s "$work/run/forecast/test.forecast.png" ] || { echo "no forecast plot"; exit 1; }
# rnnflow eval reads the data again with the saved normalisation: the same test numbers.
"$rnnflow" eval "$work/run" --quiet --log-format json > "$work/eval.json"
/usr/bin/python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
t = [json.loads(l) for l in open(work + "/run/metrics.jsonl") if l.strip() and json.loads(l)["split"] == "test"][0]
e = json.load(open(work + "/eval.json"))
m = e.get("metrics", e)
assert abs(m["forecast"] - t["forecast"]) < 1e-6 * t["forecast"], (m, t)
PY

# The shipped graph at toy size: generated Mackey-Glass, a few epochs.
"$rnnflow" run "$src/graphs/series_forecast.yaml" --set series.length=400 --set series.context=10 \
  --set rnn.hidden=8 --set train.epochs=2 --out "$work/mg" --quiet > /dev/null
grep -q '"split":"test"' "$work/mg/metrics.jsonl"
[ -s "$work/mg/forecast/test.forecast.csv" ] || { echo "no Mackey-Glass forecast"; exit 1; }
# Autoregressive rollouts of 5 steps over its test span (series_rollout through rnnflow generate).
"$rnnflow" generate "$work/mg" --prime-from test:0 -n 5 --out "$work/mg/rollout" > "$work/rollout.txt"
grep -q "^rollouts of 5 steps from 10 origins: RMSE at step 1 " "$work/rollout.txt" || { cat "$work/rollout.txt"; exit 1; }
[ "$(wc -l < "$work/mg/rollout.by_step.csv")" = 6 ] && [ "$(wc -l < "$work/mg/rollout.csv")" = 51 ] \
  && [ -s "$work/mg/rollout.png" ] || { echo "rollout files missing or short"; exit 1; }

# Killed mid-training and resumed: the resumed run refits the same normalisation (checked by the
# engine) and ends with the same metrics, forecasts and checkpoints as the uninterrupted run.
. "$src/tests/support/kill_resume.sh"
scratch=$work; work=$scratch/resume; mkdir -p "$work"
graph=$src/graphs/series_forecast.yaml
opts=(--quiet --threads 1 --set series.length=400 --set series.context=10 --set rnn.hidden=8
      --set batches.batch=1 --set train.epochs=3 --set train.checkpoint_every=3)
reference
kill_and_resume kill7 kill@batch:7           # epoch 2, after the checkpoint at batch 6
work=$scratch

bad=0
expect_bad() {  # expect_bad CSV PATTERN: the run stops with exit 2 and the message
    printf '%s' "$1" > "$work/load.csv"
    status=0; bad=$((bad + 1))
    "$rnnflow" run "$src/tests/cli/series_quick.yaml" --set "vars.data=$work" --out "$work/bad$bad" --quiet \
      > /dev/null 2> "$work/bad.err" || status=$?
    [ "$status" = 2 ] || { cat "$work/bad.err"; echo "exit $status, expected 2"; exit 1; }
    grep -q "$2" "$work/bad.err" || { cat "$work/bad.err"; echo "expected: $2"; exit 1; }
}
expect_bad $'date,load,temp\nd0,1,2\nd1,x,2\n' 'load.csv:3:4: column .load.: .x. is not a number'
expect_bad $'date,load,temp\nd0,1,2\nd1,1\n' 'load.csv:3:5: 2 fields, the header has 3'
expect_bad $'date,power,temp\nd0,1,2\n' "load.csv:1:1: no column 'load' in the header"
expect_bad '' 'load.csv: empty file'
expect_bad $'date,load,temp\nd0,nan,2\n' 'load.csv:2:4: column .load.: nan is not finite'
echo "series: CSV -> LSTM beats repeating the last value; normalisation train-only and saved; bad CSV located"
