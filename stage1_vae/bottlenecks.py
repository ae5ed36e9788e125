"""Bottlenecks between encoder and decoder. Each maps encoder output ``h`` to a latent ``z (B, D, F)``.

``forward(h) -> (z, losses)`` is the training path (losses use the keys of the config's
``loss_weights``: ``kl``, ``vq/commit``); ``latent(h) -> z`` is the deterministic path used by
``encode`` (posterior mean / quantised vectors); ``prepare(z)`` is applied by ``decode`` to latents that are
not the codec's own ``encode`` output (stage two's): the quantised codecs snap them to the codebook. The
quantisers run in float32 also under autocast (code choices in bfloat16 differ from those in float32).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


@contextlib.contextmanager
def no_autocast(x: torch.Tensor):
    """Autocast off for ``x``'s device: the block computes in the dtype it is given (the quantisers: float32)."""
    with torch.autocast(x.device.type, enabled=False):
        yield


class GaussianBottleneck(nn.Module):
    """Diagonal-Gaussian VAE posterior. ``h: (B, 2D, F)`` (mean, log-variance); KL to N(0, I), mean per element."""

    def __init__(self, latent_dim: int, logvar_min: float = -12.0, logvar_max: float = 4.0):
        super().__init__()
        self.latent_dim, self.in_dim = latent_dim, 2 * latent_dim
        self.logvar_min, self.logvar_max = logvar_min, logvar_max

    def posterior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, logvar)``, each ``(B, D, F)``, the log-variance clamped as training uses it."""
        mean, logvar = h.float().chunk(2, dim=1)
        return mean, logvar.clamp(self.logvar_min, self.logvar_max)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mean, logvar = self.posterior(h)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar) if self.training else mean
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        return z, {"kl": kl}

    def latent(self, h: torch.Tensor) -> torch.Tensor:
        return self.posterior(h)[0]

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        return z


class IdentityBottleneck(nn.Module):
    """No bottleneck (the mel "codec": the decoder is a vocoder). ``z`` is ``h`` in float32, as the other bottlenecks
    give it also under autocast: the decoder then trains on the latents ``encode`` gives, not on their bf16 rounding."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = self.in_dim = latent_dim

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.latent(h), {}

    def latent(self, h: torch.Tensor) -> torch.Tensor:
        return h.float()

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        return z


