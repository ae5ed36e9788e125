#!/usr/bin/env bash
# What a finished stage was done with: the markers of run_stage (log.sh sources this file). A marker,
# $done_dir/stage<N>.<name>, lists what its stage was done with, one KEY=VALUE a line:
#
#   # stage 6 (stage2_train.flow) done 2026-12-07T10:00:00 with:
#   run=20261207T100000-4242-17731           this doing of the stage (a redo gets another)
#   stage2_conf=conf/stage2.yaml 3f2a1b0c9d8e7f6a   a config: its name and the SHA-256 of it and its base: chain
#   stage2_args=train.lr=1e-4
#   stage4.encode.vae=9b1c0d2e3f4a5b6c       a stage it consumes: the digest of that stage's marker then
#   sets=dev test                            a per-set stage: the sets it has done
#
# A marker's digest is the SHA-256 of its lines but the comment and sets=, so a stage redone (a new run=) or done
# with other settings changes the digest that the stages after it recorded. run_stage compares a done stage's marker
# with what this run would do it with: the same, the stage is skipped; a set it has not done yet
# (--test-sets "test screen") is new work, not a conflict: the stage runs again (each step skips the outputs it
# finds) and keeps its run=, so the stages after it stay done; anything else is refused, naming what differs, as
# redoing it over outputs the later stages were made from would leave them stale, and skipping it would leave its
# outputs saying what they are not. A marker from before markers held anything (an empty file) is trusted, with a
# note; a per-set stage's is done again for all its sets (its steps keep the outputs they find), as it does not say
# which sets it did.
#
#   stage_with [--retag OPTION] [--sets "SET ..."] [--after "stageN.NAME ..."] [KEY=VALUE ...]
#       what the next run_stage's stage is done with (that run_stage forgets it): settings KEY=VALUE, the sets of a
#       per-set stage, the markers of the stages it consumes (their digests are recorded), and the option that
#       gives its outputs a name of their own (a refusal suggests it; without one, a copy of the recipe dir)
#   conf_digest FILE    "FILE <SHA-256 of FILE and its base: chain>": a config's value for stage_with
#   marker_digest FILE  a marker's digest; "none" where there is no marker, "unrecorded" for an empty one
#   words WORD ...      the words joined by one space: a *_args value as its stage takes it (split on spaces), so
#                       that 'a  b' and 'a b' are the same setting
#
# After stage_with and in the stage run_stage runs, $stage_sets holds the sets it is to do: all of them, or those
# new to a done stage.

_sw_retag=""
_sw_sets=""
_sw_lines=()
stage_sets=""

stage_with() {
    local dir=${done_dir:-${exp_root:-exp}/.done} m
    _sw_retag=""; _sw_sets=""; _sw_lines=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --retag) _sw_retag=$2; shift 2 ;;
            --sets)
                for m in $2; do [[ " $_sw_sets " == *" $m "* ]] || _sw_sets+="${_sw_sets:+ }$m"; done
                shift 2 ;;
            --after)
                for m in $2; do
                    [[ " ${_sw_lines[*]} " == *" $m="* ]] || _sw_lines+=("$m=$(marker_digest "$dir/$m")")
                done
                shift 2 ;;
            *=*) _sw_lines+=("$1"); shift ;;
            *) echo "stage_with: '$1' is not KEY=VALUE, --retag, --sets or --after" >&2; return 1 ;;
        esac
    done
}

words() { printf '%s\n' "$*"; }

conf_digest() {
    # the config by its path from the recipe dir, however it was spelt (./conf/x.yaml, an absolute path)
    local name f=$1 files=() base
    name=$(realpath -m --relative-to=. "$1")
    if [ ! -f "$f" ]; then echo "$name (missing)"; return 0; fi
    while [ -f "$f" ] && [ "${#files[@]}" -lt 20 ]; do  # 20: a base cycle (shared/config.py refuses it) ends too
        files+=("$f")
        # the value, its surrounding blanks and quotes removed (not its inner spaces: base: "base one.yaml")
        base=$(sed -n 's/^base:[[:space:]]*\([^#]*\).*/\1/p' "$f" | head -n 1 | sed -e 's/[[:space:]]*$//' \
            -e "s/^\"\(.*\)\"\$/\1/" -e "s/^'\(.*\)'\$/\1/")
        [ -n "$base" ] || break
        f=$(dirname "$f")/$base
    done
    echo "$name $(cat "${files[@]}" | sha256sum | cut -c 1-16)"
}

