#!/usr/bin/env bash
# Progress of `rnnflow run` and `rnnflow sweep` in their forms: a bar redrawn in place on a
# terminal (a pseudo-terminal 120 columns wide, from python3's pty module), plain lines when
# standard error is a file, JSON lines with --log-format json; and nothing with --quiet.
set -euo pipefail
rnnflow=$1; src=$(cd "$2" && pwd)
py=/usr/bin/python3
[ -x "$py" ] || { echo "SKIP: $py is needed to emulate a terminal"; exit 77; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
small=(--set train.epochs=2 --set train.max_batches=6 --set rnn.hidden=32 --set rnn.layers=1
       --set embed.dim=16 --set train.sample_length=0 --set train.test=false)

# pty_run.py OUT COMMAND...: runs COMMAND with standard error on a pseudo-terminal of 120 columns;
# what the terminal received goes to OUT.err, standard output to OUT.out; exits with its status.
cat > "$work/pty_run.py" <<'PY'
import fcntl, os, pty, struct, subprocess, sys, termios
out, cmd = sys.argv[1], sys.argv[2:]
master, slave = pty.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
os.close(slave)
err = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:  # EIO: the child closed the terminal
        break
    if not chunk:
        break
    err += chunk
open(out + ".out", "wb").write(p.communicate()[0])
open(out + ".err", "wb").write(err)
sys.exit(p.returncode)
PY

# 1. A terminal: \r-redrawn bar lines, erased to the end of the line, never wider than the terminal.
"$py" "$work/pty_run.py" "$work/tty" "$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/tty" "${small[@]}"
"$py" - "$work/tty" <<'PY'
import sys
text = open(sys.argv[1] + ".err", encoding="utf-8", errors="replace", newline="").read()
stdout = open(sys.argv[1] + ".out").read()
def fail(msg):
    print("FAIL (terminal):", msg); print(repr(text[:3000])); sys.exit(1)
if "done in" not in stdout: fail("no final line on stdout: " + stdout)
bars = [seg for seg in text.replace("\r\n", "\n").split("\r") if seg.startswith("train epoch")]
if not bars: fail("no bar redrawn with \\r")
if "\x1b[K" not in text: fail("the bar does not erase the rest of its line")
if not any("[====================] 6/6" in b for b in bars): fail("no full bar at 6/6")
if not any("epoch 2/2" in b for b in bars): fail("the bar does not show epoch 2/2")
if not any("tok/s" in b and "ETA" in b and "loss" in b for b in bars): fail("bar without loss, rate or ETA")
# After the first validation the bar shows the main metric of the validation split.
if not any("ppl.valid" in b for b in bars if "epoch 2/2" in b): fail("no ppl.valid in the second epoch's bar")
for seg in text.replace("\x1b[K", "").replace("\r", "\n").split("\n"):
    # bars only: the metrics lines are ordinary lines and may wrap
    if seg.startswith(("train", "valid")) and len(seg) >= 120:
        fail("a line of %d characters on a 120-column terminal: %r" % (len(seg), seg))
if "batch 3/6" in text: fail("plain log lines on a terminal")
if "epoch 1 train loss=" not in text or "epoch 1 valid loss=" not in text: fail("no metrics lines")
print("terminal: %d bar redraws" % len(bars))
PY

# 2. Not a terminal: plain lines, no control characters.
"$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/plain" "${small[@]}" --set train.log_every=2 \
  > "$work/plain.out" 2> "$work/plain.err"
grep -q "^run folder: $work/plain" "$work/plain.err"
for want in "train epoch 1/2 batch 2/6 loss" "train epoch 2/2 batch 6/6 loss" "valid epoch 2/2 batch" \
            "epoch 1 train loss=" "epoch 2 valid loss="; do
  grep -qF "$want" "$work/plain.err" || { echo "FAIL (plain): no '$want'"; cat "$work/plain.err"; exit 1; }
done
grep -q "tok/s eta " "$work/plain.err"
if grep -q $'[\r\x1b]' "$work/plain.err"; then echo "FAIL (plain): control characters in a file"; exit 1; fi
[ "$(grep -c '^train epoch 1/2 batch' "$work/plain.err")" = 3 ]   # log_every=2: batches 2, 4, 6

# 3. JSON lines: every line of standard error is one JSON object.
"$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/json" "${small[@]}" --log-format json \
  > /dev/null 2> "$work/json.err"
"$py" - "$work/json.err" <<'PY'
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
kinds = {e["event"] for e in events}
assert {"start", "progress", "metrics"} <= kinds, kinds
prog = [e for e in events if e["event"] == "progress"]
assert all(e["epochs"] == 2 and "loss" in e and "eta_seconds" in e for e in prog), prog[:3]
assert all(e["batches"] == 6 for e in prog if e["phase"] == "train"), prog[:3]
assert any(e["phase"] == "valid" for e in prog)
metrics = [e for e in events if e["event"] == "metrics"]
assert [(m["epoch"], m["split"]) for m in metrics] == [(1, "train"), (1, "valid"), (2, "train"), (2, "valid")], metrics
print("json: %d events" % len(events))
PY

# 4. --quiet: nothing at all on success; with --headline, the result on one line of standard output.
"$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/quiet" "${small[@]}" --quiet > "$work/quiet.out" 2> "$work/quiet.err"
[ ! -s "$work/quiet.err" ] || { echo "FAIL (quiet): stderr not empty"; cat "$work/quiet.err"; exit 1; }
[ ! -s "$work/quiet.out" ] || { echo "FAIL (quiet): stdout not empty"; cat "$work/quiet.out"; exit 1; }
"$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/quiet1" "${small[@]}" --quiet --headline > "$work/quiet.out" 2> "$work/quiet.err"
[ ! -s "$work/quiet.err" ] || { echo "FAIL (quiet --headline): stderr not empty"; cat "$work/quiet.err"; exit 1; }
[ "$(wc -l < "$work/quiet.out")" = 1 ] || { echo "FAIL (quiet --headline): not one line"; cat "$work/quiet.out"; exit 1; }
# (no test split here: train.test is false)
grep -Eq "^best valid ppl[.a-z]*=[0-9.]+ at epoch [12] \| done in [0-9.]+ s, [0-9]+ items/s \| [0-9]+ parameters$" "$work/quiet.out" \
  || { echo "FAIL (quiet --headline): unexpected line"; cat "$work/quiet.out"; exit 1; }

# A bad --log-format is refused before any work.
if "$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/bad" --log-format xml 2> "$work/bad.err"; then exit 1; fi
grep -q "log-format must be text or json" "$work/bad.err"
[ ! -e "$work/bad" ]

# 5. A sweep: on a terminal, event lines above a bar of finished trials; JSON lines otherwise.
printf 'sweep: tiny\ngraph: %s\nset: {train.epochs: 1, train.max_batches: 2, train.test: false, rnn.hidden: 16, train.sample_length: 0}\ngrid: {optim.lr: [0.01, 0.02]}\nobjective: {metric: ppl}\n' \
  "$src/graphs/char_lm.yaml" > "$work/tiny.yaml"
"$py" "$work/pty_run.py" "$work/sweep_tty" "$rnnflow" sweep "$work/tiny.yaml" --out "$work/sw1" --parallel 1
"$py" - "$work/sweep_tty.err" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8", errors="replace", newline="").read()
def fail(msg):
    print("FAIL (sweep, terminal):", msg); print(repr(text[:3000])); sys.exit(1)
import re
if not re.search(r"(^|\r\x1b\[K|\n)sweep tiny: trial 1 started on thread 0\r\n", text): fail("no event line above the bar")
bars = [seg for seg in text.replace("\x1b[K", "").split("\r") if seg.startswith("sweep tiny [")]
if not any("] 2/2 | 0 running | best ppl " in b for b in bars): fail("no final bar with the best trial")
if not text.endswith("\r\x1b[K"): fail("the bar is not cleared at the end")
print("sweep terminal: %d bar redraws" % len(bars))
PY
"$rnnflow" sweep "$work/tiny.yaml" --out "$work/sw2" --log-format json --set rnn.layers=2 > /dev/null 2> "$work/sweep.json"
grep -q "'rnn.layers=2'" "$work/sw2/trials/0001/command.txt"   # --set reaches every trial
"$py" - "$work/sweep.json" <<'PY'
import json, sys
events = [json.loads(line) for line in open(sys.argv[1])]
assert events[0]["event"] == "start" and events[0]["trials"] == 2, events[0]
trials = [e for e in events if e["event"] == "trial"]
assert trials[-1]["finished"] == 2 and trials[-1]["done"] == 2 and trials[-1]["best_trial"] in (1, 2), trials[-1]
PY
echo "progress: ok"
