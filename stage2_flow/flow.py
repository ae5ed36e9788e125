"""Conditional flow matching / rectified flow: ``compute_loss`` and ``sample`` side by side.

Path: x_t = (1 - (1 - sigma_min) t) x0 + t x1, target velocity u = x1 - (1 - sigma_min) x0
(sigma_min = 0 is plain rectified flow; sigma_min > 0, OT-CFM, only with the noise prior: :func:`check_sigma_min`).
x0 is either the text-conditioned prior mu + sigma * noise (``prior: text``, the default) or N(0, I) (``prior: noise``,
Matcha style); in both cases mu (and any extra frame condition) is also given to the estimator as a condition.
Classifier-free guidance: conditions (mu, extra, speaker) are dropped together with prob ``cfg_drop``.
"""

from __future__ import annotations

import sys
import zlib
from typing import Sequence, Union

import torch
from torch import nn

from shared.config import ConfigError
from stage2_flow import solvers


def check_sigma_min(prior: str, sigma_min: float) -> None:
    """OT-CFM's sigma_min > 0 leaves sigma_min x0 of the start point in the end point; x0 is zero-mean noise with the
    noise prior (a small blur), but mu + sigma eps with the text prior: every sample would be shifted by sigma_min mu.
    A ConfigError there (no shipped config sets it; each has sigma_min 0)."""
    if prior == "text" and float(sigma_min) > 0:
        raise ConfigError(f"model.flow.sigma_min {sigma_min} with flow.prior text: the path's end point keeps sigma_min * x0, "
                          "and x0 = mu + sigma eps, so every sample would be shifted by sigma_min * mu; use sigma_min 0 "
                          "(rectified flow) with the text prior, or flow.prior noise for OT-CFM")


# one generator for the whole batch, or one per batch row (see :func:`start_noise`)
Generators = Union[torch.Generator, Sequence[torch.Generator], None]


def utterance_seed(seed: int, utt: str) -> int:
    """The seed of one utterance's start noise: a function of ``seed`` and the utterance id alone, so a corpus (and
    a reflow-pair or GTA dump) comes out the same however it is batched, resumed or split into jobs. 32 bits: torch's
    CPU generator (Mersenne Twister) keeps only the low 32 bits of a seed."""
    return zlib.crc32(f"{seed}\t{utt}".encode("utf-8"))


def utterance_generators(seed: int, utts: Sequence[str]) -> list[torch.Generator]:
    """One CPU generator per utterance, seeded by :func:`utterance_seed`: :func:`start_noise`'s rows."""
    return [torch.Generator().manual_seed(utterance_seed(seed, u)) for u in utts]


def start_noise(like: torch.Tensor, mask: torch.Tensor, generator: Generators = None) -> torch.Tensor:
    """Standard normal noise shaped like ``like`` (B, D, F), drawn on the generator's device and moved to
    ``like``'s (a CPU generator: the same noise whether the model runs on the CPU or a GPU).

    With a sequence of generators, one per row, row i's noise is drawn at that row's own length
    (``mask`` (B, 1, F)) from generator i alone (on its device, then moved) and is zero past it: an utterance
    gets the same start point whatever else is in its batch, however long the batch is, and on any device
    when the generators live on the CPU. That makes bulk synthesis reproducible across batching, resumed runs
    and sharded jobs."""
    if generator is None:
        return torch.randn(like.shape, device=like.device, dtype=like.dtype)
    if isinstance(generator, torch.Generator):
        return torch.randn(like.shape, generator=generator, device=generator.device, dtype=like.dtype).to(like.device)
    if len(generator) != like.shape[0]:
        raise ValueError(f"{len(generator)} generators for a batch of {like.shape[0]}")
    eps = torch.zeros_like(like)
    for i, (gen, n) in enumerate(zip(generator, mask[:, 0].sum(-1).long().tolist())):
        eps[i, :, :n] = torch.randn(like.shape[1], n, generator=gen, device=gen.device, dtype=like.dtype).to(like.device)
    return eps


def nothing_to_guide(cfg_scale: float) -> str:
    """Why guidance of a model whose velocity has no condition at all is refused."""
    return (f"cfg_scale {cfg_scale:g}: this model's velocity has no condition to guide (flow.mu_cond false, no frame "
            "text channels, no speaker): guided and unguided are the same; use 0")


