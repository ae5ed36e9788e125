"""STFT and mel-spectrogram transforms shared by the losses, the models and the metrics.

They are ``nn.Module``s with their windows and filterbanks as buffers, so ``.to(device)`` moves them and
the same code runs on CPU and GPU.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import nn

LOG_FLOOR = 1e-5


def n_frames(num_samples: int, hop_length: int, center: bool = True) -> int:
    """Number of STFT frames for ``num_samples`` (``center=True`` pads by n_fft // 2 on both sides)."""
    return num_samples // hop_length + 1 if center else max(0, num_samples // hop_length)


def center_pad_mode(num_samples: int, n_fft: int) -> str:
    """The padding of a ``center=True`` STFT: ``reflect``, or zeros where a signal of ``num_samples <= n_fft // 2``
    has too few samples to reflect (it still gets its ``num_samples // hop + 1`` frames)."""
    return "reflect" if num_samples > n_fft // 2 else "constant"


_WINDOWS: dict[tuple[int, str, torch.dtype], torch.Tensor] = {}


def hann_window(win_length: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A cached periodic Hann window."""
    key = (win_length, str(device), dtype)
    if key not in _WINDOWS:
        _WINDOWS[key] = torch.hann_window(win_length, device=device, dtype=dtype)
    return _WINDOWS[key]


def stft(wav: torch.Tensor, n_fft: int, hop_length: int, win_length: int | None = None, center: bool = True) -> torch.Tensor:
    """Complex STFT of ``wav (B, T)`` -> ``(B, n_fft // 2 + 1, F)``."""
    win_length = win_length or n_fft
    window = hann_window(win_length, wav.device, wav.dtype)
    return torch.stft(wav, n_fft, hop_length, win_length, window, center=center, pad_mode=center_pad_mode(wav.shape[-1], n_fft),
                      return_complex=True)


def log_magnitude(wav: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """``wav (B, T)`` -> log-magnitude STFT ``(B, n_fft // 2 + 1, T // hop + 1)`` (floored at ``LOG_FLOOR``)."""
    return torch.log(stft(wav.float(), n_fft, hop_length).abs().clamp(min=LOG_FLOOR))


class MelSpectrogram(nn.Module):
    """Waveform ``(B, T)`` -> (log-)mel spectrogram ``(B, n_mels, F)`` with ``F = T // hop + 1``."""

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int | None = None,
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: float | None = None,
        power: float = 1.0,
        log: bool = True,
        center: bool = True,
        norm: str | None = "slaney",
        mel_scale: str = "slaney",
    ):
        super().__init__()
        self.sample_rate, self.n_fft, self.hop_length = sample_rate, n_fft, hop_length
        self.win_length = win_length or n_fft
        self.n_mels, self.power, self.log, self.center = n_mels, power, log, center
        fb = torchaudio.functional.melscale_fbanks(
            n_fft // 2 + 1, f_min, f_max or sample_rate / 2, n_mels, sample_rate, norm=norm, mel_scale=mel_scale
        )  # (n_freqs, n_mels)
        self.register_buffer("fbank", fb.T.contiguous(), persistent=False)
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        squeeze = wav.dim() == 1
        if squeeze:
            wav = wav.unsqueeze(0)
        spec = torch.stft(
            wav.float(), self.n_fft, self.hop_length, self.win_length, self.window, center=self.center,
            pad_mode=center_pad_mode(wav.shape[-1], self.n_fft), return_complex=True,
        ).abs()
        mel = self.from_magnitude(spec)
        return mel.squeeze(0) if squeeze else mel

    def from_magnitude(self, mag: torch.Tensor) -> torch.Tensor:
        """The same (log-)mel from an STFT magnitude ``(B, n_fft // 2 + 1, F)`` already computed with this
        transform's ``n_fft``/``hop``/window (the losses share one STFT between several terms). In float32 also under
        autocast, which would run the filterbank's matmul in bfloat16: a mel codec's latents (stage1_vae.encoders.MelEncoder)
        would then be rounded in training but not in ``encode``."""
        with torch.autocast(mag.device.type, enabled=False):
            mag = mag.to(self.fbank.dtype)
            if self.power != 1.0:
                mag = mag.pow(self.power)
            mel = torch.matmul(self.fbank, mag)
            return torch.log(torch.clamp(mel, min=LOG_FLOOR)) if self.log else mel


def yin_f0(wav: torch.Tensor, sample_rate: int, hop_length: int, win_length: int = 1024, f0_min: float = 50.0,
           f0_max: float = 500.0, threshold: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """YIN fundamental frequency (de Cheveigné and Kawahara, 2002), vectorised over batch and frames.

    ``wav (B, T)`` -> ``f0 (B, F)`` in Hz and ``aperiodicity (B, F)`` (the cumulative-mean-normalised
    difference at the chosen lag: near 0 for a clean periodic frame, near 1 for noise), on the
    ``center=True`` frame grid of :func:`stft` (``F = T // hop + 1``). The lag is the first dip of the
    normalised difference below ``threshold`` (its local minimum), else the global minimum, refined by
    parabolic interpolation. Differentiable nowhere useful: a target, not a layer.

    The difference at lag ``tau`` compares samples ``[0, width + tau)`` of a frame's window, which is
    centred only for the longest lag: a frame's estimate describes the signal ``(tau_max - tau) / 2``
    samples before the frame centre (5-8 ms at 100-230 Hz). :func:`yin_frame_times` says where; a
    continuous track (after unvoiced frames are filled in) can be moved onto the frame centres with
    :func:`resample_track` (as :class:`~stage1_vae.modules.PitchChannel` does).
    """
    tau_min, tau_max = int(sample_rate // f0_max), int(math.ceil(sample_rate / f0_min))
    width = win_length - tau_max  # integration window
    if width < tau_max:
        raise ValueError(f"yin_f0: win_length={win_length} too short for f0_min={f0_min} (needs >= {2 * tau_max})")
    pad = (win_length // 2, win_length // 2)
    x = torch.nn.functional.pad(wav.float()[:, None], pad, mode=center_pad_mode(wav.shape[-1], win_length))[:, 0]
    frames = x.unfold(-1, win_length, hop_length)  # (B, F, W)
    frames = frames - frames.mean(-1, keepdim=True)
    n = 1 << (win_length + width - 1).bit_length()
    corr = torch.fft.irfft(torch.fft.rfft(frames, n).mul(torch.fft.rfft(frames[..., :width], n).conj()), n)[..., : tau_max + 1]
    energy = torch.nn.functional.pad(frames.square().cumsum(-1), (1, 0))  # energy[k] = sum_{j<k} x_j^2
    lags = torch.arange(tau_max + 1, device=wav.device)
    e_lag = energy[..., lags + width] - energy[..., lags]
    diff = (energy[..., width : width + 1] + e_lag - 2 * corr).clamp(min=0)
    cum = diff[..., 1:].cumsum(-1)
    cmnd = torch.cat([torch.ones_like(diff[..., :1]), diff[..., 1:] * lags[1:] / cum.clamp(min=1e-12)], -1)
    search = cmnd[..., tau_min : tau_max]  # candidate lags tau_min .. tau_max - 1 (tau_max + 1 kept for the parabola)
    below = search < threshold
    is_min = torch.ones_like(below)
    is_min[..., 1:-1] = (search[..., 1:-1] <= search[..., :-2]) & (search[..., 1:-1] <= search[..., 2:])
    started = below.cumsum(-1) > 0
    first = (started & is_min).float().argmax(-1)
    idx = torch.where(started.any(-1), first, search.argmin(-1)) + tau_min
    c0, c1, c2 = (cmnd.gather(-1, (idx + k).clamp(1, tau_max)[..., None])[..., 0] for k in (-1, 0, 1))
    denom = c0 - 2 * c1 + c2
    shift = torch.where(denom.abs() > 1e-9, 0.5 * (c0 - c2) / denom, torch.zeros_like(denom)).clamp(-0.5, 0.5)
    f0 = sample_rate / (idx.float() + shift)
    silent = frames.square().mean(-1) < 1e-8
    aperiodicity = torch.where(silent, torch.ones_like(c1), c1.clamp(0, 1))
    return f0, aperiodicity


def yin_frame_times(f0: torch.Tensor, sample_rate: int, hop_length: int, f0_min: float = 50.0) -> torch.Tensor:
    """Where the :func:`yin_f0` estimates ``f0 (B, F)`` (Hz) describe the signal, in frames (frame ``i``'s
    centre is ``i``): ``(tau_max - tau) / 2`` samples before the centre. Pass a continuous track (unvoiced
    frames filled in), so that every time follows from a plausible period."""
    tau_max = int(math.ceil(sample_rate / f0_min))
    centre = torch.arange(f0.shape[-1], device=f0.device, dtype=torch.float32)
    return centre - 0.5 * (tau_max - sample_rate / f0.float()) / hop_length


def resample_track(values: torch.Tensor, times: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of tracks ``values (..., B, F)`` sampled at ``times (B, F)`` (any order) onto
    ``grid (G,)``, held constant beyond the first and last sample (as ``numpy.interp``)."""
    t, order = times.sort(-1)
    v = values.gather(-1, order.expand_as(values))
    hi = torch.searchsorted(t, grid.expand(t.shape[0], -1).contiguous()).clamp(1, t.shape[-1] - 1)
    t0, t1 = t.gather(-1, hi - 1), t.gather(-1, hi)
    w = ((grid - t0) / (t1 - t0).clamp(min=1e-6)).clamp(0, 1)
    hi, w = hi.expand(values.shape[:-1] + hi.shape[-1:]), w.expand(values.shape[:-1] + w.shape[-1:])
    v0, v1 = v.gather(-1, hi - 1), v.gather(-1, hi)
    return v0 + w * (v1 - v0)


def wrap_phase(x: torch.Tensor) -> torch.Tensor:
    """Angles (radians) wrapped into [-pi, pi)."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


def harmonic_coefficients(wav: torch.Tensor, f0: torch.Tensor, hop_length: int, sample_rate: int, num_harmonics: int = 1,
                          periods: float = 3.0, f0_min: float = 50.0) -> torch.Tensor:
    """Complex amplitudes of the first ``num_harmonics`` harmonics of ``wav (B, T)`` at each frame centre
    ``i * hop``, given ``f0 (B, F)`` in Hz -> ``(B, F, num_harmonics)``: the signal's Fourier coefficients at
    ``k f0`` over a Hann window of ``periods`` periods centred on the frame, so ``a cos(2 pi k f0 t + psi)``
    around frame ``i`` gives ``a e^{i psi}`` (up to the window's gain). With a whole number of periods >= 2
    the window's spectrum is zero at the neighbouring harmonics, so they do not leak into each other."""
    num = f0.shape[-1]
    n_max = int(math.ceil(periods * sample_rate / max(f0_min, float(f0.min())))) | 1  # the longest window needed
    half = n_max // 2
    x = torch.nn.functional.pad(wav.float(), (half, half + hop_length * num))
    frames = x.unfold(-1, n_max, hop_length)[:, :num]  # frame i: samples i * hop - half ... i * hop + half
    m = torch.arange(n_max, device=wav.device, dtype=torch.float32) - half
    f = f0.float()[..., None]
    length = periods * sample_rate / f
    window = torch.where(m.abs() < length / 2, 0.5 * (1 + torch.cos(2 * math.pi * m / length)), torch.zeros((), device=wav.device))
    windowed = window * frames  # (B, F, W)
    theta = (2 * math.pi / sample_rate) * f * m  # (B, F, W): the fundamental's phase; harmonic k's is k times it
    coefs = []
    for k in range(1, num_harmonics + 1):  # one harmonic at a time: memory B F W, not B F K W; float32 real
        arg = k * theta  # arithmetic: 2.7x faster than a complex128 basis, phases agree to 1e-4 rad
        coefs.append(torch.complex((torch.cos(arg) * windowed).sum(-1), -(torch.sin(arg) * windowed).sum(-1)))
    return torch.stack(coefs, -1) * (2.0 / window.sum(-1, keepdim=True))


def fundamental_phase(wav: torch.Tensor, f0: torch.Tensor, hop_length: int, sample_rate: int, periods: float = 3.0,
                      f0_min: float = 50.0) -> torch.Tensor:
    """Phase of the fundamental of ``wav (B, T)`` at each frame centre (see :func:`harmonic_coefficients`):
    ``cos(2 pi f0 t + psi)`` around frame ``i`` gives ``psi``. ``(B, F)`` radians in (-pi, pi]."""
    return torch.angle(harmonic_coefficients(wav, f0, hop_length, sample_rate, 1, periods, f0_min)[..., 0]).to(f0.dtype)


def phase_locked_f0(wav: torch.Tensor, f0: torch.Tensor, voiced: torch.Tensor, hop_length: int, sample_rate: int,
                    max_freq: float = 800.0, periods: float = 2.0, f0_min: float = 50.0, max_correction: float = 0.05,
                    max_spread: float = 0.1, iterations: int = 8) -> torch.Tensor:
    """Refine a continuous F0 track ``f0 (B, F)`` (Hz, on the ``center=True`` frame grid) so that a harmonic
    source integrating it (:func:`stage1_vae.modules.source_phase`: linear interpolation between frames, then
    a running sum) advances from frame to frame by the same phase as ``wav``'s own harmonics.

    A frame-rate F0 estimate such as YIN's is off by up to 20-30 cents on espeak-ng's voices, and integrated
    over a voiced stretch that is a phase drift of whole periods at the higher harmonics: the pulse train
    follows the pitch contour but its harmonics wander against the input's, which spectral losses forgive
    and PESQ does not (a +-20-cent wobble alone takes PESQ-WB from 4.6 to 4.3). This measures, between each
    pair of frames, the phase advance of every harmonic below ``max_freq`` (:func:`harmonic_coefficients` at
    both frame centres) and fits the fundamental's advance to them (weighted least squares of ``k * advance``,
    weights ``|c_i,k| |c_i+1,k|``, after a first pass on the lowest three harmonics resolves the phase wraps):
    the mean F0 over the hop, as a phase vocoder's instantaneous frequency (WORLD's StoneMask refines F0 the
    same way). The frame values are then moved, by a few Landweber iterations from the given track, until the
    mean of each pair of neighbours (the source's own mean over the hop) matches: slow errors go first, the
    frame-to-frame alternation the hop means cannot see is never introduced. A hop counts only between two
    ``voiced (B, F)`` frames whose harmonics agree (weighted spread of their implied advances below
    ``max_spread`` rad) and whose correction is below ``max_correction`` of the hop's phase advance.
    """
    if f0.shape[-1] < 2:
        return f0
    hz = f0.double()
    num_harmonics = max(1, int(min(max_freq, 0.5 * sample_rate) // float(hz.min().clamp(min=f0_min))))
    coef = harmonic_coefficients(wav, hz, hop_length, sample_rate, num_harmonics, periods, f0_min)  # (B, F, K)
    k = torch.arange(1, num_harmonics + 1, device=wav.device, dtype=torch.float64)
    mean = 0.5 * (hz[:, 1:] + hz[:, :-1])  # (B, F - 1): the track's own mean over each hop
    expected = 2 * math.pi * hop_length * mean / sample_rate
    deviation = torch.angle(coef[:, 1:] * coef[:, :-1].conj() * torch.exp(-1j * k * expected[..., None]))  # (B, F - 1, K)
    below = (k * torch.maximum(hz[:, 1:], hz[:, :-1])[..., None]) < min(max_freq, 0.5 * sample_rate)
    weight = coef[:, 1:].abs() * coef[:, :-1].abs() * below
    norm = (weight * k * k).sum(-1).clamp(min=1e-30)

    coarse = (weight * (k <= 3) * k * deviation).sum(-1) / (weight * (k <= 3) * k * k).sum(-1).clamp(min=1e-30)
    residual = wrap_phase(deviation - k * coarse[..., None])
    fine = coarse + (weight * k * residual).sum(-1) / norm
    spread = ((weight * (wrap_phase(deviation - k * fine[..., None])) ** 2).sum(-1) / norm).sqrt()  # rad of the fundamental
    ok = voiced[:, 1:] & voiced[:, :-1] & (weight.sum(-1) > 0) & (fine.abs() < max_correction * expected) & (spread < max_spread)
    target = mean * (1 + fine / expected)
    track = hz
    for _ in range(iterations):
        r = torch.where(ok, target - 0.5 * (track[:, 1:] + track[:, :-1]), torch.zeros_like(target))
        track = track + 0.5 * (torch.nn.functional.pad(r, (1, 0)) + torch.nn.functional.pad(r, (0, 1)))
    return track.to(f0.dtype)


def interpolate_unvoiced(log_f0: torch.Tensor, voiced: torch.Tensor, default: float = math.log(120.0)) -> torch.Tensor:
    """Continuous log-F0: unvoiced frames of ``log_f0 (B, F)`` linearly interpolated between their voiced
    neighbours (held at the ends); rows with no voiced frame get ``default``."""
    num = log_f0.shape[-1]
    idx = torch.arange(num, device=log_f0.device).expand_as(log_f0)
    prev = torch.where(voiced, idx, torch.full_like(idx, -1)).cummax(-1).values
    nxt = torch.where(voiced, idx, torch.full_like(idx, num)).flip(-1).cummin(-1).values.flip(-1)
    has_prev, has_next = prev >= 0, nxt < num
    v_prev = log_f0.gather(-1, prev.clamp(min=0))
    v_next = log_f0.gather(-1, nxt.clamp(max=num - 1))
    w = (idx - prev).float() / (nxt - prev).clamp(min=1).float()
    out = torch.where(has_prev & has_next, v_prev + w * (v_next - v_prev), torch.where(has_prev, v_prev, v_next))
    out = torch.where(voiced, log_f0, out)
    return torch.where(voiced.any(-1, keepdim=True), out, torch.full_like(out, default))
