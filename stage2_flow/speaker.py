"""Speaker conditioning: a speaker-id table and/or a prompt encoder over a reference latent segment
(zero-shot, NaturalSpeech 2 / F5 style), both mapped to one global vector (B, S)."""

from __future__ import annotations

import torch
from torch import nn

from stage2_flow.layers import ConvNeXtBlock


class PromptEncoder(nn.Module):
    """Reference latents (B, D, P) + mask (B, 1, P) -> (B, S): ConvNeXt stack then attention pooling
    with a few learned queries (averaged). Any prompt length runs, but training prompts are at most
    ``data.prompt_seconds[1]`` long; synthesis cuts longer ones to that
    (:meth:`~stage2_flow.synthesize.Synthesizer.cut_prompts`)."""

    def __init__(self, latent_dim: int, dim: int, hidden: int = 128, layers: int = 3, queries: int = 4) -> None:
        super().__init__()
        self.inp = nn.Conv1d(latent_dim, hidden, 1)
        self.blocks = nn.ModuleList(ConvNeXtBlock(hidden, mult=2, kernel=5) for _ in range(layers))
        self.queries = nn.Parameter(torch.randn(1, queries, hidden) * hidden**-0.5)
        self.attn = nn.MultiheadAttention(hidden, 2, batch_first=True)
        self.out = nn.Linear(hidden, dim)

    def forward(self, prompt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.inp(prompt) * mask
        for block in self.blocks:
            x = block(x, mask)
        q = self.queries.expand(x.shape[0], -1, -1)
        pooled = self.attn(q, x.transpose(1, 2), x.transpose(1, 2), key_padding_mask=mask[:, 0] < 0.5, need_weights=False)[0]
        return self.out(pooled.mean(1))


class SpeakerConditioner(nn.Module):
    """Sum of a speaker-id embedding (n_speakers > 0) and a prompt embedding (use_prompt).

    Either part may be missing at call time (unknown speaker, no prompt); the result is then the other
    part, or zeros. A missing id is -1.
    """

    def __init__(self, n_speakers: int, dim: int, use_prompt: bool = False, latent_dim: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.table = nn.Embedding(n_speakers, dim) if n_speakers > 0 else None
        self.prompt = PromptEncoder(latent_dim, dim) if use_prompt else None

    @property
    def enabled(self) -> bool:
        return self.table is not None or self.prompt is not None

    def forward(
        self,
        spk_ids: torch.Tensor | None,
        prompt: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
        batch: int | None = None,
        device: torch.device | None = None,
    ) -> torch.Tensor | None:
        if not self.enabled:
            return None
        b = batch if batch is not None else (spk_ids.shape[0] if spk_ids is not None else prompt.shape[0])
        out = torch.zeros(b, self.dim, device=device or next(self.parameters()).device)
        if self.table is not None and spk_ids is not None:
            known = spk_ids >= 0
            out = out + self.table(spk_ids.clamp(min=0)) * known[:, None]
        if self.prompt is not None and prompt is not None:
            if prompt_mask is None:
                prompt_mask = torch.ones_like(prompt[:, :1])
            has = prompt_mask.sum((1, 2)) > 0
            safe = torch.where(has[:, None, None], prompt_mask, torch.ones_like(prompt_mask))  # no all-masked rows
            out = out + self.prompt(prompt, safe) * has[:, None]
        return out
