"""Reconstruction, adversarial and feature-matching losses.

Every function returns a dict with slash keys (``mel/l1``, ``stft/mr``, ``stft/complex``, ``adv/gen``,
``fm/l1``, ``adv/disc``); the training module multiplies them by ``loss_weights`` from the config.
"""

from __future__ import annotations

import math

import auraloss
import torch
import torch.nn.functional as F
from torch import nn

from shared.features import MelSpectrogram, hann_window


class ReconstructionLoss(nn.Module):
    """Multi-scale log-mel L1 (``mel/l1``), multi-resolution STFT (``stft/mr``: auraloss's spectral
    convergence + log-magnitude L1, averaged over resolutions as its ``MultiResolutionSTFTLoss``) and L1
    between power-law compressed complex spectra at the decoder's own STFT size (``stft/complex``, the
    plain iSTFT head's phase term). ``wav (B, T)``.

    Each (n_fft, hop) is transformed once per signal and shared by the mel, STFT and complex terms (the
    default scales coincide), the target's without gradient; always in float32, also under mixed
    precision (log-spectra need the mantissa)."""

    def __init__(self, sample_rate: int = 16000, mel_scales: tuple[tuple[int, int, int], ...] = ((512, 128, 64), (1024, 256, 80), (2048, 512, 128)),
                 stft_ffts: tuple[int, ...] = (512, 1024, 2048), complex_fft: int = 1024, complex_hop: int = 256,
                 compress: float = 0.3, eps: float = 1e-8):
        super().__init__()
        self.mels = nn.ModuleList(MelSpectrogram(sample_rate, n, h, n_mels=m) for n, h, m in mel_scales)
        self.stft_res = [(int(n), int(n) // 4) for n in stft_ffts]
        self.sc, self.log_mag = auraloss.freq.SpectralConvergenceLoss(), auraloss.freq.STFTMagnitudeLoss(log=True, distance="L1")
        self.complex_fft, self.complex_hop, self.compress, self.eps = complex_fft, complex_hop, compress, eps

    @torch.autocast("cpu", enabled=False)
    @torch.autocast("cuda", enabled=False)
    def forward(self, wav_hat: torch.Tensor, wav: torch.Tensor, terms: tuple[str, ...] = ("mel/l1", "stft/mr", "stft/complex")) -> dict[str, torch.Tensor]:
        wav_hat, wav = wav_hat.float(), wav.float()
        cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

        def specs(n_fft: int, hop: int) -> tuple[torch.Tensor, torch.Tensor]:
            """Complex STFTs of (estimate, target) at this resolution, each computed once per call."""
            if (n_fft, hop) not in cache:
                win = hann_window(n_fft, wav.device)
                spec = lambda x: torch.stft(x, n_fft, hop, n_fft, win, center=True, return_complex=True)  # noqa: E731
                with torch.no_grad():
                    ref = spec(wav)
                cache[n_fft, hop] = (spec(wav_hat), ref)
            return cache[n_fft, hop]

        mag_cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

        def mags(n_fft: int, hop: int) -> tuple[torch.Tensor, torch.Tensor]:
            if (n_fft, hop) not in mag_cache:
                mag_cache[n_fft, hop] = tuple(torch.sqrt(torch.clamp(s.real.square() + s.imag.square(), min=self.eps))
                                              for s in specs(n_fft, hop))
            return mag_cache[n_fft, hop]

        def compressed(spec: torch.Tensor) -> torch.Tensor:
            mag = spec.abs().clamp(min=1e-7)
            return torch.view_as_real(spec / mag * mag.pow(self.compress))

        out: dict[str, torch.Tensor] = {}
        if "mel/l1" in terms:
            out["mel/l1"] = sum(F.l1_loss(*(m.from_magnitude(x) for x in mags(m.n_fft, m.hop_length))) for m in self.mels) / len(self.mels)
        if "stft/mr" in terms:
            out["stft/mr"] = sum(self.sc(*mags(*r)) + self.log_mag(*mags(*r)) for r in self.stft_res) / len(self.stft_res)
        if "stft/complex" in terms:
            out["stft/complex"] = F.l1_loss(*(compressed(x) for x in specs(self.complex_fft, self.complex_hop)))
        return out


def _anti_wrap(x: torch.Tensor) -> torch.Tensor:
    return (x - 2 * math.pi * torch.round(x / (2 * math.pi))).abs()


class PhaseLoss(nn.Module):
    """APNet-style phase losses between the iSTFT head's phase and the target STFT phase (same n_fft/hop),
    anti-wrapped: ``phase/ip`` (instantaneous phase), ``phase/gd`` (group delay: difference along
    frequency) and ``phase/iaf`` (instantaneous angular frequency: difference along time). Each is a
    mean weighted by the target's compressed magnitude, so silent bins do not dominate. ``phase (B, K, F)``."""

    def __init__(self, n_fft: int, hop_length: int, compress: float = 0.3):
        super().__init__()
        self.n_fft, self.hop_length, self.compress = n_fft, hop_length, compress
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @torch.autocast("cpu", enabled=False)
    @torch.autocast("cuda", enabled=False)
    def forward(self, phase_hat: torch.Tensor, wav: torch.Tensor) -> dict[str, torch.Tensor]:
        phase_hat = phase_hat.float()
        spec = torch.stft(wav.float(), self.n_fft, self.hop_length, window=self.window, return_complex=True)
        phase, w = torch.angle(spec), spec.abs().pow(self.compress)
        w = w / w.mean(dim=(1, 2), keepdim=True).clamp(min=1e-8)
        ip = (_anti_wrap(phase_hat - phase) * w).mean()
        gd = (_anti_wrap(torch.diff(phase_hat, dim=1) - torch.diff(phase, dim=1)) * w[:, 1:]).mean()
        iaf = (_anti_wrap(torch.diff(phase_hat, dim=2) - torch.diff(phase, dim=2)) * w[..., 1:]).mean()
        return {"phase/ip": ip, "phase/gd": gd, "phase/iaf": iaf}


ADV_LOSSES = ("hinge", "lsgan")  # train.adv_loss


def generator_adv_loss(fake_logits: list[torch.Tensor], kind: str = "hinge") -> torch.Tensor:
    if kind == "hinge":
        return sum(F.relu(1 - lg).mean() for lg in fake_logits) / len(fake_logits)
    if kind == "lsgan":
        return sum((1 - lg).pow(2).mean() for lg in fake_logits) / len(fake_logits)
    raise ValueError(f"unknown adversarial loss '{kind}' (expected 'hinge' or 'lsgan')")


def discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor], kind: str = "hinge") -> dict[str, torch.Tensor]:
    """``adv/disc``: mean over sub-discriminators."""
    if kind == "hinge":
        loss = sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real_logits, fake_logits))
    elif kind == "lsgan":
        loss = sum((1 - r).pow(2).mean() + f.pow(2).mean() for r, f in zip(real_logits, fake_logits))
    else:
        raise ValueError(f"unknown adversarial loss '{kind}' (expected 'hinge' or 'lsgan')")
    return {"adv/disc": loss / len(real_logits)}


def feature_matching_loss(real_feats: list[list[torch.Tensor]], fake_feats: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean L1 between discriminator feature maps of real (detached) and generated audio."""
    terms = [F.l1_loss(f, r.detach()) for rs, fs in zip(real_feats, fake_feats) for r, f in zip(rs, fs)]
    return sum(terms) / len(terms)


def weighted_sum(losses: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    """``sum(weights[k] * losses[k])`` over keys with a non-zero weight; unknown weights are an error."""
    missing = [k for k in losses if k not in weights]
    if missing:
        raise KeyError(f"loss_weights has no entry for {missing}; known: {sorted(weights)}")
    return sum(float(weights[k]) * v for k, v in losses.items() if float(weights[k]) != 0.0)
