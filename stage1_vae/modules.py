"""Building blocks shared by the encoders and decoders: ConvNeXt blocks at frame rate and the
inverse-STFT head (the Vocos idea: predict a spectrum per frame and let ``torch.istft`` upsample)."""

from __future__ import annotations

import torch
from torch import nn


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k=7) -> LayerNorm -> pointwise MLP -> layer-scaled residual. ``x: (B, C, F)``."""

    def __init__(self, dim: int, intermediate_dim: int, kernel_size: int = 7, layer_scale: float = 1e-1):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pw2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).transpose(1, 2)  # (B, F, C)
        y = self.pw2(self.act(self.pw1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class Backbone(nn.Module):
    """``(B, C_in, F) -> (B, dim, F)``: input conv, ConvNeXt stack, final LayerNorm (no change of rate)."""

    def __init__(self, in_dim: int, dim: int, intermediate_dim: int, num_layers: int, kernel_size: int = 7):
        super().__init__()
        self.embed = nn.Conv1d(in_dim, dim, kernel_size, padding=kernel_size // 2)
        self.norm_in = nn.LayerNorm(dim, eps=1e-6)
        scale = 1.0 / max(1, num_layers)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(dim, intermediate_dim, kernel_size, layer_scale=scale) for _ in range(num_layers)
        )
        self.norm_out = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm_in(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.norm_out(x.transpose(1, 2)).transpose(1, 2)


class ISTFTHead(nn.Module):
    """Frame features ``(B, dim, F)`` -> waveform ``(B, (F - 1) * hop)`` through ``torch.istft``.

    Predicts log-magnitude and phase for ``n_fft // 2 + 1`` bins (phase as an unconstrained angle, read
    through cos/sin as in Vocos). ``center=True`` framing, so ``F = T // hop + 1`` frames give ``T`` samples.
    """

    def __init__(self, dim: int, n_fft: int, hop_length: int, max_log_mag: float = 4.6):
        super().__init__()
        self.n_fft, self.hop_length, self.max_log_mag = n_fft, hop_length, max_log_mag
        self.proj = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def log_mag_phase(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, dim, F)`` -> log-magnitude and unwrapped phase, each ``(B, n_fft // 2 + 1, F)``."""
        y = self.proj(x.transpose(1, 2)).transpose(1, 2).float()
        log_mag, phase = y.chunk(2, dim=1)
        return log_mag.clamp(max=self.max_log_mag), phase

    def forward(self, x: torch.Tensor, length: int | None = None, return_phase: bool = False):
        log_mag, phase = self.log_mag_phase(x)
        mag = torch.exp(log_mag)
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
        length = length if length is not None else (spec.shape[-1] - 1) * self.hop_length
        wav = torch.istft(spec, self.n_fft, self.hop_length, self.n_fft, self.window, center=True, length=length)
        return (wav, phase) if return_phase else wav


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
