"""Building blocks shared by the encoders and decoders: ConvNeXt blocks at frame rate and the
inverse-STFT head (the Vocos idea: predict a spectrum per frame and let ``torch.istft`` upsample)."""

from __future__ import annotations

import math

import torch
from torch import nn

from shared.audio import pad_to_multiple
from shared.features import (center_pad_mode, fundamental_phase, interpolate_unvoiced, phase_locked_f0, resample_track,
                             wrap_phase, yin_f0, yin_frame_times)


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


# The harmonic filter's phase (ISTFTHead(harmonic_phase=...)) and, where it is the same on every bin, that
# phase: the pulse train sum_k cos(k phi) becomes sum_k cos(k phi + that), so a known phase origin of the
# input's fundamental is met by moving the source's phase origin by minus that (VocosDecoder.forward).
#   zero:       the cosine-phase pulse, sum_k cos(k phi): a high crest factor (peaks at 1.4x espeak-ng's);
#   sine:       sum_k sin(k phi) (-90 degrees): the same spectrum at about 0.75x the peak, the time reverse
#               of minus_sine: a sharp rise and a slow fall;
#   minus_sine: -sum_k sin(k phi) (+90 degrees): a slow rise and a sharp fall, as the glottal flow's
#               derivative at closure; espeak-ng's own pulse (its harmonics' phases relative to the
#               fundamental's are -(k - 1) pi / 2, measured on the default corpus);
#   minimum / learned: the minimum phase implied by the gain / a freely predicted phase (no fixed value).
HARMONIC_PHASES = {"zero": 0.0, "sine": -0.5 * math.pi, "minus_sine": 0.5 * math.pi, "minimum": None, "learned": None}


