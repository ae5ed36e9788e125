#!/usr/bin/env bash
# LibriTTS (already on disk) -> data/{train,dev,test}. Audio stays where it is; resampling happens at load.
#
#   local/data.sh --corpus-dir /data/LibriTTS [--train-sets train-clean-100,train-clean-360]
set -euo pipefail

corpus_dir=
data_dir=data
train_sets=train-clean-100
dev_sets=dev-clean
test_sets=test-clean
text=normalized        # normalized | original
sample_rate=24000      # accepted for a uniform interface; audio is resampled when loaded
smoke=false            # true: only dev-clean/test-clean are read (dev-clean doubles as train)
help_message="Usage: $0 --corpus-dir /path/LibriTTS [options]"

. "$(dirname "$0")/../../../utils/parse_options.sh"
repo_root=$(cd "$(dirname "$0")/../../../.." && pwd)
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"

if [ -z "$corpus_dir" ]; then
    echo "$0: --corpus-dir is required (the LibriTTS directory holding train-clean-100/, dev-clean/, ...)" >&2
    exit 1
fi
[ "$smoke" = true ] && train_sets=$dev_sets
python -m shared.corpora.libritts --corpus-dir "$corpus_dir" --data-dir "$data_dir" \
    --train-sets "$train_sets" --dev-sets "$dev_sets" --test-sets "$test_sets" --text "$text"
