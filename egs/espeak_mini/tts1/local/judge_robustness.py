#!/usr/bin/env python3
"""Is the phone recogniser hearing phones, or the voices' exact scale? Real audio changed in ways a listener
does not hear as other phones, scored by a recogniser (RESULTS.md: "Is the judge hearing phones").

    python local/judge_robustness.py --data-dir data/screen --out-dir exp/judge_robustness --asr-dir exp/asr

writes ``OUT_DIR/<change>/`` (a wav.scp and its wavs) for each change and prints each one's phone errors next
to the unchanged audio's (``OUT_DIR/<change>/per.json``; made audio is reused on a rerun, ``--asr-dir`` may
be given several times). A judge whose errors grow under these reads distance from the training voices, not
intelligibility; ``shared.phone_recognizer``'s ``train.speed_perturb`` is the remedy.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import librosa
import numpy as np
import scipy.signal
import soundfile as sf

from shared.io import read_kv, write_kv


def speed(factor: float):
    """Played ``factor`` times faster: tempo, pitch and formants move together (resampling)."""
    return lambda x, sr, rng: librosa.resample(x, orig_sr=sr, target_sr=int(sr / factor), res_type="soxr_hq")


def white_noise(x, sr, rng, snr_db=30.0):
    return x + rng.standard_normal(len(x)) * np.sqrt(np.mean(x ** 2) / 10 ** (snr_db / 10))


def low_pass(x, sr, rng, cutoff=6000.0):
    return scipy.signal.sosfiltfilt(scipy.signal.butter(8, cutoff, fs=sr, output="sos"), x)


def griffin_lim(x, sr, rng):
    """The audio's own 1024-point magnitude with a phase found by 32 Griffin-Lim iterations."""
    mag = np.abs(librosa.stft(x, n_fft=1024, hop_length=256))
    return librosa.griffinlim(mag, n_iter=32, hop_length=256, length=len(x), random_state=0)


def mu_law_8bit(x, sr, rng, mu=255):
    y = np.round(np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu) * 127) / 127
    return np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu


CHANGES = {"noise30": white_noise, "speed097": speed(0.97), "speed103": speed(1.03), "lowpass6k": low_pass,
           "griffinlim": griffin_lim, "mulaw8": mu_law_8bit}


def make(data_dir: Path, out: Path, name: str) -> Path:
    d = out / name
    if (d / "wav.scp").is_file():
        return d
    rng = np.random.default_rng(0)
    (d / "wav").mkdir(parents=True, exist_ok=True)
    scp = {}
    for utt, path in read_kv(data_dir / "wav.scp").items():
        x, sr = sf.read(path, dtype="float64")
        y = CHANGES[name](x, sr, rng)
        y = y / max(1.0, np.abs(y).max() / 0.99)  # no clipping
        sf.write(d / "wav" / f"{utt}.wav", y.astype(np.float32), sr)
        scp[utt] = str((d / "wav" / f"{utt}.wav").resolve())
    write_kv(d / "wav.scp", scp)  # last: marks the set as made
    return d


def main() -> int:
    from shared.phone_recognizer.score import score_dir

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="real audio with a token file")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--asr-dir", action="append", required=True, help="a trained recogniser (repeatable)")
    p.add_argument("--changes", default=",".join(CHANGES), help=f"comma-separated, of {', '.join(CHANGES)}")
    a = p.parse_args()
    sets = {"real": a.data_dir} | {name: make(a.data_dir, a.out_dir, name) for name in a.changes.split(",")}
    for asr in a.asr_dir:
        for name, d in sets.items():
            res = score_dir(asr, d, a.data_dir / "token", out=a.out_dir / Path(asr).name / name / "per.json")
            print(f"{asr} {name}: {res['errors']} phone errors ({res['per']:.2%} of {res['ref_len']})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
