#!/usr/bin/env bash
# The stage logic every recipe shares. A recipe's run.sh sets its corpus settings and then sources this
# file; any variable below can also be set from the command line (--stage 3 --stop-stage 5 --nfe 8 ...).
# Each stage is one `python -m package.verb` with explicit inputs and outputs. A finished stage leaves a marker
# under exp/.done/ that records what it was done with: its settings (the options and *_args it takes, its configs'
# contents) and the markers of the stages whose outputs it uses (../../utils/markers.sh). A rerun skips a stage done
# with the same; one done with other settings, or before a stage it uses was redone, is refused, naming what
# differs: --overwrite true redoes it (and then the stages after it), a tag of its own (--stage1-tag,
# --stage2-tag; each codec and stage-two config has one by default) keeps both. A test set new to a done stage
# (--test-sets) is done, not refused. See "markers" below for each stage's name.
# The *_args and *_opts values are split on spaces into words, one override or option each: no spaces inside one
# (--stage2-args 'train.lr=1e-4 train.betas=[0.9,0.99]', not 'train.betas=[0.9, 0.99]').
#
# Stages:
#   0 corpus (local/data.sh)     1 data dirs: utt2dur + validation   2 tokens
#   3 stage-one training         4 encode + latent statistics        5 codec resynthesis + scoring
#   6 stage-two training         7 reflow + decoder fine-tuning      8 synthesis of the test set
#   9 evaluation (phone recogniser, metrics, NFE sweep, plots, RESULTS.md)   10 packing

# ---------------------------------------------------------------- defaults (a run.sh may set them first)
stage=${stage:-0}
stop_stage=${stop_stage:-10}
overwrite=${overwrite:-false}
ngpu=${ngpu:-0}                 # GPUs per node for training; > 0 also runs encoding, reflow pairs, GTA, synthesis
                                # (--synth-nj N: job k on GPU (k - 1) mod ngpu), the NFE sweep and the phone
                                # recogniser on cuda. 0: everything on the CPU, whatever the configs' accelerator
num_nodes=${num_nodes:-1}
budget_scale=${budget_scale:-1} # multiply the system's training budgets (stages 3, 6, 7: each config's wall-clock
                                # cap, step caps and LR schedule length) by this, e.g. 2 for twice the time; the
                                # phone recogniser of stage 9 (the judge) keeps its own, so scores stay comparable
train_set=${train_set:-train}
dev_set=${dev_set:-dev}
test_sets=${test_sets:-test}
corpus_dir=${corpus_dir:-}       # real corpora: where the user's copy lives (passed to local/data.sh)
local_data_opts=${local_data_opts:-}  # more options of local/data.sh (the system's sample rate is not one: it is
                                # the stage-one config's model.sample_rate, and audio is resampled as it is read)
frontend=${frontend:-phoneme}   # phoneme | char
language=${language:-en-us}     # espeak-ng language of the text; also the one the optional Whisper WER (stages 5, 9)
                                # transcribes a test set in that has no utt2lang (one that has: each utterance's)
utt2lang=${utt2lang:-true}      # phonemise each utterance in its data dir's utt2lang language where there is one
                                # (espeak_mini: the British voice in en-gb-x-rp); false: everything in $language
stage1_conf=${stage1_conf:-conf/stage1.yaml}
stage1_tag=${stage1_tag:-}       # default: vae for conf/stage1.yaml, <name> for a codec config
                                # conf/stage1_<name>.yaml (rvq for conf/stage1_rvq.yaml): each codec config trains a
                                # codec of its own (../../utils/system_tags.sh)
stage1_args=${stage1_args:-}
stage2_conf=${stage2_conf:-conf/stage2.yaml}
stage2_tag=${stage2_tag:-}       # default: flow, + _<stage1_tag> for a codec other than vae, + _<name> for a stage-two
                                # config conf/stage2_<name>.yaml (flow_prompt for conf/stage2_prompt.yaml): each
                                # codec and stage-two config trains a system of its own (../../utils/system_tags.sh)
stage2_args=${stage2_args:-}
reflow=${reflow:-true}
reflow_conf=${reflow_conf:-conf/stage2_reflow.yaml}
reflow_args=${reflow_args:-}
reflow_gen_args=${reflow_gen_args:-"--nfe 16 --solver rk4 --max-utts 360"}  # how the (x0, ODE(x0)) pairs are made
                                # (stage2_flow.reflow); 360 suits the 2-core CPU recipe: the GPU recipes set theirs
