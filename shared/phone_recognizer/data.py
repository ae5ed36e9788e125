"""Data for the phone recogniser: which tokens count as phones, reading token files, audio batches.

Scored symbols are the frontend's phone tokens with the word boundary (``▁``), punctuation and, by
default, the stress marks (``ˈ ˌ``) removed: they are not segments one can hear in isolation, and the
phone error rate (PER) is conventionally computed without them.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
import torchaudio

from shared.io import PathLike, read_kv

WORD_BOUNDARY = "\u2581"
STRESS = ("\u02c8", "\u02cc")
DEFAULT_DROP = (WORD_BOUNDARY, "|", "<space>", "<sil>", "sil", "<pad>", "<unk>", "<blank>", "<sos/eos>", "<filler>")


def is_punctuation(token: str) -> bool:
    """True for tokens made only of Unicode punctuation (``,`` ``.`` ``!`` ``?`` ``—`` ``…`` ...)."""
    return bool(token) and all(unicodedata.category(ch).startswith("P") for ch in token)


def phone_filter(drop_stress: bool = True, extra_drop: Iterable[str] = ()) -> "PhoneFilter":
    return PhoneFilter(set(DEFAULT_DROP) | set(extra_drop), strip=STRESS if drop_stress else ())


class PhoneFilter:
    """Maps a token sequence to the phones that are recognised and scored: the characters ``strip`` (the stress
    marks) taken out of every token, whether they stand alone (the frontend's ``stress: separate``) or are attached
    to a vowel (``ˈoʊ`` of ``stress: attached``, which would otherwise be a class of its own and make a stress
    confusion a phone error); then the tokens in ``drop``, punctuation and what is left empty dropped."""

    def __init__(self, drop: set[str], strip: Iterable[str] = ()):
        self.drop = drop
        self.strip = str.maketrans(dict.fromkeys("".join(strip)))

    def __call__(self, tokens: Sequence[str]) -> list[str]:
        phones = (t.translate(self.strip) for t in tokens)
        return [t for t in phones if t and t not in self.drop and not is_punctuation(t)]


def read_token_file(path: PathLike, keep: PhoneFilter | None = None) -> dict[str, list[str]]:
    """``<utt> tok tok ...`` lines -> ``{utt: [phones]}`` (filtered). Errors name file and line."""
    table = read_kv(path, allow_empty_value=True)
    return {u: (keep(v.split()) if keep else v.split()) for u, v in table.items()}


def read_wav_scp(data_dir: PathLike) -> dict[str, str]:
    path = Path(data_dir) / "wav.scp"
    if not path.is_file():
        raise FileNotFoundError(f"{data_dir}: no wav.scp")
    return read_kv(path)


def utterance_ids(data_dir: PathLike) -> list[str]:
    """Sorted utterance ids of ``data_dir``: the keys of ``segments`` where there is one (``wav.scp`` then names
    recordings, not utterances), else of ``wav.scp``."""
    ddir = Path(data_dir)
    if (ddir / "segments").exists():
        from shared.datadir import DataDir

        return sorted(DataDir.load(ddir, validate=False).segments)
    return sorted(read_wav_scp(ddir))


def iter_wavs(data_dir: PathLike, utts: Sequence[str], sample_rate: int) -> Iterator[torch.Tensor]:
    """Waveforms ``(T,)`` of ``utts`` from ``data_dir``, one at a time (uses ``segments`` when present)."""
    from shared.datadir import DataDir

    ddir = Path(data_dir)
    if (ddir / "segments").exists() or ((ddir / "utt2spk").exists() and (ddir / "text").exists()):
        dd = DataDir.load(ddir, validate=False)
        return (dd.load_audio(u, sample_rate) for u in utts)
    from shared.audio import load_audio

    scp = read_wav_scp(ddir)
    return (load_audio(scp[u], sample_rate) for u in utts)


def load_wavs(data_dir: PathLike, utts: Sequence[str], sample_rate: int) -> list[torch.Tensor]:
    """Waveforms ``(T,)`` of ``utts`` from ``data_dir`` (uses ``segments`` when present)."""
    return list(iter_wavs(data_dir, utts, sample_rate))


def subset_hours(data_dir: PathLike, utts: Sequence[str], hours: float, seed: int = 0) -> list[str]:
    """A random subset of ``utts`` (fixed by ``seed``, in the original order) with at most ``hours`` of audio,
    durations from ``utt2dur`` or the audio headers: a big corpus's recogniser need not hold it all."""
    from shared.datadir import DataDir, utt_duration

    data = DataDir.load(data_dir, validate=False)
    budget, keep = hours * 3600.0, set()
    for i in np.random.default_rng(seed).permutation(len(utts)):
        if (d := data.utt2dur[utts[i]] if utts[i] in data.utt2dur else utt_duration(data, utts[i])) <= budget:
            keep.add(utts[i])
            budget -= d
    return [u for u in utts if u in keep]


def collate(wavs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, T_max)`` zero-padded batch and sample lengths ``(B,)``."""
    lengths = torch.tensor([w.numel() for w in wavs])
    out = torch.zeros(len(wavs), int(lengths.max()))
    for b, w in enumerate(wavs):
        out[b, : w.numel()] = w
    return out, lengths


def change_speed(wav: torch.Tensor, sample_rate: int, factor: float) -> torch.Tensor:
    """``wav`` played ``factor`` times faster (> 1) or slower, pitch and formants scaled with it, as Kaldi's
    speed perturbation does: resampled to ``sample_rate / factor`` (rounded to 100 Hz) and read at ``sample_rate``."""
    return torchaudio.functional.resample(wav, sample_rate, 100 * round(sample_rate / factor / 100))


def low_pass(wav: torch.Tensor, sample_rate: int, cutoff: float) -> torch.Tensor:
    """Fourth-order low-pass (two biquads) at ``cutoff`` Hz."""
    for _ in range(2):
        wav = torchaudio.functional.lowpass_biquad(wav, sample_rate, cutoff)
    return wav


# Changes a listener does not hear as other phones. A recogniser whose PER grows under them reads acoustic
# distance from the training voices, not intelligibility (train.speed_perturb is the remedy).
ROBUSTNESS_CHECKS: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "speed 0.97": lambda w, sr: change_speed(w, sr, 0.97),
    "speed 1.03": lambda w, sr: change_speed(w, sr, 1.03),
    "low-pass 6 kHz": lambda w, sr: low_pass(w, sr, 6000.0),
}


def degrade(wav: torch.Tensor, sample_rate: int, rng: np.random.Generator,
            speed: tuple[float, float] = (1.0, 1.0), p_noise: float = 1.0) -> torch.Tensor:
    """A randomly degraded copy of ``wav (T,)`` for training: a speed change by a factor drawn log-uniformly
    from ``speed`` (resampling, Kaldi's speed perturbation: tempo, pitch and formants move together), a
    brick-wall low-pass at 3.5-7 kHz half of the time, white noise at 15-45 dB SNR with probability
    ``p_noise``, and a random gain of -12..+6 dB.

    Synthesised speech differs from the real recordings in exactly such ways (noise floor, missing
    high band, level, a slightly other vocal tract); a recogniser trained only on clean, deterministic
    espeak-ng audio would mistake these for phone errors. Noise on every copy fills the high band of the
    band-limited ones, so with ``p_noise`` 1 a clean band-limited input is still unlike anything in training.
    """
    x = wav.double()
    lo, hi = speed
    if hi > lo:
        x = change_speed(x, sample_rate, math.exp(rng.uniform(math.log(lo), math.log(hi))))
    rms = x.pow(2).mean().sqrt().clamp(min=1e-5)
    if rng.random() < 0.5:
        spec = torch.fft.rfft(x)
        cutoff = rng.uniform(3500.0, 7000.0)
        spec[int(cutoff / (sample_rate / 2) * (spec.numel() - 1)):] = 0
        x = torch.fft.irfft(spec, n=x.numel())
    if p_noise >= 1.0 or rng.random() < p_noise:  # (no draw at 1: the same copies as before the option)
        snr_db = rng.uniform(15.0, 45.0)
        x = x + torch.from_numpy(rng.standard_normal(x.numel())) * rms * 10 ** (-snr_db / 20)
    return (x * 10 ** (rng.uniform(-12.0, 6.0) / 20)).float()


def time_warp(feats: torch.Tensor, lengths: torch.Tensor, factor: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Stretch features ``(B, C, F)`` in time by ``factor`` (linear interpolation): a tempo change."""
    if factor == 1.0:
        return feats, lengths
    out = torch.nn.functional.interpolate(feats, scale_factor=factor, mode="linear", align_corners=False)
    new_len = torch.clamp((lengths.float() * factor).long(), min=1, max=out.shape[-1])
    mask = torch.arange(out.shape[-1])[None] < new_len[:, None]
    return out * mask[:, None], new_len
