#!/usr/bin/env bash
# Bash completion: installed by `cmake --install` into share/bash-completion/completions/rnnflow;
# sourced, it completes commands, options, option values, stage types, --set paths and files.
set -euo pipefail
rnnflow=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); src=$(cd "$2" && pwd)
build=$(dirname "$rnnflow")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > /dev/null
script="$work/prefix/share/bash-completion/completions/rnnflow"
[ -f "$script" ] || { echo "FAIL: the completion is not installed at $script"; exit 1; }
# shellcheck source=/dev/null
source "$script"
complete -p rnnflow | grep -q -- "-F _rnnflow"

# completions "LINE": what _rnnflow offers for the last word of LINE (a trailing space starts a
# new, empty word), one per line, sorted. The program is the one under test.
completions() {
    local line=$1
    read -r -a COMP_WORDS <<< "$line"
    [[ $line == *" " ]] && COMP_WORDS+=("")
    COMP_WORDS[0]=$rnnflow
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMP_LINE=$line; COMP_POINT=${#line}
    COMPREPLY=()
    _rnnflow
    printf '%s\n' "${COMPREPLY[@]}" | sort
}
expect() {  # expect "LINE" WORD...: each WORD is offered
    local line=$1 got w; shift
    got=$(completions "$line")
    for w in "$@"; do
        grep -qxF -- "$w" <<< "$got" || { echo "FAIL: '$line<TAB>' does not offer '$w'; got:"; echo "$got"; exit 1; }
    done
}
expect_only() {  # expect_only "LINE" WORD...: exactly these
    local line=$1 got want; shift
    got=$(completions "$line")
    want=$(printf '%s\n' "$@" | sort)
    [ "$got" = "$want" ] || { echo "FAIL: '$line<TAB>' offers:"; echo "$got"; echo "expected:"; echo "$want"; exit 1; }
}

cd "$src"
expect "rnnflow " run validate graph stages generate schema new-stage sweep report compare runs vectors ensemble score
expect_only "rnnflow rep" report
expect_only "rnnflow run --q" --quiet
expect "rnnflow run --" --set --out --threads --log-format --plugin --help
if completions "rnnflow run --" | grep -qx -- "--file"; then echo "FAIL: --file (the positional argument) offered"; exit 1; fi
expect_only "rnnflow run graphs/char_lm.yaml --log-format " json text
expect_only "rnnflow sweep --par" --parallel
expect "rnnflow compare --" --plot --out
expect "rnnflow runs --" --sort --experiment --format --html --reverse
expect_only "rnnflow runs --format " json text tsv
expect_only "rnnflow runs --sort best" best_epoch best_valid
expect "rnnflow stages " lstm gru rnn embedding sampler
expect_only "rnnflow stages ls" lstm
expect_only "rnnflow run graphs/char_l" graphs/char_lm.yaml
expect "rnnflow run gr" graphs
# --set: the graph's stage ids (and train., vars., seed=), then stage types after `.type=`.
expect "rnnflow run graphs/char_lm.yaml --set " rnn. embed. optim. train. vars. seed=
expect_only "rnnflow run graphs/char_lm.yaml --set op" optim.
expect_only "rnnflow validate graphs/char_lm.yaml -s rnn.type=g" rnn.type=gru
# Folders for the commands that read run folders.
mkdir -p "$work/runs/a1" "$work/runs/a2"
expect_only "rnnflow report $work/runs/a" "$work/runs/a1" "$work/runs/a2"
expect_only "rnnflow compare $work/runs/a1 $work/runs/a" "$work/runs/a1" "$work/runs/a2"
expect_only "rnnflow vectors $work/runs/a" "$work/runs/a1" "$work/runs/a2"
expect "rnnflow vectors --" --stage --out --checkpoint --neighbours
expect_only "rnnflow vectors $work/runs/a1 --neighbours " ""
expect_only "rnnflow ensemble --" --help --out --split --stage
touch "$work/runs/a1.tsv" "$work/runs/a1.txt"
expect_only "rnnflow ensemble $work/runs/a" "$work/runs/a1" "$work/runs/a1.tsv" "$work/runs/a2"
# score: a run folder, then a text file (any name); --next and --top-p take a number to type.
expect_only "rnnflow score $work/runs/a1 $work/runs/a1." "$work/runs/a1.tsv" "$work/runs/a1.txt"
expect "rnnflow score --" --next --carry --checkpoint
expect_only "rnnflow score $work/runs/a1 --next " ""
expect "rnnflow generate --" --top-p --top-k
expect_only "rnnflow generate $work/runs/a1 --top-p " ""
# vectors --stage: the embedding stages of the run folder's resolved.yaml.
printf 'stages:\n  words: {type: embedding, in: batch.ids, dim: 4}\n  rnn: {type: lstm, in: words, hidden: 4}\n  chars: {type: embedding, in: batch.chars, dim: 4}\ntrain: {epochs: 1}\n' > "$work/runs/a1/resolved.yaml"
expect_only "rnnflow vectors $work/runs/a1 --stage " chars words
expect_only "rnnflow vectors --out x.txt $work/runs/a1 --stage w" words
echo "completion: ok"