decoder_finetune=${decoder_finetune:-true}  # fine-tune the codec's decoder on the final model's ground-truth-aligned
                                # output (stage 7, after reflow); synthesis then decodes with it. false: stages 8-10
                                # decode with stage one's own decoder, a system of its own (<final model>_s1decoder:
                                # its markers, NFE sweep, RESULTS and package), even where stage 7 made a decoder/
decoder_conf=${decoder_conf:-conf/decoder_gta.yaml}
decoder_args=${decoder_args:-}
gta_args=${gta_args:-}          # how the GTA latents are made (NFE, solver and temperature are synthesis's;
                                # --copies K: K noise draws per sentence; espeak_mini used 2 on its
                                # former 720 training sentences, 1 on its 2210 gives more latents than that)
asr_conf=${asr_conf:-conf/asr.yaml}
asr_args=${asr_args:-}
retrain_asr=${retrain_asr:-false}  # retrain the phone recogniser exp/asr when stage 9 runs (with --overwrite true
                                # to rerun a finished one). Every system's RESULTS are judged by it, and its
                                # training is time-capped (another would score differently), so --overwrite true
                                # alone keeps an existing one; only a run over the other kind's tree (--smoke) or
                                # this option retrains it
nfe=${nfe:-4}                   # NFE for the main synthesis (stage 8)
temperature=${temperature:-1.0} # sampling temperature T, x0 = mu + T sigma eps: the reflow pairs (stage 7), the
                                # synthesis (8), the NFE sweep (9) and the validation samples (6, 7) all use it
solver=${solver:-euler}
nfe_sweep=${nfe_sweep:-"1 2 4 8 32"}  # 16 too until run Y (2026-12-06; the sweep took 93 s of stage 9 on an AMD Zen 4 CPU)
synth_args=${synth_args:-}
synth_nj=${synth_nj:-1}         # stage 8 in N parallel jobs (data dir split, N syntheses, combined; each job gets
                                # nproc / N threads). Every utterance has its own seed, so the audio is the same
                                # as one job's (up to float rounding); 2 jobs on 2 cores: 1.17x (README)
nfe_sweep_args=${nfe_sweep_args:-"--max-utts 20"}
package_name=${package_name:-}
smoke=${smoke:-false}           # true: the *_smoke.yaml configs (tiny models, few steps) and a tiny corpus; only
                                # a recipe that has them (egs/espeak_mini) takes it
