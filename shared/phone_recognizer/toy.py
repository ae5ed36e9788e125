"""A toy "speech" generator for tests and smoke runs: formant-filtered pulse trains and noise.

Each toy phone is a set of formants and a voicing flag; an utterance is a phone sequence with
durations, a pitch contour and a speaker-specific F0. Same phones and a different duration give a
time-stretched copy with unchanged pitch (what DTW tests need); a different phone sequence gives a
different "sentence". :func:`make_toy_data_dir` writes a Kaldi data dir plus a ``token`` file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from shared.io import PathLike, write_kv

# phone -> (formant frequencies in Hz, voiced)
TOY_PHONES: dict[str, tuple[tuple[float, ...], bool]] = {
    "a": ((800, 1200, 2500), True),
    "e": ((500, 1900, 2600), True),
    "i": ((300, 2300, 3000), True),
    "o": ((500, 900, 2400), True),
    "u": ((320, 800, 2300), True),
    "m": ((250, 1100, 2200), True),
    "s": ((4500, 6000), False),
    "f": ((1500, 3500, 6500), False),
}


def _resonator(freq: float, bw: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.exp(-np.pi * bw / sr)
    theta = 2 * np.pi * freq / sr
    a = np.array([1.0, -2 * r * np.cos(theta), r * r])
    return np.array([a.sum()]), a  # unit gain at DC


def toy_utterance(phones: list[str], durations: list[float], sample_rate: int = 16000, f0: float = 120.0,
                  seed: int = 0) -> np.ndarray:
    """Waveform ``(T,)`` float32 for ``phones`` lasting ``durations`` seconds each (peak 0.5).

    F0 falls linearly from ``1.1 * f0`` to ``0.9 * f0`` over the utterance, independent of phone timing,
    so a stretched copy keeps its pitch. 50 ms of silence pad both ends.
    """
    rng = np.random.default_rng(seed)
    bounds = np.round(np.cumsum([0.0] + list(durations)) * sample_rate).astype(int)
    n = int(bounds[-1])
    t = np.arange(n) / max(n, 1)
    freq = f0 * (1.1 - 0.2 * t)
    phase = np.cumsum(freq / sample_rate)
    pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse per period
    noise = rng.standard_normal(n) * 0.3
    out = np.zeros(n)
    ramp = max(1, int(0.01 * sample_rate))
    for p, (start, end) in zip(phones, zip(bounds[:-1], bounds[1:])):
        formants, voiced = TOY_PHONES[p]
        lo, hi = max(0, start - ramp), min(n, end + ramp)
        x = (pulses if voiced else noise)[lo:hi]
        for fr in formants:
            b, a = _resonator(fr, 80.0 + 0.05 * fr, sample_rate)
            x = lfilter(b, a, x)
        w = np.ones(hi - lo)
        w[: start - lo] = np.linspace(0, 1, start - lo, endpoint=False)
        if hi - end > 0:
            w[-(hi - end):] = np.linspace(1, 0, hi - end)
        out[lo:hi] += x * w / (np.abs(x).max() + 1e-9)
    pad = np.zeros(int(0.05 * sample_rate))
    out = np.concatenate([pad, out, pad])
    return (0.5 * out / (np.abs(out).max() + 1e-9)).astype(np.float32)


def random_phones(rng: np.random.Generator, min_len: int = 3, max_len: int = 7) -> tuple[list[str], list[float]]:
    names = list(TOY_PHONES)
    k = int(rng.integers(min_len, max_len + 1))
    phones = [names[i] for i in rng.integers(0, len(names), k)]
    return phones, list(rng.uniform(0.07, 0.14, k))


def make_toy_data_dir(out_dir: PathLike, num_utts: int = 16, sample_rate: int = 16000, seed: int = 0,
                      prefix: str = "toy") -> dict[str, list[str]]:
    """Write ``wav/*.wav``, ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt`` and ``token`` under ``out_dir``.

    Two speakers (F0 110 and 180 Hz). Returns ``{utt: phones}``.
    """
    import soundfile as sf

    out_dir = Path(out_dir)
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scp, text, utt2spk, tokens = {}, {}, {}, {}
    for k in range(num_utts):
        spk = f"{prefix}spk{k % 2}"
        utt = f"{spk}-{prefix}{k:04d}"
        phones, durs = random_phones(rng)
        wav = toy_utterance(phones, durs, sample_rate, f0=110.0 if k % 2 == 0 else 180.0, seed=seed * 1000 + k)
        path = out_dir / "wav" / f"{utt}.wav"
        sf.write(str(path), wav, sample_rate, subtype="PCM_16")
        scp[utt], text[utt], utt2spk[utt], tokens[utt] = str(path.resolve()), " ".join(phones), spk, phones
    write_kv(out_dir / "wav.scp", scp)
    write_kv(out_dir / "text", text)
    write_kv(out_dir / "utt2spk", utt2spk)
    spk2utt: dict[str, list[str]] = {}
    for u, s in sorted(utt2spk.items()):
        spk2utt.setdefault(s, []).append(u)
    write_kv(out_dir / "spk2utt", spk2utt)
    write_kv(out_dir / "token", tokens)
    return tokens
