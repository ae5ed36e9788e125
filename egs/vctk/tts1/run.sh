#!/usr/bin/env bash
# VCTK 0.92 (110 speakers, 48 kHz, read at 24 kHz). Reads a copy you already have:
#   ./run.sh --corpus-dir /data/VCTK-Corpus-0.92 --ngpu 1
cd "$(dirname "$0")"

corpus_dir=${corpus_dir:-/data/VCTK-Corpus-0.92}
frontend=phoneme
language=en-us
ngpu=1
stage1_conf=conf/stage1.yaml
stage2_conf=conf/stage2.yaml
reflow_conf=conf/stage2_reflow.yaml
asr_conf=conf/asr.yaml
test_sets=test

. ../../TEMPLATE/tts1/tts.sh
