"""Audio I/O and simple signal helpers.

All waveforms are float32 in [-1, 1], mono, shaped ``(T,)`` (or ``(..., T)`` where noted). Every error
names the file it is about, so a bad line in a 100k-utterance ``wav.scp`` is found at once.
"""

from __future__ import annotations

import functools
import io
import math
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from shared.io import PathLike, atomic_write

SILENCE_PEAK = 1e-4
CLIP_LEVEL = 0.999
CLIP_FRACTION = 0.01


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the reason."""


def is_pipe(spec: PathLike) -> bool:
    """A Kaldi extended filename: a ``wav.scp`` value ``<command> |`` whose standard output is the audio."""
    return isinstance(spec, str) and spec.rstrip().endswith("|")


def _read_pipe(cmd: str) -> tuple[np.ndarray, int]:
    """Run a ``wav.scp`` pipe (``flac -c -d -s a.flac |``, ``sox a.sph -t wav - |``) and read what it writes
    (any format libsndfile reads; a WAV header written to a pipe, with no length, is fine)."""
    proc = subprocess.run(cmd.rstrip()[:-1], shell=True, capture_output=True)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise AudioError(f"{cmd}: the command failed (exit status {proc.returncode}){': ' + ' / '.join(err) if err else ''}")
    try:
        data, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise AudioError(f"{cmd}: cannot read the command's output as audio ({len(proc.stdout)} bytes; {e})") from e
    return data, int(sr)


def read_audio(path: PathLike, mono: bool = True) -> tuple[torch.Tensor, int]:
    """``(float32 (T,) or (C, T), its sample rate)``, as stored. ``path`` may also be a Kaldi pipe,
    ``"<command> |"`` (:func:`is_pipe`): the command's output is read. Raises AudioError: missing, unreadable or
    empty file, samples that are NaN or infinite, or a failing pipe."""
    if is_pipe(path):
        data, sr = _read_pipe(str(path))
    else:
        path = Path(path)
        if not path.is_file():
            raise AudioError(f"{path}: no such audio file")
        try:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, sf.LibsndfileError) as e:  # soundfile raises LibsndfileError (a RuntimeError)
            raise AudioError(f"{path}: cannot read audio ({e})") from e
    if data.shape[0] == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    bad = int((~np.isfinite(data)).sum())
    if bad:  # a float file (from a model gone NaN, elsewhere): one such sample trained a phone recogniser to NaN
        raise AudioError(f"{path}: {bad} of {data.size} samples are NaN or infinite")
    wav = torch.from_numpy(np.ascontiguousarray(data.T))  # (C, T)
    return (wav.mean(dim=0) if mono else wav), int(sr)


def load_audio(
    path: PathLike, sample_rate: int | None = None, mono: bool = True, strict_rate: bool = False
) -> torch.Tensor:
    """Read an audio file (or a Kaldi pipe: :func:`read_audio`) as float32 ``(T,)`` (or ``(C, T)`` if not ``mono``).

    Args:
        sample_rate: resample to this rate when the file's rate differs (or raise, if ``strict_rate``).
    Raises:
        AudioError: missing, unreadable or empty file (or a failing pipe), or wrong rate with ``strict_rate``.
    """
    wav, sr = read_audio(path, mono)
    if sample_rate is not None and sr != sample_rate:
        if strict_rate:
            raise AudioError(f"{path}: sample rate {sr} Hz, expected {sample_rate} Hz")
        wav = resample(wav, sr, sample_rate)
    return wav


def audio_info(path: PathLike) -> tuple[int, int]:
    """``(num_samples, sample_rate)`` from the header, without decoding (a pipe is run and read whole);
    raises AudioError."""
    if is_pipe(path):
        data, sr = _read_pipe(str(path))
        return int(data.shape[0]), sr
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as e:
        raise AudioError(f"{path}: cannot read audio header ({e})") from e
    return int(info.frames), int(info.samplerate)


def save_audio(path: PathLike, wav: torch.Tensor | np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write a mono ``(T,)`` waveform atomically. Values are clipped to [-1, 1] for integer subtypes. NaN or infinite
    samples (a model gone NaN) are an AudioError naming the file, which is not written: a 16-bit file would hold them
    as full-scale values, and a float file would fail every later reader."""
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().float().cpu().numpy()
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    bad = int((~np.isfinite(wav)).sum())
    if bad:
        raise AudioError(f"{path}: {bad} of {wav.size} samples to write are NaN or infinite (from the model or input "
                         "that made them); nothing was written")
    if subtype.startswith("PCM"):
        wav = np.clip(wav, -1.0, 1.0)
    path = Path(path)
    fmt = path.suffix.lstrip(".").upper() or "WAV"
    with atomic_write(path, "wb") as f:
        sf.write(f, wav, sample_rate, subtype=subtype, format=fmt)