class RVQBottleneck(nn.Module):
    """Residual VQ (``vector_quantize_pytorch.ResidualVQ``, EMA codebooks). ``h: (B, D, F)`` is the
    continuous pre-quantisation latent (NaturalSpeech 2 style); ``z`` is the sum of the selected codes."""

    def __init__(self, latent_dim: int, num_quantizers: int = 8, codebook_size: int = 1024, codebook_dim: int | None = None,
                 decay: float = 0.99, commitment_weight: float = 1.0, kmeans_init: bool = False, quantize_dropout: bool = False,
                 **vq_kwargs: object):
        super().__init__()
        from vector_quantize_pytorch import ResidualVQ

        self.latent_dim = self.in_dim = latent_dim
        self.sync_kmeans = bool(vq_kwargs.get("sync_kmeans", True))
        # sync_codebook: None (the library's default: sync where distributed) or a user's explicit choice
        self.sync_codebook = vq_kwargs.get("sync_codebook")
        self.rvq = ResidualVQ(dim=latent_dim, num_quantizers=num_quantizers, codebook_size=codebook_size,
                              codebook_dim=codebook_dim, decay=decay, commitment_weight=commitment_weight,
                              kmeans_init=kmeans_init, quantize_dropout=quantize_dropout, **vq_kwargs)

    def sync_codebooks(self) -> None:
        """Share the EMA codebooks' learning over the processes of the running ``torch.distributed`` group: their
        statistics summed over all ranks (so every rank keeps one codebook, learnt from every batch), and dead codes
        (k-means too, unless ``sync_kmeans: false``) drawn from all ranks' vectors. ``vector_quantize_pytorch`` sets
        this up only for a quantiser built once the group exists (its ``sync_codebook``); this does it afterwards,
        as its ``Codebook.__init__`` would have (``use_ddp``). Nothing with ``sync_codebook: false`` (each rank's
        codebooks learn from its own batches, as the user asked)."""
        if self.sync_codebook is False:
            return
        from torch import distributed
        from vector_quantize_pytorch.vector_quantize_pytorch import sample_vectors_distributed

        for layer in self.rvq.layers:
            codebook = layer._codebook
            codebook.use_ddp = True
            codebook.all_reduce_fn = distributed.all_reduce
            if self.sync_kmeans:
                codebook.kmeans_all_reduce_fn = distributed.all_reduce
                codebook.sample_fn = codebook.replace_sample_fn = sample_vectors_distributed

    def _quantize(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with no_autocast(h):
            q, idx, loss = self.rvq(h.float().transpose(1, 2))
        return q.transpose(1, 2), idx, loss.sum()

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z, _, commit = self._quantize(h)
        return z, {"vq/commit": commit}

    def latent(self, h: torch.Tensor) -> torch.Tensor:
        return self._quantize(h)[0]

    def codes(self, h: torch.Tensor) -> torch.Tensor:
        """``(B, F, num_quantizers)`` code indices."""
        return self._quantize(h)[1]

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        """Residual quantisation of ``z`` as of an encoder output. Greedy, so not idempotent (a sum of codes may
        re-quantise to other codes): the codec's own latents are decoded without it (``decode(z, encoded=True)``)."""
        return self._quantize(z)[0]


class FSQBottleneck(nn.Module):
    """Finite scalar quantisation (``vector_quantize_pytorch.FSQ``) with its own in/out projections;
    ``h: (B, D, F)`` pre-quantisation, ``z: (B, D, F)`` the projected quantised vectors. No auxiliary loss."""

    def __init__(self, latent_dim: int, levels: tuple[int, ...] = (8, 5, 5, 5), num_codebooks: int = 4):
        super().__init__()
        from vector_quantize_pytorch import FSQ

        if latent_dim < len(levels) * num_codebooks:  # prepare() snaps through project_out's inverse
            raise ValueError(f"fsq: {num_codebooks} codebooks of {len(levels)} levels are {len(levels) * num_codebooks} "
                             f"code dimensions, more than the {latent_dim} latent channels: the projection out of the "
                             f"codes would not be invertible, so stage two's latents could not be snapped to the grid "
                             f"(use at most {latent_dim // len(levels)} codebooks, or more latent channels)")
        self.latent_dim = self.in_dim = latent_dim
        self.fsq = FSQ(levels=list(levels), dim=latent_dim, num_codebooks=num_codebooks, channel_first=True)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.latent(h), {}

    def latent(self, h: torch.Tensor) -> torch.Tensor:
        with no_autocast(h):
            return self.fsq(h.float())[0]

    def prepare(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` snapped to the nearest grid point's image: the least-squares inverse of the output projection,
        rounded to the levels, projected out again. (``project_in`` is no inverse of ``project_out``: re-quantising
        through it would move even a latent on the grid.) A latent on the grid (injective ``project_out``:
        ``latent_dim`` >= ``len(levels) * num_codebooks``) is a fixed point, up to float rounding."""
        fsq = self.fsq
        with no_autocast(z):
            x = z.float().transpose(1, 2)  # (B, F, D)
            if fsq.has_projections:
                w, b = fsq.project_out.weight.float(), fsq.project_out.bias
                x = (x - b.float() if b is not None else x) @ torch.linalg.pinv(w).T  # (B, F, C * d)
            half = (fsq._levels // 2).to(x)
            codes = x.unflatten(-1, (fsq.num_codebooks, -1)) * half
            codes = torch.minimum(codes.round().clamp(min=-half), fsq._levels.to(x) - 1 - half) / half
            return fsq.project_out(codes.flatten(-2)).transpose(1, 2)


BOTTLENECKS = {"gaussian": GaussianBottleneck, "vae": GaussianBottleneck, "rvq": RVQBottleneck,
               "fsq": FSQBottleneck, "identity": IdentityBottleneck}


def build_bottleneck(kind: str, latent_dim: int, **kwargs: object) -> nn.Module:
    if kind not in BOTTLENECKS:
        raise ValueError(f"unknown bottleneck '{kind}' (expected one of {sorted(BOTTLENECKS)})")
    return BOTTLENECKS[kind](latent_dim, **kwargs)
