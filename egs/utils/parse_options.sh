#!/usr/bin/env bash
# Kaldi-style option parsing, written for flowtts. Source it AFTER defining the script's variables:
#
#   stage=0; stop_stage=100; foo_bar=x; use_gpu=false
#   help_message="Usage: $0 [options] <args>"      # optional
#   . utils/parse_options.sh                        # consumes the options from "$@"
#
#   --stage 3 --stop-stage 5 --foo-bar y   sets stage=3 stop_stage=5 foo_bar=y (dashes -> underscores)
#   --foo-bar=y                            same
#   --use-gpu                              a bare option (next argument not true/false) is "true" for a
#                                          variable whose value is true/false
#   --help | -h                            prints help_message and every option with its current value
#
# An option whose variable is not defined is an error (exit 1), as is a missing value or a non-boolean value
# for a boolean variable. Parsing stops at the first argument that does not start with "--" (or after "--").
# The remaining positional arguments stay in "$@" for a script that takes them (PARSE_OPTIONS_POSITIONAL=1 before
# sourcing this); for any other they are an error: an unquoted value with spaces (--stage1-args a=1 b=2) or a
# one-dash option would otherwise be dropped unread.

_po_is_bool() { [ "$1" = true ] || [ "$1" = false ]; }

_po_help() {
    [ -n "${help_message:-}" ] && printf '%s\n\n' "$help_message"
    echo "Options (default or current value):"
    local _v
    for _v in $(compgen -v | LC_ALL=C sort); do
        case "$_v" in
            [a-z]*) ;;   # script variables are lower case; environment variables are not
            *) continue ;;
        esac
        [[ "$_v" =~ ^[a-z][a-z0-9_]*$ ]] || continue
        [ "$_v" = help_message ] && continue
        # plain scalars only, and not exported: the environment's lower-case variables (http_proxy) are no options
        declare -p "$_v" 2>/dev/null | grep -q '^declare -- ' || continue
        printf '  --%-24s %s\n' "${_v//_/-}" "${!_v}"
    done
}

while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            _po_help
            exit 0
            ;;
        --)
            shift
            break
            ;;
        --*=*)
            _po_name=${1%%=*}; _po_value=${1#*=}; _po_used=1
            ;;
        --*)
            _po_name=$1; _po_value=""; _po_used=0
            ;;
        *)
            break
            ;;
    esac
    _po_var=${_po_name#--}
    _po_var=${_po_var//-/_}
    if ! [[ "$_po_var" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || [ -z "${!_po_var+set}" ]; then
        echo "$0: unknown option $_po_name (run with --help to list the options)" >&2
        exit 1
    fi
    _po_old=${!_po_var}
    if [ "$_po_used" = 0 ]; then   # --name [value]
        if _po_is_bool "$_po_old" && { [ $# -lt 2 ] || ! _po_is_bool "$2"; }; then
            _po_value=true; _po_used=1     # bare boolean flag
        elif [ $# -ge 2 ]; then
            _po_value=$2; _po_used=2
        else
            echo "$0: option $_po_name needs a value" >&2
            exit 1
        fi
    fi
    if _po_is_bool "$_po_old" && ! _po_is_bool "$_po_value"; then
        echo "$0: option $_po_name takes true or false, got '$_po_value'" >&2
        exit 1
    fi
    printf -v "$_po_var" '%s' "$_po_value"
    shift "$_po_used"
done
unset _po_name _po_value _po_used _po_var _po_old
if [ $# -gt 0 ] && [ -z "${PARSE_OPTIONS_POSITIONAL:-}" ]; then
    echo "$0: unexpected argument '$1' (a value with spaces needs quotes: --stage1-args 'a=1 b=2'; options start with --)" >&2
    exit 1
fi
true
