#!/usr/bin/env bash
# The bad-input catalogue (tests/bad_inputs/manifest.tsv): every malformed data file, checkpoint,
# sweep file and graph file gives its exact error line and exit status -- a message, never a
# crash. Each manifest line is
#   CASE <TAB> EXIT <TAB> RNNFLOW ARGUMENTS <TAB> EXPECTED
# CASE is a file under tests/bad_inputs/ (or an absolute path such as /dev/zero); in ARGUMENTS
# and EXPECTED, {file} is the case's absolute path, {bad} tests/bad_inputs/ and {tmp} a fresh
# folder. EXPECTED is the first output line containing "error:" (leading spaces dropped).
# Arguments are split at spaces before the placeholders are filled, so paths may hold spaces.
# `# support: FILE ...` lines name the files that are not cases themselves; every other file in
# the case folders must have a manifest line.
#   bash tests/cli/bad_inputs.sh RNNFLOW SRC [--print]   (--print: show each case's actual line)
set -uo pipefail
rnnflow=$(realpath "$1"); src=$(realpath "$2"); print=${3:-}
bad="$src/tests/bad_inputs"
manifest="$bad/manifest.tsv"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT

declare -A listed
failures=0; cases=0
while IFS= read -r line || [ -n "$line" ]; do
  if [[ "$line" == "# support:"* ]]; then
    for f in ${line#"# support:"}; do listed[$f]=1; done
    continue
  fi
  [[ -z "$line" || "$line" == \#* ]] && continue
  IFS=$'\t' read -r case code args expect <<< "$line"
  if [ -z "$expect" ] && [ -z "$print" ]; then echo "manifest: malformed line: $line"; failures=$((failures + 1)); continue; fi
  listed[$case]=1
  cases=$((cases + 1))
  file=$case; [[ "$case" == /* ]] || file="$bad/$case"
  tmp="$work/$cases"; mkdir -p "$tmp"
  fill() { local s=$1; s=${s//\{file\}/$file}; s=${s//\{bad\}/$bad}; s=${s//\{tmp\}/$tmp}; printf '%s' "$s"; }
  read -ra words <<< "$args"
  argv=()
  for w in "${words[@]}"; do argv+=("$(fill "$w")"); done
  want=$(fill "$expect")
  ( cd "$tmp" && exec "$rnnflow" "${argv[@]}" ) > "$tmp/out" 2>&1 < /dev/null
  got_code=$?
  got=$(grep -m1 'error:' "$tmp/out" | sed 's/^ *//')
  if [ -n "$print" ]; then
    printf '%s\t%s\t%s\n' "$case" "$got_code" "$got"
    continue
  fi
  if [ "$got_code" != "$code" ] || [ "$got" != "$want" ]; then
    failures=$((failures + 1))
    echo "FAIL $case: rnnflow ${argv[*]}"
    echo "  exit $got_code (expected $code)"
    echo "  got:      $got"
    echo "  expected: $want"
    sed 's/^/  | /' "$tmp/out" | head -5
  fi
done < "$manifest"

# Every file in a case folder is a case or named as support.
for dir in data checkpoints sweeps graphs runs; do
  while IFS= read -r -d '' f; do
    rel=${f#"$bad/"}
    top=$(cut -d/ -f1-2 <<< "$rel")  # a case that is a folder: data/a_directory
    if [ -z "${listed[$rel]:-}" ] && [ -z "${listed[$top]:-}" ]; then
      echo "FAIL $rel: in tests/bad_inputs/$dir but not in manifest.tsv"
      failures=$((failures + 1))
    fi
  done < <(find "$bad/$dir" -type f -print0)
done

[ -n "$print" ] && exit 0
graphs=$(find "$bad" -maxdepth 1 -name 'graph_*.yaml' | wc -l)
echo "$cases catalogue cases ($failures failed); $graphs more graph_*.yaml files checked by bad_inputs_test.cpp"
[ "$failures" = 0 ]
