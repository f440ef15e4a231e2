#!/usr/bin/env bash
# `rnnflow schema` is a valid JSON Schema, accepts every graph the project ships and rejects a
# broken one (the checks need python3 with PyYAML and jsonschema: Debian python3-yaml,
# python3-jsonschema, installed by scripts/install-deps.sh).
set -euo pipefail
rnnflow=$1; src=$2
py=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" > /dev/null && "$p" -c "import yaml, jsonschema" 2> /dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
  echo "SKIP: no python3 with yaml and jsonschema (apt-get install python3-yaml python3-jsonschema)"
  exit 77
fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$rnnflow" schema > "$work/schema.json"
printf 'stages:\n  rnn: {type: lstm, in: embed, layers: 0, hiden: 3}\n' > "$work/bad.yaml"
"$py" - "$work/schema.json" "$work/bad.yaml" "$src"/graphs/*.yaml <<'PY'
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)
bad = [e.message for e in v.iter_errors(yaml.safe_load(open(sys.argv[2])))]
assert any("'hiden' was unexpected" in m for m in bad), bad
assert len(bad) >= 2, bad  # layers: 0 is out of range too
for g in sys.argv[3:]:
    errors = [e.message for e in v.iter_errors(yaml.safe_load(open(g)))]
    assert not errors, (g, errors[:3])
print("schema: ok,", len(sys.argv) - 3, "graphs valid")
PY
