#!/usr/bin/env bash
# Every graph the project ships loads and compiles; `graph --dot` draws it.
set -euo pipefail
rnnflow=$1; src=$2
for g in "$src"/graphs/*.yaml; do
  "$rnnflow" validate "$g"
  "$rnnflow" graph "$g" --dot | grep -q "digraph"
done
"$rnnflow" stages | grep -q "^lstm"
"$rnnflow" stages lstm | grep -q "layers"
