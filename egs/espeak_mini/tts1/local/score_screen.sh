#!/usr/bin/env bash
# The recipe's final models scored on a larger held-out set, after run.sh has finished stage 9.
#
# The 150 test sentences' real audio makes only 11-14 phone errors, too few to settle a PER ratio (run AF: 4.27x
# [2.65x, 8.50x]); 380 more sentences (local/screen_set.py: the corpus's generator with another seed, every voice,
# ~12000 phones) give the real audio ~50. The final stage-two model synthesises them with the sampling settings
# of stage 8 (read from its test-set synth.json), the codec resynthesises them, and shared.evaluate scores both
# against the real audio with stage 9's recogniser (exp/asr). About 3 minutes on 2 cores.
#
#   local/score_screen.sh [--stage1-tag vae] [--stage2-tag flow] [--reflow true] [--num-sentences 380]
#       [--extra-judges "/path/to/another/run/egs/espeak_mini/tts1/exp/asr ..."]
#
# Writes data/screen (kept for the next call), EXP/synth/screen, EXP/eval/screen/metrics.json for the final
# stage-two model and exp/stage1/<tag>/{resynth,eval}/screen for the codec, and prints both PER ratios.
# One 180-s judge's reading moves the ratio as much as the sentences do (run AG: 1.17x to 1.71x by six judges,
# RESULTS.md); --extra-judges (other runs' exp/asr on this corpus) also prints each judge's ratio and the pooled
# one (shared.phone_recognizer.judges; EXP/eval/screen/judges.json).
set -euo pipefail

stage1_tag=vae
stage2_tag=flow
reflow=true
test_set=test         # whose synth.json holds stage 8's sampling settings
screen=data/screen
num_sentences=380
extra_judges=         # more recognisers (exp/asr dirs) to read the same audio, pooled with exp/asr
help_message="Usage: $0 [options]   (run from the recipe dir after run.sh's stage 9)"

. "$(dirname "$0")/../../../utils/parse_options.sh"
repo_root=$(cd "$(dirname "$0")/../../../.." && pwd)
export PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}"

s1_exp=exp/stage1/$stage1_tag
final_s2=exp/stage2/$stage2_tag
[ "$reflow" = true ] && final_s2=${final_s2}_reflow
settings=$final_s2/synth/$test_set/synth.json
if [ ! -f "$settings" ]; then  # stage 8 in parallel jobs (--synth-nj): the first job's settings, the same as all's
    for f in "$final_s2/synth/$test_set"/split*/1/synth.json; do
        if [ -f "$f" ]; then settings=$f; break; fi
    done
fi
for need in "$s1_exp/model.pt" "$final_s2/model.pt" exp/asr/model.pt exp/tokens.txt "$settings"; do
    if [ ! -f "$need" ]; then
        echo "$0: $need is missing: run run.sh through stage 9 first" >&2
        exit 1
    fi
done

[ -f "$screen/token" ] || python local/screen_set.py --out-dir "$screen" --num-sentences "$num_sentences"

# stage 8's sampling, as recorded: the same NFE, solver, temperature, guidance, rate and seed (an assignment,
# so a failure to read them stops the script instead of synthesising with the defaults)
recorded=$(python - "$settings" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
args = ["--nfe", s["nfe"], "--solver", s["solver"], "--temperature", s["temperature"], "--cfg-scale", s["cfg_scale"],
        "--rate", s["rate"], "--seed", s["seed"]] + (["--sway", s["sway"]] if s.get("sway") is not None else [])
print(" ".join(map(str, args)))
EOF
)
read -r -a sampling <<< "$recorded"
python -m stage2_flow.synthesize --exp-dir "$final_s2" --data-dir "$screen" --out-dir "$final_s2/synth/screen" "${sampling[@]}"
python -m stage1_vae.decode --exp-dir "$s1_exp" --data-dir "$screen" --out-dir "$s1_exp/resynth/screen"
scoring=(--phone-recognizer exp/asr --ref-token-file "$screen/token")
python -m shared.evaluate --mode codec --ref-dir "$screen" --gen-dir "$s1_exp/resynth/screen" "${scoring[@]}" \
    --out "$s1_exp/eval/screen/metrics.json"
python -m shared.evaluate --mode tts --ref-dir "$screen" --gen-dir "$final_s2/synth/screen" "${scoring[@]}" \
    --out "$final_s2/eval/screen/metrics.json" --plots-dir "$final_s2/eval/screen/plots"

python - "$s1_exp/eval/screen/metrics.json" "$final_s2/eval/screen/metrics.json" <<'EOF'
import json, sys
for name, path in zip(("codec", "TTS"), sys.argv[1:]):
    m = json.load(open(path))
    lo, hi = m["per_ratio_ci"]
    print(f"[screen] {name}: {m['num_utts']} utterances, phone errors {m['phone_errors_gen']} / real {m['phone_errors_ref']}, "
          f"PER synth / real {m['corpus']['per_ratio']:.2f}x [{lo:.2f}x, {hi:.2f}x] ({path})")
EOF

if [ -n "$extra_judges" ]; then
    # shellcheck disable=SC2086  # a list of dirs
    python -m shared.phone_recognizer.judges --judges exp/asr $extra_judges --ref-dir "$screen" \
        --gen-dir "$s1_exp/resynth/screen" --gen-dir "$final_s2/synth/screen" --ref-token-file "$screen/token" \
        --out "$final_s2/eval/screen/judges.json"
fi
