#!/usr/bin/env bash
# VCTK (0.92 flac or the older wav48 layout, already on disk) -> data/{train,dev,test[,test_unseen]}.
#
#   local/data.sh --corpus-dir /data/VCTK-Corpus-0.92 [--heldout-speakers p225,p226]
set -euo pipefail

corpus_dir=
data_dir=data
mic=mic1
num_dev_per_spk=5
num_test_per_spk=5
heldout_speakers=      # comma-separated; they go whole to data/test_unseen
sample_rate=24000      # accepted for a uniform interface; audio is resampled when loaded
smoke=false            # accepted for a uniform interface
help_message="Usage: $0 --corpus-dir /path/VCTK-Corpus-0.92 [options]"

. "$(dirname "$0")/../../../utils/parse_options.sh"
repo_root=$(cd "$(dirname "$0")/../../../.." && pwd)
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"

if [ -z "$corpus_dir" ]; then
    echo "$0: --corpus-dir is required (VCTK-Corpus-0.92 with wav48_silence_trimmed/ and txt/)" >&2
    exit 1
fi
python -m shared.corpora.vctk --corpus-dir "$corpus_dir" --data-dir "$data_dir" --mic "$mic" \
    --num-dev-per-spk "$num_dev_per_spk" --num-test-per-spk "$num_test_per_spk" \
    --heldout-speakers "$heldout_speakers"
