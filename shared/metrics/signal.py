"""Waveform metrics for codec resynthesis (reference and output sample-aligned) and a real-time factor helper.

All take ``ref (T,)`` and ``est (T',)`` float arrays at the same rate; the longer one is cut to the
shorter (codecs pad to whole frames). PESQ-WB is defined at 16 kHz only: other rates are resampled.
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from shared.features import MelSpectrogram

PESQ_WB_MAX = 4.644  # P.862.2 mapped MOS-LQO of identical signals
# ...and its floor: the lower limit of the mapping 0.999 + 4 / (1 + exp(-1.3669 x + 3.8224)) of the raw score x
# (which the pesq package does not clamp: noise against speech maps to ~1.03, under the 1.04 of x = -0.5)
PESQ_WB_MIN = 0.999
MEL_RESOLUTIONS = ((512, 128, 64), (1024, 256, 80), (2048, 512, 128))  # (n_fft, hop, n_mels)


def _pair(ref: np.ndarray | torch.Tensor, est: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(ref.detach().cpu() if isinstance(ref, torch.Tensor) else ref, dtype=np.float64).reshape(-1)
    est = np.asarray(est.detach().cpu() if isinstance(est, torch.Tensor) else est, dtype=np.float64).reshape(-1)
    n = min(ref.size, est.size)
    if n == 0:
        raise ValueError("empty signal")
    return ref[:n], est[:n]


def is_silent(x: np.ndarray | torch.Tensor) -> bool:
    """Digital silence: no sample other than 0 (or nothing at all). A NaN sample is not silence (loud audio with
    one NaN was called silent): it is left to the caller to refuse."""
    return not bool(np.any(np.asarray(x) != 0))  # NaN != 0: not silent


def si_sdr(ref: np.ndarray, est: np.ndarray, eps: float = 1e-10) -> float:
    """Scale-invariant SDR in dB (zero-mean signals; the projection removes any gain).

    Identical signals give a large finite value (bounded by ``eps``, about 100 dB or more). Undefined, NaN, where
    either signal is constant (digital silence): ``eps`` alone would decide it, 0 dB for a silent output (above any
    real one's score) and about -120 dB for a silent reference.
    """
    ref, est = _pair(ref, est)
    ref, est = ref - ref.mean(), est - est.mean()
    if not (ref @ ref > 0 and est @ est > 0):
        return float("nan")
    scale = (est @ ref) / (ref @ ref + eps)
    target = scale * ref
    noise = est - target
    return float(10.0 * np.log10((target @ target + eps) / (noise @ noise + eps)))


def pesq_wb(ref: np.ndarray, est: np.ndarray, sample_rate: int) -> float:
    """Wide-band PESQ (MOS-LQO, ~1.0..4.64) with the ``pesq`` package; NaN if PESQ finds no speech in the reference
    or the audio is too short for it (under about a quarter of a second): one such utterance must not abort an
    evaluation. A digitally silent output against a reference with speech scores the scale's floor,
    :data:`PESQ_WB_MIN` (NaN would leave it out of the mean, as if the system had not failed there)."""
    from pesq import BufferTooShortError, NoUtterancesError, pesq

    ref, est = _pair(ref, est)
    if is_silent(ref):
        return float("nan")  # PESQ has nothing to compare
    if is_silent(est):
        return PESQ_WB_MIN
    if sample_rate != 16000:
        from shared.audio import resample

        ref = resample(torch.from_numpy(ref), sample_rate, 16000).numpy()
        est = resample(torch.from_numpy(est), sample_rate, 16000).numpy()
    try:
        return float(pesq(16000, ref, est, "wb"))
    except (NoUtterancesError, BufferTooShortError):
        return float("nan")


def stoi(ref: np.ndarray, est: np.ndarray, sample_rate: int, extended: bool = False) -> float:
    """Short-time objective intelligibility (0..1, 1 = identical) with ``pystoi`` (resamples to 10 kHz itself); NaN
    where too little speech is left after its silence removal (under 30 frames, ~0.4 s), where pystoi warns and
    returns 1e-5, a value that would pull a mean down as if the audio were unintelligible; NaN too for audio not
    longer than one of its 256-sample frames at 10 kHz (26 ms), where pystoi fails (an AxisError)."""
    from pystoi import stoi as _stoi
    from pystoi.stoi import FS, N_FRAME

    ref, est = _pair(ref, est)
    if ref.size * FS <= N_FRAME * sample_rate:
        return float("nan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(_stoi(ref, est, sample_rate, extended=extended))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return float("nan")
    for w in caught:  # anything else pystoi had to say still reaches the user
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return value


class MultiResolutionMelDistance:
    """Mean L1 distance between log-mel spectrograms at several resolutions (0 for identical signals).

    Resolutions default to :data:`MEL_RESOLUTIONS` scaled for 16 kHz; log floor as in
    :class:`shared.features.MelSpectrogram` (``1e-5``). Natural-log units.
    """

    def __init__(self, sample_rate: int = 16000, resolutions: tuple[tuple[int, int, int], ...] = MEL_RESOLUTIONS):
        self.mels = [MelSpectrogram(sample_rate, n_fft=n, hop_length=h, n_mels=m) for n, h, m in resolutions]

    @torch.no_grad()
    def __call__(self, ref: np.ndarray, est: np.ndarray) -> float:
        ref, est = _pair(ref, est)
        r = torch.from_numpy(ref).float()[None]
        e = torch.from_numpy(est).float()[None]
        return float(np.mean([float((mel(r) - mel(e)).abs().mean()) for mel in self.mels]))


@functools.lru_cache(maxsize=4)
def _default_mel_distance(sample_rate: int) -> MultiResolutionMelDistance:
    return MultiResolutionMelDistance(sample_rate)


def codec_metrics(ref: np.ndarray, est: np.ndarray, sample_rate: int,
                  mel_distance: MultiResolutionMelDistance | None = None) -> dict[str, float]:
    """``pesq_wb``, ``stoi``, ``si_sdr`` and ``mel_distance`` of one resynthesised utterance."""
    mel_distance = mel_distance or _default_mel_distance(sample_rate)
    return {
        "pesq_wb": pesq_wb(ref, est, sample_rate),
        "stoi": stoi(ref, est, sample_rate),
        "si_sdr": si_sdr(ref, est),
        "mel_distance": mel_distance(ref, est),
    }


def real_time_factor(compute_seconds: float, audio_seconds: float) -> float:
    """Compute time / audio duration (below 1 is faster than real time)."""
    if audio_seconds <= 0:
        raise ValueError("real_time_factor: audio duration must be positive")
    return compute_seconds / audio_seconds


@dataclass
class RTFMeter:
    """Accumulates compute time and produced audio across calls::

        meter = RTFMeter()
        with meter.measure():
            wav = model.synthesize(...)
        meter.add_audio(wav.shape[-1] / sr)
        meter.rtf  # total compute / total audio

    For GPU work call ``torch.cuda.synchronize()`` inside the block before it ends.
    """

    compute_seconds: float = 0.0
    audio_seconds: float = 0.0
    calls: int = 0
    _start: float | None = field(default=None, repr=False)

    def measure(self) -> "RTFMeter":
        return self

    def __enter__(self) -> "RTFMeter":
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.compute_seconds += time.perf_counter() - self._start
        self.calls += 1
        self._start = None

    def add_audio(self, seconds: float) -> None:
        self.audio_seconds += seconds

    @property
    def rtf(self) -> float:
        return real_time_factor(self.compute_seconds, self.audio_seconds)

    def as_dict(self) -> dict[str, float]:
        return {"compute_seconds": self.compute_seconds, "audio_seconds": self.audio_seconds, "rtf": self.rtf,
                "calls": self.calls}