@functools.lru_cache(maxsize=16)
def _kernel_key(orig: int, new: int) -> tuple[int, int]:
    g = math.gcd(orig, new)
    return orig // g, new // g


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Band-limited (windowed sinc, Kaiser) resampling along the last axis."""
    if orig_sr == new_sr:
        return wav
    orig, new = _kernel_key(orig_sr, new_sr)
    return AF.resample(wav, orig, new, lowpass_filter_width=16, rolloff=0.945, resampling_method="sinc_interp_kaiser")


def peak_normalize(wav: torch.Tensor, peak: float = 0.95) -> torch.Tensor:
    """Scale so that ``max |wav| == peak``; silent input is returned unchanged."""
    m = wav.abs().max()
    return wav if m < SILENCE_PEAK else wav * (peak / m)


def loudness_normalize(wav: torch.Tensor, sample_rate: int, target_db: float = -23.0) -> torch.Tensor:
    """Scale to a target level in dBFS, measured as the RMS of the active (non-silent) 20 ms frames.

    A simple gate rather than full ITU-R BS.1770 weighting: close enough for corpus preparation and
    with no extra dependency. The peak is limited to 0.99 so normalisation never clips.
    """
    frame = max(1, int(0.02 * sample_rate))
    n = wav.shape[-1] // frame * frame
    if n == 0:
        return wav
    rms = wav[..., :n].reshape(*wav.shape[:-1], -1, frame).pow(2).mean(-1).sqrt()
    active = rms[rms > rms.max() * 10 ** (-40 / 20)]
    if active.numel() == 0 or active.max() < SILENCE_PEAK:
        return wav
    level_db = 20 * torch.log10(active.pow(2).mean().sqrt())
    out = wav * 10 ** ((target_db - level_db) / 20)
    peak = out.abs().max()
    return out * (0.99 / peak) if peak > 0.99 else out


def random_crop(
    wav: torch.Tensor, length: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, int]:
    """A random ``length``-sample window of ``wav (..., T)`` and its start; zero-padded if shorter."""
    total = wav.shape[-1]
    if total <= length:
        return torch.nn.functional.pad(wav, (0, length - total)), 0
    start = int(torch.randint(0, total - length + 1, (1,), generator=generator))
    return wav[..., start : start + length], start


def pad_to_multiple(wav: torch.Tensor, multiple: int) -> torch.Tensor:
    """``wav (..., T)`` zero-padded at the end to the next multiple of ``multiple`` samples (a codec's hop)."""
    return torch.nn.functional.pad(wav, (0, -wav.shape[-1] % multiple))


def check_audio(wav: torch.Tensor, sample_rate: int, path: PathLike, expected_rate: int | None = None) -> None:
    """Raise AudioError if the audio is empty, not finite (NaN or infinite samples), silent, clipped, or at the
    wrong rate."""
    if expected_rate is not None and sample_rate != expected_rate:
        raise AudioError(f"{path}: sample rate {sample_rate} Hz, expected {expected_rate} Hz")
    if wav.numel() == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    bad = int((~torch.isfinite(wav)).sum())
    if bad:  # a NaN peak fails every comparison below: the file would pass, and train a NaN model
        raise AudioError(f"{path}: {bad} of {wav.numel()} samples are NaN or infinite (a float file written from a "
                         "failed computation?)")
    peak = float(wav.abs().max())
    if peak < SILENCE_PEAK:
        raise AudioError(f"{path}: silent audio (peak {peak:.2e})")
    clipped = float((wav.abs() >= CLIP_LEVEL).float().mean())
    if clipped > CLIP_FRACTION:
        raise AudioError(f"{path}: clipped audio ({clipped:.1%} of samples at full scale)")
