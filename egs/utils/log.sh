#!/usr/bin/env bash
# Logging and resumable stages for recipe scripts. Source it:  . ../../utils/log.sh
#
#   log "message"                       timestamped line on stdout
#   stage_with ...                      what the next run_stage's stage is done with (markers.sh)
#   run_stage N NAME CMD [ARGS...]      run CMD unless its marker $done_dir/stageN.NAME says it is done with
#                                       stage_with's settings (overwrite=true: run it whatever the marker says);
#                                       a marker that says other settings is an error naming them (markers.sh);
#                                       output goes to the terminal and exp/logs/stageN.NAME.<time>.log (whose
#                                       first line is CMD, quoted, where it is a command, not a function); the
#                                       wall time is appended to exp/stage_times.tsv (not where the run only
#                                       did sets new to a done stage). The marker is removed
#                                       before the stage runs (a failed --overwrite run has removed outputs;
#                                       not when it only adds sets new to it: the old sets' outputs stand) and
#                                       written when it has finished (and named in stages_run); a failure (of
#                                       any command in a stage function, not only its last) exits 1. A stage
#                                       whose inputs were made from outputs redone since is refused (markers.sh).
#   logged CMD [ARGS...]                in a stage function: print `# in DIR: CMD` (quoted, as a command stage's
#                                       log starts), then run CMD: a training to rerun by hand (multi-node, README)
#   want N                              true when stage <= N <= stop_stage
#   wait_jobs PID...                    wait for these background jobs (the shell's only ones); the first to
#                                       fail kills the others at once and returns its status
#
# Variables read: exp_root (default exp), done_dir (where the markers are; default $exp_root/.done), overwrite
# (default false), stage, stop_stage.

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0")) $*"; }

# `# in DIR: CMD`, CMD quoted to be pasted back
_command_line() { printf '# in %s:' "$PWD"; printf ' %q' "$@"; printf '\n'; }

logged() { _command_line "$@"; "$@"; }

stages_run=()  # the markers (stageN.NAME) of the stages this run did

# shellcheck source=markers.sh
. "$(dirname "${BASH_SOURCE[0]}")/markers.sh"

run_stage() {
    local n=$1 name=$2; shift 2
    local root=${exp_root:-exp}
    local marker="${done_dir:-$root/.done}/stage${n}.${name}"
    if ! _marker_check "$n" "$name" "$marker"; then
        _stage_with_reset
        return 0
    fi
    _refuse_sets_not_done "$n" "$name" "${marker%/*}"
    # done anew (not only for new sets): the old marker goes now, so a failure (--overwrite has removed the old
    # outputs by then) leaves none that a rerun would trust
    [ -n "$_marker_run" ] || rm -f "$marker"
    mkdir -p "$root/logs" "$(dirname "$marker")"
    local logfile
    logfile="$root/logs/stage${n}.${name}.$(date '+%Y%m%d-%H%M%S').log"
    log "stage $n ($name): started; log: $logfile"
    local start=$SECONDS rc=0 errexit=false
    # not `( ... ) || rc=$?`: bash ignores set -e inside anything on the left of || (a stage function would
    # run on past a failed step and be marked done), so errexit is switched off around the stage instead
    [[ $- == *e* ]] && errexit=true
    set +e
    if [ "$(type -t "$1")" != function ]; then  # a command (stage 3's, 6's training): its first line, to rerun by
        _command_line "$@" > "$logfile"  # hand (multi-node, README); a stage function's trainings: `logged`
    fi
    ( set -eo pipefail; ( "$@" ) 2>&1 | tee -a "$logfile" )
    rc=$?
    if [ "$errexit" = true ]; then set -e; fi
    if [ "$rc" -ne 0 ]; then
        log "stage $n ($name): FAILED (exit $rc) after $((SECONDS - start)) s; see $logfile"
        exit 1
    fi
    _marker_write "$n" "$name" "$marker"
    stages_run+=("stage${n}.${name}")
    # the stage's time; not of a run that only added sets new to it (RESULTS report the time of the first)
    [ -n "$_marker_run" ] || printf '%s\t%s\t%s\n' "$n" "$name" "$((SECONDS - start))" >> "$root/stage_times.tsv"
    _stage_with_reset
    log "stage $n ($name): finished in $((SECONDS - start)) s"
}

want() { [ "${stage:-0}" -le "$1" ] && [ "${stop_stage:-100}" -ge "$1" ]; }

wait_jobs() {
    # not `for p; do wait "$p"; done`: that waits in order, so a job failing while an earlier one still runs
    # would only be noticed when that one ends; `wait -n` returns as each job ends, in the order they end
    local _ rc
    for _ in "$@"; do
        wait -n && continue
        rc=$?
        kill "$@" 2>/dev/null || true
        return "$rc"
    done
}
