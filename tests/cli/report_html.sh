#!/usr/bin/env bash
# `rnnflow report` pages open in headless Chromium without errors and with every figure decoded;
# they load nothing from the network; the sweep tables sort. `rnnflow compare` on two runs.
set -euo pipefail
rnnflow=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); src=$(cd "$2" && pwd)
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "SKIP: chromium is not installed (scripts/install-deps.sh installs it; Debian package chromium)"
  exit 77
fi
py=/usr/bin/python3
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
small=(--set train.epochs=2 --set train.max_batches=3 --set rnn.hidden=16 --set rnn.layers=1
       --set embed.dim=8 --set train.sample_length=40 --quiet)

# Two tiny runs that differ in the cell; a stage's figure and text output in a stage folder.
"$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/lstm" "${small[@]}" > /dev/null
"$rnnflow" run "$src/graphs/char_lm.yaml" --out "$work/gru" "${small[@]}" --set rnn.type=gru --set optim.lr=0.004 > /dev/null
mkdir -p "$work/lstm/attention"
cp "$work/lstm/plots/loss.png" "$work/lstm/attention/step_0001.png"
printf 'source → target\n2019-03-01 → 1 März 2019\n' > "$work/lstm/attention/translations.txt"
# A tiny sweep.
printf 'sweep: tiny\ngraph: %s\nset: {train.epochs: 2, train.max_batches: 2, train.test: false, rnn.hidden: 16, train.sample_length: 0}\ngrid: {optim.lr: [0.01, 0.02, 0.005]}\nobjective: {metric: ppl}\n' \
  "$src/graphs/char_lm.yaml" > "$work/tiny.yaml"
"$rnnflow" sweep "$work/tiny.yaml" --out "$work/sw" --quiet > /dev/null

"$rnnflow" report "$work/lstm" | grep -qF "wrote $work/lstm/report.html"
"$rnnflow" report "$work/sw" --out "$work/sweep.html" > /dev/null
PATH=/nonexistent "$rnnflow" report "$work/gru" --out "$work/gru-nodot.html" > /dev/null  # no Graphviz: DOT text
grep -q "Graphviz <code>dot</code> is not installed" "$work/gru-nodot.html"
if command -v dot > /dev/null; then grep -q 'src="data:image/svg+xml;base64,' "$work/lstm/report.html"; fi

# Nothing is fetched: no URL in any src or href (data URIs and #anchors only).
for page in "$work/lstm/report.html" "$work/sweep.html" "$work/gru-nodot.html"; do
  if grep -Eo '(src|href)="[^"#][^"]{0,20}' "$page" | grep -v '"data:'; then
    echo "FAIL: $page refers to a resource outside the page"; exit 1
  fi
done

# check.py BROWSER PAGE MIN_IMAGES [SORT_TABLE_ID]: loads a copy of PAGE with a probe script placed first
# in <head> (it records errors and console.error calls, and after load every image's decoded
# size, where a run's headline ends against the window's height (it must be on the first
# screen), and optionally sorts a table by clicking its headers), in headless Chromium with every
# host name unresolvable, then reads the probe's result from the dumped DOM.
cat > "$work/check.py" <<'PY'
import html, json, os, re, subprocess, sys
browser, page, min_images = sys.argv[1], sys.argv[2], int(sys.argv[3])
table = sys.argv[4] if len(sys.argv) > 4 else ""
probe = r"""<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  __errors.push(e.message || ('failed to load ' + (e.target && (e.target.src || e.target.href) || '?').slice(0, 60)));
}, true);
var __consoleError = console.error;
console.error = function () { __errors.push('console.error: ' + Array.prototype.join.call(arguments, ' ')); __consoleError.apply(console, arguments); };
window.addEventListener('load', function () {
  var result = {errors: __errors, images: [], sorted: null};
  Array.prototype.forEach.call(document.images, function (img) {
    result.images.push({alt: img.alt, w: img.naturalWidth, h: img.naturalHeight, complete: img.complete});
  });
  var headline = document.getElementById('headline');
  if (headline) result.headline = {bottom: headline.getBoundingClientRect().bottom, height: window.innerHeight,
                                   text: headline.textContent};
  var t = document.getElementById('TABLE');
  if (t) {
    var col = function (i) { return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return r.cells[i].textContent; }); };
    var head = t.tHead.rows[0].cells, objective = -1;
    Array.prototype.forEach.call(head, function (th, i) { if (/_mean$/.test(th.textContent)) objective = i; });
    head[1].click();          var byConfig = col(1), arrow = head[1].getAttribute('aria-sort');
    head[objective].click();  var up = col(objective);
    head[objective].click();  var down = col(objective);
    result.sorted = {up: up, down: down, byConfig: byConfig, arrow: arrow};
  }
  var pre = document.createElement('pre');
  pre.id = 'rnnflow-probe';
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>""".replace("TABLE", table)
text = open(page, encoding="utf-8").read()
probed = page + ".probe.html"
open(probed, "w", encoding="utf-8").write(text.replace("<head>", "<head>" + probe, 1))
cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
       "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000", "--dump-dom",
       "file://" + os.path.abspath(probed)]
