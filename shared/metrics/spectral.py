"""Reference-based TTS metrics on DTW-aligned frames: MCD, log-F0 RMSE, voicing error, duration ratio.

Recipe (all at ``sample_rate`` = 16 kHz unless told otherwise; inputs are resampled by the caller):

1. **Frames**: STFT with a periodic Hann window, ``n_fft = 512`` (32 ms), hop 10 ms (160 samples),
   ``center=True`` so an utterance of ``T`` samples has ``T // hop + 1`` frames. Amplitudes are
   divided by the window sum and floored at ``1e-5`` (-100 dB) before the log.
2. **Mel-cepstrum**: the frequency-warped cepstrum of the log-amplitude spectrum with the first-order
   all-pass warping ``w~ = w + 2 atan(a sin w / (1 - a cos w))``, ``a = 0.42`` at 16 kHz
   (:func:`alpha_for_rate` gives the usual SPTK values for other rates). ``ln|X|`` is sampled on a
   uniform grid of the *warped* frequency (linear interpolation between FFT bins at the unwarped
   frequencies ``w = warp(w~, -a)``) and projected on ``cos(m w~)``, in SPTK's (one-sided) convention
   ``ln|X(w~)| = c_0 + sum_{m>=1} c_m cos(m w~)``: ``c_0 = 1/pi * integral_0^pi ln|X(w~)| dw~`` and
   ``c_m = 2/pi * integral_0^pi ln|X(w~)| cos(m w~) dw~`` (trapezoid rule), m = 1..24. This is the
   least-squares order-24 fit of the log spectrum on the warped axis; SPTK's ``mcep`` (UELS) fits the
   same model with a different envelope criterion, so values are on the same scale but not identical
   to pysptk-based numbers. (Until 2026-12-07 the c_m, m >= 1, were the symmetric cepstrum's, half of
   these, and every MCD-DTW this toolkit reported was half the standard value: exactly, as the DTW path
   does not change with a common scale.)
3. **DTW** (:mod:`shared.metrics.dtw`) on c1..c24 (c0, the energy, is excluded) with Euclidean
   frame distance, steps (1,0), (0,1), (1,1).
4. **MCD-DTW** = mean over path pairs of ``10 / ln 10 * sqrt(2 * sum_{d=1..24} (c_d - c'_d)^2)`` dB.
5. **F0**: ``librosa.pyin`` with fixed ``fmin = 60``, ``fmax = 500`` Hz, ``frame_length = 1024``,
   0.1-semitone pitch bins (0.2 until 2026-12-07), the same hop and centring, so F0 frames are the cepstral frames
   and reuse the DTW path; its Viterbi decoding by :mod:`shared.metrics.viterbi` (librosa's path, ~5x faster). pYIN
   decides voicing and octave; on voiced frames its bin-quantised F0 is replaced by ``librosa.yin``'s continuous
   estimate where the two agree within a semitone.
   *log-F0 RMSE* in cents = ``1200 * sqrt(mean((log2 f - log2 f')^2))`` over path pairs voiced in
   both; *voicing error* = fraction of path pairs whose voiced flags differ.
6. **Duration ratio** = generated samples / reference samples (both at the same rate).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import librosa
import numpy as np

from shared.metrics.dtw import dtw
from shared.metrics.viterbi import faster_pyin_viterbi

MCD_CONST = 10.0 / math.log(10.0) * math.sqrt(2.0)  # dB per unit of Euclidean cepstral distance
# which cepstra :func:`mel_cepstrum` gives, part of every cache key of scored metrics (shared.evaluate): values computed
# before 2026-12-07, with the symmetric cepstrum's half-size c_m, must not be reused beside new ones
MCEP_CONVENTION = "sptk-one-sided"
F0_FMIN, F0_FMAX = 60.0, 500.0
AMP_FLOOR = 1e-5


def alpha_for_rate(sample_rate: int) -> float:
    """All-pass constant that approximates the mel scale (SPTK's customary values)."""
    table = {8000: 0.31, 11025: 0.36, 16000: 0.42, 22050: 0.455, 24000: 0.466, 44100: 0.544, 48000: 0.554}
    if sample_rate in table:
        return table[sample_rate]
    rates = sorted(table)
    return float(np.interp(sample_rate, rates, [table[r] for r in rates]))


def warp_frequency(omega: np.ndarray, alpha: float) -> np.ndarray:
    """Phase response of the all-pass ``(z^-1 - a) / (1 - a z^-1)``: maps ``[0, pi]`` onto itself."""
    return omega + 2.0 * np.arctan(alpha * np.sin(omega) / (1.0 - alpha * np.cos(omega)))


@functools.lru_cache(maxsize=8)
def _mcep_matrix(n_fft: int, order: int, alpha: float) -> np.ndarray:
    """``(order + 1, n_fft // 2 + 1)`` matrix mapping ``ln|X|`` per FFT bin to warped cepstra."""
    k = n_fft // 2 + 1
    q = 2 * k  # warped grid, denser than the bins
    w_tilde = np.linspace(0.0, math.pi, q)
    w = warp_frequency(w_tilde, -alpha)  # unwarped frequency of each warped grid point
    pos = w / math.pi * (k - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, k - 2)
    frac = pos - lo
    interp = np.zeros((q, k))
    interp[np.arange(q), lo] = 1.0 - frac
    interp[np.arange(q), lo + 1] += frac
    trap = np.full(q, 1.0)
    trap[[0, -1]] = 0.5
    cos = np.cos(np.arange(order + 1)[:, None] * w_tilde[None, :]) * trap / (q - 1)
    cos[1:] *= 2.0  # one-sided: ln|X| = c_0 + sum_m c_m cos(m w~), what MCD_CONST's sqrt(2) assumes
    return cos @ interp


@dataclass(frozen=True)
class AnalysisConfig:
    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 160
    order: int = 24
    alpha: float | None = None  # None: alpha_for_rate(sample_rate)
    f0_frame_length: int = 1024
    # pYIN's pitch-bin width in semitones: librosa's default and the pYIN paper's. Not only the bins' accuracy: its
    # unvoiced states score (1 - voiced probability) / bins, so coarser bins mark more frames unvoiced (0.2 marked
    # 45% of an RP-voice test utterance voiced against 66% at 0.1, with YIN finding 88-111 Hz in the gap)
    f0_resolution: float = 0.1


DEFAULT_ANALYSIS = AnalysisConfig()


def mel_cepstrum(wav: np.ndarray, cfg: AnalysisConfig = DEFAULT_ANALYSIS) -> np.ndarray:
    """Warped cepstra ``c_0..c_order`` of ``wav (T,)``: ``(F, order + 1)``, ``F = T // hop + 1``."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    window = np.hanning(cfg.n_fft + 1)[:-1]
    spec = np.abs(librosa.stft(wav, n_fft=cfg.n_fft, hop_length=cfg.hop_length, window=window, center=True))
    log_amp = np.log(np.maximum(spec / window.sum(), AMP_FLOOR))  # (K, F)
    alpha = alpha_for_rate(cfg.sample_rate) if cfg.alpha is None else cfg.alpha
    return (_mcep_matrix(cfg.n_fft, cfg.order, float(alpha)) @ log_amp).T


def pyin_kwargs(cfg: AnalysisConfig = DEFAULT_ANALYSIS) -> dict[str, Any]:
    """``librosa.pyin``'s arguments (all but the audio) for the analysis ``cfg``: one place for them."""
    return dict(fmin=F0_FMIN, fmax=F0_FMAX, sr=cfg.sample_rate, frame_length=cfg.f0_frame_length,
                hop_length=cfg.hop_length, center=True, resolution=cfg.f0_resolution)


def f0_pyin(wav: np.ndarray, cfg: AnalysisConfig = DEFAULT_ANALYSIS) -> tuple[np.ndarray, np.ndarray]:
    """F0 in Hz ``(F,)`` (0 where unvoiced) and voiced flags ``(F,)`` bool, on the cepstral frame grid."""
    wav = np.asarray(wav, dtype=np.float32).reshape(-1)
    with faster_pyin_viterbi():
        f0, voiced, _ = librosa.pyin(wav, **pyin_kwargs(cfg))
    voiced = voiced & np.isfinite(f0)
    # pYIN's F0 is quantised to its pitch bins; take YIN's continuous (parabolically interpolated)
    # estimate where it agrees with pYIN to within a semitone, keeping pYIN's voicing and octave choice.
    fine = librosa.yin(wav, fmin=F0_FMIN, fmax=F0_FMAX, sr=cfg.sample_rate, frame_length=cfg.f0_frame_length,
                       hop_length=cfg.hop_length, center=True)[: len(f0)]
    f0 = np.where(voiced, f0, 1.0)
    close = voiced & (np.abs(np.log2(fine / f0)) < 1.0 / 12)
    f0 = np.where(close, fine, f0)
    return np.where(voiced, f0, 0.0), voiced


@dataclass
class Analysis:
    """Per-utterance features: ``mcep (F, order+1)``, ``f0 (F,)``, ``voiced (F,)``, ``num_samples``."""

    mcep: np.ndarray
    f0: np.ndarray | None
    voiced: np.ndarray | None
    num_samples: int


def analyse(wav: np.ndarray, cfg: AnalysisConfig = DEFAULT_ANALYSIS, with_f0: bool = True) -> Analysis:
    mcep = mel_cepstrum(wav, cfg)
    f0, voiced = f0_pyin(wav, cfg) if with_f0 else (None, None)
    if f0 is not None:
        n = min(len(f0), len(mcep))  # identical by construction; guard against librosa changes
        mcep, f0, voiced = mcep[:n], f0[:n], voiced[:n]
    return Analysis(mcep, f0, voiced, int(np.asarray(wav).size))


def mcd_frames(c_ref: np.ndarray, c_gen: np.ndarray) -> np.ndarray:
    """Per-pair MCD in dB of already aligned cepstra ``(L, D)`` (pass c1..c24 only)."""
    return MCD_CONST * np.sqrt(((c_ref - c_gen) ** 2).sum(-1))


def mcd_dtw(c_ref: np.ndarray, c_gen: np.ndarray) -> tuple[float, np.ndarray]:
    """MCD-DTW in dB between cepstra ``(N, order+1)`` and ``(M, order+1)`` (c0 dropped here).

    Returns ``(mcd_db, path (L, 2))``.
    """
    a, b = c_ref[:, 1:], c_gen[:, 1:]
    path, _ = dtw(a, b)
    return float(mcd_frames(a[path[:, 0]], b[path[:, 1]]).mean()), path


def f0_metrics(
    f0_ref: np.ndarray, voiced_ref: np.ndarray, f0_gen: np.ndarray, voiced_gen: np.ndarray, path: np.ndarray
) -> dict[str, float]:
    """log-F0 RMSE (cents), voicing decision error and F0 correlation along a DTW ``path (L, 2)``.

    ``f0_rmse_cents`` and ``f0_corr`` are NaN when fewer than 2 aligned pairs are voiced in both.
    """
    vr, vg = voiced_ref[path[:, 0]], voiced_gen[path[:, 1]]
    both = vr & vg
    out = {"vuv_error": float((vr != vg).mean()), "voiced_both_frac": float(both.mean())}
    if both.sum() >= 2:
        lr = np.log2(f0_ref[path[:, 0]][both])
        lg = np.log2(f0_gen[path[:, 1]][both])
        out["f0_rmse_cents"] = float(1200.0 * np.sqrt(np.mean((lr - lg) ** 2)))
        sr, sg = lr.std(), lg.std()
        out["f0_corr"] = float(np.corrcoef(lr, lg)[0, 1]) if sr > 0 and sg > 0 else float("nan")
    else:
        out["f0_rmse_cents"] = float("nan")
        out["f0_corr"] = float("nan")
    return out


def duration_ratio(num_gen: int, num_ref: int) -> float:
    """Generated length / reference length (same sample rate)."""
    if num_ref <= 0:
        raise ValueError("duration_ratio: reference has no samples")
    return num_gen / num_ref


def tts_metrics(ref: np.ndarray, gen: np.ndarray, cfg: AnalysisConfig = DEFAULT_ANALYSIS, with_f0: bool = True,
                return_path: bool = False, ref_analysis: Analysis | None = None) -> dict:
    """All alignment-based metrics of one pair of waveforms ``(T_ref,)``, ``(T_gen,)`` at ``cfg.sample_rate``.

    Keys: ``mcd_dtw``, ``f0_rmse_cents``, ``f0_corr``, ``vuv_error``, ``voiced_both_frac``,
    ``duration_ratio``; plus ``path`` (``(L, 2)`` array) if ``return_path``. ``ref_analysis``: ``analyse(ref,
    cfg, with_f0)`` computed before (scoring many systems against the same references analyses them once).
    """
    a_ref = ref_analysis if ref_analysis is not None else analyse(ref, cfg, with_f0)
    a_gen = analyse(gen, cfg, with_f0)
    mcd, path = mcd_dtw(a_ref.mcep, a_gen.mcep)
    out: dict = {"mcd_dtw": mcd, "duration_ratio": duration_ratio(a_gen.num_samples, a_ref.num_samples)}
    if with_f0:
        out.update(f0_metrics(a_ref.f0, a_ref.voiced, a_gen.f0, a_gen.voiced, path))
    if return_path:
        out["path"] = path
    return out
