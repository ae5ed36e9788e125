#!/usr/bin/env python3
"""What PESQ-WB punishes on this corpus: controlled distortions of the reference audio, scored against it.

    python local/pesq_sensitivity.py data/test --num-utts 10

Each row distorts every reference in one way and prints the mean PESQ-WB (and STOI) against the undistorted
reference, written as 16-bit PCM like the recipe's wavs. The distortions separate what a codec's phase can
get wrong: a constant phase response (polarity, an all-pass cascade, a constant delay) against a phase that
drifts with time (a delay that wobbles, i.e. frequency modulation of every harmonic by the same cents).
"""
from __future__ import annotations

import argparse
import math

import numpy as np
from scipy.signal import lfilter, resample_poly

from shared.datadir import DataDir, spread_subset
from shared.metrics.signal import pesq_wb, stoi

SAMPLE_RATE = 16000


def pcm16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0) / 32767.0


def all_pass(x: np.ndarray, coef: float = 0.6, stages: int = 4) -> np.ndarray:
    """A cascade of first-order all-pass sections: flat magnitude, a frequency-dependent but fixed phase."""
    for _ in range(stages):
        x = lfilter([coef, 1.0], [1.0, coef], x)
    return x


def wobbling_delay(x: np.ndarray, cents: float, rate_hz: float = 4.0, oversample: int = 4) -> np.ndarray:
    """``x(t - d(t))`` with ``d(t) = D sin(2 pi rate t)``: every frequency is modulated by up to ``cents``
    (``D 2 pi rate`` = relative frequency deviation), the magnitude spectrum is kept."""
    depth = (2 ** (cents / 1200) - 1) / (2 * math.pi * rate_hz)  # seconds
    up = resample_poly(x, oversample, 1)
    t = np.arange(len(up)) / (SAMPLE_RATE * oversample)
    shifted = np.interp(t - depth * np.sin(2 * math.pi * rate_hz * t), t, up)
    return resample_poly(shifted, 1, oversample)[: len(x)]


def distortions() -> dict[str, callable]:
    rows = {
        "identity (16-bit PCM)": lambda x: x,
        "polarity flipped": lambda x: -x,
        "constant delay 2 ms": lambda x: np.concatenate([np.zeros(32), x[:-32]]),
        "all-pass cascade (fixed phase)": all_pass,
    }
    for cents in (5, 10, 15, 22, 27):
        rows[f"delay wobbling at 4 Hz, +-{cents} cents"] = lambda x, c=cents: wobbling_delay(x, c)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir")
    parser.add_argument("--num-utts", type=int, default=10)
    args = parser.parse_args(argv)
    data = DataDir.load(args.data_dir)
    refs = [data.load_audio(u, SAMPLE_RATE).numpy().astype(np.float64) for u in spread_subset(data.utts, args.num_utts)]
    print(f"{len(refs)} utterances of {args.data_dir}")
    print("| distortion | PESQ-WB | STOI |\n|---|---:|---:|")
    for name, fn in distortions().items():
        outs = [pcm16(fn(r)) for r in refs]
        scores = [(pesq_wb(r, y, SAMPLE_RATE), stoi(r, y, SAMPLE_RATE)) for r, y in zip(refs, outs)]
        print(f"| {name} | {np.mean([s[0] for s in scores]):.2f} | {np.mean([s[1] for s in scores]):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
