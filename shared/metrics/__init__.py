"""Objective metrics for TTS and codec evaluation.

- :mod:`.spectral`: MCD-DTW (dB, warped cepstra c1..c24), log-F0 RMSE (cents), voicing error, duration
  ratio; the exact analysis recipe is in that module's docstring.
- :mod:`.dtw`: row-vectorised numpy DTW.
- :mod:`.signal`: PESQ-WB, STOI, SI-SDR, multi-resolution mel distance, real-time factor.
- :mod:`.text`: Levenshtein counts and PER/WER.
- :mod:`.optional`: model-based metrics (Whisper WER, speaker similarity, UTMOS) that run only with
  locally available packages and weights, and otherwise report why they were skipped.
- :mod:`.report`: aggregation (mean/std) and the RESULTS.md writer.
"""

from shared.metrics.dtw import dtw
from shared.metrics.signal import (
    MultiResolutionMelDistance,
    RTFMeter,
    codec_metrics,
    pesq_wb,
    real_time_factor,
    si_sdr,
    stoi,
)
from shared.metrics.spectral import AnalysisConfig, f0_metrics, mcd_dtw, mel_cepstrum, tts_metrics
from shared.metrics.text import EditCounts, edit_distance, error_rate

__all__ = [
    "AnalysisConfig", "EditCounts", "MultiResolutionMelDistance", "RTFMeter", "codec_metrics", "dtw",
    "edit_distance", "error_rate", "f0_metrics", "mcd_dtw", "mel_cepstrum", "pesq_wb", "real_time_factor",
    "si_sdr", "stoi", "tts_metrics",
]
