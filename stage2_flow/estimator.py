"""Velocity estimator v(x_t, t | frame condition, global condition): a ConvNeXt-1D stack with
adaLN time/speaker modulation, optional self-attention blocks (needed by the alignment-free mode,
whose text is not aligned to frames), optionally run at half frame rate (U-Net style) for speed."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from stage2_flow.layers import AttentionBlock, ChannelNorm, ConvNeXtBlock, TimeEmbedding


class VelocityEstimator(nn.Module):
    """x: (B, D, F), t: (B,), mask: (B, 1, F), cond: (B, C, F) or None, g: (B, S) or None -> (B, D, F)."""

    def __init__(
        self,
        latent_dim: int,
        cond_channels: int,
        hidden: int = 256,
        layers: int = 8,
        dilations: list[int] | None = None,
        kernel: int = 7,
        mult: int = 3,
        attn_layers: int = 0,
        heads: int = 4,
        spk_dim: int = 0,
        stride: int = 1,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        dilations = dilations or [1, 2, 4, 1]
        self.stride, self.cond_channels = stride, cond_channels
        self.time = TimeEmbedding(hidden)
        self.spk = nn.Linear(spk_dim, hidden) if spk_dim else None
        self.inp = nn.Conv1d(latent_dim + cond_channels, hidden, 1)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(hidden, mult=mult, kernel=kernel, dilation=dilations[i % len(dilations)], cond_dim=hidden, dropout=dropout)
            for i in range(layers)
        )
        self.attn = nn.ModuleList(AttentionBlock(hidden, heads=heads, cond_dim=hidden, dropout=dropout) for _ in range(attn_layers))
        if stride > 1:
            self.down = nn.Conv1d(hidden, hidden, stride, stride=stride)
            self.up = nn.ConvTranspose1d(hidden, hidden, stride, stride=stride)
            self.refine = ConvNeXtBlock(hidden, mult=2, kernel=kernel, cond_dim=hidden)
        self.norm = ChannelNorm(hidden)
        self.out = nn.Conv1d(hidden, latent_dim, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def takes_conditions(self) -> bool:
        """Whether it reads any condition, frame channels or a speaker vector: what guidance drops."""
        return self.cond_channels > 0 or self.spk is not None

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor | None = None, g: torch.Tensor | None = None
    ) -> torch.Tensor:
        c = self.time(t)
        if self.spk is not None and g is not None:
            c = c + self.spk(g)
        inp = x if cond is None else torch.cat([x, cond], dim=1)
        h = self.inp(inp) * mask
        n = h.shape[-1]
        if self.stride > 1:
            pad = (-n) % self.stride
            skip = h
            m_low = F.max_pool1d(F.pad(mask, (0, pad)), self.stride)
            h = self.down(F.pad(h, (0, pad))) * m_low
        else:
            m_low = mask
        for block in self.blocks:
            h = block(h, m_low, c)
        for block in self.attn:
            h = block(h, m_low, c)
        if self.stride > 1:
            h = self.up(h)[..., :n] * mask + skip
            h = self.refine(h, mask, c)
        return self.out(self.norm(h)) * mask
