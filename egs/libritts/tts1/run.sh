#!/usr/bin/env bash
# LibriTTS (multi-speaker, 24 kHz). Reads a copy you already have:
#   ./run.sh --corpus-dir /data/LibriTTS --ngpu 4
# Stage two conditions on a speech prompt (conf/stage2_prompt.yaml, zero-shot: a voice from a few seconds of its
# speech; system flow_prompt_reflow): the test set, test-clean, has none of the training speakers, and stages 8-9
# give each test utterance the voice of another utterance of its speaker (synth/test/utt2prompt).
# --stage2-conf conf/stage2.yaml trains with speaker ids instead (system flow_reflow, beside the other): it can only
# speak the training voices, so give it test sets of training speakers (--test-sets); on test-clean it has no voice.
RECIPE_CALLER_DIR=$PWD  # where relative --corpus-dir paths are (tts.sh)
cd "$(dirname "$0")"

corpus_dir=${corpus_dir:-/data/LibriTTS}
frontend=phoneme
language=en-us
ngpu=1
stage1_conf=conf/stage1.yaml
stage2_conf=conf/stage2_prompt.yaml
reflow_conf=conf/stage2_reflow.yaml
asr_conf=conf/asr.yaml
test_sets=test
# Reflow pairs (stage 7): 16 NFE of rk4 for up to 20000 training utterances (the template's 360 suit the 2-core
# CPU recipe; here they would be 1-3% of the corpus, its shortest 1-2 s clips, for 50k steps of reflow). Each
# reflow training process (one per GPU) holds its pairs in memory, ~1 KB per latent frame (x0, x1, prior mean
# and real latent, dim 64, float32): about 5 GB for
# the 20000 shortest of train-clean-100's 33000; these 20000 are spread over the lengths (--pick spread: the
# pairs' lengths are the corpus's), so expect more, in proportion to their mean length.
reflow_gen_args="--nfe 16 --solver rk4 --max-utts 20000 --pick spread"

. ../../TEMPLATE/tts1/tts.sh
