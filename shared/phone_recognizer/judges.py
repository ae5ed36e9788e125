"""PER ratios of generated to real audio under several phone recognisers ("judges") at once.

    python -m shared.phone_recognizer.judges --judges exp/asr ../runB/exp/asr ../runC/exp/asr \
        --ref-dir data/screen --gen-dir exp/stage2/flow_reflow/synth/screen --gen-dir exp/stage1/vae/resynth/screen \
        --ref-token-file data/screen/token [--out exp/stage2/flow_reflow/eval/screen/judges.json]

At phone error rates of a few tenths of a percent, recognisers trained alike (another seed, another hour of the
same CPU) read the same audio differently enough to move the ratio by more than its interval over sentences:
run AG's screening TTS audio is 1.17x, 1.33x or 1.71x its real audio by three 180-s judges
(egs/espeak_mini/tts1/RESULTS.md). That interval covers the sentences and not the judge. This scores every
generated dir and the real audio with every judge and reports each judge's ratio and the pooled one: each
utterance's errors summed over the judges, the ratio of the sums, and its interval over utterances
(:func:`shared.compare.ratio_ci`: bootstrap, or exact where the generated or the real audio has under 5 errors;
each row says which), then, where it is the bootstrap, a wider one over judges and utterances together
(:func:`shared.compare.ratio_ci_over_judges`), which counts the judges as a sample too: with few judges, a rough one.
The ratio of the sums is the mean of the judges' own ratios weighted by each judge's real-audio error count: a
judge that reads the real audio with few errors weighs less than one that reads it with many (and a judge with no
real errors, whose own ratio is infinite, does not make the pooled one infinite). Train more
judges with ``python -m shared.phone_recognizer.train ... train.seed=N``.
Judges whose weights are byte-identical are refused: a copy, or -- the recipe's judge being time-capped and
seeded -- two runs' judges that happened to train the same number of steps (runs AE and AH, 1107 each).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from shared.compare import format_interval, format_ratio, ratio_ci, ratio_ci_over_judges
from shared.evaluate import json_safe
from shared.io import MODEL_FILE, PathLike, file_sha256, write_json
from shared.phone_recognizer.data import utterance_ids
from shared.phone_recognizer.score import LoadedRecognizer, score_dir


def ratio_row(gen: list[dict[str, int]], real: list[dict[str, int]], utts: list[str]) -> dict:
    """The ratio of generated to real phone errors over ``utts``, summed over judges (one dict of per-utterance
    errors per judge, in the same order in ``gen`` and ``real``), with its interval over utterances; with several
    judges also ``ci_judges``, the interval over judges and utterances (:func:`shared.compare.ratio_ci_over_judges`)."""
    num = np.array([[g[u] for u in utts] for g in gen])
    den = np.array([[r[u] for u in utts] for r in real])
    ratio, ci, method = ratio_ci(num.sum(0), den.sum(0))
    row = {"errors": int(num.sum()), "real_errors": int(den.sum()), "ratio": ratio, "ci": ci, "ci_method": method}
    if len(gen) > 1 and method == "bootstrap":
        row["ci_judges"] = ratio_ci_over_judges(num, den)
    return row


def score_judges(judges: list[PathLike], ref_dir: PathLike, gen_dirs: list[PathLike], ref_token_file: PathLike) -> dict:
    """Every judge on the real audio and on every generated dir (the utterances of each generated dir's
    ``wav.scp``; the real dir must have them all). Returns ``{gen_dir: {"per_judge": {judge: row}, "pooled":
    row}}`` with rows as :func:`ratio_row` makes them."""
    utts = {str(g): utterance_ids(g) for g in gen_dirs}
    empty = [g for g, us in utts.items() if not us]
    if empty:  # a ratio over no utterances would be 0 / 0
        raise ValueError(f"no utterances in {', '.join(empty)}")
    every = sorted(set().union(*utts.values()))
    real_errs, gen_errs = [], {str(g): [] for g in gen_dirs}
    for judge in judges:
        rec = LoadedRecognizer(judge)
        real = score_dir(judge, ref_dir, ref_token_file, recognizer=rec, utts=every)["utts"]
        real_errs.append({u: r["errors"] for u, r in real.items()})
        for g in gen_dirs:
            scored = score_dir(judge, g, ref_token_file, recognizer=rec)["utts"]
            gen_errs[str(g)].append({u: r["errors"] for u, r in scored.items()})
    out = {}
    for g, us in utts.items():
        per_judge = {str(j): ratio_row([gen], [real], us) for j, gen, real in zip(judges, gen_errs[g], real_errs)}
        out[g] = {"num_utts": len(us), "per_judge": per_judge, "pooled": ratio_row(gen_errs[g], real_errs, us)}
    return out


def same_weights(judges: list[Path]) -> tuple[Path, Path] | None:
    """The first two of ``judges`` whose weights are byte-identical, or None."""
    seen: dict[str, Path] = {}
    for j in judges:
        digest = file_sha256(j / MODEL_FILE)
        if digest in seen:
            return seen[digest], j
        seen[digest] = j
    return None


def _fmt(row: dict) -> str:
    text = f"{row['errors']} / {row['real_errors']} = {format_ratio(row['ratio'], row['ci'], row['ci_method'])}"
    if "ci_judges" in row:  # the first interval covers the sentences, this one the judges too
        text += f", {format_interval(row['ci_judges'])} over judges and sentences"
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--judges", nargs="+", required=True, help="trained phone recogniser exp dirs (exp/asr, ...)")
    p.add_argument("--ref-dir", required=True, help="data dir of the real audio (wav.scp)")
    p.add_argument("--gen-dir", action="append", required=True, help="generated data dir (repeat for several)")
    p.add_argument("--ref-token-file", required=True, help="'<utt> tok ...' reference tokens")
    p.add_argument("--out", help="write the table as JSON here")
    a = p.parse_args(argv)
    judges = [Path(j) for j in a.judges]
    same = same_weights(judges)
    if same:  # a dir named twice, a copy, or a judge trained as many steps with the same seed and data
        p.error(f"--judges {same[0]} and {same[1]} hold the same weights ({MODEL_FILE}): one model would count twice "
                "in the pooled ratio")
    seen_gen: dict[Path, str] = {}
    for g in a.gen_dir:  # one system scored twice would be one row under two names, or silently one
        if Path(g).resolve() in seen_gen:
            p.error(f"--gen-dir {seen_gen[Path(g).resolve()]} and {g} are the same dir: give each system once")
        seen_gen[Path(g).resolve()] = g
    torch.set_num_threads(1)  # per-utterance decoding of a small GRU: threads only spin-wait
    result = score_judges(judges, a.ref_dir, [Path(g) for g in a.gen_dir], a.ref_token_file)
    for g, res in result.items():
        for j, row in res["per_judge"].items():
            print(f"[judges] {g}: {j}: phone errors synth / real {_fmt(row)}")
        print(f"[judges] {g}: pooled over {len(a.judges)} judges ({res['num_utts']} utterances): {_fmt(res['pooled'])}")
    if a.out:
        # strict JSON: an infinite ratio (no real-audio errors) or an undefined one (no errors at all) is null
        write_json(a.out, json_safe({"judges": [str(j) for j in a.judges], "ref_dir": str(a.ref_dir), "systems": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
