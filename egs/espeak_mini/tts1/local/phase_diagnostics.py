#!/usr/bin/env python3
"""Where a codec's phase goes wrong: band-limited phase swaps and the harmonics' pulse shape.

    python local/phase_diagnostics.py exp/stage1/vae data/test --speaker enusm8

Two measurements on the codec's resynthesis of the chosen utterances:

1. **Phase swaps by band.** The output's 512-point STFT (hop 128) keeps its magnitude and takes the
   reference's phase in one band (``refphase``), or the reverse (``refmag``), or the reference outright
   (``ref``); mean PESQ-WB of each (16-bit PCM). The band whose phase swap lifts PESQ most is where the
   codec's phase costs.
2. **Pulse shape.** For voiced frames (YIN aperiodicity < 0.2), the phase of each harmonic relative to the
   fundamental's, ``psi_k - k psi_1`` (:func:`shared.features.harmonic_coefficients` at the codec's own F0):
   it does not depend on where the pulse train starts, only on the pulse's shape. Printed as its circular
   mean in units of pi/2 and its resultant length R (1: the same in every frame), for the reference and the
   output. A pure sine series ``sum_k a_k sin(k theta)`` gives +(k - 1), its negative (the time reverse)
   -(k - 1) (mod 4).
"""
from __future__ import annotations

import argparse
import math
from collections import defaultdict

import numpy as np
import torch

from pesq_sensitivity import pcm16  # local/, beside this script
from shared.datadir import DataDir
from shared.features import harmonic_coefficients, yin_f0
from shared.metrics.signal import pesq_wb
from stage1_vae.codec import load_codec

SAMPLE_RATE, N_FFT, HOP = 16000, 512, 128
BANDS = [(0, 1000), (1000, 2000), (2000, 4000), (4000, 8000), (0, 2000), (2000, 8000)]


def band_swaps(ref: torch.Tensor, out: torch.Tensor) -> dict[str, torch.Tensor]:
    """Signals that are ``out`` except in one band, where they take the reference's phase, magnitude or both."""
    window = torch.hann_window(N_FFT)
    spec = {k: torch.stft(x, N_FFT, HOP, window=window, return_complex=True) for k, x in (("ref", ref), ("out", out))}
    freqs = torch.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)[:, None]
    mixes = {}
    for lo, hi in BANDS:
        band = (freqs >= lo) & (freqs < hi if hi < SAMPLE_RATE / 2 else freqs <= hi)
        for name, inside in (("refphase", spec["out"].abs() * torch.exp(1j * spec["ref"].angle())),
                             ("refmag", spec["ref"].abs() * torch.exp(1j * spec["out"].angle())), ("ref", spec["ref"])):
            mixes[f"{name} {lo}-{hi} Hz"] = torch.istft(torch.where(band, inside, spec["out"]), N_FFT, HOP, window=window,
                                                       length=ref.shape[-1])
    return mixes


def pulse_shape(wav: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor, hop: int, harmonics: int) -> torch.Tensor:
    """``psi_k - k psi_1`` per voiced frame (frame ``i`` at sample ``i hop``), ``(frames, harmonics)``."""
    phase = torch.angle(harmonic_coefficients(wav[None], f0[None], hop, SAMPLE_RATE, harmonics)[0][voiced])
    return phase - torch.arange(1, harmonics + 1) * phase[:, :1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", help="stage-one experiment directory")
    parser.add_argument("data_dir", help="data directory with the reference audio")
    parser.add_argument("--speaker", default=None, help="only this speaker's utterances (default: all)")
    parser.add_argument("--num-utts", type=int, default=8)
    parser.add_argument("--harmonics", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    codec, data = load_codec(args.exp_dir), DataDir.load(args.data_dir)
    if codec.sample_rate != SAMPLE_RATE or codec.pitch is None:
        raise SystemExit(f"{args.exp_dir}: needs a {SAMPLE_RATE} Hz codec with a pitch channel")
    utts = [u for u in data.utts if args.speaker is None or data.utt2spk[u] == args.speaker][: args.num_utts]
    if not utts:
        raise SystemExit(f"{args.data_dir}: no utterances of speaker {args.speaker}")
    scores, shapes = defaultdict(list), defaultdict(list)
    for utt in utts:
        ref = data.load_audio(utt, SAMPLE_RATE)
        z = codec.encode(ref[None])
        out = codec.decode(z)[0]
        n = min(ref.shape[-1], out.shape[-1])
        ref, out = ref[:n], out[:n]
        for name, wav in {"output": out, **band_swaps(ref, out)}.items():
            scores[name].append(pesq_wb(ref.numpy(), pcm16(wav.numpy()), SAMPLE_RATE))
        hop = codec.hop_length  # the latent's frame grid
        frames = min(z.shape[-1], n // hop)
        f0 = codec.pitch.to_hz(z[0, 0, :frames])
        _, aperiodicity = yin_f0(ref[None], SAMPLE_RATE, hop, codec.pitch.win_length, codec.pitch.f0_min, codec.pitch.f0_max)
        voiced = aperiodicity[0, :frames] < 0.2
        for name, wav in (("reference", ref), ("output", out)):
            shapes[name].append(pulse_shape(wav, f0, voiced, hop, args.harmonics))
    print(f"{len(utts)} utterances of {args.speaker or 'all speakers'}, mean PESQ-WB:")
    for name, values in scores.items():
        print(f"  {name:24s} {np.mean(values):.3f}")
    print("pulse shape psi_k - k psi_1 over voiced frames, k = 1.." + str(args.harmonics) + ": mean / (pi/2) and R")
    for name, parts in shapes.items():
        unit = torch.exp(1j * torch.cat(parts))
        mean, length = torch.angle(unit.mean(0)) / (math.pi / 2), unit.mean(0).abs()
        print(f"  {name:10s} mean " + " ".join(f"{float(m):+.2f}" for m in mean) + "   R " + " ".join(f"{float(r):.2f}" for r in length))


if __name__ == "__main__":
    main()
