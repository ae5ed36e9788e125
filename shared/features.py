"""STFT and mel-spectrogram transforms shared by the losses, the models and the metrics.

They are ``nn.Module``s with their windows and filterbanks as buffers, so ``.to(device)`` moves them and
the same code runs on CPU and GPU.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

LOG_FLOOR = 1e-5


def n_frames(num_samples: int, hop_length: int, center: bool = True) -> int:
    """Number of STFT frames for ``num_samples`` (``center=True`` pads by n_fft // 2 on both sides)."""
    return num_samples // hop_length + 1 if center else max(0, num_samples // hop_length)


_WINDOWS: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


def hann_window(win_length: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A cached periodic Hann window."""
    key = (win_length, str(device), dtype)
    if key not in _WINDOWS:
        _WINDOWS[key] = torch.hann_window(win_length, device=device, dtype=dtype)
    return _WINDOWS[key]


def stft(wav: torch.Tensor, n_fft: int, hop_length: int, win_length: int | None = None, center: bool = True) -> torch.Tensor:
    """Complex STFT of ``wav (B, T)`` -> ``(B, n_fft // 2 + 1, F)``."""
    win_length = win_length or n_fft
    window = hann_window(win_length, wav.device, wav.dtype)
    return torch.stft(wav, n_fft, hop_length, win_length, window, center=center, return_complex=True)


class MelSpectrogram(nn.Module):
    """Waveform ``(B, T)`` -> (log-)mel spectrogram ``(B, n_mels, F)`` with ``F = T // hop + 1``."""

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int | None = None,
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: float | None = None,
        power: float = 1.0,
        log: bool = True,
        center: bool = True,
        norm: str | None = "slaney",
        mel_scale: str = "slaney",
    ):
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.win_length = win_length or n_fft
        self.n_mels, self.power, self.log, self.center = n_mels, power, log, center
        fb = torchaudio.functional.melscale_fbanks(
            n_fft // 2 + 1, f_min, f_max or sample_rate / 2, n_mels, sample_rate, norm=norm, mel_scale=mel_scale
        )  # (n_freqs, n_mels)
        self.register_buffer("fbank", fb.T.contiguous(), persistent=False)
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        squeeze = wav.dim() == 1
        if squeeze:
            wav = wav.unsqueeze(0)
        spec = torch.stft(
            wav.float(), self.n_fft, self.hop_length, self.win_length, self.window, center=self.center, return_complex=True
        ).abs()
        if self.power != 1.0:
            spec = spec.pow(self.power)
        mel = torch.matmul(self.fbank, spec)
        if self.log:
            mel = torch.log(torch.clamp(mel, min=LOG_FLOOR))
        return mel.squeeze(0) if squeeze else mel
