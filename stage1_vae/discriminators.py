"""Discriminators: multi-period (HiFi-GAN) and multi-resolution STFT (UnivNet/Vocos).

Each returns ``(logits, features)`` per sub-discriminator for a waveform ``(B, T)``:
``list[Tensor]`` logits and ``list[list[Tensor]]`` intermediate feature maps (for feature matching).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from shared.features import log_magnitude


class PeriodDiscriminator(nn.Module):
    """Reshape ``(B, T)`` to ``(B, 1, T / p, p)`` and apply strided 2D convs along time."""

    def __init__(self, period: int, channels: tuple[int, ...] = (32, 128, 256, 256)):
        super().__init__()
        self.period = period
        chans = (1,) + tuple(channels)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (5, 1), (3, 1), padding=(2, 0))) for i in range(len(channels))
        )
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, t = wav.shape
        if t % self.period:
            wav = F.pad(wav, (0, self.period - t % self.period), mode="reflect")
        x = wav.view(b, 1, -1, self.period)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        x = self.post(x)
        feats.append(x)
        return x.flatten(1), feats


class ResolutionDiscriminator(nn.Module):
    """2D convs over the log-magnitude spectrogram at one STFT resolution."""

    def __init__(self, n_fft: int, hop_length: int, channels: int = 32, num_layers: int = 4):
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        layers = [weight_norm(nn.Conv2d(1, channels, (7, 5), padding=(3, 2)))]
        for _ in range(num_layers - 1):
            layers.append(weight_norm(nn.Conv2d(channels, channels, (5, 3), stride=(2, 1), padding=(2, 1))))
        self.convs = nn.ModuleList(layers)
        self.post = weight_norm(nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = log_magnitude(wav, self.n_fft, self.hop_length).unsqueeze(1)  # (B, 1, freq, frames)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        x = self.post(x)
        feats.append(x)
        return x.flatten(1), feats


class MultiDiscriminator(nn.Module):
    """Multi-period and/or multi-resolution discriminators behind one call."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), period_channels: tuple[int, ...] = (32, 128, 256, 256),
                 resolutions: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512)),
                 resolution_channels: int = 32):
        super().__init__()
        self.discs = nn.ModuleList([PeriodDiscriminator(p, tuple(period_channels)) for p in periods] +
                                   [ResolutionDiscriminator(n, h, resolution_channels) for n, h in resolutions])

    def forward(self, wav: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        logits, feats = [], []
        for d in self.discs:
            lg, ft = d(wav)
            logits.append(lg)
            feats.append(ft)
        return logits, feats
