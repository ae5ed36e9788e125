#!/usr/bin/env bash
# LJSpeech-1.1 (already on disk) -> data/{train,dev,test}. Audio stays where it is; resampling happens at load.
#
#   local/data.sh --corpus-dir /data/LJSpeech-1.1 [--num-dev 250] [--num-test 250]
set -euo pipefail

corpus_dir=
data_dir=data
num_dev=250
num_test=250
text=normalized        # normalized | raw
sample_rate=22050      # accepted for a uniform interface; audio is resampled when loaded
smoke=false            # accepted for a uniform interface (a real corpus is never made smaller here)
help_message="Usage: $0 --corpus-dir /path/LJSpeech-1.1 [options]"

. "$(dirname "$0")/../../../utils/parse_options.sh"
repo_root=$(cd "$(dirname "$0")/../../../.." && pwd)
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"

if [ -z "$corpus_dir" ]; then
    echo "$0: --corpus-dir is required (the LJSpeech-1.1 directory with metadata.csv and wavs/)" >&2
    exit 1
fi
python -m shared.corpora.ljspeech --corpus-dir "$corpus_dir" --data-dir "$data_dir" \
    --num-dev "$num_dev" --num-test "$num_test" --text "$text"
