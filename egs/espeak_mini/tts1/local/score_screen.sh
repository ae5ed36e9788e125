#!/usr/bin/env bash
# The recipe's final models scored on a larger held-out set, after run.sh has finished stage 9.
#
# The 150 test sentences' real audio makes only 11-14 phone errors, too few to settle a PER ratio (run AF: 4.27x
# [2.65x, 8.50x]); 380 more sentences (local/screen_set.py: the corpus's generator with another seed, every voice,
# ~12000 phones) give the real audio ~50. The final stage-two model synthesises them with the sampling settings
# of stage 8 and its codec (read from the synth.json of the job that made the test set's audio: the test set's own,
# or with --synth-nj N one of synth/test/splitN/; shared.results.synthesis_record, which RESULTS.md and the packed
# model's card read them with too), the codec resynthesises them, and shared.evaluate scores both
# against the real audio with stage 9's recogniser (exp/asr). About 4 minutes on 2 cores (5-7 with --extra-judges).
#
#   local/score_screen.sh [--stage1-conf conf/stage1.yaml] [--stage1-tag TAG] [--stage2-conf conf/stage2.yaml]
#       [--stage2-tag TAG] [--reflow true] [--num-sentences 380]
#       [--extra-judges "/path/to/another/run/egs/espeak_mini/tts1/exp/asr ..."]
#
# The options name the system as run.sh's do: the tags default as there (the codec's: vae for conf/stage1.yaml,
# <name> for conf/stage1_<name>.yaml; stage two's: flow, + _<stage1 tag> for a codec other than vae, + _<name> for
# --stage2-conf conf/stage2_<name>.yaml; ../../../utils/system_tags.sh).
#
# Writes data/screen (kept for the next call), EXP/synth/screen, EXP/eval/screen/metrics.json for the final
# stage-two model (screen_s1decoder for the system stage 8 decoded with stage one's decoder, --decoder-finetune
# false) and exp/stage1/<tag>/{resynth,eval}/screen for the codec, and prints both PER ratios.
# One 180-s judge's reading moves the ratio as much as the sentences do (run AG: 1.17x to 1.71x by six judges,
# RESULTS.md); --extra-judges (other runs' exp/asr on this corpus) also prints each judge's ratio and the pooled
# one (shared.phone_recognizer.judges; EXP/eval/screen/judges.json).
set -euo pipefail

stage1_conf=conf/stage1.yaml  # only for the stage-one tag's default
stage1_tag=           # default: as run.sh's (vae for conf/stage1.yaml)
stage2_conf=conf/stage2.yaml  # only for the stage-two tag's default
stage2_tag=           # default: as run.sh's (flow for the vae codec and conf/stage2.yaml)
reflow=true
test_set=test         # whose synth.json holds stage 8's sampling settings
screen=data/screen
num_sentences=        # default 380: how many the screening set is made with (kept for the next call)
extra_judges=         # more recognisers (exp/asr dirs) to read the same audio, pooled with exp/asr
help_message="Usage: $0 [options]   (run from the recipe dir after run.sh's stage 9)"

. "$(dirname "$0")/../../../utils/parse_options.sh"
# shellcheck source=../../../utils/system_tags.sh
. "$(dirname "$0")/../../../utils/system_tags.sh"
repo_root=$(cd "$(dirname "$0")/../../../.." && pwd)
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"

[ -n "$stage1_tag" ] || stage1_tag=$(default_stage1_tag "$stage1_conf")
[ -n "$stage2_tag" ] || stage2_tag=$(default_stage2_tag "$stage1_tag" "$stage2_conf")
s1_exp=exp/stage1/$stage1_tag
final_s2=exp/stage2/$(final_stage2_tag "$stage2_tag" "$reflow")
synth_dir=$final_s2/synth/$test_set  # stage 8's synthesis of the test set: its settings are read below
for need in "$s1_exp/model.pt" "$final_s2/model.pt" exp/asr/model.pt exp/tokens.txt "$synth_dir/wav.scp"; do
    if [ ! -f "$need" ]; then
        echo "$0: $need is missing: run run.sh through stage 9 first" >&2
        exit 1
    fi
