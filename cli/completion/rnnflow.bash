# Bash completion for rnnflow. Installed as <prefix>/share/bash-completion/completions/rnnflow
# (bash-completion loads it on first use); or `source cli/completion/rnnflow.bash`.
#
# Commands and each command's options come from the program itself (`rnnflow --help`,
# `rnnflow CMD --help`), stage types from `rnnflow stages --list`, so they never go stale; the
# answers are cached for the shell session. `--set` completes the stage ids of the graph file
# on the command line (and `stage.type=` the stage types).

# -g: bash-completion sources this file inside a function; the cache must outlive it.
declare -gA _rnnflow_cache 2>/dev/null || declare -A _rnnflow_cache

_rnnflow_cache_get() {  # _rnnflow_cache_get KEY COMMAND...: the command's output, cached by KEY
    local key=$1; shift
    if [[ -z ${_rnnflow_cache[$key]+set} ]]; then
        _rnnflow_cache[$key]=$("$@" 2>/dev/null)
    fi
    printf '%s' "${_rnnflow_cache[$key]}"
}

_rnnflow_commands() {  # the words under "commands:" in `rnnflow --help`
    _rnnflow_cache_get "commands:$1" "$1" --help |
        awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }'
}

_rnnflow_options() {  # the long options of `rnnflow CMD --help`, without positional holders
    _rnnflow_cache_get "options:$1:$2" "$1" "$2" --help |
        grep -oE -- '--[a-z][a-z0-9-]*' | sort -u | grep -vxE -- '--(file|dir|run|type|name)'
}

_rnnflow_stage_types() {
    _rnnflow_cache_get "types:$1" "$1" stages --list
}

_rnnflow_graph_stages() {  # stage ids of a graph file: the keys of its `stages:` mapping
    [[ -r $1 ]] || return
    awk '/^stages:/ { on = 1; next }
         on && /^[^ #]/ { on = 0 }
         on && match($0, /^  [A-Za-z_][A-Za-z0-9_]*:/) { print substr($0, 3, RLENGTH - 3) }' "$1"
}

_rnnflow_embedding_stages() {  # ids of a graph's stages of type embedding (one line each, as resolved.yaml writes them)
    [[ -r $1 ]] || return
    awk '/^stages:/ { on = 1; next }
         on && /^[^ #]/ { on = 0 }
         on && /type: *embedding[,} ]/ && match($0, /^  [A-Za-z_][A-Za-z0-9_]*:/) { print substr($0, 3, RLENGTH - 3) }' "$1"
}

_rnnflow_files() {  # _rnnflow_files CUR [EXT...]: files with those extensions (any without), and folders
    local cur=$1 ext; shift
    if (( $# == 0 )); then
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    else
        COMPREPLY=()
        for ext in "$@"; do mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -X "!*.$ext" -- "$cur"); done
        mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -d -- "$cur")
    fi
    compopt -o filenames 2>/dev/null
}

_rnnflow_dirs() {
    mapfile -t COMPREPLY < <(compgen -d -- "$1")
    compopt -o filenames 2>/dev/null
}

_rnnflow() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} exe=${COMP_WORDS[0]}
    COMPREPLY=()
    if (( COMP_CWORD == 1 )); then
        COMPREPLY=($(compgen -W "$(_rnnflow_commands "$exe") --help" -- "$cur"))
        return
    fi
    local cmd=${COMP_WORDS[1]}

    # The graph file on the line (the first argument ending in .yaml/.yml), for --set.
    local graph= w
    for w in "${COMP_WORDS[@]:2}"; do
        case $w in *.yaml|*.yml) graph=$w; break ;; esac
    done

    # The run folder on the line (the first word after the command that is not an option or its value).
    local rundir= i
    for (( i = 2; i < COMP_CWORD; i++ )); do
        case ${COMP_WORDS[i]} in -*) (( i++ )) ;; *) rundir=${COMP_WORDS[i]}; break ;; esac
    done

    case $prev in
        --set|-s)
            if [[ $cur == *.type=* ]]; then
                local stage=${cur%%=*}
                COMPREPLY=($(compgen -P "$stage=" -W "$(_rnnflow_stage_types "$exe")" -- "${cur#*=}"))
            elif [[ $cur == *=* ]]; then
                COMPREPLY=()
            else
                local ids
                ids="$(_rnnflow_graph_stages "$graph") train vars"
                COMPREPLY=($(compgen -S . -W "$ids" -- "$cur") $(compgen -S = -W "seed experiment" -- "$cur"))
                compopt -o nospace 2>/dev/null
            fi
            return ;;
        --plugin)
            _rnnflow_files "$cur" so; return ;;
        --log-format)
            COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
        --format|-f)  # rnnflow runs
            COMPREPLY=($(compgen -W "text tsv json" -- "$cur")); return ;;
        --sort)  # rnnflow runs: a column
            COMPREPLY=($(compgen -W "experiment started status epochs metric best_valid best_epoch test wall_s folder" -- "$cur"))
            return ;;
        --html)
            _rnnflow_files "$cur" html; return ;;
        --experiment|-e)
            return ;;  # a name to type
        --checkpoint)
            _rnnflow_files "$cur" safetensors
            mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -W "best last" -- "$cur")
            return ;;
        --out|-o|--dir|-d)
            case $cmd in
                report) _rnnflow_files "$cur" html ;;
                vectors) _rnnflow_files "$cur" txt ;;
                *) _rnnflow_dirs "$cur" ;;
            esac
            return ;;
        --stage)
            [[ $cmd == vectors ]] && COMPREPLY=($(compgen -W "$(_rnnflow_embedding_stages "$rundir/resolved.yaml")" -- "$cur"))
            return ;;
        --plot|-p)
            _rnnflow_files "$cur" png; return ;;
        --prime-from)  # a note-set JSON file (or SPLIT:INDEX, typed)
            _rnnflow_files "$cur" json; return ;;
        --threads|-t|--threads-per-trial|--parallel|-j|--length|-n|--temperature|--top-k|--top-p|--next|--neighbours|-k|--seed|--prime|--prime-frames)
            return ;;  # a value to type
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_rnnflow_options "$exe" "$cmd")" -- "$cur"))
        return
    fi
    case $cmd in
        run|validate|graph|sweep)  # a YAML file
            _rnnflow_files "$cur" yaml yml ;;
        generate|report|compare|vectors|runs)   # run or sweep folders (runs: folders of runs)
            _rnnflow_dirs "$cur" ;;
        score)  # a run folder, then a text file
            _rnnflow_files "$cur" ;;
        ensemble)  # run folders or predictions files
            _rnnflow_files "$cur" tsv ;;
        stages)
            COMPREPLY=($(compgen -W "$(_rnnflow_stage_types "$exe")" -- "$cur")) ;;
    esac
}

complete -F _rnnflow rnnflow
