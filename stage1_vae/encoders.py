"""Encoders: waveform ``(B, T)`` -> frame-rate features ``(B, C, F)`` with ``F = T // hop + 1``.

The frame rate is ``sample_rate / hop_length`` (50-100 Hz for the recipes). The learned encoder works
on a spectral view of the waveform (cheap on CPU: all its layers run at frame rate).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shared.features import LOG_FLOOR, MelSpectrogram, log_magnitude, stft
from stage1_vae.modules import Backbone


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


def stack_fine_frames(x: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, C, F_fine)`` features at ``k`` (even) times the frame rate -> ``(B, C * (k + 1), F)``: for each coarse
    frame ``j`` the ``k + 1`` fine frames centred on it (fine frames ``j k - k/2 .. j k + k/2``; zeros beyond
    the ends). With ``F_fine = T // (hop / k) + 1`` there are exactly ``F = T // hop + 1`` windows."""
    x = F.pad(x, (k // 2, k // 2))
    windows = x.unfold(-1, k + 1, k)  # (B, C, F, k + 1)
    return windows.permute(0, 1, 3, 2).flatten(1, 2)


class SpectralEncoder(nn.Module):
    """Spectral features -> 1x1 projection -> ConvNeXt stack -> ``(B, out_dim, F)``.

    ``fine_ffts`` adds shorter analysis windows, each at a proportionally shorter hop, their log-magnitudes
    stacked around each latent frame by :func:`stack_fine_frames`: the main ``n_fft`` window (64 ms at
    16 kHz) smears a stop's burst or a flap over several latent frames. (Magnitudes only: the complex parts
    would triple the input projection's cost, a fifth of a training step for 512 and 256.)"""

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
        fine_ffts: tuple[int, ...] = (),
    ):
        super().__init__()
        self.kind, self.n_fft, self.hop_length = input, n_fft, hop_length
        self.mel = MelSpectrogram(sample_rate, n_fft, hop_length, n_mels=n_mels) if input == "mel" else None
        in_dim = n_mels if input == "mel" else 3 * (n_fft // 2 + 1)
        self.fine: list[tuple[int, int, int]] = []  # (n_fft, hop, frames per latent frame)
        for n in fine_ffts:
            k = n_fft // int(n)
            if input != "stft" or int(n) * k != n_fft or k < 2 or k % 2 or hop_length % k:  # odd k: no centred window
                raise ValueError(f"encoder.fine_ffts: {n} must divide n_fft {n_fft} an even number of times (2, 4, ...; "
                                 f"here {n_fft / int(n):g}) and its hop {hop_length} * {n} / {n_fft} be whole, with input 'stft'")
            self.fine.append((int(n), hop_length // k, k))
            in_dim += (int(n) // 2 + 1) * (k + 1)
        self.inp = nn.Conv1d(in_dim, dim, 1)
        self.backbone = Backbone(dim, dim, intermediate_dim, num_layers, kernel_size)
        self.out = nn.Conv1d(dim, out_dim, 1)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = spectral_features(wav, self.kind, self.n_fft, self.hop_length, self.mel)
        if self.fine:
            x = torch.cat([x] + [stack_fine_frames(log_magnitude(wav, n, hop), k) for n, hop, k in self.fine], dim=1)
        return self.out(self.backbone(self.inp(x)))


class MelEncoder(nn.Module):
    """A fixed (parameter-free) log-mel "encoder" for the mel-spectrogram codec: ``(B, T) -> (B, n_mels, F)``.

    Its bands are the latent's channels (``out_dim``: ``model.latent_dim`` less the pitch channels); ``n_mels``, if
    given, must say the same (it is not another setting)."""

    def __init__(self, out_dim: int, sample_rate: int = 16000, hop_length: int = 256, n_fft: int = 1024,
                 n_mels: int | None = None):
        super().__init__()
        if n_mels is not None and int(n_mels) != out_dim:
            raise ValueError(f"encoder.n_mels {n_mels}: the mel codec's latent channels are its mel bands, {out_dim} "
                             f"here (model.latent_dim less the pitch channels): set model.latent_dim for {n_mels} bands")
        self.mel = MelSpectrogram(sample_rate, n_fft, hop_length, n_mels=out_dim)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.mel(wav)
