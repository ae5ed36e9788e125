"""Text side: token embedding + conv/transformer encoder (speaker-conditioned), prior projection
(mu per token in the latent dim) and the log-domain duration predictor."""

from __future__ import annotations

import math

import torch
from torch import nn

from stage2_flow.layers import AttentionBlock, ChannelNorm, ConvNeXtBlock, positional_encoding


class TextEncoder(nn.Module):
    """tokens (B, L) + speaker vector (B, S) -> hidden h (B, H, L) and prior mean mu (B, D, L).

    Conv prenet (ConvNeXt blocks) for local context, then transformer blocks with sinusoidal positions;
    the speaker vector is added to the hidden states (and modulates every block through adaLN).
    ``latent_dim`` None: no prior mean (alignment-free mode, which uses h alone), mu is None.
    """

    def __init__(
        self,
        n_vocab: int,
        latent_dim: int | None,
        hidden: int = 192,
        conv_layers: int = 3,
        attn_layers: int = 4,
        heads: int = 2,
        spk_dim: int = 0,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.emb = nn.Embedding(n_vocab, hidden)
        nn.init.normal_(self.emb.weight, 0.0, hidden**-0.5)
        self.convs = nn.ModuleList(ConvNeXtBlock(hidden, mult=2, kernel=5, dropout=dropout) for _ in range(conv_layers))
        self.spk = nn.Linear(spk_dim, hidden) if spk_dim else None
        self.attn = nn.ModuleList(
            AttentionBlock(hidden, heads=heads, mult=2, cond_dim=spk_dim, dropout=dropout) for _ in range(attn_layers)
        )
        self.norm = ChannelNorm(hidden)
        self.proj_mu = nn.Conv1d(hidden, latent_dim, 1) if latent_dim is not None else None

    def forward(self, tokens: torch.Tensor, tok_mask: torch.Tensor, spk: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """tokens: (B, L) long, tok_mask: (B, 1, L) float, spk: (B, S) -> (h (B, H, L), mu (B, D, L) or None)."""
        x = self.emb(tokens).transpose(1, 2) * math.sqrt(self.hidden) * tok_mask
        for block in self.convs:
            x = block(x, tok_mask)
        x = x + positional_encoding(x.shape[-1], self.hidden, x.device)
        if self.spk is not None and spk is not None:
            x = x + self.spk(spk)[:, :, None]
        x = x * tok_mask
        for block in self.attn:
            x = block(x, tok_mask, spk if self.spk is not None else None)
        h = self.norm(x) * tok_mask
        return h, self.proj_mu(h) * tok_mask if self.proj_mu is not None else None


class DurationPredictor(nn.Module):
    """Predicts log durations (frames) per token from detached encoder states. h: (B, H, L) -> (B, L)."""

    def __init__(self, hidden: int, channels: int = 192, layers: int = 2, kernel: int = 3, spk_dim: int = 0, dropout: float = 0.1) -> None:
        super().__init__()
        self.inp = nn.Conv1d(hidden, channels, 1)
        self.spk = nn.Linear(spk_dim, channels) if spk_dim else None
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(channels, channels, kernel, padding=kernel // 2), nn.ReLU(), ChannelNorm(channels), nn.Dropout(dropout))
            for _ in range(layers)
        )
        self.out = nn.Conv1d(channels, 1, 1)

    def forward(self, h: torch.Tensor, tok_mask: torch.Tensor, spk: torch.Tensor | None = None) -> torch.Tensor:
        x = self.inp(h.detach())
        if self.spk is not None and spk is not None:
            x = x + self.spk(spk.detach())[:, :, None]
        for block in self.blocks:
            x = block(x * tok_mask)
        return (self.out(x * tok_mask) * tok_mask)[:, 0]


def duration_loss(log_w_hat: torch.Tensor, durations: torch.Tensor, tok_mask: torch.Tensor) -> torch.Tensor:
    """MSE in the log domain, log(d + 1) so zero-length (external) durations are allowed. (B, L) each."""
    m = tok_mask[:, 0] if tok_mask.dim() == 3 else tok_mask
    target = torch.log1p(durations.float())
    return ((log_w_hat - target) ** 2 * m).sum() / m.sum()


def log_durations_to_frames(log_w_hat: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
    """Inverse of the training target: exp(log_w) - 1, divided by the speaking-rate factor (>1 = faster)."""
    return torch.clamp(torch.expm1(log_w_hat), min=0.0) / rate
