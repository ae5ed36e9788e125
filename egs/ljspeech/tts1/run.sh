#!/usr/bin/env bash
# LJSpeech (single speaker, 22.05 kHz, ~24 h). Reads a copy you already have:
#   ./run.sh --corpus-dir /data/LJSpeech-1.1 --ngpu 1
# GPU-sized configs in conf/; all stages are those of ../../TEMPLATE/tts1/tts.sh.
cd "$(dirname "$0")"

corpus_dir=${corpus_dir:-/data/LJSpeech-1.1}
frontend=phoneme
language=en-us
ngpu=1
stage1_conf=conf/stage1.yaml
stage2_conf=conf/stage2.yaml
reflow_conf=conf/stage2_reflow.yaml
asr_conf=conf/asr.yaml
test_sets=test

. ../../TEMPLATE/tts1/tts.sh
