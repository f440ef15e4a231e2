#!/usr/bin/env bash
# docs/tutorial.md stays true: its ```bash blocks run in order in a scratch folder laid out like
# the source tree (graphs/, plugins/, build -> the build under test); a ```yaml file=NAME block
# is written to NAME first; the lines of a ```yaml excerpt=FILE block must be in FILE; a command
# annotated `# exits with status N` must exit with N; a ```text output block must appear in the
# output of the bash block before it. `rnnflow run` and `rnnflow sweep` get
# --set train.epochs=2 --set train.max_batches=3 (and no samples): the whole tutorial runs in
# about two minutes on 2 cores.
set -euo pipefail
rnnflow=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); src=$(cd "$2" && pwd)
build=$(dirname "$rnnflow")
if grep -q "^RNNFLOW_SANITIZE:STRING=." "$build/CMakeCache.txt" 2> /dev/null; then
  # Its plug-in section builds against the installed SDK, which cannot load into a sanitized
  # library, and its runs would take minutes there; the normal build runs it.
  echo "SKIP: sanitizer build; the normal build runs the tutorial"
  exit 77
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tree" "$work/home"
cp -r "$src/graphs" "$work/tree/graphs"
mkdir -p "$work/tree/plugins"
cp -r "$src/plugins/highway" "$work/tree/plugins/highway"
ln -s "$build" "$work/tree/build"

# The script: a prelude, then the tutorial's blocks in order.
/usr/bin/python3 - "$src/docs/tutorial.md" "$work/script.sh" "$rnnflow" <<'PY'
import re, shlex, sys
doc, out, exe = sys.argv[1:4]
text = open(doc, encoding="utf-8").read()
blocks = re.findall(r"^```([^\n]*)\n(.*?)^```\s*$", text, re.S | re.M)
lines = [
    "set -euo pipefail",
    "RNNFLOW_BIN=%s" % shlex.quote(exe),
    # The program under test, with short runs.
    "rnnflow() {",
    "  local cmd=${1:-}; shift || true",
    "  case $cmd in",
    "    run|sweep) \"$RNNFLOW_BIN\" \"$cmd\" \"$@\" --set train.epochs=2 --set train.max_batches=3 --set train.sample_length=0 ;;",
    "    *) \"$RNNFLOW_BIN\" \"$cmd\" \"$@\" ;;",
    "  esac",
    "}",
    # Each block's output goes to its log, shown after it, or at once when a command fails.
    "current_log=/dev/null",
    "exec 3>&1  # the test's own output, while a block writes into its log",
    "trap 'cat \"$current_log\" >&3; echo \"FAIL: $BASH_COMMAND\" >&3' ERR",
]
n_bash = n_files = n_outputs = 0
last_log = None
for info, body in blocks:
    words = info.split()
    kind = words[0] if words else ""
    if kind == "yaml" and len(words) > 1 and words[1].startswith("file="):
        name = words[1][5:]
        lines.append("cat > %s <<'RNNFLOW_TUTORIAL_EOF'\n%sRNNFLOW_TUTORIAL_EOF" % (shlex.quote(name), body))
        n_files += 1
    elif kind == "yaml" and len(words) > 1 and words[1].startswith("excerpt="):
        # Shown lines of a shipped file: each (without its comment) must be in that file.
        name = words[1][8:]
        for line in body.splitlines():
            code = line.split("#", 1)[0].rstrip()
            if code.strip():
                lines.append("grep -qF -- %s %s || { echo %s; exit 1; }" % (
                    shlex.quote(code), shlex.quote(name),
                    shlex.quote("FAIL: the tutorial quotes '%s' from %s, which does not have it" % (code, name))))
        n_files += 1
    elif kind == "bash":
        n_bash += 1
        last_log = "block%d.log" % n_bash
        lines.append("current_log=%s; echo \"== block %d ($SECONDS s)\"" % (last_log, n_bash))
        lines.append("{")
        for cmd in body.splitlines():
            m = re.search(r"#\s*exits with status (\d+)\s*$", cmd)
            if m:
                code = m.group(1)
                bare = cmd[:m.start()].rstrip()
                lines.append("  rc=0; %s || rc=$?" % bare)
                lines.append("  [ $rc = %s ] || { cat %s >&3; echo \"FAIL: '%s' exited with $rc, the tutorial says %s\" >&3; exit 1; }"
                             % (code, last_log, bare.replace("'", "").replace('"', ''), code))
            else:
                lines.append("  " + cmd)
        lines.append("} > %s 2>&1" % last_log)
        lines.append("cat %s" % last_log)
    elif kind == "text" and "output" in words[1:]:
        if last_log is None:
            sys.exit("docs/tutorial.md: a ```text output block before any bash block")
        n_outputs += 1
        for want in body.splitlines():
            lines.append("grep -qxF -- %s %s || { echo %s; cat %s; exit 1; }" % (
                shlex.quote(want), last_log,
                shlex.quote("FAIL: the tutorial shows '%s', the command did not print it:" % want), last_log))
if n_bash < 8 or n_files < 2 or n_outputs < 1:
    sys.exit("docs/tutorial.md: expected bash blocks, yaml file= blocks and a text output block (found %d, %d, %d)"
             % (n_bash, n_files, n_outputs))
lines.append("echo \"tutorial: %d bash blocks, %d files, %d outputs checked\"" % (n_bash, n_files, n_outputs))
open(out, "w").write("\n".join(lines) + "\n")
PY

# The plug-in build: Ninja if there is one, a quick debug build of the example (the tutorial's
# command leaves the build type to the project, Release, which compiles slower).
env_vars=(HOME="$work/home" CMAKE_BUILD_TYPE=Debug CXXFLAGS=-O1 CMAKE_BUILD_PARALLEL_LEVEL=2)
command -v ninja > /dev/null && env_vars+=(CMAKE_GENERATOR=Ninja)
start=$(date +%s)
(cd "$work/tree" && env "${env_vars[@]}" bash "$work/script.sh")
# What the tutorial says the commands leave behind.
t=$work/tree
for f in runs/first/report.html runs/first/plots/loss.png runs/gru/resolved.yaml compare.png runs/my_lm/metrics.csv \
         my_lm.dot runs/dates/report.html runs/dates/metrics/test.translations.txt sweeps/cells/results.md sweeps/cells/report.html build-highway/libhighway.so runs/highway/summary.txt \
         "$work/home/rnnflow/share/bash-completion/completions/rnnflow"; do
  case $f in /*) p=$f ;; *) p=$t/$f ;; esac
  [ -s "$p" ] || { echo "FAIL: the tutorial's commands did not leave $f"; exit 1; }
done
ls "$t"/runs/dates/metrics/*.attention_*.png > /dev/null   # the attention maps, drawn as PNG
grep -q 'alt="metrics/[a-z]*.attention_[0-9]*.png"' "$t/runs/dates/report.html"
(cd "$t" && "$rnnflow" compare runs/first runs/gru) | grep -Eq "^  rnn\.type +lstm +gru$" ||
  { echo "FAIL: compare does not show rnn.type lstm/gru"; exit 1; }
[ "$(grep -c '^| [0-9]' "$t/sweeps/cells/results.md")" = 4 ] || { echo "FAIL: not 4 configurations in results.md"; exit 1; }
echo "tutorial: ok in $(( $(date +%s) - start )) s"
