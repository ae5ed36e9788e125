#!/usr/bin/env bash
# VCTK 0.92 (110 speakers, 48 kHz, read at 24 kHz). Reads a copy you already have:
#   ./run.sh --corpus-dir /data/VCTK-Corpus-0.92 --ngpu 1
# By default every speaker is a training speaker: dev and test are the last 5 + 5 utterances (by id) of each
# (local/data.sh), and stage two conditions on speaker ids (conf/stage2.yaml), which gives each test utterance its
# speaker's learned voice. Held-out speakers need a zero-shot model (a voice from a speech prompt) and a set of them:
#   ./run.sh --corpus-dir /data/VCTK-Corpus-0.92 --stage2-conf conf/stage2_prompt.yaml \
#       --local-data-opts "--heldout-speakers p225,p226,p227,p228" --test-sets "test_unseen test"
# (their every utterance goes to data/test_unseen, scored first, each in the voice of another utterance of its
# speaker; system flow_prompt_reflow). The training set, and so the codec, then differ from a default run's: start
# in a fresh copy of the recipe dir (or --overwrite true from stage 0). The id model has no voice for them.
RECIPE_CALLER_DIR=$PWD  # where relative --corpus-dir paths are (tts.sh)
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
# Reflow pairs (stage 7): 16 NFE of rk4 for up to 20000 training utterances (the template's 360 suit the 2-core
# CPU recipe; here they would be 1-3% of the corpus, its shortest 1-2 s clips, for 50k steps of reflow). Each
# reflow training process (one per GPU) holds its pairs in memory, ~1 KB per latent frame (x0, x1, prior mean
# and real latent, dim 64, float32): a few GB for
# the 20000 shortest of VCTK's ~43000; these 20000 are spread over the lengths (--pick spread: the pairs'
# lengths are the corpus's), so expect more, in proportion to their mean length.
reflow_gen_args="--nfe 16 --solver rk4 --max-utts 20000 --pick spread"

. ../../TEMPLATE/tts1/tts.sh
