#!/usr/bin/env bash
# LibriTTS (multi-speaker, 24 kHz). Reads a copy you already have:
#   ./run.sh --corpus-dir /data/LibriTTS --ngpu 4
# conf/stage2.yaml trains with speaker ids; --stage2-conf conf/stage2_prompt.yaml conditions on a
# speech prompt instead (zero-shot: unseen speakers from a few seconds of their speech).
cd "$(dirname "$0")"

corpus_dir=${corpus_dir:-/data/LibriTTS}
frontend=phoneme
language=en-us
ngpu=1
stage1_conf=conf/stage1.yaml
stage2_conf=conf/stage2.yaml
reflow_conf=conf/stage2_reflow.yaml
asr_conf=conf/asr.yaml
test_sets=test

. ../../TEMPLATE/tts1/tts.sh
