"""Small building blocks shared by the text encoder and the velocity estimator (all (B, C, T))."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class ChannelNorm(nn.Module):
    """LayerNorm over channels of a (B, C, T) tensor."""

    def __init__(self, channels: int, affine: bool = True) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, elementwise_affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


def sinusoidal(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of positions/times. x: (...,) -> (..., dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    args = x.float()[..., None] * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TimeEmbedding(nn.Module):
    """t in [0, 1] (B,) -> (B, dim) through sinusoids and an MLP."""

    def __init__(self, dim: int, freq_dim: int = 128) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal(t * 1000.0, self.freq_dim))


class ConvNeXtBlock(nn.Module):
    """ConvNeXt-1D block with optional adaptive LayerNorm (scale/shift/gate from a global vector).

    x: (B, C, T), mask: (B, 1, T) float, cond: (B, cond_dim) or None.
    """

    def __init__(self, channels: int, mult: int = 3, kernel: int = 7, dilation: int = 1, cond_dim: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.dw = nn.Conv1d(channels, channels, kernel, padding=pad, dilation=dilation, groups=channels)
        self.norm = nn.LayerNorm(channels, elementwise_affine=cond_dim == 0)
        self.pw1 = nn.Linear(channels, channels * mult)
        self.pw2 = nn.Linear(channels * mult, channels)
        self.drop = nn.Dropout(dropout)
        self.ada = nn.Linear(cond_dim, 3 * channels) if cond_dim else None
        if self.ada is not None:
            nn.init.zeros_(self.ada.weight)
            nn.init.zeros_(self.ada.bias)
        else:
            self.gamma = nn.Parameter(torch.full((channels,), 0.1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.dw(x * mask).transpose(1, 2)  # (B, T, C)
        h = self.norm(h)
        if self.ada is not None:
            scale, shift, gate = self.ada(cond)[:, None, :].chunk(3, dim=-1)
            h = h * (1 + scale) + shift
        h = self.pw2(self.drop(F.gelu(self.pw1(h))))
        h = h * (gate + 1.0) if self.ada is not None else h * self.gamma
        return (x + h.transpose(1, 2)) * mask


class AttentionBlock(nn.Module):
    """Pre-norm self-attention + MLP block on (B, C, T) with a key padding mask and adaLN."""

    def __init__(self, channels: int, heads: int = 4, mult: int = 2, cond_dim: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(channels, elementwise_affine=cond_dim == 0)
        self.attn = nn.MultiheadAttention(channels, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(channels, elementwise_affine=cond_dim == 0)
        self.mlp = nn.Sequential(nn.Linear(channels, channels * mult), nn.GELU(), nn.Linear(channels * mult, channels))
        self.ada = nn.Linear(cond_dim, 4 * channels) if cond_dim else None
        if self.ada is not None:
            nn.init.zeros_(self.ada.weight)
            nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = x.transpose(1, 2)
        if self.ada is not None:
            s1, b1, s2, b2 = self.ada(cond)[:, None, :].chunk(4, dim=-1)
        else:
            s1 = b1 = s2 = b2 = 0.0
        pad = mask[:, 0] < 0.5  # True on padding
        a = self.norm1(h) * (1 + s1) + b1
        h = h + self.attn(a, a, a, key_padding_mask=pad, need_weights=False)[0]
        h = h + self.mlp(self.norm2(h) * (1 + s2) + b2)
        return h.transpose(1, 2) * mask


def positional_encoding(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(1, dim, length) sinusoidal positions."""
    return sinusoidal(torch.arange(length, device=device), dim).T[None]
