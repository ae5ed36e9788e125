"""Decoders: latent ``z (B, D, F)`` -> waveform ``(B, (F - 1) * hop)``.

``VocosDecoder`` (default): ConvNeXt blocks at frame rate and an inverse-STFT head, all the upsampling
done by ``torch.istft`` (cheap on CPU). ``HiFiGANDecoder``: transposed-convolution upsampling with
multi-receptive-field residual blocks (HiFi-GAN); also the reference generator of the speed benchmark.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from stage1_vae.modules import HARMONIC_PHASES, Backbone, ConvNeXtBlock, ISTFTHead, harmonic_excitation


class VocosDecoder(nn.Module):
    """ConvNeXt backbone at the latent frame rate and an iSTFT head.

    ``head_upsample = r > 1`` runs the head at ``r`` times the latent rate: the backbone's features are
    interpolated to ``r (F - 1) + 1`` frames (frame ``i`` lands on ``r i``, so both grids share time
    zero), refined by ``head_layers`` ConvNeXt blocks there, and synthesised with an iSTFT of size
    ``head_n_fft`` (default ``n_fft / r``) and hop ``hop / r``. A shorter synthesis window keeps harmonics
    sharp where the pitch moves; the latent rate, and so stage two's sequence length, does not change.

    ``source="harmonic"`` adds a source-filter path (as in neural source-filter vocoders, here inside the
    iSTFT head): a band-limited pulse train at the F0 given to ``forward`` (on the latent grid; the codec
    reads it from the latent's pitch channel, see :class:`~stage1_vae.modules.PitchChannel`) is
    transformed by the head's STFT and filtered with a predicted gain per bin, on top of the freely
    predicted aperiodic spectrum. The excitation's phases agree from frame to frame, so voiced speech
    stays periodic however low its pitch: the network only has to shape its spectrum.
    ``harmonic_phase``: the filter's phase, ``zero`` (a cosine-phase pulse: high crest factor), ``sine`` /
    ``minus_sine`` (-+90 degrees on every harmonic, as additive synthesis with sines: the same spectrum at
    about 0.75x the peak; the pulse's shape, a sharp rise or a sharp fall, is all that tells them apart),
    ``minimum`` (implied by its gain, as for a vocal tract) or ``learned`` (see :data:`HARMONIC_PHASES`).
    """

    def __init__(self, latent_dim: int, hop_length: int = 256, n_fft: int = 1024, dim: int = 384,
                 intermediate_dim: int = 1152, num_layers: int = 8, kernel_size: int = 7, head_upsample: int = 1,
                 head_layers: int = 1, head_n_fft: int | None = None, source: str = "none", sample_rate: int = 16000,
                 harmonic_phase: str = "zero"):
        super().__init__()
        r = int(head_upsample)
        if r < 1 or hop_length % r or n_fft % r:
            raise ValueError(f"VocosDecoder: head_upsample={head_upsample} must divide hop_length={hop_length} and n_fft={n_fft}")
        if source not in ("none", "harmonic"):
            raise ValueError(f"VocosDecoder: unknown source '{source}' (expected 'none' or 'harmonic')")
        self.hop_length, self.head_upsample, self.sample_rate = hop_length, r, int(sample_rate)
        self.uses_f0 = source == "harmonic"
        self.backbone = Backbone(latent_dim, dim, intermediate_dim, num_layers, kernel_size)
        self.head_blocks = nn.Sequential(*(ConvNeXtBlock(dim, intermediate_dim, kernel_size) for _ in range(head_layers))) if r > 1 else nn.Identity()
        self.head = ISTFTHead(dim, int(head_n_fft) if head_n_fft else n_fft // r, hop_length // r, harmonic=self.uses_f0,
                             harmonic_phase=harmonic_phase)

    def forward(self, z: torch.Tensor, return_phase: bool = False, f0: torch.Tensor | None = None,
                phase_offset: torch.Tensor | None = None):
        """``z (B, D, F)`` -> ``wav (B, (F-1) hop)`` (and the head's phase ``(B, K, r(F-1)+1)`` if asked).
        ``f0 (B, F)`` in Hz drives the harmonic source (required with ``source="harmonic"``);
        ``phase_offset (B, F)``: the input's fundamental phase relative to the source's own (radians), so the
        output's fundamental has that phase (a fixed filter phase, such as sine's -90 degrees, is compensated
        here); with the input's pulse shape (``minus_sine`` for espeak-ng) every harmonic then lines up."""
        x = self.backbone(z)
        if self.head_upsample > 1:
            frames = self.head_upsample * (x.shape[-1] - 1) + 1
            x = self.head_blocks(F.interpolate(x, size=frames, mode="linear", align_corners=True))
        excitation = None
        if self.uses_f0:
            if f0 is None:
                raise ValueError("VocosDecoder(source='harmonic') needs f0 (the codec passes its pitch channel)")
            filter_phase = HARMONIC_PHASES[self.head.harmonic_phase]
            if phase_offset is not None and filter_phase:
                phase_offset = phase_offset - filter_phase
            excitation = harmonic_excitation(f0, self.hop_length, self.sample_rate, phase_offset)
        return self.head(x, return_phase=return_phase, excitation=excitation)


class _ResBlock(nn.Module):
    """HiFi-GAN ResBlock1: pairs of (dilated conv, conv) with leaky ReLU, residual. ``x: (B, C, T)``."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...] = (1, 3, 5)):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=d * (kernel_size - 1) // 2)
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2)
                                    for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, 0.1)), 0.1))
        return x


class HiFiGANDecoder(nn.Module):
    """HiFi-GAN generator; ``prod(upsample_rates)`` must equal ``hop_length``. V1: rates (8, 8, 2, 2), 512 channels."""

    def __init__(self, latent_dim: int, hop_length: int = 256, upsample_rates: tuple[int, ...] = (8, 8, 2, 2),
                 upsample_initial_channel: int = 512, resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11),
                 resblock_dilations: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))):
        super().__init__()
        if math.prod(upsample_rates) != hop_length:
            raise ValueError(f"HiFiGANDecoder: prod(upsample_rates)={math.prod(upsample_rates)} != hop_length={hop_length}")
        self.hop_length = hop_length
        ch = upsample_initial_channel
        self.conv_pre = nn.Conv1d(latent_dim, ch, 7, padding=3)
        self.ups = nn.ModuleList()
        self.mrfs = nn.ModuleList()
        for i, u in enumerate(upsample_rates):
            c_in, c_out = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(c_in, c_out, 2 * u, stride=u, padding=u // 2 + u % 2, output_padding=u % 2))
            self.mrfs.append(nn.ModuleList(_ResBlock(c_out, k, tuple(d)) for k, d in zip(resblock_kernel_sizes, resblock_dilations)))
        self.conv_post = nn.Conv1d(ch // 2 ** len(upsample_rates), 1, 7, padding=3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(z)
        for up, mrf in zip(self.ups, self.mrfs):
            x = up(F.leaky_relu(x, 0.1))
            x = sum(block(x) for block in mrf) / len(mrf)
        # the waveform in float32 also under autocast, as the Vocos head's projections: in bfloat16 its samples would
        # carry 8-bit mantissas (rounding noise ~48 dB below each sample) into the losses
        with torch.autocast(x.device.type, enabled=False):
            wav = torch.tanh(self.conv_post(F.leaky_relu(x.float()))).squeeze(1)
        return wav[..., : (z.shape[-1] - 1) * self.hop_length]


DECODERS = {"vocos": VocosDecoder, "hifigan": HiFiGANDecoder}


def build_decoder(kind: str, latent_dim: int, hop_length: int, n_fft: int, sample_rate: int = 16000,
                  **kwargs: object) -> nn.Module:
    """The ``kind`` decoder with the config's ``kwargs``, and of the model's ``n_fft`` and ``sample_rate`` what it takes
    (the HiFi-GAN generator neither). An option a decoder does not take is a TypeError naming it."""
    if kind == "vocos":
        return VocosDecoder(latent_dim, hop_length=hop_length, n_fft=n_fft, sample_rate=sample_rate, **kwargs)
    if kind == "hifigan":
        return HiFiGANDecoder(latent_dim, hop_length=hop_length, **kwargs)
    raise ValueError(f"unknown decoder '{kind}' (expected 'vocos' or 'hifigan')")