out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=180).stdout.decode("utf-8", "replace")
m = re.search(r'<pre id="rnnflow-probe">(.*?)</pre>', out, re.S)
if not m:
    print("FAIL: the page did not finish loading in Chromium:", page); print(out[-2000:]); sys.exit(1)
r = json.loads(html.unescape(m.group(1)))
if r["errors"]: print("FAIL: errors in", page, r["errors"]); sys.exit(1)
bad = [i for i in r["images"] if not (i["complete"] and i["w"] > 0 and i["h"] > 0)]
if bad: print("FAIL: images not decoded in", page, bad); sys.exit(1)
if 'id="curves"' in text:  # a run's page: its headline is on the first screen
    h = r.get("headline")
    if not h: print("FAIL: no headline in", page); sys.exit(1)
    if h["bottom"] > h["height"]:
        print("FAIL: the headline ends at %dpx, below the first screen (%dpx) in %s" % (h["bottom"], h["height"], page)); sys.exit(1)
    if "finished" not in h["text"] or "best valid" not in h["text"] or "wall time" not in h["text"]:
        print("FAIL: the headline of", page, "reads", h["text"]); sys.exit(1)
if len(r["images"]) < min_images:
    print("FAIL: %d images in %s, expected at least %d" % (len(r["images"]), page, min_images)); sys.exit(1)
if table:
    s = r["sorted"]
    if not s: print("FAIL: no table", table); sys.exit(1)
    up = [float(v) for v in s["up"]]; down = [float(v) for v in s["down"]]
    if up != sorted(up) or down != sorted(up, reverse=True):
        print("FAIL: clicking the objective column does not sort it:", s); sys.exit(1)
    if [int(v) for v in s["byConfig"]] != sorted(int(v) for v in s["byConfig"]) or s["arrow"] != "ascending":
        print("FAIL: sorting by config:", s); sys.exit(1)
h = r.get("headline")
print("%s: %d images decoded, no errors%s" % (page.rsplit("/", 1)[-1], len(r["images"]),
      ", headline on the first screen (%d of %dpx)" % (h["bottom"], h["height"]) if h else ""))
PY
# A run: 4 curves + the graph (SVG, when dot is installed) + the stage's figure.
min_run=5; command -v dot > /dev/null && min_run=6
"$py" "$work/check.py" "$browser" "$work/lstm/report.html" "$min_run"
"$py" "$work/check.py" "$browser" "$work/gru-nodot.html" 4
# A sweep: the objective plot; its results table sorts.
"$py" "$work/check.py" "$browser" "$work/sweep.html" 1 results-table
grep -q "1 März 2019" "$work/lstm/report.html"

# compare: the table, the differences of the configurations, the plot.
(cd "$work" && "$rnnflow" compare lstm gru > compare.out)
grep -q "^ppl on valid (lower is better)" "$work/compare.out"
grep -Eq "^  rnn\.type +lstm +gru$" "$work/compare.out" || { cat "$work/compare.out"; exit 1; }
grep -Eq "^  optim\.lr +" "$work/compare.out"
grep -q "plot: compare.png" "$work/compare.out"
[ "$(head -c 4 "$work/compare.png" | tail -c 3)" = PNG ]
"$rnnflow" compare "$work/lstm" "$work/gru" --out "$work/cmp" > /dev/null
[ -s "$work/cmp/compare.txt" ] && [ "$(head -c 4 "$work/cmp/compare.png" | tail -c 3)" = PNG ]
if "$rnnflow" compare "$work/lstm" 2> "$work/err"; then exit 1; fi
grep -q "at least two run folders" "$work/err"
echo "report and compare: ok"
