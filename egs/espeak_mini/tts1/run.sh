#!/usr/bin/env bash
# Default recipe: a multi-speaker English corpus synthesised offline by espeak-ng, a Gaussian VAE
# (stage one), rectified flow from a text-conditioned prior with reflow (stage two), evaluation against
# the exact espeak-ng reference of each unseen test sentence. About 30 minutes on a 2-core CPU.
#
#   ./run.sh                              # everything
#   ./run.sh --stage 6 --stop-stage 9     # from stage-two training to evaluation
#   ./run.sh --smoke true                 # tiny corpus and models: every stage in a few minutes
#   ./run.sh --help                       # every option
cd "$(dirname "$0")"

fs=16000
frontend=phoneme
language=en-us
local_data_opts="--sample-rate $fs"
smoke_data_opts="--smoke"
stage1_conf=conf/stage1.yaml
stage2_conf=conf/stage2.yaml
reflow_conf=conf/stage2_reflow.yaml
asr_conf=conf/asr.yaml

. ../../TEMPLATE/tts1/tts.sh
