"""Encoders: waveform ``(B, T)`` -> frame-rate features ``(B, C, F)`` with ``F = T // hop + 1``.

The frame rate is ``sample_rate / hop_length`` (50-100 Hz for the recipes). The learned encoder works
on a spectral view of the waveform (cheap on CPU: all its layers run at frame rate).
"""

from __future__ import annotations

import torch
from torch import nn

from shared.features import MelSpectrogram, stft
from stage1_vae.modules import Backbone

LOG_FLOOR = 1e-5


def spectral_features(wav: torch.Tensor, kind: str, n_fft: int, hop_length: int, mel: nn.Module | None) -> torch.Tensor:
    """``wav (B, T)`` -> ``(B, C, F)``.

    ``stft``: log-magnitude plus the power-law compressed complex spectrum (``|S|^0.3 e^{i phi}``, real
    and imaginary parts), so the encoder sees phase as well; ``mel``: log-mel.
    """
    if kind == "mel":
        assert mel is not None
        return mel(wav)
    if kind != "stft":
        raise ValueError(f"unknown encoder input '{kind}' (expected 'stft' or 'mel')")
    spec = stft(wav.float(), n_fft, hop_length)
    mag = spec.abs().clamp(min=LOG_FLOOR)
    comp = spec / mag * mag.pow(0.3)
    return torch.cat([torch.log(mag), comp.real, comp.imag], dim=1)


class SpectralEncoder(nn.Module):
    """Spectral features -> 1x1 projection -> ConvNeXt stack -> ``(B, out_dim, F)``."""

    def __init__(
        self,
        out_dim: int,
        sample_rate: int = 16000,
        hop_length: int = 256,
        n_fft: int = 1024,
        input: str = "stft",
        n_mels: int = 80,
        dim: int = 256,
        intermediate_dim: int = 768,
        num_layers: int = 4,
        kernel_size: int = 7,
    ):
        super().__init__()
        self.kind, self.n_fft, self.hop_length = input, n_fft, hop_length
        self.mel = MelSpectrogram(sample_rate, n_fft, hop_length, n_mels=n_mels) if input == "mel" else None
        in_dim = n_mels if input == "mel" else 3 * (n_fft // 2 + 1)
        self.inp = nn.Conv1d(in_dim, dim, 1)
        self.backbone = Backbone(dim, dim, intermediate_dim, num_layers, kernel_size)
        self.out = nn.Conv1d(dim, out_dim, 1)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = spectral_features(wav, self.kind, self.n_fft, self.hop_length, self.mel)
        return self.out(self.backbone(self.inp(x)))


class MelEncoder(nn.Module):
    """A fixed (parameter-free) log-mel "encoder" for the mel-spectrogram codec: ``(B, T) -> (B, n_mels, F)``."""

    def __init__(self, out_dim: int, sample_rate: int = 16000, hop_length: int = 256, n_fft: int = 1024, **_: object):
        super().__init__()
        self.mel = MelSpectrogram(sample_rate, n_fft, hop_length, n_mels=out_dim)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.mel(wav)
