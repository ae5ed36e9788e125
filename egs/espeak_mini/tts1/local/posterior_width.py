#!/usr/bin/env python3
"""How wide a Gaussian VAE's posterior is against the spread of its latents: what noise the decoder has learned.

    python local/posterior_width.py exp/stage1/vae data/dev [--num-utts 16]

For every learned channel of the codec's latent (the pitch channels are measured, not encoded, and are left
out), the posterior's standard deviation ``exp(logvar / 2)``, averaged over frames, divided by the standard
deviation of the posterior mean over all frames of the utterances. In training the decoder only decodes
latents drawn within that width of the encoder's; stage two's samples miss the real latents by a good part of
the spread (its validation ``sample_mse`` is on latents normalised to unit variance), so a narrow posterior
leaves the decoder to meet stage two's errors for the first time at synthesis. A channel whose ratio is near
or above 1 carries nothing (its posterior is the prior). Prints the sorted ratios, their median and the number
of such unused channels.
"""
from __future__ import annotations

import argparse

import torch

from shared.datadir import DataDir
from stage1_vae.bottlenecks import GaussianBottleneck
from stage1_vae.codec import load_codec


def posterior_width(codec, wavs: list[torch.Tensor]) -> torch.Tensor:
    """Per learned channel: mean posterior sd / sd of the posterior mean, over all frames of ``wavs``."""
    if not isinstance(codec.bottleneck, GaussianBottleneck):
        raise SystemExit(f"the codec's bottleneck is {type(codec.bottleneck).__name__}, not a Gaussian VAE's")
    pitch_channels = codec.pitch.channels if codec.pitch is not None else 0
    means, sds = [], []
    with torch.no_grad():
        for wav in wavs:
            mean, logvar = codec.bottleneck.posterior(codec.encode_continuous(wav[None])[:, pitch_channels:])
            means.append(mean[0])
            sds.append(torch.exp(0.5 * logvar[0]))
    mean, sd = torch.cat(means, dim=1), torch.cat(sds, dim=1)
    return sd.mean(dim=1) / mean.std(dim=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp_dir", help="stage one's experiment dir (a Gaussian VAE)")
    p.add_argument("data_dir", help="Kaldi data dir whose audio is encoded")
    p.add_argument("--num-utts", type=int, default=16)
    p.add_argument("--unused", type=float, default=0.9, help="a channel at or above this ratio counts as unused")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    codec = load_codec(args.exp_dir).eval()
    data = DataDir.load(args.data_dir)
    wavs = [data.load_audio(utt, codec.sample_rate) for utt in data.utts[: args.num_utts]]
    ratio = posterior_width(codec, wavs).sort().values
    print(f"{args.exp_dir}: {len(ratio)} learned channels, {len(wavs)} utterances of {args.data_dir}")
    print("posterior sd / spread, sorted: " + " ".join(f"{r:.3f}" for r in ratio.tolist()))
    print(f"median {ratio.median().item():.3f}; unused (>= {args.unused}): {int((ratio >= args.unused).sum())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
