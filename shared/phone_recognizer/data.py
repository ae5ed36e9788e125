"""Data for the phone recogniser: which tokens count as phones, reading token files, audio batches.

Scored symbols are the frontend's phone tokens with the word boundary (``▁``), punctuation and, by
default, the stress marks (``ˈ ˌ``) removed: they are not segments one can hear in isolation, and the
phone error rate (PER) is conventionally computed without them.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from shared.io import PathLike, read_kv

WORD_BOUNDARY = "\u2581"
STRESS = ("\u02c8", "\u02cc")
DEFAULT_DROP = (WORD_BOUNDARY, "|", "<space>", "<sil>", "sil", "<pad>", "<unk>", "<blank>", "<sos/eos>", "<filler>")


def is_punctuation(token: str) -> bool:
    """True for tokens made only of Unicode punctuation (``,`` ``.`` ``!`` ``?`` ``—`` ``…`` ...)."""
    return bool(token) and all(unicodedata.category(ch).startswith("P") for ch in token)


def phone_filter(drop_stress: bool = True, extra_drop: Iterable[str] = ()) -> "PhoneFilter":
    return PhoneFilter(set(DEFAULT_DROP) | set(extra_drop) | (set(STRESS) if drop_stress else set()))


class PhoneFilter:
    """Maps a token sequence to the phones that are recognised and scored."""

    def __init__(self, drop: set[str]):
        self.drop = drop

    def __call__(self, tokens: Sequence[str]) -> list[str]:
        return [t for t in tokens if t not in self.drop and not is_punctuation(t)]


def read_token_file(path: PathLike, keep: PhoneFilter | None = None) -> dict[str, list[str]]:
    """``<utt> tok tok ...`` lines -> ``{utt: [phones]}`` (filtered). Errors name file and line."""
    table = read_kv(path, allow_empty_value=True)
    return {u: (keep(v.split()) if keep else v.split()) for u, v in table.items()}


def read_wav_scp(data_dir: PathLike) -> dict[str, str]:
    path = Path(data_dir) / "wav.scp"
    if not path.is_file():
        raise FileNotFoundError(f"{data_dir}: no wav.scp")
    return read_kv(path)


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


def frame_batches(lengths: Sequence[int], max_samples: int, rng: np.random.Generator | None = None) -> list[list[int]]:
    """Group indices of similar length into batches of at most ``max_samples`` padded samples.

    Sorted by length, cut greedily, then the batch order is shuffled with ``rng`` (kept if None).
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches, cur, cur_max = [], [], 0
    for i in order:
        n = int(lengths[i])
        if cur and max(cur_max, n) * (len(cur) + 1) > max_samples:
            batches.append(cur)
            cur, cur_max = [], 0
        cur.append(int(i))
        cur_max = max(cur_max, n)
    if cur:
        batches.append(cur)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def collate(wavs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, T_max)`` zero-padded batch and sample lengths ``(B,)``."""
    lengths = torch.tensor([w.numel() for w in wavs])
    out = torch.zeros(len(wavs), int(lengths.max()))
    for b, w in enumerate(wavs):
        out[b, : w.numel()] = w
    return out, lengths


def degrade(wav: torch.Tensor, sample_rate: int, rng: np.random.Generator) -> torch.Tensor:
    """A randomly degraded copy of ``wav (T,)`` for training: white noise at 15-45 dB SNR, a brick-wall
    low-pass at 3.5-7 kHz half of the time, and a random gain of -12..+6 dB.

    Synthesised speech differs from the real recordings in exactly such ways (noise floor, missing
    high band, level); a recogniser trained only on clean, deterministic espeak-ng audio would
    mistake these for phone errors.
    """
    x = wav.double()
    rms = x.pow(2).mean().sqrt().clamp(min=1e-5)
    if rng.random() < 0.5:
        spec = torch.fft.rfft(x)
        cutoff = rng.uniform(3500.0, 7000.0)
        spec[int(cutoff / (sample_rate / 2) * (spec.numel() - 1)):] = 0
        x = torch.fft.irfft(spec, n=x.numel())
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
