#!/usr/bin/env bash
# LJSpeech (single speaker, 22.05 kHz, ~24 h). Reads a copy you already have:
#   ./run.sh --corpus-dir /data/LJSpeech-1.1 --ngpu 1
# GPU-sized configs in conf/; all stages are those of ../../TEMPLATE/tts1/tts.sh.
RECIPE_CALLER_DIR=$PWD  # where relative --corpus-dir paths are (tts.sh)
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
# Reflow pairs (stage 7): 16 NFE of rk4 for up to 20000 training utterances (the template's 360 suit the 2-core
# CPU recipe; here they would be 1-3% of the corpus, its shortest 1-2 s clips, for 50k steps of reflow). Each
# reflow training process (one per GPU) holds its pairs in memory, ~1 KB per latent frame (x0, x1, prior mean
# and real latent, dim 64, float32): about 7 GB for
# LJSpeech's 12600 training utterances (all of them).
reflow_gen_args="--nfe 16 --solver rk4 --max-utts 20000 --pick spread"

. ../../TEMPLATE/tts1/tts.sh
