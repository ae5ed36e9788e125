"""Ground-truth-aligned (GTA) latents: what a trained model generates for the training sentences on the
real utterances' own timing, written as a latent dump for fine-tuning the codec's decoder on them.

    python -m stage2_flow.gta --exp-dir exp/stage2/flow_reflow --data-dir data/train --latents dump/vae/train \\
        --out-dir dump/vae/train_gta_flow [--nfe 4 --solver euler --temperature 0.2 --copies 2]
    python -m stage1_vae.train --config conf/decoder_gta.yaml --init-from exp/stage1/vae \\
        --decoder-latents dump/vae/train_gta_flow --data-dir data/train --exp-dir exp/stage2/flow_reflow/decoder

Durations come from MAS against the real latents (``--latents``), so the generated latents have the real
latents' frame count and line up with the audio; sampling is what synthesis uses (NFE, solver, temperature),
so the decoder sees the kind of latent it will be given. Writes ``<out>/latents/<key>.pt`` (de-normalised,
float32 ``(D, F)``, the codec's scale as ``stage1_vae.encode`` writes it), ``latents.scp``, ``utt2frames``,
``key2utt`` (keys are ``<utt>``, or ``<utt>-c<k>`` for ``--copies`` > 1: k-th noise draw) and ``gta_info.json``
(the settings and the SHA-256 of the model.pt that generated them). A stage-two exp dir holding ``decoder/`` (a
codec exp dir) decodes with it as long as that decoder was fine-tuned on its current model.pt's output; see
:func:`stage2_flow.model.codec_dir`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from shared.io import remove_outputs, write_json
from shared.latents import LatentDumpWriter
from stage2_flow.data import collate_tts
from stage2_flow.flow import utterance_generators
from stage2_flow.reflow import (add_generation_args, check_generation_args, dump_settings, finished_dump, generate_pairs,
                                model_and_dataset)


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    p = argparse.ArgumentParser(prog="python -m stage2_flow.gta", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generation_args(p, nfe=4, solver="euler")
    args = p.parse_args(argv)
    check_generation_args(p, args)
    torch.set_num_threads(args.num_threads)
    exp, out = Path(args.exp_dir), Path(args.out_dir)
    if out.resolve() == Path(args.latents).resolve():
        p.error("--out-dir is --latents: the GTA latents would replace the real ones they are aligned to")
    settings = dump_settings(args, exp)
    if finished_dump(out, "latents.scp", "gta_info.json", settings, args.overwrite):
        return 0
    model, ds = model_and_dataset(exp, args.data_dir, args.latents, args.device, args.cfg_scale)
    if args.overwrite:  # only once the inputs are known good: a refused run keeps the old latents
        remove_outputs(out, ("latents.scp", "gta_info.json", "utt2frames", "key2utt", "latents"))
    order = sorted(range(len(ds)), key=lambda i: ds.latents[i].shape[1])  # similar lengths batch with less padding
    dump, t0 = LatentDumpWriter(out), time.time()
    for copy in range(args.copies):
        for k in tqdm(range(0, len(order), args.batch_size), desc=f"GTA latents {copy + 1}/{args.copies}", unit="batch"):
            items = [ds[(i, args.seed + 7919 * copy + i)] for i in order[k : k + args.batch_size]]
            gens = utterance_generators(args.seed + 7919 * copy, [it["utt"] for it in items])  # the same at any batch size
            pairs = generate_pairs(model, collate_tts(items), args.nfe, args.solver, args.cfg_scale, args.temperature, gens)
            for it, pair in zip(items, pairs):
                key = it["utt"] if args.copies == 1 else f"{it['utt']}-c{copy}"
                dump.add(key, ds.normalizer.denormalize(pair["x1"][None])[0], utt=it["utt"])
    write_json(out / "gta_info.json", {"exp_dir": str(exp.resolve()), **settings, "seconds": round(time.time() - t0, 1)})
    dump.finish()
    print(f"wrote {len(dump.scp)} GTA latents ({sum(dump.frames.values())} frames) to {out} in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