marker_digest() {
    if [ ! -f "$1" ]; then echo none
    elif ! grep -q '^run=' "$1"; then echo unrecorded
    else grep -v -e '^#' -e '^sets=' "$1" | sha256sum | cut -c 1-16
    fi
}

# _marker_value FILE KEY: KEY's value in a marker (empty if it has none)
_marker_value() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# _marker_differences FILE: a line for each setting or consumed stage in which FILE differs from stage_with's
_marker_differences() {
    local line key
    declare -A old=() new=()
    while IFS= read -r line; do
        case "$line" in '#'* | run=* | sets=* | '') continue ;; esac
        old[${line%%=*}]=${line#*=}
    done < "$1"
    for line in ${_sw_lines[@]+"${_sw_lines[@]}"}; do new[${line%%=*}]=${line#*=}; done
    for line in ${_sw_lines[@]+"${_sw_lines[@]}"}; do
        key=${line%%=*}
        if [ "${old[$key]+set}" != set ]; then
            echo "  $key: not recorded then, now '${new[$key]}'"
        elif [ "${old[$key]}" = "${new[$key]}" ]; then
            continue
        elif ! [[ "$key" =~ ^stage[0-9]+\. ]]; then
            echo "  $key: '${old[$key]}' then, now '${new[$key]}'"
        elif [ "${old[$key]}" = none ]; then
            echo "  $key: a stage this one consumes, done since"
        elif [ "${new[$key]}" = none ]; then
            echo "  $key: a stage this one consumes, not done now"
        else
            echo "  $key: a stage this one consumes, redone since"
        fi
    done
    for key in "${!old[@]}"; do
        [ "${new[$key]+set}" = set ] || echo "  $key: '${old[$key]}' then, not a setting of this run's"
    done
}

# _stale_link MARKER: "A B" where the marker A (MARKER, or a marker it consumes at any depth) recorded the stage B it
# consumes as other than B's marker is now (B redone, or gone, since A was done); nothing where every link holds
_stale_link() {
    local dir=${1%/*} todo=("${1##*/}") seen=" " m line key
    while [ "${#todo[@]}" -gt 0 ]; do  # breadth first, each marker once
        m=${todo[0]}
        todo=("${todo[@]:1}")
        [[ "$seen" != *" $m "* ]] || continue
        seen+="$m "
        [ -f "$dir/$m" ] || continue
        while IFS= read -r line; do
            [[ "$line" =~ ^stage[0-9]+\.[^=]*= ]] || continue
            key=${line%%=*}
            if [ "$(marker_digest "$dir/$key")" != "${line#*=}" ]; then
                echo "$m $key"
                return 0
            fi
            todo+=("$key")
        done < "$dir/$m"
    done
}

# _refuse_stale_inputs N NAME DIR: exit 1 where a stage this one consumes (stage_with --after) was made from the outputs
# of a stage redone since: this stage would read stale outputs (a stage is compared only with the stages it reads
# itself, so a redone stage 2 did not stop a stage 7 reading the stage-6 model trained on the old tokens)
_refuse_stale_inputs() {
    local n=$1 name=$2 dir=$3 line link made from again
    for line in ${_sw_lines[@]+"${_sw_lines[@]}"}; do
        [[ "$line" =~ ^stage[0-9]+\. ]] || continue
        link=$(_stale_link "$dir/${line%%=*}")
        [ -n "$link" ] || continue
        made=${link%% *} from=${link#* }
        again=${made#stage}
        again=${again%%.*}
        {
            echo "$0: stage $n ($name) would read the outputs of $made, which were made from those of $from, since" \
                "$([ "$(marker_digest "$dir/$from")" = none ] && echo "undone" || echo "redone") ($dir/$made records" \
                "another $from)."
            echo "Nothing was changed. Redo the stages from $again on: --stage $again --overwrite true"
        } >&2
        exit 1
    done
}

# _refuse_sets_not_done N NAME DIR: exit 1 where a per-set stage this one consumes (stage_with --after) has not done
# a set this one is to do ($stage_sets): a stage 2 run alone with a new --test-sets would tokenise a set stage 1
# never validated
_refuse_sets_not_done() {
    local n=$1 name=$2 dir=$3 line key done_sets s missing from
    for line in ${_sw_lines[@]+"${_sw_lines[@]}"}; do
        [[ "$line" =~ ^stage[0-9]+\. ]] || continue
        key=${line%%=*}
        [ -f "$dir/$key" ] && grep -q '^sets=' "$dir/$key" || continue
        done_sets=" $(_marker_value "$dir/$key" sets) "
        missing=""
        for s in $stage_sets; do [[ "$done_sets" == *" $s "* ]] || missing+="${missing:+ }$s"; done
        [ -n "$missing" ] || continue
        from=${key#stage}
        from=${from%%.*}
        {
            echo "$0: stage $n ($name) would do $missing, which stage $from (${key#stage*.}) has not done (it did" \
                "$(_marker_value "$dir/$key" sets))."
            echo "Nothing was changed. Do it for them first: --stage $from (with the same --test-sets)"
        } >&2
        exit 1
    done
}

# _marker_check N NAME MARKER: whether the stage is to run (0) or is done already (1), after stage_with; refuses
# (exit 1) a done stage whose marker differs from stage_with's settings, and any stage that would read outputs made
# from those of a stage redone since (_refuse_stale_inputs). Sets stage_sets and _marker_run (the run= to write: a
# done stage's, for its new sets)
_marker_check() {
    local n=$1 name=$2 marker=$3 differ done_sets s
    _marker_run=""
    stage_sets=$_sw_sets
    _refuse_stale_inputs "$n" "$name" "${marker%/*}"
    if [ "${overwrite:-false}" = true ] || [ ! -f "$marker" ]; then return 0; fi
    if ! grep -q '^run=' "$marker"; then
        if [ -n "$_sw_sets" ]; then  # its sets unrecorded: a set new to it would be skipped (--test-sets "test screen")
            log "stage $n ($name): done before markers recorded settings and sets ($marker): doing it for" \
                "$_sw_sets (each step keeps the outputs it finds)"
            return 0
        fi
        log "stage $n ($name): done already ($marker; from before markers recorded settings: not compared with" \
            "this run's); --overwrite true to redo"
        return 1
    fi
    differ=$(_marker_differences "$marker")
    if [ -n "$differ" ]; then
        local keep="a copy of the recipe dir"
        [ -z "$_sw_retag" ] || keep="$_sw_retag NAME (a name of their own for this run's outputs), or $keep"
        {
            echo "$0: stage $n ($name) was done with other settings than this run's ($marker):"
            echo "$differ"
            echo "Nothing was changed. To redo it with this run's settings: --overwrite true (and the stages after it" \
                "too, made from its outputs: from --stage $n); to keep it: $keep"
        } >&2
        exit 1
    fi
    done_sets=" $(_marker_value "$marker" sets) "
    stage_sets=""
    for s in $_sw_sets; do [[ "$done_sets" == *" $s "* ]] || stage_sets+="${stage_sets:+ }$s"; done
    if [ -z "$stage_sets" ]; then
        log "stage $n ($name): done already ($marker); --overwrite true to redo"
        return 1
    fi
    log "stage $n ($name): done for $(_marker_value "$marker" sets); now for $stage_sets too"
    _marker_run=$(_marker_value "$marker" run)
}

# _marker_write N NAME MARKER: the marker of a stage just done, with stage_with's settings (its sets added to those
# it had done before), written whole or not at all
_marker_write() {
    local n=$1 name=$2 marker=$3 sets="" s line
    [ ! -f "$marker" ] || sets=$(_marker_value "$marker" sets)
    for s in $_sw_sets; do [[ " $sets " == *" $s "* ]] || sets+="${sets:+ }$s"; done
    {
        echo "# stage $n ($name) done $(date '+%Y-%m-%dT%H:%M:%S') with:"
        echo "run=${_marker_run:-$(date '+%Y%m%dT%H%M%S')-$$-$RANDOM}"
        for line in ${_sw_lines[@]+"${_sw_lines[@]}"}; do echo "$line"; done
        [ -z "$_sw_sets" ] || echo "sets=$sets"
    } > "$marker.tmp"
    mv "$marker.tmp" "$marker"
}

_stage_with_reset() { _sw_retag=""; _sw_sets=""; _sw_lines=(); }
