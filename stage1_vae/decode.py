"""Decode latents, or resynthesise a data dir, into a new data dir of audio.

    # resynthesis (encode + decode): reference metrics optional
    python -m stage1_vae.decode --exp-dir exp/stage1/vae --data-dir data/test --out-dir exp/stage1/vae/resynth/test \\
        [--metrics-out exp/stage1/vae/resynth/test/metrics.json]
    # latents (e.g. a dump, or stage two's output) -> audio
    python -m stage1_vae.decode --exp-dir exp/stage1/vae --latents-dir dump/vae/test --out-dir OUT [--data-dir data/test]

Writes ``<out>/wav/<utt>.wav`` and ``<out>/wav.scp`` (plus ``text``/``utt2spk``/``spk2utt``/``utt2dur`` when a
data dir is given, so the output is a data dir itself). Idempotent unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from shared.audio import save_audio
from shared.datadir import DataDir
from shared.device import add_device_arg
from shared.io import write_json, write_kv
from shared.latents import load_latent, read_latent_scp
from stage1_vae.codec import load_codec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--data-dir", default=None, help="resynthesise this data dir (or take text/utt2spk from it)")
    p.add_argument("--latents-dir", default=None, help="decode <dir>/latents.scp instead of resynthesising")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--metrics-out", default=None, help="resynthesis: write mean PESQ-WB/STOI/mel distance here")
    add_device_arg(p)
    p.add_argument("--num-threads", type=int, default=2)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    if args.data_dir is None and args.latents_dir is None:
        p.error("give --data-dir (resynthesis) and/or --latents-dir (decode latents)")
    torch.set_num_threads(args.num_threads)
    out = Path(args.out_dir)
    if (out / "wav.scp").is_file() and (args.metrics_out is None or Path(args.metrics_out).is_file()) and not args.overwrite:
        print(f"{out}/wav.scp exists: nothing to do (use --overwrite to redo)")
        return 0
    codec = load_codec(args.exp_dir, args.device)
    data = DataDir.load(args.data_dir) if args.data_dir else None
    latents = read_latent_scp(args.latents_dir) if args.latents_dir else None
    utts = sorted(latents) if latents is not None else data.utts
    metrics_rows, wav_scp, utt2dur = [], {}, {}
    if args.metrics_out:
        from shared.metrics.signal import MultiResolutionMelDistance, codec_metrics

        mel_distance = MultiResolutionMelDistance(codec.sample_rate)
    for utt in utts:
        ref = None
        if latents is not None:
            z = load_latent(latents[utt]).to(args.device)
            if z.dim() != 2 or z.shape[0] != codec.latent_dim:
                raise ValueError(f"{latents[utt]}: latent of shape {tuple(z.shape)} for '{utt}', expected ({codec.latent_dim}, F)")
            wav = codec.decode(z[None].float())[0]
        else:
            ref = data.load_audio(utt, codec.sample_rate)
            wav = codec.decode(codec.encode(ref[None].to(args.device)))[0, : ref.shape[-1]]
        wav = wav.float().cpu()
        path = (out / "wav" / f"{utt}.wav").resolve()
        save_audio(path, wav, codec.sample_rate)
        wav_scp[utt], utt2dur[utt] = str(path), wav.shape[-1] / codec.sample_rate
        if args.metrics_out and ref is not None:
            metrics_rows.append(codec_metrics(ref.numpy(), wav.numpy(), codec.sample_rate, mel_distance))
    if data is not None and set(utts) <= set(data.utt2spk):
        sub = data.subset(utts)
        DataDir(wav_scp=wav_scp, text=sub.text, utt2spk=sub.utt2spk,
                utt2dur={u: round(d, 4) for u, d in utt2dur.items()}).save(out)
    else:
        write_kv(out / "wav.scp", wav_scp)
    if metrics_rows:
        summary = {k: float(np.nanmean([r[k] for r in metrics_rows])) for k in metrics_rows[0]}
        summary = {k: (None if math.isnan(v) else round(v, 4)) for k, v in summary.items()}
        summary["num_utts"] = len(metrics_rows)
        write_json(args.metrics_out, {"mean": summary, "per_utt": dict(zip(utts, metrics_rows))})
        print(f"metrics: {summary}")
    print(f"wrote {len(wav_scp)} utterances to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