class FlowMatcher(nn.Module):
    def __init__(
        self,
        estimator: nn.Module,
        prior: str = "text",
        sigma: float = 1.0,
        sigma_min: float = 0.0,
        time_sampling: str = "uniform",
        logit_mean: float = 0.0,
        logit_std: float = 1.0,
        cfg_drop: float = 0.1,
        mu_cond: bool = True,
        channel_weights: dict[int, float] | None = None,
    ) -> None:
        super().__init__()
        if prior not in ("text", "noise"):
            raise ValueError(f"flow.prior must be 'text' or 'noise', got {prior!r}")
        if time_sampling not in ("uniform", "logit_normal"):
            raise ValueError(f"flow.time_sampling must be 'uniform' or 'logit_normal', got {time_sampling!r}")
        # a model already trained so still loads (it samples as it was trained); training refuses it
        # (stage2_flow.experiment.check_training_config)
        self.estimator = estimator
        self.prior, self.sigma, self.sigma_min = prior, sigma, sigma_min
        self.time_sampling, self.logit_mean, self.logit_std = time_sampling, logit_mean, logit_std
        self.cfg_drop, self.mu_cond = cfg_drop, mu_cond
        self._warned_no_dropout = False  # guidance of a model trained without dropout: warned once
        # loss weight per latent channel (default 1), e.g. {0: 10} for a codec whose channel 0 is log-F0:
        # an error there is a pitch error, far more audible than the same error in one of 31 learned dims
        self.channel_weights = {int(k): float(v) for k, v in (channel_weights or {}).items()}

    # ---- pieces -------------------------------------------------------------------------------
    def sample_x0(self, mu: torch.Tensor, mask: torch.Tensor, temperature: float = 1.0, generator: Generators = None) -> torch.Tensor:
        """(B, D, F) start point: mu + T sigma eps (text prior) or T eps (noise prior); ``generator``: one, or one
        per row (:func:`start_noise`)."""
        eps = start_noise(mu, mask, generator)
        if self.prior == "text":
            return (mu + temperature * self.sigma * eps) * mask
        return temperature * eps * mask

    def sample_t(self, b: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.time_sampling == "uniform":
            return torch.rand(b, generator=generator, device=device)
        z = torch.randn(b, generator=generator, device=device) * self.logit_std + self.logit_mean
        return torch.sigmoid(z)

    def _cond(self, mu: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor | None:
        parts = ([mu] if self.mu_cond else []) + ([extra] if extra is not None else [])
        return torch.cat(parts, dim=1) if parts else None

    # ---- training -----------------------------------------------------------------------------
    def compute_loss(
        self,
        x1: torch.Tensor,
        mask: torch.Tensor,
        mu: torch.Tensor,
        g: torch.Tensor | None = None,
        extra: torch.Tensor | None = None,
        x0: torch.Tensor | None = None,
        loss_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        t: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """x1, mu: (B, D, F) normalised latents / expanded prior mean; mask: (B, 1, F); g: (B, S);
        extra: (B, E, F); x0: given start points (reflow pairs: the path is the straight line from each to its own x1,
        whatever OT-CFM's sigma_min, which would end it at x1 + sigma_min x0); loss_mask: (B, 1, F) weights of the frames
        (0 / 1: which count, infilling; or model.phone_balanced_weights); t: (B,) fixed times (validation). Returns {"flow/mse": ...}."""
        b = x1.shape[0]
        sigma_min = self.sigma_min if x0 is None else 0.0
        if x0 is None:
            x0 = self.sample_x0(mu, mask, generator=generator)
        t = self.sample_t(b, x1.device, generator) if t is None else t
        tt = t[:, None, None]
        xt = (1 - (1 - sigma_min) * tt) * x0 + tt * x1
        target = x1 - (1 - sigma_min) * x0
        cond = self._cond(mu, extra)
        if self.training and self.cfg_drop > 0:
            keep = (torch.rand(b, generator=generator, device=x1.device) >= self.cfg_drop).float()
            cond = cond * keep[:, None, None] if cond is not None else None
            g = g * keep[:, None] if g is not None else None
        v = self.estimator(xt * mask, t, mask, cond, g)
        lm = mask if loss_mask is None else loss_mask * mask
        w = self._channel_weight(x1.shape[1], x1.device)
        mse = ((v - target) ** 2 * w * lm).sum() / (lm.sum() * w.sum()).clamp(min=1)
        return {"flow/mse": mse}

    def _channel_weight(self, dim: int, device: torch.device) -> torch.Tensor:
        """``(1, D, 1)`` weights of the flow loss's channels (a weighted mean over channels)."""
        bad = [c for c in self.channel_weights if not 0 <= c < dim]
        if bad:
            raise ValueError(f"flow.channel_weights: channels {bad} out of range for latent_dim {dim}")
        w = torch.ones(dim, device=device)
        for c, value in self.channel_weights.items():
            w[c] = value
        return w[None, :, None]

    # ---- sampling -----------------------------------------------------------------------------
    def check_guidance(self, cfg_scale: float) -> None:
        """A ValueError for guidance (``cfg_scale`` != 0) of an estimator that reads no condition at all, before
        anything is sampled (:meth:`velocity_fn` refuses guidance given no condition too, when it samples)."""
        if cfg_scale != 0.0 and not self.estimator.takes_conditions:
            raise ValueError(nothing_to_guide(cfg_scale))

    def velocity_fn(self, mask: torch.Tensor, mu: torch.Tensor, g: torch.Tensor | None, extra: torch.Tensor | None, cfg_scale: float = 0.0):
        """Closure f(t, x) -> v with CFG v = v_c + w (v_c - v_u) (one batched call when w != 0). Guidance of a
        model without any condition is a ValueError (v_c would be v_u: no guidance at all); of one trained without
        condition dropout, a warning (once): its unconditional velocity v_u was never trained."""
        cond = self._cond(mu, extra)
        b = mask.shape[0]
        if cfg_scale != 0.0:
            if cond is None and g is None:
                raise ValueError(nothing_to_guide(cfg_scale))
            if self.cfg_drop == 0 and not self._warned_no_dropout:
                self._warned_no_dropout = True
                print(f"warning: cfg_scale {cfg_scale:g}: this model was trained without condition dropout (flow.cfg_drop "
                      "0), so the unconditional velocity guidance extrapolates from was never trained", file=sys.stderr,
                      flush=True)
            cond2 = torch.cat([cond, torch.zeros_like(cond)]) if cond is not None else None
            g2 = torch.cat([g, torch.zeros_like(g)]) if g is not None else None
            mask2 = torch.cat([mask, mask])

        def f(t: float, x: torch.Tensor) -> torch.Tensor:
            if cfg_scale == 0.0:
                tt = torch.full((b,), t, device=x.device)
                return self.estimator(x * mask, tt, mask, cond, g)
            tt = torch.full((2 * b,), t, device=x.device)
            v = self.estimator(torch.cat([x, x]) * mask2, tt, mask2, cond2, g2)
            vc, vu = v[:b], v[b:]
            return vc + cfg_scale * (vc - vu)

        return f

    @torch.no_grad()
    def sample(
        self,
        mu: torch.Tensor,
        mask: torch.Tensor,
        g: torch.Tensor | None = None,
        extra: torch.Tensor | None = None,
        nfe: int = 8,
        solver: str = "euler",
        temperature: float = 1.0,
        cfg_scale: float = 0.0,
        sway: float | None = None,
        generator: Generators = None,
        x0: torch.Tensor | None = None,
        rtol: float = 1e-4,
        atol: float = 1e-4,
    ) -> tuple[torch.Tensor, int]:
        """Integrate x0 -> x1. Returns (x1 (B, D, F), function evaluations used).

        ``dopri5`` integrates each row on its own, at its own length (``mask``): its step sizes follow an error norm,
        which over a padded batch would mix the rows' errors (and the padding's), so an utterance's result would
        depend on what it is batched with; ``used`` is then the most any row used. The fixed-step solvers share one
        time grid, so they integrate the batch at once, each row as it would be alone."""
        if x0 is None:
            x0 = self.sample_x0(mu, mask, temperature, generator)
        if solver == "dopri5":
            x1, used = torch.zeros_like(x0), 0
            for i, n in enumerate(mask[:, 0].sum(-1).long().tolist()):  # masks are prefixes: n valid frames
                mask_i, mu_i, extra_i, x0_i = (None if x is None else x[i : i + 1, :, :n] for x in (mask, mu, extra, x0))
                f = self.velocity_fn(mask_i, mu_i, None if g is None else g[i : i + 1], extra_i, cfg_scale)
                xi, k = solvers.solve(f, x0_i, solver, nfe, sway, 0.0, 1.0, rtol, atol)
                x1[i, :, :n], used = xi[0], max(used, k)
            return x1 * mask, used
        f = self.velocity_fn(mask, mu, g, extra, cfg_scale)
        x1, used = solvers.solve(f, x0, solver, nfe, sway, 0.0, 1.0, rtol, atol)
        return x1 * mask, used
