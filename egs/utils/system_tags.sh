#!/usr/bin/env bash
# The names a recipe gives its systems; egs/TEMPLATE/tts1/tts.sh and a recipe's local/ scripts source it, so that a
# script run after run.sh finds the same exp dirs run.sh wrote.
#
#   default_stage1_tag STAGE1_CONF
#       the stage-one (codec) tag when --stage1-tag is not given: vae for conf/stage1.yaml, <name> for a config
#       conf/stage1_<name>.yaml (any other file name: its stem), so a run with another codec config trains a codec of
#       its own beside the others: conf/stage1_rvq.yaml -> rvq, conf/stage1_fsq.yaml -> fsq
#   default_stage2_tag STAGE1_TAG STAGE2_CONF
#       the stage-two tag when --stage2-tag is not given: flow, then _<stage1 tag> for a codec other than vae, then
#       _<name> for a stage-two config conf/stage2_<name>.yaml (any other file name but stage2.yaml: _<its stem>), so a
#       run with another codec or another stage-two config trains a system of its own beside the others:
#       vae + conf/stage2.yaml -> flow, rvq + conf/stage2.yaml -> flow_rvq, vae + conf/stage2_prompt.yaml ->
#       flow_prompt, fsq + conf/stage2_prompt.yaml -> flow_fsq_prompt
#   final_stage2_tag STAGE2_TAG REFLOW
#       the final stage-two model's tag (exp/stage2/<it>): <stage2 tag>_reflow, or the stage-two tag with reflow false
#   system_tag FINAL_TAG DECODER_FINETUNE
#       what the markers of stages 7-10, the NFE sweep, RESULTS and the package are named by: the final model's tag,
#       with _s1decoder when it is decoded by stage one's own decoder (--decoder-finetune false) instead of the
#       decoder fine-tuned on its output (exp/stage2/<final tag>/decoder/)

# a config's name without its directory, .yaml and the given prefix (stage1 or stage2) and _ after it
_conf_name() {
    local name
    name=$(basename "$1")
    name=${name%.yaml}
    name=${name%.yml}
    name=${name#"$2"}
    echo "${name#_}"
}

default_stage1_tag() {
    local name
    name=$(_conf_name "$1" stage1)
    echo "${name:-vae}"
}

default_stage2_tag() {
    local tag=flow name
    [ "$1" = vae ] || tag+=_$1
    name=$(_conf_name "$2" stage2)
    [ -z "$name" ] || tag+=_$name
    echo "$tag"
}

final_stage2_tag() {
    if [ "$2" = true ]; then echo "$1_reflow"; else echo "$1"; fi
}

system_tag() {
    if [ "$2" = true ]; then echo "$1"; else echo "$1_s1decoder"; fi
}