done

if [ ! -f "$screen/token" ]; then
    python local/screen_set.py --out-dir "$screen" --num-sentences "${num_sentences:-380}"
elif [ -n "$num_sentences" ]; then  # it was ignored: the set an earlier call made was scored
    echo "$0: --num-sentences $num_sentences: $screen exists already ($(wc -l < "$screen/text") sentences, made by an" \
        "earlier call); remove it to make another, or leave the option out to score it" >&2
    exit 1
fi

# stage 8's sampling, as recorded by the synthesis that made the test set's audio (the test set's own synth.json, or
# with --synth-nj N a job's): the same NFE, solver, temperature, guidance, rate and seed, and its codec where
# that was stage one's (run.sh --decoder-finetune false) rather than the final model's own (its decoder/, found
# again as stage 8 found it) (an assignment, so a failure to read them stops the script instead of synthesising
# with the defaults)
recorded=$(python - "$synth_dir" "$s1_exp" <<'EOF'
import json, os, sys
from shared.results import synthesis_record
record = synthesis_record(sys.argv[1])
if not record.is_file():
    sys.exit(f"{record} is missing: run run.sh through stage 9 first")
s = json.load(open(record))
args = ["--nfe", s["nfe"], "--solver", s["solver"], "--temperature", s["temperature"], "--cfg-scale", s["cfg_scale"],
        "--rate", s["rate"], "--seed", s["seed"]] + (["--sway", s["sway"]] if s.get("sway") is not None else [])
codec = (s.get("paths") or {}).get("codec")
if codec and os.path.basename(os.path.normpath(codec)) != "decoder":  # stage one's: the same dir where it is now
    args += ["--stage1-exp-dir", sys.argv[2]]
print(" ".join(map(str, args)))
EOF
)
read -r -a sampling <<< "$recorded"
tts_name=screen  # the two systems of one final model (its decoder or stage one's) keep their screening apart
for a in "${sampling[@]}"; do if [ "$a" = --stage1-exp-dir ]; then tts_name=screen_s1decoder; fi; done
python -m stage2_flow.synthesize --exp-dir "$final_s2" --data-dir "$screen" --out-dir "$final_s2/synth/$tts_name" "${sampling[@]}"
python -m stage1_vae.decode --exp-dir "$s1_exp" --data-dir "$screen" --out-dir "$s1_exp/resynth/screen"
scoring=(--phone-recognizer exp/asr --ref-token-file "$screen/token" --ref-cache exp/ref_analysis)
python -m shared.evaluate --mode codec --ref-dir "$screen" --gen-dir "$s1_exp/resynth/screen" "${scoring[@]}" \
    --out "$s1_exp/eval/screen/metrics.json"
python -m shared.evaluate --mode tts --ref-dir "$screen" --gen-dir "$final_s2/synth/$tts_name" "${scoring[@]}" \
    --out "$final_s2/eval/$tts_name/metrics.json" --plots-dir "$final_s2/eval/$tts_name/plots"

python - "$s1_exp/eval/screen/metrics.json" "$final_s2/eval/$tts_name/metrics.json" <<'EOF'
import json, sys
from shared.evaluate import per_ratio_line
for name, path in zip(("codec", "TTS"), sys.argv[1:]):
    m = json.load(open(path))
    print(f"[screen] {name}: {m['num_utts']} utterances, {per_ratio_line(m)} ({path})")
EOF

if [ -n "$extra_judges" ]; then
    # shellcheck disable=SC2086  # a list of dirs
    python -m shared.phone_recognizer.judges --judges exp/asr $extra_judges --ref-dir "$screen" \
        --gen-dir "$s1_exp/resynth/screen" --gen-dir "$final_s2/synth/$tts_name" --ref-token-file "$screen/token" \
        --out "$final_s2/eval/$tts_name/judges.json"
fi
