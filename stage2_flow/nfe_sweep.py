"""Quality and speed against the number of function evaluations, for one or more stage-two exp dirs
(e.g. the base model and its reflow fine-tune).

    python -m stage2_flow.nfe_sweep --exp-dirs exp/stage2/flow exp/stage2/flow_reflow --data-dir data/test \\
        --nfe 1 2 4 8 16 32 --solver euler [--phone-recognizer exp/asr] --out-dir exp/nfe_sweep

For each exp dir and NFE: synthesises the data dir into ``OUT/<exp name>/nfe<N>/`` (a data dir), times it
(RTF over the whole set, batched), scores it with ``shared.evaluate`` (MCD-DTW etc. against the data dir's
reference audio) and writes ``OUT/summary.json`` and ``OUT/summary.md`` (each metric's mean over utterances, but
PERs pooled over the set, errors / phones, as RESULTS.md's TTS table shows them). Every NFE starts from the same x0
(same seed), so ``path_gap``, the relative distance of each NFE's latents from the finest NFE's, measures
how straight the sampling paths are: what reflow is for. With two or more exp dirs, each later one is
compared with the first at every NFE on the same utterances (``shared.compare``: paired differences with
95% bootstrap intervals over the utterances, a PER's pooled as the summary's, errors / phones; ``OUT/paired.json``
and a section of ``summary.md``), so "reflow is better at 2 NFE" is a measured statement, not a reading of two means. A cell's synthesis is reused while its model and
sampling settings are the same; its evaluation is rerun (``shared.evaluate`` recomputes nothing while its inputs and
settings, ``--phone-recognizer`` and ``--no-f0`` among them, are those of the cell's metrics.json). The exp dirs'
names (``OUT/<name>/``) must differ. Speakers are those of ``--data-dir`` as in ``stage2_flow.synthesize``: one the
model was not trained on is an error for a model whose voices are speaker ids (``--speaker NAME``: every utterance in
one trained voice), the voice of a speech prompt for a zero-shot model. A model with speaker ids and a prompt encoder
is swept by its ids alone, without the prompts it was trained with (a warning says so).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import torch

from shared.compare import format_table, paired_compare, read_utt_table
from shared.config import positive_int
from shared.datadir import spread_subset
from shared.io import atomic_save_torch, atomic_write, read_json, read_kv, write_json, write_kv

LATENTS = "latents.pt"  # {utt: normalised latent (D, F)} of a cell, for path_gap


def main(argv: list[str] | None = None) -> int:
    from shared.device import add_device_arg
    from shared.evaluate import evaluate
    from stage2_flow.solvers import EVALS_PER_STEP
    from stage2_flow.synthesize import (Synthesizer, encode_tokens, inputs_digest, model_hashes, reference_utterances,
                                        references_digest, require_tokens, speakers_of, voice)

    p = argparse.ArgumentParser(prog="python -m stage2_flow.nfe_sweep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dirs", nargs="+", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--nfe", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--solver", default="euler")
    p.add_argument("--codec-exp-dir", default=None,
                   help="decode every model with this codec exp dir (default: each model's own, see stage2_flow.model.codec_dir); "
                        "one codec for all isolates what the flow models differ in, e.g. a base model and its reflow")
    p.add_argument("--phone-recognizer", default=None)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--max-utts", type=int, default=None,
                   help="score this many utterances, evenly spaced over the sorted ids (so every speaker is in)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=None, help="prior sigma scale of every cell (x0 = mu + T sigma eps; "
                   "default: each model's validation.temperature, as stage2_flow.synthesize)")
    p.add_argument("--no-f0", action="store_true")
    p.add_argument("--speaker", default=None, help="synthesise every utterance in this training voice (default: each in "
                   "its utt2spk speaker's; a speaker the model was not trained on is an error unless a prompt gives its voice)")
    p.add_argument("--num-threads", type=int, default=2)
    add_device_arg(p)
    p.add_argument("--overwrite", action="store_true", help="redo every cell (cells of another model are redone anyway)")
    args = p.parse_args(argv)
    per_step = EVALS_PER_STEP.get(args.solver)
    if per_step is None:
        p.error(f"--solver {args.solver}: a sweep needs a fixed-step solver ({', '.join(sorted(EVALS_PER_STEP))}); "
                "dopri5 chooses its own number of evaluations")
    if any(n < per_step or n % per_step for n in args.nfe):
        p.error(f"--solver {args.solver} takes {per_step} evaluations per step: every --nfe must be a multiple of {per_step}")
    names = [Path(os.path.abspath(e)).name for e in args.exp_dirs]  # each exp's cells are OUT/<name>/nfe<N> (a link's own name)
    same = sorted({n for n in names if names.count(n) > 1})
    if same:
        p.error(f"--exp-dirs: {', '.join(e for e, n in zip(args.exp_dirs, names) if n in same)} share the name "
                f"{', '.join(same)}: their cells (OUT/<name>/nfe<N>) would overwrite each other; give exp dirs of "
                "different names (a link of another name to one of them will do)")
    torch.set_num_threads(args.num_threads)
    data = Path(args.data_dir)
    utt2text = read_kv(data / "text")
    utts = spread_subset(sorted(utt2text), args.max_utts)
    utt2tok = {u: v.split() for u, v in read_kv(data / "token").items()} if (data / "token").is_file() else None
    utt2spk = read_kv(data / "utt2spk") if (data / "utt2spk").is_file() else {}
    out = Path(args.out_dir)
    summary: dict[str, dict[str, dict]] = {}
    for exp, name in zip(args.exp_dirs, names):
        synth = Synthesizer.from_exp_dir(exp, args.device, stage1_exp_dir=args.codec_exp_dir)
        # which trained model and codec made a cell, by their weights' SHA-256 as synthesis records them (a re-fine-tuned
        # EXP/decoder is another codec in the same dir); a codec without weights (a stand-in) by its dir
        hashes = model_hashes(exp, synth.codec_source)
        model_id = f"{hashes['model_sha256']}:{hashes['codec_sha256'] or synth.codec_source.resolve()}"
        ids = encode_tokens(synth.vocab, {u: utt2tok[u] for u in utts}) if utt2tok else dict(zip(utts, synth.tokenize([utt2text[u] for u in utts], utts)))
        require_tokens(ids)
        # a zero-shot model speaks in its speaker's voice, by another of its utterances: as stage2_flow.synthesize
        prompted = synth.needs_prompt
        spk_of = speakers_of(synth, utts, utt2spk, args.speaker, prompted)
        spk = [voice(synth, spk_of[u], prompted) for u in utts]
        prompts, refs = None, {}
        if prompted:
            from shared.datadir import DataDir

            pool, refs = DataDir.load(data, validate=False), reference_utterances(utts, utt2spk)
            prompts = [synth.reference(pool, refs[u]) for u in utts]
        latents: dict[int, dict[str, torch.Tensor]] = {}
        # what else decides a cell's audio: a cell of other texts, voices or tokens (the inputs' digest) is redone
        sampling = {"temperature": synth.temperature if args.temperature is None else args.temperature, "solver": args.solver,
                    "seed": args.seed, "speaker": args.speaker, "inputs_sha256": inputs_digest(utts, spk_of, ids),
                    "references_sha256": references_digest(refs)}
        # where its RTF was measured: a cell timed on another device, thread count or batch size is timed again
        timed_on = {"device": str(args.device), "num_threads": args.num_threads, "batch_size": args.batch_size}
        warm = False
        for nfe in args.nfe:
            cell = out / name / f"nfe{nfe}"
            metrics = cell / "metrics.json"
            old = read_json(cell / "timing.json") if (cell / "timing.json").is_file() else None
            if (not args.overwrite and old is not None and (cell / LATENTS).is_file() and (cell / "wav.scp").is_file()
                    and sorted(read_kv(cell / "wav.scp")) == utts  # a cell made for another subset is redone,
                    and old.get("model") == model_id  # and one of another model or sampling setting
                    and all(old.get(k) == v for k, v in {**sampling, **timed_on}.items())):
                timing, latents[nfe] = old, torch.load(cell / LATENTS)
            else:
                if not warm:  # the first call's one-off costs (allocation, lazy init) made the first cell's RTF 9x
                    synth.synthesize([ids[utts[0]]], speaker=spk[:1], prompt=prompts[:1] if prompts else None, nfe=1,
                                     solver=args.solver, seed=args.seed, temperature=sampling["temperature"])
                    warm = True
                timing, latents[nfe] = synthesise_cell(synth, cell, utts, ids, spk, prompts, utt2text, utt2spk, nfe, args, model_id,
                                                       {**sampling, **timed_on})
            # evaluated every time: shared.evaluate redoes nothing while the cell's and the references' audio, the
            # recogniser and the evaluation settings are those its metrics.json was made from
            res = evaluate(data, cell, metrics, "tts", args.phone_recognizer, None, None, 2, not args.no_f0, allow_subset=True,
                           ref_cache=out / "ref_analysis")
            summary.setdefault(name, {})[str(nfe)] = {**timing, **_flat(res), "utterances": len(utts),
                                                      "scored": _fewer(res, len(utts))}
            print(f"{name} NFE {nfe}: RTF {timing['rtf']:.4f} " + " ".join(f"{k}={v:.3f}" for k, v in _flat(res).items()), flush=True)
        finest = max(latents)
        for nfe, z in latents.items():
            summary[name][str(nfe)]["path_gap"] = path_gap(z, latents[finest])
    write_json(out / "summary.json", summary)
    cols = sorted({k for rows in summary.values() for r in rows.values() for k in r
                   if k not in ("nfe", "audio_seconds", "compute_seconds", "model", "utterances", "scored", *sampling,
                                "device", "num_threads", "batch_size")})
    lines = ["| exp | NFE | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for name, rows in summary.items():
        for nfe, r in rows.items():
            lines.append(f"| {name} | {nfe} | " + " | ".join(f"{r[c]:.4g}" if isinstance(r.get(c), (int, float)) else "" for c in cols) + " |")
    text = "\n".join(lines) + "\n"
    paired = compare_cells(out, names, [str(n) for n in args.nfe])
    (out / "paired.json").unlink(missing_ok=True)  # an earlier sweep's comparison is not this one's
    if paired:
        write_json(out / "paired.json", paired)
        for c in paired:
            text += (f"\n{c['other']} vs {c['base']} at NFE {c['nfe']} (paired over utterances):\n\n"
                     + format_table(c["metrics"], c["base"], c["other"]))
    with atomic_write(out / "summary.md") as f:
        f.write(text)
    print((out / "summary.md").read_text())
    return 0


def synthesise_cell(synth, cell: Path, utts: list[str], ids: dict[str, list[int]], spk: list, prompts, utt2text: dict[str, str],
                    utt2spk: dict[str, str], nfe: int, args: argparse.Namespace, model_id: str,
                    sampling: dict) -> tuple[dict, dict[str, torch.Tensor]]:
    """Synthesise one cell (wavs, its data dir, the normalised latents) and write ``timing.json`` last, the mark of a
    finished synthesis; returns the timing and the latents. The cell's old evaluation is removed first, so that a run stopped
    before the new one is finished never leaves the old scores beside the new audio."""
    from shared.audio import save_audio

    for stale in ("timing.json", "metrics.json", "metrics_utt.tsv"):
        (cell / stale).unlink(missing_ok=True)
    t0 = time.time()
    wavs, lats = synth.synthesize([ids[u] for u in utts], speaker=spk, prompt=prompts, nfe=nfe, solver=args.solver, seed=args.seed,
                                  temperature=sampling["temperature"], batch_size=args.batch_size, return_latents=True)
    elapsed = time.time() - t0
    latents = {u: synth.norm.normalize(z[None])[0] for u, z in zip(utts, lats)}
    atomic_save_torch(latents, cell / LATENTS)
    sr = int(synth.codec.sample_rate)
    audio = sum(w.numel() for w in wavs) / sr
    for u, w in zip(utts, wavs):
        save_audio(cell / "wav" / f"{u}.wav", w, sr)
    write_kv(cell / "wav.scp", {u: str((cell / "wav" / f"{u}.wav").resolve()) for u in utts})
    write_kv(cell / "text", {u: utt2text[u] for u in utts})
    write_kv(cell / "utt2spk", {u: utt2spk.get(u, "spk") for u in utts})
    timing = {"nfe": nfe, "rtf": elapsed / audio, "audio_seconds": audio, "compute_seconds": elapsed, "model": model_id, **sampling}
    write_json(cell / "timing.json", timing)
    return timing, latents


def compare_cells(out: Path, names: list[str], nfes: list[str]) -> list[dict]:
    """``[{base, other, nfe, metrics: shared.compare result}]`` for every later exp against the first, per NFE: a PER
    difference pooled over the utterances (errors / phones, from the phone counts of the cells' tables, which
    :func:`shared.evaluate.evaluate` adds to a cell scored before it wrote them)."""
    res = []
    for other in names[1:]:
        for nfe in nfes:
            a, b = (out / n / f"nfe{nfe}" / "metrics_utt.tsv" for n in (names[0], other))
            if a.is_file() and b.is_file():
                res.append({"base": names[0], "other": other, "nfe": nfe,
                            "metrics": paired_compare(read_utt_table(a), read_utt_table(b))})
    return res


def path_gap(z: dict[str, torch.Tensor], z_ref: dict[str, torch.Tensor]) -> float:
    """Relative L2 distance ``||z - z_ref|| / ||z_ref||`` over all utterances, in the model's normalised latent
    space, between samples from the same x0 at two NFEs. Against the finest NFE it measures how curved the
    sampling paths are (0: straight, one Euler step is exact); reflow should shrink it."""
    num = sum(float(((z[u] - z_ref[u]) ** 2).sum()) for u in z_ref)
    den = sum(float((z_ref[u] ** 2).sum()) for u in z_ref)
    return (num / max(den, 1e-12)) ** 0.5


def _fewer(res: dict, utterances: int) -> dict[str, int]:
    """``{metric: n}`` of a shared.evaluate summary's means taken over fewer than ``utterances`` (NaN rows left out:
    an utterance with no frame voiced in both has no log-F0 RMSE), which RESULTS.md's NFE table marks."""
    return {k: v["n"] for k, v in res.get("metrics", {}).items()
            if isinstance(v, dict) and "n" in v and v["n"] < utterances and not k.endswith("seconds")}


def _flat(res: dict) -> dict[str, float]:
    """A shared.evaluate summary's numbers: each metric's mean over utterances, but the error rates it pools over
    the test set (its ``corpus`` section: phone errors / reference phones, Whisper's word errors / words; a PER must
    be there) as RESULTS.md's TTS table shows them under the same headers: the mean of per-utterance rates would
    weigh a short sentence as much as a long one."""
    pooled = res.get("corpus", {})

    def value(k: str, v: dict) -> float:
        if k.startswith("per_") or k in pooled:
            return math.nan if pooled[k] is None else float(pooled[k])  # null: no reference words at all
        return float(v["mean"])
    return {k: value(k, v) for k, v in res.get("metrics", {}).items()
            if isinstance(v, dict) and "mean" in v and not k.endswith("seconds")}


if __name__ == "__main__":
    raise SystemExit(main())