class ISTFTHead(nn.Module):
    """Frame features ``(B, dim, F)`` -> waveform ``(B, (F - 1) * hop)`` through ``torch.istft``.

    Predicts log-magnitude and phase for ``n_fft // 2 + 1`` bins (phase as an unconstrained angle, read
    through cos/sin as in Vocos). ``center=True`` framing, so ``F = T // hop + 1`` frames give ``T`` samples.

    ``harmonic=True`` makes it a source-filter head: it also predicts a non-negative gain per bin that
    filters the STFT of a given excitation (a harmonic source, see :func:`harmonic_excitation`), and adds
    the result to the freely predicted (aperiodic) spectrum. The excitation brings phases that agree from
    frame to frame, so voiced speech stays periodic however low its pitch; the network only shapes it.
    """

    def __init__(self, dim: int, n_fft: int, hop_length: int, max_log_mag: float = 4.6, harmonic: bool = False,
                 harmonic_phase: str = "zero"):
        super().__init__()
        if harmonic_phase not in HARMONIC_PHASES:
            raise ValueError(f"ISTFTHead: unknown harmonic_phase '{harmonic_phase}' (expected one of {', '.join(HARMONIC_PHASES)})")
        self.n_fft, self.hop_length, self.max_log_mag = n_fft, hop_length, max_log_mag
        self.harmonic_phase = harmonic_phase
        self.proj = nn.Linear(dim, n_fft + 2)
        bins = n_fft // 2 + 1
        self.harmonic_proj = nn.Linear(dim, 2 * bins if harmonic_phase == "learned" else bins) if harmonic else None
        if self.harmonic_proj is not None:
            nn.init.constant_(self.harmonic_proj.bias, -4.0)  # start quiet: harmonic amplitudes of speech are ~1e-2
            if harmonic_phase == "learned":  # a free phase shift per bin as well, starting at zero
                nn.init.zeros_(self.harmonic_proj.weight[bins:])
                nn.init.zeros_(self.harmonic_proj.bias[bins:])
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        # folding the real cepstrum onto positive quefrencies turns a log-gain into its minimum-phase spectrum
        fold = torch.zeros(n_fft)
        fold[0], fold[1 : n_fft // 2], fold[n_fft // 2] = 1.0, 2.0, 1.0
        self.register_buffer("cepstrum_fold", fold[:, None], persistent=False)

    def harmonic_filter(self, x: torch.Tensor) -> torch.Tensor:
        """The filter applied to the excitation's spectrum, ``(B, n_fft // 2 + 1, F)``: the predicted gain
        with a fixed phase (:data:`HARMONIC_PHASES`), the minimum phase that gain implies (the phase of a
        causal all-pole vocal tract, from the folded real cepstrum), or a freely predicted phase."""
        h = self._project(self.harmonic_proj, x)
        bins = self.n_fft // 2 + 1
        log_gain = h[:, :bins].clamp(max=self.max_log_mag)
        fixed = HARMONIC_PHASES[self.harmonic_phase]
        if fixed == 0.0:
            return torch.exp(log_gain)
        if fixed is not None:  # -+90 degrees on every bin: cos(k phi) -> +-sin(k phi), exactly imaginary
            gain = torch.exp(log_gain)
            return torch.complex(torch.zeros_like(gain), math.sin(fixed) * gain)
        if self.harmonic_phase == "learned":
            return torch.polar(torch.exp(log_gain), h[:, bins:])
        cep = torch.fft.irfft(log_gain, n=self.n_fft, dim=1)
        return torch.exp(torch.fft.rfft(cep * self.cepstrum_fold, dim=1))

    def _project(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """``layer`` over the channels of ``x (B, dim, F)``, in float32 even under autocast: a bfloat16
        log-magnitude or phase would be quantised in steps of up to 0.03 (audible noise)."""
        with torch.autocast(x.device.type, enabled=False):
            return layer(x.float().transpose(1, 2)).transpose(1, 2)

    def log_mag_phase(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, dim, F)`` -> log-magnitude and unwrapped phase, each ``(B, n_fft // 2 + 1, F)``."""
        log_mag, phase = self._project(self.proj, x).chunk(2, dim=1)
        return log_mag.clamp(max=self.max_log_mag), phase

    def excitation_spectrum(self, excitation: torch.Tensor) -> torch.Tensor:
        """STFT of ``excitation (B, T)`` on the head's grid, scaled so a unit-amplitude sinusoid has magnitude 1."""
        spec = torch.stft(excitation.float(), self.n_fft, self.hop_length, window=self.window, center=True,
                          pad_mode=center_pad_mode(excitation.shape[-1], self.n_fft), return_complex=True)
        return spec * (2.0 / self.window.sum())

    def forward(self, x: torch.Tensor, length: int | None = None, return_phase: bool = False,
                excitation: torch.Tensor | None = None):
        log_mag, phase = self.log_mag_phase(x)
        mag = torch.exp(log_mag)
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
        if self.harmonic_proj is not None:
            if excitation is None:
                raise ValueError("ISTFTHead(harmonic=True) needs an excitation")
            spec = spec + self.harmonic_filter(x) * self.excitation_spectrum(excitation)[..., : spec.shape[-1]]
            phase = torch.angle(spec) if return_phase else phase
        length = length if length is not None else (spec.shape[-1] - 1) * self.hop_length
        wav = torch.istft(spec, self.n_fft, self.hop_length, self.n_fft, self.window, center=True, length=length)
        return (wav, phase) if return_phase else wav


def source_phase(f0: torch.Tensor, hop_length: int, sample_rate: int, offset: torch.Tensor | None = None):
    """The harmonic source's phase ``phi (B, (F - 1) * hop)`` (float64, not wrapped) for frame-rate
    ``f0 (B, F)`` in Hz, integrated from the linearly interpolated F0 (so it does not drift over long
    utterances), and that interpolated F0. ``offset (B, F)``: a phase per frame (radians, e.g. from
    :meth:`PitchChannel.phase_offset`), unwrapped along the frames and interpolated like F0, then added."""
    num = (f0.shape[-1] - 1) * hop_length

    def to_samples(track: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(track.double()[:, None], size=num + 1, mode="linear", align_corners=True)[:, 0, :num]

    f0_t = to_samples(f0)
    phi = 2 * math.pi * torch.cumsum(f0_t / sample_rate, dim=-1)
    if offset is not None:
        step = wrap_phase(torch.diff(offset.double(), dim=-1))
        phi = phi + to_samples(torch.cat([offset[:, :1].double(), offset[:, :1].double() + torch.cumsum(step, -1)], -1))
    return phi, f0_t


def harmonic_excitation(f0: torch.Tensor, hop_length: int, sample_rate: int, phase_offset: torch.Tensor | None = None) -> torch.Tensor:
    """Band-limited pulse train for frame-rate ``f0 (B, F)`` in Hz (``center=True`` grid: frame ``i`` at
    sample ``i * hop``) -> ``(B, (F - 1) * hop)``: every harmonic below Nyquist at unit amplitude,
    ``sum_{k=1..K} cos(k phi) = sin((K + 1/2) phi) / (2 sin(phi / 2)) - 1/2`` (``K`` harmonics below
    ``sr / 2``), so its cost does not grow with the number of harmonics. ``phi`` from :func:`source_phase`
    (``phase_offset`` moves its origin frame by frame).
    """
    phi, f0_t = source_phase(f0, hop_length, sample_rate, phase_offset)
    phi = torch.remainder(phi, 2 * math.pi)
    k = torch.floor(0.5 * sample_rate / f0_t.clamp(min=1.0) - 1e-4)  # harmonics strictly below Nyquist
    half = torch.sin(0.5 * phi)
    near_zero = half.abs() < 1e-6
    value = torch.sin((k + 0.5) * phi) / (2 * torch.where(near_zero, torch.ones_like(half), half)) - 0.5
    return torch.where(near_zero, k, value).to(f0.dtype)


class PitchChannel(nn.Module):
    """An explicit pitch channel for the latent: continuous log-F0 from YIN on the latent grid (unvoiced
    frames interpolated between voiced neighbours), normalised as ``(log f0 - log center_hz) / scale``.

    Not learned, so it costs nothing to train and the decoder's harmonic source gets the pitch exactly;
    stage two models it like any other latent channel. ``lock_phase=True`` refines YIN's track with the
    phase advance of the input's harmonics between frames (:func:`~shared.features.phase_locked_f0`), so the
    source integrating it stays in phase with the input instead of drifting by YIN's few-cent errors.
    ``quantize_bits > 0`` rounds it to that many bits over ``[f0_min, f0_max]`` (for the quantised codecs:
    8 bits are ~16 cents for 50-500 Hz), with error feedback so the rounding does not undo the locking.

    ``phase=True`` adds two channels, ``cos`` and ``sin`` of the source's phase origin per frame: the
    input's fundamental phase (:func:`~shared.features.fundamental_phase`) minus the phase the harmonic
    source (:func:`source_phase`) would have there. With it the decoder's pulse train lines up with the
    input's glottal pulses instead of starting wherever its own integration puts them, which magnitude
    losses cannot see and PESQ punishes. Unvoiced frames are filled in between voiced neighbours. It pays
    only with the decoder's pulse shape equal to the input's (``harmonic_phase: minus_sine`` for espeak-ng):
    with the reversed shape every even harmonic stays half a turn off. On the default corpus, with both and
    ``lock_phase``, test PESQ-WB 3.38 vs 2.90 without the origin (equal 11-minute runs, egs/espeak_mini/tts1/RESULTS.md).
    """

    def __init__(self, sample_rate: int, hop_length: int, f0_min: float = 50.0, f0_max: float = 500.0,
                 center_hz: float = 150.0, scale: float = 0.5, max_aperiodicity: float = 0.5, win_length: int = 1024,
                 quantize_bits: int = 0, phase: bool = False, lock_phase: bool = False):
        super().__init__()
        self.lock_phase = bool(lock_phase)
        self.sample_rate, self.hop_length, self.win_length = int(sample_rate), int(hop_length), int(win_length)
        self.f0_min, self.f0_max, self.max_aperiodicity = float(f0_min), float(f0_max), float(max_aperiodicity)
        self.offset, self.scale, self.quantize_bits = math.log(center_hz), float(scale), int(quantize_bits)
        self.phase = bool(phase)
        self.channels = 3 if self.phase else 1

    @torch.no_grad()
    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav (B, T)`` -> ``(B, channels, T // hop + 1)``."""
        channels, _ = self.measure(wav)
        return self.quantize(channels)

    @torch.no_grad()
    def measure(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``wav (B, T)`` -> the channels ``(B, channels, F)`` before the phase channels are rounded (the pitch
        channel is), and with ``phase`` the source's phase just before each frame ``(B, F)`` (float64; 0 at
        frame 0), which :meth:`crop` needs to move the origin of a window of the frames."""
        f0, aperiodicity = yin_f0(wav, self.sample_rate, self.hop_length, self.win_length, self.f0_min, self.f0_max)
        voiced = aperiodicity < self.max_aperiodicity
        log_f0 = interpolate_unvoiced(torch.log(f0), voiced, default=self.offset)
        # YIN reports a moving pitch 5-8 ms late: move the filled-in track onto the frame centres
        times = yin_frame_times(torch.exp(log_f0), self.sample_rate, self.hop_length, self.f0_min)
        log_f0 = resample_track(log_f0, times, torch.arange(log_f0.shape[-1], device=log_f0.device, dtype=torch.float32))
        if self.lock_phase:  # frame values whose integral keeps phase with the input's harmonics
            log_f0 = torch.log(phase_locked_f0(wav, torch.exp(log_f0), voiced, self.hop_length, self.sample_rate, f0_min=self.f0_min))
        channel = self.quantize(((log_f0 - self.offset) / self.scale)[:, None])
        if not self.phase:
            return channel, None
        hz = self.to_hz(channel[:, 0])
        phi, _ = source_phase(hz, self.hop_length, self.sample_rate)
        at_frames = phi[:, (torch.arange(hz.shape[-1], device=hz.device) * self.hop_length).clamp(max=phi.shape[-1] - 1)]
        delta = fundamental_phase(wav[:, : phi.shape[-1] + self.hop_length], hz, self.hop_length, self.sample_rate,
                                  f0_min=self.f0_min).double() - at_frames
        cos_sin = [interpolate_unvoiced(v.to(channel.dtype), voiced, default=0.0) for v in (torch.cos(delta), torch.sin(delta))]
        return torch.cat([channel, torch.stack(cos_sin, 1)], 1), self.phase_before(channel, phi)

    def phase_before(self, channels: torch.Tensor, phi: torch.Tensor | None = None) -> torch.Tensor:
        """The harmonic source's phase just before each frame ``(B, F)`` (0 at frame 0) for the pitch channel of
        ``channels (B, >= 1, F)``; ``phi``: its :func:`source_phase`, where the caller has it already."""
        if phi is None:
            phi, _ = source_phase(self.to_hz(channels[:, 0]), self.hop_length, self.sample_rate)
        return torch.cat([torch.zeros_like(phi[:, :1]), phi[:, self.hop_length - 1 :: self.hop_length]], 1)[:, : channels.shape[-1]]

    def crop(self, channels: torch.Tensor, phase_before: torch.Tensor | None, start: int, frames: int) -> torch.Tensor:
        """Frames ``start .. start + frames - 1`` of one utterance's :meth:`measure` output ``(channels, F)``
        (and ``phase_before (F,)``) as :meth:`forward` gives them for the audio from sample ``start * hop`` on,
        but measured with the whole utterance around them; frames past the end repeat the last one.

        The source integrates its phase from the first sample it is given, so a window starting at frame
        ``start`` has ``phase_before[start]`` less source phase everywhere, and its origin
        (input phase minus source phase) is that much later: the ``(cos, sin)`` pair is rotated by it."""
        window = channels[:, start : start + frames]
        if window.shape[-1] < frames:
            window = torch.cat([window, window[:, -1:].expand(-1, frames - window.shape[-1])], -1)
        if self.phase and start > 0:
            turn = float(phase_before[start])
            c, s = window[1], window[2]
            window = torch.stack([window[0], c * math.cos(turn) - s * math.sin(turn), s * math.cos(turn) + c * math.sin(turn)])
        return self.quantize(window[None])[0]

    def quantize(self, channel: torch.Tensor) -> torch.Tensor:
        """Round to ``quantize_bits``: log-F0 over ``[f0_min, f0_max]`` (any shape, frames last; noise-shaped,
        see below), or with ``phase`` the channels ``(B, 3, F)``, the phase channels over [-1, 1]."""
        if self.quantize_bits <= 0:
            return channel
        lo, hi = ((math.log(f) - self.offset) / self.scale for f in (self.f0_min, self.f0_max))
        levels = 2**self.quantize_bits - 1

        def snap(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
            return lo + torch.round((x.clamp(lo, hi) - lo) / (hi - lo) * levels) * (hi - lo) / levels

        def snap_pitch(x: torch.Tensor) -> torch.Tensor:
            # error feedback along the frames: each frame absorbs the F0 (Hz) the earlier ones were rounded
            # away from, so the quantised track's running sum, the source's phase, stays within a step of
            # the continuous one's instead of random-walking by ~16-cent errors (an on-grid track is unchanged)
            hz, out = self.to_hz(x), []
            carry = torch.zeros_like(hz[..., 0])
            for i in range(hz.shape[-1]):
                want = (hz[..., i] - carry).clamp(min=self.f0_min)
                q = snap(((torch.log(want) - self.offset) / self.scale).to(x.dtype), lo, hi)
                carry = carry + self.to_hz(q) - hz[..., i]
                out.append(q)
            return torch.stack(out, -1)

        if not self.phase:
            return snap_pitch(channel)
        return torch.cat([snap_pitch(channel[:, :1]), snap(channel[:, 1:], -1.0, 1.0)], 1)

    def to_hz(self, channel: torch.Tensor) -> torch.Tensor:
        """Normalised channel ``(B, F)`` -> F0 in Hz, clamped to ``[f0_min, f0_max]``."""
        return torch.exp(channel.float() * self.scale + self.offset).clamp(self.f0_min, self.f0_max)

    def phase_offset(self, channels: torch.Tensor) -> torch.Tensor | None:
        """The source's phase origin per frame ``(B, F)`` from the channels ``(B, channels, F)`` (None without ``phase``)."""
        return torch.atan2(channels[:, 2].float(), channels[:, 1].float()) if self.phase else None


class PitchCache:
    """Pitch channels for training crops, measured once per utterance on the whole of it
    (:meth:`PitchChannel.measure`) and cropped with each window of its audio (:meth:`PitchChannel.crop`): a
    :data:`shared.batching.FrameTrack`. Measuring costs a 16-segment batch of 0.64 s about 38 ms on 2 CPU
    threads (~18% of a stage-one step, more of a decoder-only one); the whole corpus, once, ~27 ms per
    10 s of audio. The windows also see the pitch as encoding sees it, from the whole utterance, instead of
    a crop's edges. Held in memory (~75 kB per minute of audio at 62.5 frames/s), in every loader worker.

    ``measured``: ``{utt: path}`` of latents the same codec already encoded from the same audio (a
    :mod:`stage1_vae.encode` dump's ``latents.scp``): their first channels are what measuring would give, so
    an utterance found there is read instead (quantised codecs: the phase channels were rounded before the
    window's rotation, not after).
    """

    def __init__(self, pitch: PitchChannel, measured: dict[str, str] | None = None):
        self.pitch, self.measured = pitch, measured or {}
        self._utts: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def __call__(self, utt: str, wav: torch.Tensor, start: int, frames: int) -> torch.Tensor:
        if utt not in self._utts:
            self._utts[utt] = self._whole(utt, wav)
        return self.pitch.crop(*self._utts[utt], start, frames)

    def _whole(self, utt: str, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The whole utterance's channels and source phase before each frame: read from ``measured``, else measured."""
        if utt in self.measured:
            channels = torch.load(self.measured[utt], map_location="cpu", weights_only=True)[: self.pitch.channels].float()
            return channels, self.pitch.phase_before(channels[None])[0] if self.pitch.phase else None
        padded = pad_to_multiple(wav, self.pitch.hop_length)  # as Stage1Codec.encode pads
        channels, before = self.pitch.measure(padded[None].float())
        return channels[0], before[0] if before is not None else None


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