smoke_data_opts=${smoke_data_opts:-}  # what local/data.sh takes to make a tiny corpus
help_message=${help_message:-"Usage: $0 [--option value ...]   (stages: the head of egs/TEMPLATE/tts1/tts.sh)

  e.g. $0 --stage 6 --stop-stage 9 --stage2-tag lr1e-4 --stage2-args 'train.lr=1e-4 trainer.max_steps=2000'
         (a stage-two system of its own, exp/stage2/lr1e-4*, beside the default one)
       $0 --stage 8 --stop-stage 10 --nfe 8 --overwrite true   (the system's synthesis, scores and package, redone at 8 NFE)

A finished stage is skipped when rerun with the settings it was done with. Rerun with others (or after a stage whose
outputs it uses was redone) it is refused, naming them: --overwrite true redoes it (and then the stages after it), a
tag (--stage1-tag, --stage2-tag) makes a system of its own beside it. A test set new to a done stage is done.

The values of the *_args and *_opts options (stage1_args, stage2_args, reflow_args, reflow_gen_args, decoder_args,
gta_args, asr_args, synth_args, nfe_sweep_args, local_data_opts, smoke_data_opts) are split on spaces into words,
each one config override (key=value) or command-line option: there can be no space inside one override
(train.betas=[0.9,0.99], not train.betas=[0.9, 0.99]); quote the whole value, as above."}

# shellcheck source=../../utils/system_tags.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../utils/system_tags.sh"
# the recipe's default system (its RESULTS are exp/RESULTS.md; any other system's exp/RESULTS_<system>.md)
_recipe_s2=${stage2_tag:-$(default_stage2_tag "${stage1_tag:-$(default_stage1_tag "$stage1_conf")}" "$stage2_conf")}
_recipe_system=$(system_tag "$(final_stage2_tag "$_recipe_s2" "$reflow")" "$decoder_finetune")

# shellcheck source=../../utils/parse_options.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../utils/parse_options.sh"
set -euo pipefail
# a relative --corpus-dir is where the user was (run.sh changes into the recipe dir: RECIPE_CALLER_DIR); the configs
# (--stage1-conf conf/...) are the recipe dir's
if [ -n "$corpus_dir" ] && [[ $corpus_dir != /* ]]; then
    corpus_dir=$(realpath -m "${RECIPE_CALLER_DIR:-$PWD}/$corpus_dir")
fi

for v in stage stop_stage ngpu num_nodes synth_nj; do  # a non-integer would make every test of it fail quietly
    if ! [[ ${!v} =~ ^-?[0-9]+$ ]]; then
        echo "$0: --${v//_/-} takes an integer, got '${!v}'" >&2
        exit 1
    fi
    value=${!v}
    printf -v "$v" '%s%d' "${value%%[0-9]*}" "$((10#${value#-}))"  # 08 is 8: bash's arithmetic reads it as octal, and fails
done
# it ran nothing and said "done. wavs: ...". Sourced by another script (not run: $0 is not the outermost file), it is
# there to set the recipe's settings, as tests/test_recipe_configs.py reads them, and runs nothing on purpose.
if [ "$0" = "${BASH_SOURCE[-1]}" ] && { [ "$stage" -gt "$stop_stage" ] || [ "$stage" -gt 10 ]; }; then
    echo "$0: --stage $stage --stop-stage $stop_stage selects no stage (they are 0 to 10)" >&2
    exit 1
fi
if [ "$num_nodes" -gt 1 ] && [ "$ngpu" -le 0 ]; then  # it was dropped: the trainings ran on one CPU node
    echo "$0: --num-nodes $num_nodes trains on the GPUs of every node: give --ngpu too" >&2
    exit 1
fi

[ -n "$stage1_tag" ] || stage1_tag=$(default_stage1_tag "$stage1_conf")  # before --smoke renames the configs
[ -n "$stage2_tag" ] || stage2_tag=$(default_stage2_tag "$stage1_tag" "$stage2_conf")

if [ "$smoke" = true ]; then
    stage1_conf=${stage1_conf%.yaml}_smoke.yaml
    stage2_conf=${stage2_conf%.yaml}_smoke.yaml
    reflow_conf=${reflow_conf%.yaml}_smoke.yaml
    decoder_conf=${decoder_conf%.yaml}_smoke.yaml
    asr_conf=${asr_conf%.yaml}_smoke.yaml
    for conf in "$stage1_conf" "$stage2_conf" "$reflow_conf" "$decoder_conf" "$asr_conf"; do
        if [ ! -f "$conf" ]; then
            echo "$0: --smoke true: $conf not found; only a recipe with smoke configs and a smoke corpus" \
                "takes it (egs/espeak_mini/tts1)" >&2
            exit 1
        fi
    done
    if [ -z "$smoke_data_opts" ]; then
        echo "$0: --smoke true: this recipe sets no smoke_data_opts (local/data.sh would prepare the whole corpus)" >&2
        exit 1
    fi
    local_data_opts="$local_data_opts $smoke_data_opts"
    if [ "$nfe_sweep" = "1 2 4 8 32" ]; then nfe_sweep="1 2"; fi
fi

export PYTHONUNBUFFERED=1
# OpenMP's default wait policy (spin briefly, then sleep) is kept: stages run one at a time, and on 2 idle
# cores it trains 1.7x faster than OMP_WAIT_POLICY=PASSIVE. On a CPU shared with other jobs, export
# OMP_WAIT_POLICY=PASSIVE before running: spinning threads then slow everyone down (we saw ~10x).
# log, stage_with (what the next stage is done with) and run_stage N NAME CMD... (skips a stage whose exp/.done
# marker says it is done with those settings, refuses one done with others; timestamped log under exp/logs; wall
# time into exp/stage_times.tsv; a failing stage leaves earlier outputs alone) and want N
# shellcheck source=../../utils/log.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../utils/log.sh"

# Lightning's placement of the trainings; `+key=value` sets a key whether or not the config names it. On several
# GPUs or nodes, stage two (stage 6, stage 7's reflow) trains with plain DDP; stage one (stage 3, stage 7's decoder
# fine-tuning) with ddp_find_unused_parameters_true, as the GPU recipes' stage-one configs say: its discriminator
# is idle before train.disc_start_step, and after it each step's discriminator backward leaves the codec out (plain
# DDP fails: "parameters that were not used in producing the loss")
trainer_args=(+trainer.accelerator=cpu)
device=cpu                      # where the verbs that run a trained model go (--device of each)
if [ "$ngpu" -gt 0 ]; then
    device=cuda
    trainer_args=(+trainer.accelerator=gpu "+trainer.devices=$ngpu" "+trainer.num_nodes=$num_nodes")
fi
s1_trainer_args=("${trainer_args[@]}")
s2_trainer_args=("${trainer_args[@]}")
if [ "$ngpu" -gt 0 ] && { [ "$ngpu" -gt 1 ] || [ "$num_nodes" -gt 1 ]; }; then
    s1_trainer_args+=(+trainer.strategy=ddp_find_unused_parameters_true)
    s2_trainer_args+=(+trainer.strategy=ddp)
fi
# --overwrite true also tells every step to redo its outputs (each skips what exists otherwise)
ow=""
if [ "$overwrite" = true ]; then ow=--overwrite; fi
s1_exp=exp/stage1/${stage1_tag}
s2_exp=exp/stage2/${stage2_tag}
final_tag=$(final_stage2_tag "$stage2_tag" "$reflow")  # the final stage-two model
final_s2=exp/stage2/$final_tag
# the system: the final model and the decoder its latents are decoded by (the one fine-tuned on its output in stage 7,
# or stage one's own: <final tag>_s1decoder); its NFE sweep, RESULTS and package are its own
sys_tag=$(system_tag "$final_tag" "$decoder_finetune")
other_sys=$(system_tag "$final_tag" "$([ "$decoder_finetune" = true ] && echo false || echo true)")
no_decoder=()                       # results and package of the system decoded by stage one's own decoder
[ "$decoder_finetune" = true ] || no_decoder=(--no-decoder)
results_md=exp/RESULTS.md           # the recipe's default system's; any other's is exp/RESULTS_<system>.md
[ "$sys_tag" = "$_recipe_system" ] || results_md=exp/RESULTS_$sys_tag.md
all_sets="$train_set $dev_set $test_sets"
results_set=${test_sets%% *}        # the test set of the RESULTS, the NFE sweep and the package's card
corpus_name=$(basename "$(dirname "$PWD")")  # the recipe's: egs/<corpus>/tts1

# markers: stages 3-5 name the codec's tag, 6 the stage-two tag, 7's reflow training the final model (flow_reflow:
# both of its systems decode it), 7's decoder fine-tuning and 8-10 the system's (flow_reflow, flow with --reflow
# false, flow_reflow_s1decoder with --decoder-finetune false); a smoke run's are under exp/.done/smoke/. The two
# systems of one final model (with its fine-tuned decoder or stage one's) share its synth/ and eval/: stage 8 of one
# removes the other's synthesis and its markers of stages 8-10, and stage 9 refuses to score the other's synthesis.
# A smoke run and a full one write the same data/,
# dump/ and exp/ paths, so a run refuses a tree the other left, unless --overwrite true (its stages replace the
# other's outputs; the other's markers of those stages go when the run has finished). Each marker records what its
# stage was done with (the stage_with before its run_stage): the settings that change its outputs (not where it runs:
# --ngpu, --synth-nj) and the markers of the stages whose outputs it reads, so that a stage redone leaves those after
# it refusing to be skipped
done_dir=exp/.done
other_done=exp/.done/smoke
if [ "$smoke" = true ]; then done_dir=exp/.done/smoke; other_done=exp/.done; fi
# the markers of the final model (stage 6's, or 7's reflow training) and of the codec that decodes the system's
# latents (stage 7's fine-tuned decoder, or stage one's: stage 3), which stages 7-9 consume
final_marker=stage6.stage2_train.$stage2_tag
[ "$reflow" = false ] || final_marker=stage7.reflow.$final_tag
codec_marker=stage7.decoder.$sys_tag
[ "$decoder_finetune" = true ] || codec_marker=stage3.stage1_train.$stage1_tag
if [ "$overwrite" != true ] && [ "$stage" -le "$stop_stage" ] && compgen -G "$other_done/stage*" > /dev/null; then
    echo "$0: data/, dump/ and exp/ hold the outputs of a run with --smoke $([ "$smoke" = true ] && echo false || echo true)" \
        "(markers in $other_done/), which this run's would mix with: remove them, or --overwrite true to replace them" >&2
    exit 1
fi
ref_cache=exp/ref_analysis  # the test references' spectral and F0 analyses, shared by stage 5's and 9's scoring
score_resynth() {  # score_resynth SET [shared.evaluate options]: stage one's resynthesis of SET against data/SET
    local x=$1; shift
    python -m shared.evaluate $ow --mode codec --ref-dir "data/$x" --gen-dir "$s1_exp/resynth/$x" \
        --out "$s1_exp/eval/$x/metrics.json" --language "$language" --ref-cache "$ref_cache" "$@"
}
forget_other_system() {  # forget_other_system N: the other system's markers of stages N-10 (what it made there is stale)
    local m n
    for m in "$done_dir"/stage*."$other_sys"; do
        n=${m##*/stage}
        n=${n%%.*}
        if [ -e "$m" ] && [ "$n" -ge "$1" ]; then rm -f "$m"; fi
    done
}
write_results() {  # the system's own NFE sweep, and the times of its stages and of the shared 0-2
    python -m shared.results --exp-root exp --stage1-exp-dir "$s1_exp" --stage2-exp-dir "$final_s2" ${no_decoder[@]+"${no_decoder[@]}"} \
        --nfe-sweep-dir "exp/nfe_sweep/$sys_tag" --stage-tags "$stage1_tag" "$stage2_tag" "$sys_tag" \
        --title "Results: $corpus_name, system $sys_tag" --test-set "$results_set" --out "$results_md"
}

# ------------------------------------------------------------------------------------------- stages
if want 0; then
    # the corpus by where it is, not by how it was spelt (/data/LibriTTS/ and /data/LibriTTS are one corpus)
    stage_with corpus_dir="${corpus_dir:+$(realpath -m "$corpus_dir")}" local_data_opts="$(words $local_data_opts)"
    run_stage 0 corpus local/data.sh ${corpus_dir:+--corpus-dir "$corpus_dir"} $local_data_opts
fi

if want 1; then
    stage1_data() {
        for x in $stage_sets; do
            # the files first (no audio), so that a bad dir gets the validator's errors, named by file, line and
            # utterance, rather than utt2dur's traceback
            python -m shared.datadir validate "data/$x"
            [ -f "data/$x/utt2dur" ] || python -m shared.datadir utt2dur "data/$x"
            python -m shared.datadir validate "data/$x" --check-audio
        done
    }
    stage_with --sets "$all_sets" --after stage0.corpus
    run_stage 1 datadirs stage1_data
fi

if want 2; then
    stage2_tokens() {
        local lang_opt="" vocab
        [ "$utt2lang" = true ] || lang_opt=--ignore-utt2lang
        for x in $stage_sets; do  # the training set first (when it is to do): its tokens make the token list
            vocab=--vocab
            [ "$x" != "$train_set" ] || vocab=--build-vocab
            python -m shared.text.tokenize --data-dir "data/$x" --frontend "$frontend" --language "$language" \
                $lang_opt --out "data/$x/token" "$vocab" exp/tokens.txt
        done
    }
    stage_with --sets "$all_sets" --after stage1.datadirs train_set="$train_set" frontend="$frontend" \
        language="$language" utt2lang="$utt2lang"
    run_stage 2 tokens stage2_tokens
fi

if want 3; then
    stage_with --retag --stage1-tag --after stage1.datadirs stage1_conf="$(conf_digest "$stage1_conf")" \
        stage1_args="$(words $stage1_args)" budget_scale="$budget_scale" train_set="$train_set" dev_set="$dev_set"
    run_stage 3 "stage1_train.$stage1_tag" python -m stage1_vae.train $ow --budget-scale "$budget_scale" --config "$stage1_conf" \
        --data-dir "data/$train_set" --dev-dir "data/$dev_set" --exp-dir "$s1_exp" \
        "${s1_trainer_args[@]}" $stage1_args
fi

if want 4; then
    stage4_encode() {
        python -m stage1_vae.encode $ow --device $device --exp-dir "$s1_exp" --data-dir "data/$train_set" \
            --out-dir "dump/$stage1_tag/$train_set" --stats-out "$s1_exp/latent_stats.json"
        for x in $dev_set $test_sets; do
            python -m stage1_vae.encode $ow --device $device --exp-dir "$s1_exp" --data-dir "data/$x" --out-dir "dump/$stage1_tag/$x"
        done
    }
    stage_with --retag --stage1-tag --sets "$dev_set $test_sets" --after "stage1.datadirs stage3.stage1_train.$stage1_tag" \
        train_set="$train_set"
    run_stage 4 "encode.$stage1_tag" stage4_encode
fi

if want 5; then
    stage5_resynth() {
        for x in $test_sets; do
            python -m stage1_vae.decode $ow --device $device --exp-dir "$s1_exp" --data-dir "data/$x" --out-dir "$s1_exp/resynth/$x"
            score_resynth "$x"
        done
    }
    stage_with --retag --stage1-tag --sets "$test_sets" --after "stage1.datadirs stage3.stage1_train.$stage1_tag" \
        language="$language"
    run_stage 5 "resynth.$stage1_tag" stage5_resynth
fi

if want 6; then
    # not the temperature of its validation samples: it changes no weight
    stage_with --retag --stage2-tag --after "stage2.tokens stage3.stage1_train.$stage1_tag stage4.encode.$stage1_tag" \
        stage2_conf="$(conf_digest "$stage2_conf")" stage2_args="$(words $stage2_args)" budget_scale="$budget_scale" \
        train_set="$train_set" dev_set="$dev_set"
    run_stage 6 "stage2_train.$stage2_tag" python -m stage2_flow.train $ow --budget-scale "$budget_scale" --config "$stage2_conf" \
        --stage1-exp-dir "$s1_exp" --latents "dump/$stage1_tag/$train_set" --data-dir "data/$train_set" \
        --dev-latents "dump/$stage1_tag/$dev_set" --dev-dir "data/$dev_set" --exp-dir "$s2_exp" \
        "${s2_trainer_args[@]}" "validation.temperature=$temperature" $stage2_args
fi

# stage 7 in two parts, each with its own marker and time: the reflow training makes the final model, which both of its
# systems decode, so it is named by the final model (a run of the other system finds it done, and each system's
# RESULTS count its time); the decoder fine-tuning is the system's own
if want 7 && [ "$reflow" = true ]; then
    stage7_reflow() {
        python -m stage2_flow.reflow $ow --device $device --exp-dir "$s2_exp" --latents "dump/$stage1_tag/$train_set" \
            --data-dir "data/$train_set" --out-dir "dump/$stage1_tag/${train_set}_reflow_${stage2_tag}" \
            --temperature "$temperature" $reflow_gen_args
        logged python -m stage2_flow.train $ow --budget-scale "$budget_scale" --config "$reflow_conf" --init-from "$s2_exp" \
            --stage1-exp-dir "$s1_exp" --latents "dump/$stage1_tag/$train_set" --data-dir "data/$train_set" \
            --reflow-pairs "dump/$stage1_tag/${train_set}_reflow_${stage2_tag}" \
            --dev-latents "dump/$stage1_tag/$dev_set" --dev-dir "data/$dev_set" --exp-dir "${s2_exp}_reflow" \
            "${s2_trainer_args[@]}" "validation.temperature=$temperature" $reflow_args
        if [ -n "$ow" ]; then  # a retrained final model: the other system's decoder (and the GTA latents it read) are stale
            forget_other_system 7
            if [ "$decoder_finetune" = false ]; then  # this run does not redo them: they go, so that a run of the other
                # system redoes its stage 7 from its own marker, not stopping at the old GTA latents' settings
                rm -rf "dump/$stage1_tag/${train_set}_gta_$final_tag" "${final_s2:?}/decoder"
            fi
        fi
    }
    stage_with --retag --stage2-tag \
        --after "stage3.stage1_train.$stage1_tag stage4.encode.$stage1_tag stage6.stage2_train.$stage2_tag" \
        reflow_conf="$(conf_digest "$reflow_conf")" reflow_args="$(words $reflow_args)" \
        reflow_gen_args="$(words $reflow_gen_args)" temperature="$temperature" budget_scale="$budget_scale"
    run_stage 7 "reflow.$final_tag" stage7_reflow
fi
if want 7 && [ "$decoder_finetune" = true ]; then
    stage7_decoder() {
        # the final model's output on the training sentences, timed like the real audio (MAS durations),
        # sampled as stage 8 samples; the decoder learns to read it (final_s2/decoder, used from stage 8 on
        # by this system; --decoder-finetune false: by none)
        local gta_dump="dump/$stage1_tag/${train_set}_gta_$final_tag"
        python -m stage2_flow.gta $ow --device $device --exp-dir "$final_s2" --latents "dump/$stage1_tag/$train_set" \
            --data-dir "data/$train_set" --out-dir "$gta_dump" --nfe "$nfe" --solver "$solver" \
            --temperature "$temperature" $gta_args
        logged python -m stage1_vae.train $ow --budget-scale "$budget_scale" --config "$decoder_conf" --init-from "$s1_exp" --decoder-latents "$gta_dump" \
            --pitch-latents "dump/$stage1_tag/$train_set" --data-dir "data/$train_set" --exp-dir "$final_s2/decoder" \
            "${s1_trainer_args[@]}" $decoder_args
    }
    stage_with --retag --stage2-tag --after "stage3.stage1_train.$stage1_tag stage4.encode.$stage1_tag $final_marker" \
        decoder_conf="$(conf_digest "$decoder_conf")" decoder_args="$(words $decoder_args)" \
        gta_args="$(words $gta_args)" nfe="$nfe" solver="$solver" temperature="$temperature" budget_scale="$budget_scale"
    run_stage 7 "decoder.$sys_tag" stage7_decoder
fi

if want 8; then
    # the codec: with the fine-tuned decoder, the final model's own (stage2_flow.model.codec_dir: its decoder/, which it
    # refuses if it was fine-tuned on another model.pt's output); else stage one's, named
    codec_opt=()
    [ "$decoder_finetune" = true ] || codec_opt=(--stage1-exp-dir "$s1_exp")
    synth() {  # synth DATA_DIR OUT_DIR [options]; it execs python, so run it in a subshell or in the background
        local data=$1 out=$2; shift 2
        exec python -m stage2_flow.synthesize $ow --device $device --exp-dir "$final_s2" --data-dir "$data" --out-dir "$out" \
            ${codec_opt[@]+"${codec_opt[@]}"} --nfe "$nfe" --solver "$solver" --temperature "$temperature" $synth_args "$@"
    }
    stage8_synth() {
        local x k pids
        if [ "$decoder_finetune" = true ] && [ ! -f "$final_s2/decoder/model.pt" ]; then  # not stage one's, silently
            echo "$0: stage 8: $final_s2/decoder/model.pt is missing: this system decodes with the decoder stage 7" \
                "fine-tunes on the final model's output (run --stage 7), or give --decoder-finetune false" >&2
            return 1
        fi
        if [ -f "$done_dir/stage8.synth.$other_sys" ]; then  # synth/ holds the other system's audio: it goes, of every
            # set that system made (a set only it made would otherwise stay, unmarked, and stop a later stage 8 of it)
            local other_sets
            other_sets=$(words $test_sets $(_marker_value "$done_dir/stage8.synth.$other_sys" sets))
            log "stage 8: removing $other_sys's synthesis of $other_sets from $final_s2/synth/ (the other decoder's)" \
                "and its markers of stages 8-10 (a run of $other_sys redoes them)"
            for x in $other_sets; do rm -rf "${final_s2:?}/synth/$x"; done
        fi
        forget_other_system 8
        for x in $test_sets; do
            if [ "$synth_nj" -le 1 ]; then
                ( synth "data/$x" "$final_s2/synth/$x" )
                continue
            fi
            python -m shared.datadir split "data/$x" "$synth_nj"
            pids=()
            # a failed job (or Ctrl-C) ends the stage, and the other jobs with it (a script's background jobs
            # ignore SIGINT; each job is the python process itself, synth execs it); what they wrote is kept,
            # and a rerun goes on from there
            trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
            for k in $(seq "$synth_nj"); do
                synth "data/$x/split$synth_nj/$k" "$final_s2/synth/$x/split$synth_nj/$k" --prompt-pool "data/$x" \
                    --num-threads $(( $(nproc) / synth_nj > 0 ? $(nproc) / synth_nj : 1 )) \
                    $([ "$ngpu" -gt 0 ] && echo "--device cuda:$(( (k - 1) % ngpu ))") &
                pids+=($!)
            done
            wait_jobs "${pids[@]}"  # the first job to fail stops the others and fails the stage
            trap - EXIT
            python -m shared.datadir combine "$final_s2/synth/$x" "$final_s2/synth/$x/split$synth_nj"/*
            if compgen -G "$final_s2/synth/$x/split$synth_nj/*/utt2prompt" > /dev/null; then  # a zero-shot model's references
                LC_ALL=C sort "$final_s2/synth/$x/split$synth_nj"/*/utt2prompt > "$final_s2/synth/$x/.utt2prompt.tmp"
                mv "$final_s2/synth/$x/.utt2prompt.tmp" "$final_s2/synth/$x/utt2prompt"
            fi
        done
    }
    stage_with --retag --stage2-tag --sets "$test_sets" --after "stage2.tokens $final_marker $codec_marker" \
        nfe="$nfe" solver="$solver" temperature="$temperature" synth_args="$(words $synth_args)"
    run_stage 8 "synth.$sys_tag" stage8_synth
fi

if want 9; then
    stage9_eval() {
        if [ -f "$done_dir/stage8.synth.$other_sys" ]; then
            echo "$0: stage 9: $final_s2/synth/ holds the synthesis of $other_sys (decoded by the other decoder):" \
                "run this system's stage 8 first (--stage 8)" >&2
            return 1
        fi
        # the judge of every system's RESULTS: an existing one is kept, also with --overwrite true (its training is
        # time-capped: another would score differently), unless --retrain-asr true or it is the other kind's (--smoke)
        local asr_ow=""
        if [ "$retrain_asr" = true ] || compgen -G "$other_done/stage9.*" > /dev/null; then
            asr_ow=--overwrite
        elif [ "$overwrite" = true ] && [ -f exp/asr/model.pt ]; then
            log "stage 9: keeping the phone recogniser exp/asr that every system's RESULTS are judged by (retraining" \
                "would change their scores; then rerun every system's stage 9): --overwrite true --retrain-asr true," \
                "or remove exp/asr, to retrain it"
        fi
        python -m shared.phone_recognizer.train $asr_ow --config "$asr_conf" --data-dir "data/$train_set" \
            --token-file "data/$train_set/token" --dev-dir "data/$dev_set" --exp-dir exp/asr "train.device=$device" $asr_args
        for x in $test_sets; do
            python -m shared.evaluate $ow --mode tts --ref-dir "data/$x" --gen-dir "$final_s2/synth/$x" \
                --phone-recognizer exp/asr --ref-token-file "data/$x/token" --language "$language" \
                --out "$final_s2/eval/$x/metrics.json" --plots-dir "$final_s2/eval/$x/plots" --ref-cache "$ref_cache"
            # the codec's own PER: how much of the TTS PER the codec already explains
            [ ! -f "$s1_exp/resynth/$x/wav.scp" ] || score_resynth "$x" --phone-recognizer exp/asr --ref-token-file "data/$x/token"
        done
        # every model decoded by the system's codec, so the sweep compares the flows alone
        local codec=$s1_exp
        [ "$decoder_finetune" = false ] || codec=$(python -c "from stage2_flow.model import codec_dir; print(codec_dir('$final_s2'))")
        python -m stage2_flow.nfe_sweep $ow --device $device --exp-dirs "$s2_exp" $([ "$reflow" = true ] && echo "${s2_exp}_reflow") \
            --codec-exp-dir "$codec" \
            --data-dir "data/$results_set" --nfe $nfe_sweep --solver "$solver" --temperature "$temperature" \
            --phone-recognizer exp/asr --out-dir "exp/nfe_sweep/$sys_tag" $nfe_sweep_args
        write_results
    }
    stage_with --retag --stage2-tag --sets "$test_sets" --after "stage2.tokens stage5.resynth.$stage1_tag \
        stage6.stage2_train.$stage2_tag $final_marker stage8.synth.$sys_tag" results_set="$results_set" \
        language="$language" asr_conf="$(conf_digest "$asr_conf")" asr_args="$(words $asr_args)" \
        nfe_sweep="$(words $nfe_sweep)" nfe_sweep_args="$(words $nfe_sweep_args)" solver="$solver" \
        temperature="$temperature"
    run_stage 9 "eval.$sys_tag" stage9_eval
fi

corpus_report=
[ -f data/local/corpus_report.json ] && corpus_report=data/local/corpus_report.json
if want 10; then
    stage10_pack() {
        write_results  # again, now that stage 9's own time is in exp/stage_times.tsv
        # the card's sampling settings: those the scored synthesis recorded (its synth.json), not this run's options
        python -m shared.pack --stage1-exp-dir "$s1_exp" --stage2-exp-dir "$final_s2" ${no_decoder[@]+"${no_decoder[@]}"} --results "$results_md" \
            ${corpus_report:+--corpus-report "$corpus_report"} --synth-dir "$final_s2/synth/$results_set" \
            --out-dir "$package_dir"
    }
    package_dir=exp/packed/${package_name:-${corpus_name}_$sys_tag}
    stage_with --retag --stage2-tag --after "stage8.synth.$sys_tag stage9.eval.$sys_tag" results_set="$results_set" \
        package_dir="$package_dir"
    run_stage 10 "pack.$sys_tag" stage10_pack
fi

if [ "$overwrite" = true ]; then  # the stages run here replaced the other kind of run's outputs of the same names;
    # its markers of other tags and systems stay, with what they made
    for m in ${stages_run[@]+"${stages_run[@]}"}; do rm -f "$other_done/$m"; done
fi
[ "$stop_stage" -lt 8 ] || log "done. wavs: $final_s2/synth/  results: $results_md  plots: $final_s2/eval/*/plots  logs: exp/logs/"
