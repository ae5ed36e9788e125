"""Stage one: modules, losses, config checks, training smoke run, exact resume (and what it refuses), entry points,
load_codec, adapters, DDP (the RVQ's codebooks synchronised too).

Unit tests take seconds; the ``slow`` ones run the real entry points on a tiny generated corpus with
``conf/stage1_smoke.yaml`` (each a few seconds, the DDP one about 20 s).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from conftest import write_data_dir
from shared.config import load_config
from shared.features import harmonic_coefficients, log_magnitude, wrap_phase
from shared.io import read_json, read_kv
from shared.latents import read_latent_scp
from stage1_vae import load_codec
from stage1_vae.bottlenecks import build_bottleneck
from stage1_vae.decoders import HiFiGANDecoder, VocosDecoder
from stage1_vae.discriminators import MultiDiscriminator
from stage1_vae.encoders import SpectralEncoder, stack_fine_frames
from stage1_vae.losses import (PhaseLoss, ReconstructionLoss, discriminator_loss, feature_matching_loss, generator_adv_loss,
                               weighted_sum)
from stage1_vae.model import build_codec
from stage1_vae.modules import ISTFTHead, PitchChannel, harmonic_excitation, source_phase

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "egs/espeak_mini/tts1/conf"
SMOKE = CONF / "stage1_smoke.yaml"


def tiny_model_cfg(bottleneck: dict, hop: int = 256, decoder: dict | None = None, encoder: dict | None = None) -> dict:
    return {"sample_rate": 16000, "hop_length": hop, "n_fft": 4 * hop, "latent_dim": 8,
            "encoder": encoder or {"kind": "convnext", "dim": 16, "intermediate_dim": 32, "num_layers": 1},
            "bottleneck": bottleneck,
            "decoder": decoder or {"kind": "vocos", "dim": 16, "intermediate_dim": 32, "num_layers": 1}}


# ---- models ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hop", [160, 256, 320])  # 100, 62.5 and 50 Hz
@pytest.mark.parametrize("bottleneck", [{"kind": "gaussian"}, {"kind": "rvq", "num_quantizers": 2, "codebook_size": 16},
                                        {"kind": "fsq", "levels": [5, 5], "num_codebooks": 2}])
def test_codec_shapes_and_frame_rate(hop, bottleneck):
    codec = build_codec(tiny_model_cfg(bottleneck, hop))
    assert codec.frame_rate == 16000 / hop
    wav = torch.randn(2, 16000) * 0.1
    codec.train()
    wav_hat, z, losses = codec(wav[:, : 16000 // hop * hop])
    assert wav_hat.shape == (2, 16000 // hop * hop) and z.shape == (2, 8, 16000 // hop + 1)
    assert set(losses) <= {"kl", "vq/commit"}
    codec.eval()
    z = codec.encode(wav)
    frames = math.ceil(16000 / hop) + 1
    assert z.shape == (2, codec.latent_dim, frames)
    assert codec.decode(z).shape == (2, (frames - 1) * hop)


def test_vae_posterior_mean_is_deterministic_and_kl_nonnegative():
    bn = build_bottleneck("gaussian", 4)
    h = torch.randn(2, 8, 10)
    bn.eval()
    assert torch.equal(bn(h)[0], bn.latent(h))
    bn.train()
    z, losses = bn(h)
    assert not torch.equal(z, bn.latent(h)) and float(losses["kl"]) >= 0
    assert float(bn(torch.cat([torch.zeros(2, 4, 10), torch.zeros(2, 4, 10)], 1))[1]["kl"]) == pytest.approx(0.0)


def test_quantised_codecs_snap_latents_and_expose_continuous():
    codec = build_codec(tiny_model_cfg({"kind": "rvq", "num_quantizers": 2, "codebook_size": 16})).eval()
    wav = torch.randn(1, 4000) * 0.1
    z, h = codec.encode(wav), codec.encode_continuous(wav)
    assert z.shape == h.shape and not torch.allclose(z, h)
    snapped = codec.bottleneck.prepare(h)  # decode() re-quantises whatever it is given
    assert torch.allclose(snapped, z, atol=1e-5)


def test_decoders_lengths():
    z = torch.randn(1, 8, 21)
    assert VocosDecoder(8, 256, 1024, dim=16, intermediate_dim=32, num_layers=1)(z).shape == (1, 20 * 256)
    hifi = HiFiGANDecoder(8, 256, upsample_rates=(8, 8, 2, 2), upsample_initial_channel=32)
    assert hifi(z).shape == (1, 20 * 256)
    with pytest.raises(ValueError, match="upsample_rates"):
        HiFiGANDecoder(8, 200, upsample_rates=(8, 8, 2, 2))


def test_vocos_finer_head_keeps_the_latent_grid():
    """head_upsample=r: r(F-1)+1 head frames at hop/r, the same number of samples as r=1, and the
    latent frame i is the head frame r*i (interpolation with shared end points)."""
    z = torch.randn(2, 8, 21)
    dec = VocosDecoder(8, 256, 1024, dim=16, intermediate_dim=32, num_layers=1, head_upsample=2)
    wav, phase = dec(z, return_phase=True)
    assert wav.shape == (2, 20 * 256) and phase.shape == (2, 1024 // 4 + 1, 41)
    assert (dec.head.n_fft, dec.head.hop_length) == (512, 128)
    x = torch.arange(6.0).view(1, 1, 6)
    up = torch.nn.functional.interpolate(x, size=2 * 5 + 1, mode="linear", align_corners=True)
    assert torch.allclose(up[0, 0, ::2], x[0, 0]) and torch.allclose(up[0, 0, 1::2], x[0, 0, :-1] + 0.5)
    with pytest.raises(ValueError, match="head_upsample"):
        VocosDecoder(8, 256, 1024, dim=16, intermediate_dim=32, num_layers=1, head_upsample=3)
    wide = VocosDecoder(8, 256, 1024, dim=16, intermediate_dim=32, num_layers=1, head_upsample=2, head_n_fft=1024)
    wav, phase = wide(z, return_phase=True)  # a longer window at the same hop: same length, finer bins
    assert wav.shape == (2, 20 * 256) and phase.shape == (2, 513, 41)


def test_encoder_fine_windows_stack_around_each_latent_frame():
    """fine_ffts=(256,): 256-point log-magnitude frames at hop 64, the 5 centred on each latent frame; a click
    shows in the stacked frames of the latent frame whose centre it is nearest, at the slot of its offset."""
    x = torch.arange(9.0).view(1, 1, 9)  # 9 fine frames (k = 2) -> 5 coarse frames
    assert stack_fine_frames(x, 2).tolist() == [[[0, 1, 3, 5, 7], [0, 2, 4, 6, 8], [1, 3, 5, 7, 0]]]
    enc = SpectralEncoder(8, hop_length=256, n_fft=1024, dim=16, intermediate_dim=32, num_layers=1, fine_ffts=(256,))
    assert enc.inp.in_channels == 3 * 513 + 129 * 5
    wav = torch.zeros(1, 256 * 20)
    wav[0, 256 * 7 + 64] = 1.0  # one fine hop after latent frame 7's centre
    fine = stack_fine_frames(log_magnitude(wav, 256, 64), 4).view(1, 129, 5, 21)  # (bin, slot, frame)
    energy = fine.exp().sum(1)[0]  # (slot, frame); slot 2 is the frame's own centre
    assert energy[3].argmax() == 7 and energy[2].argmax() == 7 and energy[3, 7] > energy[2, 7]
    assert enc(torch.randn(2, 256 * 20 + 77)).shape == (2, 8, 21)
    with pytest.raises(ValueError, match="fine_ffts"):
        SpectralEncoder(8, hop_length=256, n_fft=1024, fine_ffts=(384,))


def test_harmonic_excitation_is_a_unit_band_limited_pulse_train():
    f0 = torch.full((1, 11), 100.0)
    e = harmonic_excitation(f0, 160, 16000)
    assert e.shape == (1, 1600)
    amp = torch.fft.rfft(e[0].double()).abs() * 2 / e.shape[-1]  # 10 Hz bins: harmonic k at bin 10 k
    harmonics = amp[10:800:10]
    assert torch.allclose(harmonics, torch.ones_like(harmonics), atol=1e-3)  # 79 harmonics below 8 kHz
    others = amp.clone()
    others[::10] = 0
    assert float(others.max()) < 1e-3 and float(amp[800]) < 1e-3  # nothing between harmonics, none at Nyquist
    glide = harmonic_excitation(torch.linspace(80, 300, 21)[None], 128, 16000)  # a rising pitch stays finite
    assert bool(torch.isfinite(glide).all()) and float(glide.abs().max()) <= 100


def test_pitch_channel_and_harmonic_source_decoder():
    """model.pitch: latent channel 0 is the normalised log-F0 of the input (latent_dim counts it), and a
    harmonic-source decoder is driven by it: changing only that channel changes the output's pitch."""
    torch.manual_seed(0)
    dec_cfg = {"kind": "vocos", "dim": 16, "intermediate_dim": 32, "num_layers": 1, "head_upsample": 2, "source": "harmonic"}
    cfg = tiny_model_cfg({"kind": "gaussian"}, decoder=dec_cfg)
    codec = build_codec({**cfg, "pitch": {"f0_min": 50, "f0_max": 500}}).eval()
    assert codec.latent_dim == 8 and codec.bottleneck.latent_dim == 7
    t = torch.arange(8192) / 16000
    z = codec.encode(0.3 * torch.sin(2 * math.pi * 120 * t)[None])
    assert z.shape == (1, 8, 33)
    assert torch.allclose(codec.pitch.to_hz(z[:, 0])[0, 3:-3], torch.tensor(120.0), rtol=2e-3)
    wav = codec.decode(z)
    assert wav.shape == (1, 8192) and bool(torch.isfinite(wav).all())
    lower = z.clone()
    lower[:, 0] = (math.log(90.0) - codec.pitch.offset) / codec.pitch.scale
    assert not torch.allclose(codec.decode(lower), wav, atol=1e-4)
    wav_hat, _, losses, phase = codec.train()(0.3 * torch.sin(2 * math.pi * 120 * t)[None], return_phase=True)
    assert wav_hat.shape == (1, 8192) and phase.shape == (1, 257, 65) and set(losses) == {"kl"}
    with pytest.raises(ValueError, match="pitch channel"):
        build_codec(cfg)  # a harmonic source without a pitch channel
    with pytest.raises(ValueError, match="needs f0"):
        codec.decoder(z)
    with pytest.raises(ValueError, match="source"):
        VocosDecoder(8, 256, 1024, dim=16, intermediate_dim=32, num_layers=1, source="pulse")


def test_phase_channels_line_the_source_up_with_the_input():
    """pitch.phase: channels 1-2 carry the input's phase origin, so the harmonic source's phase follows a
    voiced input's that starts anywhere (here 2.1 rad, with a moving pitch and a 1.3 rad jump half-way, as
    espeak-ng makes at phoneme boundaries); without them it is off by whatever its own integration gives."""
    sr, hop, frames = 16000, 256, 41
    f0 = torch.linspace(110.0, 140.0, frames)[None]
    jump = torch.where(torch.arange(frames) < 20, 2.1, 3.4)[None]

    def voiced(phi: torch.Tensor) -> torch.Tensor:  # six harmonics falling off as 1/k
        return sum(torch.cos(k * phi) / k for k in range(1, 7)).float()

    reference = voiced(source_phase(f0, hop, sr, jump)[0])
    pitch = PitchChannel(sr, hop, phase=True)
    channels = pitch(torch.nn.functional.pad(reference, (0, hop)) / 4)
    assert pitch.channels == 3 and channels.shape == (1, 3, frames + 1)
    hz, offset = pitch.to_hz(channels[:, 0, :frames]), pitch.phase_offset(channels[:, :, :frames])
    aligned, plain = voiced(source_phase(hz, hop, sr, offset)[0]), voiced(source_phase(hz, hop, sr)[0])

    def corr(a: torch.Tensor, b: torch.Tensor) -> float:
        a, b = a[0, 2 * hop : -2 * hop], b[0, 2 * hop : -2 * hop]  # away from the edges
        return float((a * b).sum() / (a.norm() * b.norm()))

    assert corr(aligned, reference) > 0.99 and abs(corr(plain, reference)) < 0.5
    codec_cfg = tiny_model_cfg({"kind": "gaussian"}, decoder={"kind": "vocos", "dim": 16, "intermediate_dim": 32, "num_layers": 1,
                                                               "source": "harmonic", "harmonic_phase": "sine"})
    codec = build_codec({**codec_cfg, "pitch": {"phase": True}}).eval()
    z = codec.encode(reference / 4)
    assert codec.latent_dim == 8 and codec.bottleneck.latent_dim == 5 and z.shape[1] == 8
    assert bool(torch.isfinite(codec.decode(z)).all())


def test_pitch_cache_crops_agree_with_measuring_the_crop():
    """train.pitch_cache: channels measured once on the whole utterance and cropped (PitchCache) must give
    the pitch the codec measures on the crop's audio alone (away from the crop's edges), and a phase origin
    that lines the decoder's source up with the crop's input: a window starting later has less source
    phase behind it, so its origin is rotated by that (unrotated, the source is off by a fixed angle)."""
    from stage1_vae.modules import PitchCache

    sr, hop, frames = 16000, 256, 161
    f0 = (130 + 25 * torch.sin(torch.linspace(0, 6, frames)))[None]
    jumps = 1.3 * (torch.arange(frames) // 40).float()[None]  # phase jumps, as at espeak-ng's phoneme boundaries
    phi = source_phase(f0, hop, sr, jumps)[0][0]
    wav = (sum(torch.cos(k * phi) / k for k in range(1, 7)) / 4).float()
    pitch = PitchChannel(sr, hop, phase=True, lock_phase=True)
    cache = PitchCache(pitch)

    def source(channels: torch.Tensor) -> torch.Tensor:  # the phase of the decoder's source for (C, F) channels
        hz, origin = pitch.to_hz(channels[None, 0]), pitch.phase_offset(channels[None])
        return source_phase(hz, hop, sr, origin)[0][0]

    n, inner, turned = 40, slice(6, 34), 0  # YIN's and the phase's windows reach past a crop's edges
    for start in (0, 37, 90, 119):
        cropped = cache("utt", wav, start, n + 1)
        direct = pitch(wav[None, start * hop : (start + n) * hop])[0]
        assert cropped.shape == direct.shape == (3, n + 1)
        assert (cropped[0, inner] - direct[0, inner]).abs().max() < 0.01  # log-F0 / 0.5: < 0.3 cents
        truth = phi[start * hop : (start + n) * hop][inner.start * hop : inner.stop * hop]
        for channels in (cropped, direct):  # (the source smooths the origin's jumps over a frame: 0.16 rad there)
            err = wrap_phase(source(channels)[inner.start * hop : inner.stop * hop] - truth).abs()
            assert float(err.median()) < 0.01 and float(err.max()) < 0.2
        if start:
            unrotated = cache._utts["utt"][0][:, start : start + n + 1]
            off = wrap_phase(source(unrotated)[inner.start * hop : inner.stop * hop] - truth).abs()
            turned += float(off.median()) > 0.5
    assert turned >= 2, "pick starts whose source phase behind them is not near a whole number of turns"
    # frames past the end repeat the last one; a quantised pitch channel stays on its grid
    tail = cache("utt", wav, frames - 10, 20)
    assert tail.shape == (3, 20) and torch.equal(tail[:, 10:], tail[:, 9:10].expand(-1, 10))
    q = PitchChannel(sr, hop, phase=True, quantize_bits=8)
    crop = PitchCache(q)("utt", wav, 37, n + 1)
    assert torch.allclose(q.quantize(crop[None])[0], crop, atol=1e-6)


def test_pitch_cache_reads_what_the_codec_encoded(tmp_path):
    """PitchCache(measured=...): an utterance the codec already encoded (stage four's dump) is read, not measured
    again, and gives the same windows."""
    from stage1_vae.modules import PitchCache

    sr, hop = 16000, 256
    codec = build_codec({**tiny_model_cfg({"kind": "gaussian"}), "pitch": {"phase": True, "lock_phase": True}}).eval()
    phi = source_phase((120 + 20 * torch.sin(torch.linspace(0, 4, 101)))[None], hop, sr)[0][0]
    wav = (sum(torch.cos(k * phi) / k for k in range(1, 5)) / 4).float()[: 100 * hop - 77]  # not a whole number of frames
    torch.save(codec.encode(wav[None])[0], tmp_path / "u.pt")
    reader = PitchChannel(sr, hop, phase=True, lock_phase=True)

    def must_not_measure(wav):
        raise AssertionError("measured again")

    reader.measure = must_not_measure
    measured, read = PitchCache(codec.pitch), PitchCache(reader, {"u": str(tmp_path / "u.pt")})
    for start in (0, 23, 61):
        assert torch.allclose(read("u", wav, start, 41), measured("u", wav, start, 41), atol=1e-5)


@pytest.mark.parametrize("pulse", ["sine", "minus_sine"])
def test_decoded_harmonics_line_up_with_the_input_for_its_pulse_shape(pulse):
    """With the phase channels, a decoder whose filter has the input's pulse shape (+-sum_k sin(k phi) / k,
    a sharp rise or a sharp fall) reproduces every harmonic's phase; the other shape puts the even
    harmonics half a turn off (the same spectrum, the pulse reversed in time), whatever the phase origin."""
    sr, hop, frames = 16000, 256, 41
    phi = source_phase(torch.linspace(110.0, 140.0, frames)[None], hop, sr, torch.full((1, frames), 0.7))[0]
    sign = -1.0 if pulse == "minus_sine" else 1.0
    wav = torch.nn.functional.pad(sign * sum(torch.sin(k * phi) / k for k in range(1, 7)).float() / 8, (0, hop))
    errors = {}
    for shape in ("sine", "minus_sine"):
        codec = build_codec({**tiny_model_cfg({"kind": "gaussian"}, decoder={
            "kind": "vocos", "dim": 16, "intermediate_dim": 32, "num_layers": 1, "source": "harmonic", "harmonic_phase": shape}),
            "pitch": {"phase": True}}).eval()
        head = codec.decoder.head
        with torch.no_grad():  # the source alone, through a flat unit gain: its phases are the filter's and the origin's
            head.proj.weight.zero_()
            head.proj.bias.fill_(-30.0)
            head.harmonic_proj.weight.zero_()
            head.harmonic_proj.bias.zero_()
        z = codec.encode(wav)
        out = codec.decode(z)
        f0 = codec.pitch.to_hz(z[:, 0])[:, 4:-4]
        coef = [harmonic_coefficients(x[:, 4 * hop :], f0, hop, sr, num_harmonics=4) for x in (wav, out)]
        errors[shape] = wrap_phase(torch.angle(coef[1]) - torch.angle(coef[0])).abs().median(1).values[0]  # (harmonics,)
    assert bool((errors[pulse] < 0.15).all()), errors
    other = errors["sine" if pulse == "minus_sine" else "minus_sine"]
    assert bool((other[[0, 2]] < 0.15).all()) and bool((other[[1, 3]] > 3.0).all()), errors


def test_harmonic_filter_phases():
    """zero: real gain; sine / minus_sine: the same gain at -90 / +90 degrees; minimum: the same gain with the phase of a causal
    (minimum-phase) filter, checked on a one-pole resonance whose minimum-phase response is known; learned: a
    free phase, starting at 0."""
    torch.manual_seed(0)
    x = torch.randn(1, 16, 3)
    heads = {p: ISTFTHead(16, 512, 128, harmonic=True, harmonic_phase=p) for p in ("zero", "sine", "minus_sine", "minimum", "learned")}
    heads["sine"].load_state_dict(heads["zero"].state_dict())
    heads["minus_sine"].load_state_dict(heads["zero"].state_dict())
    heads["minimum"].load_state_dict(heads["zero"].state_dict())
    with torch.no_grad():
        heads["learned"].harmonic_proj.weight[:257] = heads["zero"].harmonic_proj.weight
        heads["learned"].harmonic_proj.bias[:257] = heads["zero"].harmonic_proj.bias
    gain = heads["zero"].harmonic_filter(x)
    assert not gain.is_complex() and bool((gain > 0).all())
    assert torch.allclose(heads["learned"].harmonic_filter(x).angle(), torch.zeros(1, 257, 3), atol=1e-6)
    assert torch.allclose(heads["minimum"].harmonic_filter(x).abs(), gain, rtol=1e-4)
    sine = heads["sine"].harmonic_filter(x)
    assert torch.allclose(sine.abs(), gain, rtol=1e-5)
    assert torch.allclose(sine.angle(), torch.full_like(gain, -math.pi / 2), atol=1e-6)
    assert torch.allclose(heads["minus_sine"].harmonic_filter(x), -sine)
    # one-pole filter 1 / (1 - a z^-1), a = 0.9: minimum phase, so its phase follows from its log-magnitude
    w = torch.linspace(0, math.pi, 257)
    response = 1 / (1 - 0.9 * torch.exp(-1j * w.to(torch.complex64)))
    head = heads["minimum"]
    with torch.no_grad():
        head.harmonic_proj.weight.zero_()
        head.harmonic_proj.bias.copy_(response.abs().log()[: 257])
    est = head.harmonic_filter(torch.zeros(1, 16, 1))[0, :, 0]
    assert torch.allclose(est.angle(), response.angle(), atol=0.02)
    with pytest.raises(ValueError, match="harmonic_phase"):
        ISTFTHead(16, 512, 128, harmonic=True, harmonic_phase="linear")


def test_pitch_channel_quantisation_bits_keep_the_phase():
    pitch = PitchChannel(16000, 256, quantize_bits=8)
    step = 1200 * math.log2(500 / 50) / 255  # cents per level: 8 bits over 50-500 Hz
    hz = torch.tensor([[50.0, 71.3, 123.4, 222.2, 499.0, 700.0]])
    back = pitch.to_hz(pitch.quantize((torch.log(hz) - pitch.offset) / pitch.scale))
    assert float((1200 * torch.log2(back / hz.clamp(max=500))).abs().max()) <= step + 0.01
    # a slow glide: the quantised track's running sum (the source's phase) stays within a step of the
    # continuous one's, where frame-by-frame rounding random-walks away from it
    glide = 120 * 2 ** (torch.sin(torch.linspace(0, 12, 400)) / 12 + torch.linspace(0, 0.3, 400))[None]
    ch = (torch.log(glide) - pitch.offset) / pitch.scale
    ch_q = pitch.quantize(ch)
    drift = (pitch.to_hz(ch_q) - glide).cumsum(-1).abs().max()
    lo, hi = ((math.log(f) - pitch.offset) / pitch.scale for f in (50.0, 500.0))
    rounded = lo + torch.round((ch - lo) / (hi - lo) * 255) * (hi - lo) / 255
    assert float(drift) < 0.6 * 500 * (2 ** (step / 1200) - 1)  # within half a step at 500 Hz
    assert float((pitch.to_hz(rounded) - glide).cumsum(-1).abs().max()) > 5 * float(drift)
    assert torch.equal(pitch.quantize(ch_q), ch_q)  # idempotent: decode may re-snap


# ---- losses ------------------------------------------------------------------------------------------
def test_reconstruction_losses_keys_and_zero_for_identical():
    loss = ReconstructionLoss()
    x = torch.randn(2, 8192) * 0.1
    same = loss(x, x)
    assert set(same) == {"mel/l1", "stft/mr", "stft/complex"}
    assert all(float(v) < 1e-6 for v in same.values())
    diff = loss(x + 0.05 * torch.randn_like(x), x)
    assert all(float(v) > 1e-3 for v in diff.values())


def test_phase_losses_zero_for_true_phase_and_wrap_invariant():
    x = torch.randn(2, 8192) * 0.1
    phase = torch.angle(torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True))
    loss = PhaseLoss(1024, 256)
    assert set(loss(phase, x)) == {"phase/ip", "phase/gd", "phase/iaf"}
    assert all(float(v) < 1e-5 for v in loss(phase + 2 * math.pi, x).values())
    assert all(float(v) > 0.5 for v in loss(torch.zeros_like(phase), x).values())


def test_adversarial_losses_and_weights():
    disc = MultiDiscriminator(periods=(2, 3), period_channels=(4, 8), resolutions=((512, 128),), resolution_channels=4)
    x = torch.randn(2, 8192) * 0.1
    logits, feats = disc(x)
    assert len(logits) == len(feats) == 3
    for kind in ("hinge", "lsgan"):
        assert set(discriminator_loss(logits, logits, kind)) == {"adv/disc"}
    # hand-made logits of two sub-discriminators: real ones at 2 and 0.5, fake ones at -2 and 0.5
    real, fake = [torch.full((1, 4), 2.0), torch.full((1, 3), 0.5)], [torch.full((1, 4), -2.0), torch.full((1, 3), 0.5)]
    # hinge: D pays relu(1 - r) + relu(1 + f): (0 + 0) and (0.5 + 1.5); G pays relu(1 - f): 3 and 0.5
    assert float(discriminator_loss(real, fake, "hinge")["adv/disc"]) == pytest.approx((0 + 2.0) / 2)
    assert float(generator_adv_loss(fake, "hinge")) == pytest.approx((3 + 0.5) / 2)
    # lsgan: D pays (1 - r)^2 + f^2: (1 + 4) and (0.25 + 0.25); G pays (1 - f)^2: 9 and 0.25
    assert float(discriminator_loss(real, fake, "lsgan")["adv/disc"]) == pytest.approx((5 + 0.5) / 2)
    assert float(generator_adv_loss(fake, "lsgan")) == pytest.approx((9 + 0.25) / 2)
    assert float(feature_matching_loss(feats, feats)) == 0.0
    total = weighted_sum({"mel/l1": torch.tensor(2.0), "kl": torch.tensor(3.0)}, {"mel/l1": 1.0, "kl": 0.5})
    assert float(total) == pytest.approx(3.5)
    with pytest.raises(KeyError, match="fm/l1"):
        weighted_sum({"fm/l1": torch.tensor(1.0)}, {"mel/l1": 1.0})


def test_recipe_configs_build():
    for name in ("stage1", "stage1_plain", "stage1_rvq", "stage1_fsq", "stage1_mel", "stage1_smoke"):
        cfg = load_config(CONF / f"{name}.yaml")
        codec = build_codec(cfg["model"])
        assert 50 <= codec.frame_rate <= 100
        assert set(cfg["loss_weights"]) >= {"mel/l1", "stft/mr", "kl", "vq/commit", "adv/gen", "fm/l1", "adv/disc"}


def test_model_sections_refuse_options_their_modules_do_not_take():
    """A misspelt option was once taken and dropped (``num_layer: 12`` built the default 8 layers; the mel encoder
    took no option at all): now a ConfigError names the section, the option and those the module takes."""
    from shared.config import ConfigError

    vocos = {"kind": "vocos", "dim": 16, "intermediate_dim": 32}
    hifi = {"kind": "hifigan", "upsample_rates": [8, 8, 4], "upsample_initial_channel": 16}
    cases = [({"decoder": {**vocos, "num_layer": 12}},
              r"model.decoder: unknown option\(s\) num_layer for VocosDecoder; its options are .*num_layers"),
             ({"decoder": {**hifi, "upsample_rate": [8, 8, 4]}}, r"upsample_rate for HiFiGANDecoder"),
             ({"decoder": {**hifi, "n_fft": 512}}, r"n_fft for HiFiGANDecoder"),
             ({"decoder": {**vocos, "hop_length": 128}},
              r"hop_length for VocosDecoder.*\(hop_length: set at the top of the model section\)"),
             ({"encoder": {"kind": "mel", "dim": 16}}, r"model.encoder: unknown option\(s\) dim for MelEncoder; its options are n_mels"),
             ({"encoder": {"kind": "convnext", "num_layer": 2}}, r"num_layer for SpectralEncoder"),
             ({"bottleneck": {"kind": "gaussian", "logvar_mn": -5}}, r"model.bottleneck: unknown option\(s\) logvar_mn"),
             ({"pitch": {"f0min": 60}}, r"model.pitch: unknown option\(s\) f0min for PitchChannel"),
             ({"n_ftt": 2048}, r"model: unknown key\(s\) n_ftt; the keys are sample_rate, hop_length, n_fft"),
             # a latent of the pitch channels alone was built, with no learned channel
             ({"latent_dim": 3, "pitch": {"phase": True}},
              r"model.latent_dim 3: the pitch channels take 3 of them, which leaves 0 learned channel\(s\); give latent_dim 4")]
    for change, message in cases:
        with pytest.raises(ConfigError, match=message):
            build_codec({**tiny_model_cfg({"kind": "gaussian"}), **change})
    with pytest.raises(TypeError, match="num_layer"):
        VocosDecoder(8, num_layer=12)
    mel = {**tiny_model_cfg({"kind": "identity"}), "encoder": {"kind": "mel", "n_mels": 8}}
    assert build_codec(mel).encode(torch.randn(1, 2048) * 0.1).shape[1] == 8  # n_mels: what latent_dim says...
    with pytest.raises(ValueError, match="encoder.n_mels 80: the mel codec's latent channels are its mel bands, 8 here"):
        build_codec({**mel, "encoder": {"kind": "mel", "n_mels": 80}})  # ...or an error, not 8 bands silently


def test_an_exported_codec_loads_with_options_older_code_ignored(tmp_path, capsys):
    """Loading is not training: an exported codec whose config.yaml holds an option the code used to ignore (its
    decoder took **kwargs) loads as it was trained, with a warning, rather than becoming unloadable."""
    from shared.config import save_config
    from shared.io import MODEL_FILE

    cfg = tiny_model_cfg({"kind": "gaussian"})
    torch.save(build_codec(cfg).state_dict(), tmp_path / MODEL_FILE)
    save_config({"model": {**cfg, "decoder": {**cfg["decoder"], "num_layer": 12}}}, tmp_path / "config.yaml")
    assert load_codec(tmp_path).latent_dim == cfg["latent_dim"]
    assert "num_layer for VocosDecoder" in capsys.readouterr().err
    save_config({"model": {**cfg, "n_ftt": 2048}}, tmp_path / "config.yaml")  # a top-level key, likewise
    assert load_codec(tmp_path).latent_dim == cfg["latent_dim"]
    assert "model: unknown key(s) n_ftt" in capsys.readouterr().err


def test_pitch_channels_stay_float32_in_bf16_training():
    """Under bf16 autocast the identity bottleneck's latent is bf16 (the mel encoder's matmul), and the pitch channels
    concatenated to it were rounded to bf16 with it (tens of cents of F0, and the phase origin), in training only."""
    cfg = {**tiny_model_cfg({"kind": "identity"}), "latent_dim": 11, "encoder": {"kind": "mel"},
           "pitch": {"f0_min": 50, "f0_max": 500, "phase": True}}
    codec = build_codec(cfg).train()
    wav = (0.3 * torch.sin(2 * math.pi * 123.4 * torch.arange(40 * 256) / 16000))[None]
    pitch = codec.pitch(wav)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        # what made the latent bf16, until the mel itself stayed float32 (shared.features.MelSpectrogram)
        assert codec.encoder(wav).dtype == torch.float32
        _, z, _ = codec(wav, pitch=pitch)
    assert z.dtype == torch.float32 and torch.equal(z[:, :3], pitch)


def test_a_nan_validation_resynthesis_writes_no_sample_and_does_not_stop_training(tmp_path, capsys):
    """save_audio refuses NaN audio: the validation's samples would have ended (or, under DDP, hung) the training."""
    from types import SimpleNamespace

    from stage1_vae.validation import Validator

    class NaNCodec:
        def encode(self, wav):
            return wav[:, None]

        def decode(self, z, encoded=True):
            return torch.full_like(z[:, 0], float("nan"))

    module = SimpleNamespace(trainer=SimpleNamespace(world_size=1), global_rank=0, global_step=7,
                             inference_codec=lambda: NaNCodec())
    batch = {"wav": torch.randn(1, 8000) * 0.1, "wav_lengths": torch.tensor([8000]), "utt": ["u1"]}
    Validator(16000, tmp_path, num_samples=1, metrics=False).step(module, batch, 0)
    assert "validation step 7: the resynthesis of u1 holds NaN" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.wav"))


def test_hifigan_waveform_is_float32_under_autocast():
    """Its last convolution ran in bfloat16 under autocast, so the training waveform had 8-bit mantissas."""
    from stage1_vae.decoders import HiFiGANDecoder

    dec = HiFiGANDecoder(8, 256, upsample_rates=(8, 8, 4), upsample_initial_channel=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert dec(torch.randn(1, 8, 5)).dtype == torch.float32


def tiny_experiment_cfg(bottleneck: dict | None = None, decoder: dict | None = None, **train) -> dict:
    """A stage-one training config of :func:`tiny_model_cfg`'s model, without the adversarial losses."""
    return {"model": tiny_model_cfg(bottleneck or {"kind": "gaussian"}, decoder=decoder),
            "loss_weights": {"mel/l1": 1.0, "stft/mr": 1.0, "kl": 0.001, "vq/commit": 1.0},
            "train": {"seed": 0, "lr": 1e-3, "warmup_steps": 1, "total_steps": 4, "grad_clip": 1.0, **train}}


def test_misspelt_loss_weights_and_train_keys_are_config_errors():
    """Both sections are read key by key with defaults: ``mel/L1`` once turned the mel loss off, and a train key of
    stage two's spelling did nothing."""
    from shared.config import ConfigError
    from stage1_vae.experiment import Stage1Experiment

    cfg = tiny_experiment_cfg()
    cfg["loss_weights"]["mel/L1"] = cfg["loss_weights"].pop("mel/l1")
    with pytest.raises(ConfigError, match=r"loss_weights: unknown key\(s\) mel/L1; the keys are mel/l1, stft/mr"):
        Stage1Experiment(cfg)
    with pytest.raises(ConfigError, match=r"train: unknown key\(s\) lr_min_ratio, lr_sched; the keys are seed, .*"
                                          r"\(lr_min_ratio is stage two's name for min_lr_ratio\)"):
        Stage1Experiment(tiny_experiment_cfg(lr_min_ratio=0.1, lr_sched="cosine"))
    # so are a misspelt section, validation key and adversarial loss (the last one found only when D started)
    with pytest.raises(ConfigError, match=r"stage one config: unknown section\(s\) discriminators; the sections are model, "):
        Stage1Experiment({**tiny_experiment_cfg(), "discriminators": {"periods": [2]}})
    with pytest.raises(ConfigError, match=r"validation: unknown key\(s\) num_utt; the keys are num_utts, num_samples"):
        Stage1Experiment({**tiny_experiment_cfg(), "validation": {"num_utt": 3}})
    with pytest.raises(ConfigError, match=r"train.adv_loss: 'lsgan_typo' is not one of hinge, lsgan"):
        Stage1Experiment(tiny_experiment_cfg(adv_loss="lsgan_typo"))
    # as is an empty section (YAML's null), which failed later with an AttributeError or a TypeError
    for section in ("train", "discriminator", "validation"):
        with pytest.raises(ConfigError, match=f"stage one config: '{section}' must be a section of keys, not None"):
            Stage1Experiment({**tiny_experiment_cfg(), section: None})


def test_every_shipped_stage1_config_passes_the_checks():
    from stage1_vae.experiment import check_config
    from stage1_vae.train import finetune_config

    egs = ROOT / "egs"
    for path in sorted(egs.glob("*/tts1/conf/stage1*.yaml")):
        check_config(load_config(path))
    for path in sorted(egs.glob("*/tts1/conf/decoder_gta*.yaml")):  # over the codec config its recipe trains
        codec = load_config(path.parent / ("stage1_smoke.yaml" if "smoke" in path.name else "stage1.yaml"))
        cfg = finetune_config(path, codec)
        check_config({**cfg, "train": {**cfg["train"], "decoder_only": True}})


def test_the_rvq_dead_code_threshold_is_the_ratio_the_library_reads():
    """vector-quantize-pytorch 1.34 reads the old threshold_ema_dead_code (an EMA use per batch, 2 in DAC and EnCodec)
    as a fraction of the mean use, 2 as 0.002: the recipe's RVQ config says what it means, and the old key is
    refused in a training config."""
    from shared.config import ConfigError
    from stage1_vae.experiment import Stage1Experiment, check_config

    cfg = load_config(ROOT / "egs" / "espeak_mini" / "tts1" / "conf" / "stage1_rvq.yaml")
    rvq = {**cfg["model"]["bottleneck"], "num_quantizers": 2, "codebook_size": 16}
    module = Stage1Experiment(tiny_experiment_cfg(rvq))
    assert [layer._codebook.dead_code_threshold_ratio for layer in module.codec.bottleneck.rvq.layers] == [0.1, 0.1]
    old = {k: v for k, v in cfg["model"]["bottleneck"].items() if k != "dead_code_threshold_ratio"}
    with pytest.raises(ConfigError, match="model.bottleneck.threshold_ema_dead_code: vector-quantize-pytorch 1.34 no "
                                          "longer reads it .* give dead_code_threshold_ratio"):
        check_config({**cfg, "model": {**cfg["model"], "bottleneck": {**old, "threshold_ema_dead_code": 2}}})


def test_phase_losses_with_a_decoder_without_phase_are_announced(capsys):
    """The HiFi-GAN generator has no iSTFT phase: weighted phase losses were skipped without a word."""
    from stage1_vae.experiment import Stage1Experiment

    hifi = {"kind": "hifigan", "upsample_rates": [8, 8, 4], "upsample_initial_channel": 16}
    cfg = tiny_experiment_cfg(decoder=hifi)
    cfg["loss_weights"].update({"phase/ip": 1.0, "phase/gd": 0.0, "phase/iaf": 0.5})
    module = Stage1Experiment(cfg)
    assert not module.use_phase and module.phase_loss is None
    err = capsys.readouterr().err
    assert "warning: loss_weights phase/ip, phase/iaf: the hifigan decoder has no iSTFT phase" in err
    cfg["loss_weights"].update({"phase/ip": 0.0, "phase/iaf": 0.0})
    Stage1Experiment(cfg)
    assert "warning" not in capsys.readouterr().err


def _codebook_sync_rank(rank: int, init_file: str, out: str) -> None:
    """One of two gloo processes: an RVQ experiment built before the process group exists (as stage1_vae.train
    builds it, Lightning starting the group in fit), its EMA codebooks trained on this rank's own batches."""
    torch.set_num_threads(1)
    from stage1_vae.experiment import Stage1Experiment

    torch.manual_seed(0)  # every rank starts from the same codebooks, as stage1_vae.train's seed_everything gives them
    module = Stage1Experiment(tiny_experiment_cfg({"kind": "rvq", "num_quantizers": 2, "codebook_size": 16, "decay": 0.8,
                                                   "dead_code_threshold_ratio": 0.5}))
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        module.setup("fit")
        bottleneck = module.codec.bottleneck.train()
        torch.manual_seed(rank)
        for _ in range(3):  # dead codes too (dead_code_threshold_ratio): replaced from every rank's vectors
            bottleneck(torch.randn(2, 8, 50) + 3 * rank)
        state = {k: v.contiguous() for k, v in bottleneck.state_dict().items()}
        gathered = {}
        for k, v in state.items():
            parts = [torch.zeros_like(v) for _ in range(2)]
            torch.distributed.all_gather(parts, v)
            gathered[k] = parts
        if rank == 0:
            torch.save(gathered, out)
    finally:
        torch.distributed.destroy_process_group()


def test_rvq_codebooks_are_synchronised_across_ddp_processes(tmp_path):
    """vector_quantize_pytorch syncs its EMA codebooks only if the process group exists when it is built; stage one
    builds its codec before, so each rank's codebooks learnt from its own batches (and DDP then gave all rank 0's)."""
    import torch.multiprocessing as mp

    mp.spawn(_codebook_sync_rank, args=(str(tmp_path / "pg"), str(tmp_path / "state.pt")), nprocs=2)
    gathered = torch.load(tmp_path / "state.pt")
    assert any("embed" in k for k in gathered)
    for k, (a, b) in gathered.items():
        assert torch.equal(a, b), k


def test_rvq_codebooks_are_not_synchronised_when_the_config_says_not_to():
    """``sync_codebook: false`` was overridden: the sync was set up under DDP whatever the config said."""
    from stage1_vae.bottlenecks import RVQBottleneck

    for setting, synced in ((None, True), (True, True), (False, False)):
        kwargs = {} if setting is None else {"sync_codebook": setting}
        rvq = RVQBottleneck(8, 2, 16, **kwargs)
        if not setting:  # built before any process group: not synced yet
            assert not any(layer._codebook.use_ddp for layer in rvq.rvq.layers)
        rvq.sync_codebooks()
        assert all(layer._codebook.use_ddp == synced for layer in rvq.rvq.layers), setting


def test_export_writes_the_model_last(tmp_path, monkeypatch):
    """model.pt marks a finished run: written before params.json and train_summary.json, a run killed between them
    was taken as finished without them."""
    from stage1_vae import train as stage1_train
    from stage1_vae.experiment import Stage1Experiment

    written = []
    for name, path_arg in (("write_json", 0), ("save_config", 1), ("atomic_save_torch", 1)):
        real = getattr(stage1_train, name)
        monkeypatch.setattr(stage1_train, name, lambda *a, real=real, i=path_arg: written.append(Path(a[i]).name) or real(*a))
    cfg = tiny_experiment_cfg()
    stage1_train.export(Stage1Experiment(cfg), cfg, tmp_path, {"steps": 0})
    assert written[-1] == "model.pt" and set(written[:-1]) == {"params.json", "train_summary.json", "config.yaml"}
    assert load_codec(tmp_path).latent_dim == 8


def test_a_non_finite_loss_stops_training_before_the_weights_take_it(tmp_path):
    """NaN audio (or a diverging run) once trained on and exported an all-NaN model with exit status 0: the step whose
    loss is not finite now stops the run, its checkpoints and weights those of the step before."""
    from shared.training import build_trainer
    from stage1_vae.experiment import Stage1Experiment

    torch.manual_seed(0)
    good = torch.randn(2, 16 * 256) * 0.1
    bad = good.clone()
    bad[1, 100] = float("nan")
    module = Stage1Experiment({**tiny_experiment_cfg(), "data": {"train": "data/train"}}, tmp_path)
    trainer = build_trainer({"accelerator": "cpu", "devices": 1, "max_steps": 3, "checkpoint_every_n_steps": 1,
                             "limit_val_batches": 0}, tmp_path)
    loader = torch.utils.data.DataLoader([good, bad, good], batch_size=None)
    stopped = (r"step 1: the training loss is nan \(.*mel/l1.* not finite\); the input audio of item\(s\) 1 of the batch "
               r"hold\(s\) NaN or infinite values \(`python -m shared.datadir validate --check-audio data/train`")
    with pytest.raises(FloatingPointError, match=stopped):
        trainer.fit(module, loader)
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    assert all(torch.isfinite(p).all() for p in module.codec.parameters())


def test_a_non_finite_gradient_under_a_finite_loss_stops_training_too(tmp_path):
    """An overflow in the backward pass (bf16/fp16) leaves the loss finite and the gradients not: the clipped norm is
    checked with the loss, in the same one reduction per step."""
    from shared.training import build_trainer
    from stage1_vae.experiment import Stage1Experiment

    torch.manual_seed(0)
    module = Stage1Experiment({**tiny_experiment_cfg(), "data": {"train": "data/train"}}, tmp_path)
    trainer = build_trainer({"accelerator": "cpu", "devices": 1, "max_steps": 3, "checkpoint_every_n_steps": 1,
                             "limit_val_batches": 0}, tmp_path)
    calls = []
    weight = next(p for p in module.codec.parameters() if p.requires_grad)
    weight.register_hook(lambda g: g * float("inf") if calls.append(1) or len(calls) == 2 else g)  # step 1's backward
    with pytest.raises(FloatingPointError, match=r"step 1: the training loss is finite but its gradient norm is (nan|inf)"):
        trainer.fit(module, torch.utils.data.DataLoader([torch.randn(2, 16 * 256) * 0.1] * 3, batch_size=None))
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"] == 1
    assert all(torch.isfinite(p).all() for p in module.codec.parameters())


# ---- entry points on a generated corpus ---------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stage1_corpus")
    write_data_dir(root / "train", {f"spk{i % 2}_tr{i}": (f"spk{i % 2}", f"tone {i}", 1.0) for i in range(6)})
    write_data_dir(root / "dev", {f"spk{i}_dv{i}": (f"spk{i}", f"tone {i}", 1.0) for i in range(2)})
    return root


def run_module(module: str, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=full_env, capture_output=True, text=True,
                          timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def train(corpus: Path, exp: Path, *overrides: str, config: Path = SMOKE, env: dict | None = None, check: bool = True):
    return run_module("stage1_vae.train", "--config", str(config), "--data-dir", str(corpus / "train"),
                      "--dev-dir", str(corpus / "dev"), "--exp-dir", str(exp), "train.num_threads=1", *overrides,
                      env=env, check=check)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> Path:
    exp = tmp_path_factory.mktemp("stage1_exp") / "vae"
    train(corpus, exp)
    return exp


@pytest.mark.slow
def test_train_smoke_writes_self_describing_exp_dir(trained, corpus):
    for name in ("config.yaml", "model.pt", "params.json", "train_summary.json", "checkpoints/last.ckpt"):
        assert (trained / name).is_file(), name
    assert read_json(trained / "train_summary.json")["steps"] == 6
    assert read_json(trained / "params.json")["total"] > 0
    samples = list((trained / "samples").rglob("*_rec.wav")) and list((trained / "samples").rglob("*.png"))
    assert samples
    assert "step" in (trained / "logs" / "metrics.csv").read_text().splitlines()[0]
    assert "already finished" in train(corpus, trained).stdout  # a finished experiment is a no-op
    # ...of its own config: another one's was "already finished" too, and a recipe took the codec for that config's
    other = train(corpus, trained, "train.warmup_steps=3", check=False)
    assert other.returncode != 0 and "holds a trained model.pt trained with another config than this run's" in other.stderr
    assert "train.warmup_steps: 2 -> 3" in other.stderr and "already finished" not in other.stdout


@pytest.mark.slow
def test_encode_decode_round_trip_and_load_codec(trained, corpus, tmp_path):
    dump = tmp_path / "dump" / "train"
    stats = tmp_path / "latent_stats.json"
    run_module("stage1_vae.encode", "--exp-dir", str(trained), "--data-dir", str(corpus / "train"),
               "--out-dir", str(dump), "--stats-out", str(stats))
    scp, frames = read_latent_scp(dump), read_kv(dump / "utt2frames")
    codec = load_codec(trained)
    assert len(scp) == 6 and set(scp) == set(frames)
    z = torch.load(next(iter(scp.values())))
    assert z.shape == (codec.latent_dim, int(next(iter(frames.values()))))
    assert z.shape[1] == math.ceil(16000 / codec.hop_length) + 1
    st = read_json(stats)
    assert len(st["mean"]) == len(st["std"]) == codec.latent_dim and st["num_frames"] == 6 * z.shape[1]
    # resynthesis data dir + metrics, and decoding the dumped latents
    out = tmp_path / "resynth"
    run_module("stage1_vae.decode", "--exp-dir", str(trained), "--data-dir", str(corpus / "dev"), "--out-dir", str(out),
               "--metrics-out", str(out / "metrics.json"))
    wavs = read_kv(out / "wav.scp")
    assert len(wavs) == 2 and (out / "utt2spk").is_file() and (out / "text").is_file()
    assert sf.info(next(iter(wavs.values()))).frames == 16000
    assert set(read_json(out / "metrics.json")["mean"]) >= {"pesq_wb", "stoi", "mel_distance"}
    out2 = tmp_path / "from_latents"
    run_module("stage1_vae.decode", "--exp-dir", str(trained), "--latents-dir", str(dump), "--out-dir", str(out2))
    assert len(read_kv(out2 / "wav.scp")) == 6
    # the codec interface in process
    wav = torch.randn(2, 5000) * 0.1
    assert codec.decode(codec.encode(wav)).shape[-1] >= 5000


@pytest.mark.slow
def test_interrupted_encoding_resumes_with_the_same_codec_only(trained, corpus, tmp_path, monkeypatch):
    from shared.datadir import DataDir
    from shared.io import write_json
    from stage1_vae import encode

    dump, stats = tmp_path / "dump", tmp_path / "stats.json"
    args = ["--exp-dir", str(trained), "--data-dir", str(corpus / "train"), "--out-dir", str(dump), "--stats-out", str(stats)]
    assert encode.main(args) == 0
    full, full_stats = {u: torch.load(p) for u, p in read_latent_scp(dump).items()}, read_json(stats)
    assert not (dump / "encoding.json").exists()  # only an unfinished dump has one

    def interrupted_run() -> dict[str, int]:  # dies reading the 4th utterance's audio; -> mtimes of what it saved
        for name in ("latents.scp", "utt2frames", "codec.json"):
            (dump / name).unlink()
        stats.unlink()
        for f in (dump / "latents").iterdir():
            f.unlink()
        load, calls = DataDir.load_audio, []

        def dying(self, utt, sr):
            calls.append(utt)
            if len(calls) == 4:
                raise KeyboardInterrupt
            return load(self, utt, sr)

        with monkeypatch.context() as m:
            m.setattr(DataDir, "load_audio", dying)
            with pytest.raises(KeyboardInterrupt):
                encode.main(args)
        assert not (dump / "latents.scp").exists() and (dump / "encoding.json").is_file()
        return {f.stem: f.stat().st_mtime_ns for f in (dump / "latents").iterdir()}

    saved = interrupted_run()
    assert len(saved) == 3
    assert encode.main(args) == 0  # the same codec: resumes
    assert {u: (dump / "latents" / f"{u}.pt").stat().st_mtime_ns for u in saved} == saved  # kept, not rewritten
    assert {u: torch.load(p) for u, p in read_latent_scp(dump).items()}.keys() == full.keys()
    for u, p in read_latent_scp(dump).items():
        assert torch.allclose(torch.load(p), full[u], atol=1e-6), u
    assert read_kv(dump / "utt2frames") == {u: str(z.shape[1]) for u, z in full.items()}
    assert read_json(stats)["mean"] == pytest.approx(full_stats["mean"], abs=1e-6)
    assert not (dump / "encoding.json").exists()

    saved = interrupted_run()  # ...and a partial dump another codec wrote is redone, not mixed in
    state = read_json(dump / "encoding.json")
    write_json(dump / "encoding.json", {**state, "model.pt_sha256": "0" * 64})
    assert encode.main(args) == 0
    assert all((dump / "latents" / f"{u}.pt").stat().st_mtime_ns != t for u, t in saved.items())
    assert len(read_latent_scp(dump)) == len(full)


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [
    4,  # mid-epoch (3 batches per epoch here)
    3,  # right at an epoch boundary
])
def test_resume_after_kill_is_exact(trained, corpus, tmp_path, kill_at):
    """Kill a run hard when step ``kill_at`` begins, rerun, and compare with the uninterrupted ``trained`` run."""
    cut = tmp_path / "cut"
    every = "trainer.checkpoint_every_n_steps=1"  # checkpoint frequency does not change the trajectory
    proc = train(corpus, cut, every, env={"FLOWTTS_KILL_AT_STEP": str(kill_at)}, check=False)
    assert proc.returncode == 3 and not (cut / "model.pt").exists()
    assert (cut / "checkpoints" / "last.ckpt").is_file()
    assert "resuming from" in train(corpus, cut, every).stdout
    a, b = torch.load(trained / "model.pt"), torch.load(cut / "model.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.slow
def test_a_run_killed_while_exporting_resumes_at_its_last_step(corpus, tmp_path):
    """last.ckpt of a 5-step run checkpointing every 3 steps was step 3's: a run killed after training, before its
    model.pt, trained steps 3 and 4 again when rerun. Its last step is saved too now (shared.training.StepCheckpoint)."""
    exp = tmp_path / "vae"
    over = ("trainer.max_steps=5", "validation.num_utts=0")
    train(corpus, exp, *over)
    assert torch.load(exp / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 5
    model = torch.load(exp / "model.pt")
    (exp / "model.pt").unlink()  # as if killed as it exported
    assert "resuming from" in train(corpus, exp, *over).stdout
    assert read_json(exp / "train_summary.json")["steps_this_run"] == 0
    again = torch.load(exp / "model.pt")
    assert all(torch.equal(model[k], again[k]) for k in model)


@pytest.mark.slow
def test_resume_refuses_another_config_and_keeps_the_saved_one(corpus, tmp_path):
    """A rerun over a checkpoint once resumed it whatever the config or data said, after writing them into config.yaml
    (another architecture then failed on the checkpoint's weights). Only the budget, placement, logging and
    validation may change; anything else is refused by name, before config.yaml is touched."""
    exp = tmp_path / "cut"
    proc = train(corpus, exp, env={"FLOWTTS_KILL_AT_STEP": "4"}, check=False)
    assert proc.returncode == 3 and (exp / "checkpoints" / "last.ckpt").is_file() and not (exp / "model.pt").exists()
    saved = (exp / "config.yaml").read_bytes()
    proc = run_module("stage1_vae.train", "--config", str(SMOKE), "--data-dir", str(corpus / "dev"), "--dev-dir",
                      str(corpus / "dev"), "--exp-dir", str(exp), "train.num_threads=1", "loss_weights.mel/l1=2.0",
                      "model.decoder.num_layers=2", "train.lr=0.002", check=False)
    assert proc.returncode == 1 and "resuming from" not in proc.stdout
    for change in (f"data.train: '{corpus / 'train'}' -> '{corpus / 'dev'}'", "loss_weights.mel/l1: 1.0 -> 2.0",
                   "model.decoder.num_layers: 1 -> 2", "train.lr: 0.001 -> 0.002", "in 4 key(s)", "--overwrite"):
        assert change in proc.stderr, (change, proc.stderr[-2000:])
    assert (exp / "config.yaml").read_bytes() == saved
    proc = train(corpus, exp, "trainer.max_steps=7", "train.print_every=1", "validation.num_utts=0")  # a longer budget
    assert "resuming from" in proc.stdout and read_json(exp / "train_summary.json")["steps"] == 7
    assert load_config(exp / "config.yaml")["trainer"]["max_steps"] == 7


@pytest.mark.slow
def test_overwrite_does_not_delete_the_codec_it_starts_from(trained, corpus, tmp_path):
    exp = tmp_path / "vae"
    shutil.copytree(trained, exp)
    proc = run_module("stage1_vae.train", "--config", str(SMOKE), "--data-dir", str(corpus / "train"), "--exp-dir", str(exp),
                      "--init-from", str(exp), "--overwrite", check=False)
    assert proc.returncode == 2 and "--overwrite would delete the codec --init-from" in proc.stderr
    assert (exp / "model.pt").is_file() and (exp / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.slow
def test_non_finite_audio_fails_the_training_and_exports_nothing(corpus, tmp_path):
    """A float wav with NaN samples once trained an all-NaN model, exported with exit status 0. Such audio is refused
    where it is read (shared.audio.read_audio), naming the file; a loss gone NaN otherwise: see above."""
    data = tmp_path / "train"
    shutil.copytree(corpus / "train", data)
    for line in (data / "wav.scp").read_text().splitlines():  # every file: the first step is sure to read one
        utt, path = line.split()
        copy = data / "wav" / f"{utt}_nan.wav"
        wav, sr = sf.read(path, dtype="float32")
        wav[::500] = float("nan")  # in every training crop
        sf.write(copy, wav, sr, subtype="FLOAT")
        (data / "wav.scp").write_text((data / "wav.scp").read_text().replace(f"{path}\n", f"{copy}\n"))
    exp = tmp_path / "nan"
    proc = run_module("stage1_vae.train", "--config", str(SMOKE), "--data-dir", str(data), "--exp-dir", str(exp),
                      "train.num_threads=1", "validation.num_utts=0", check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert re.search(r"spk\w+_nan\.wav: \d+ of \d+ samples are NaN or infinite", proc.stderr), proc.stderr[-2000:]
    assert not (exp / "model.pt").exists() and not (exp / "train_summary.json").exists()


def test_a_non_finite_codec_is_not_exported(corpus, tmp_path, monkeypatch, capsys):
    """Stage two refused to export NaN weights; stage one exported them (an update with train.grad_clip 0, whose
    gradient norm nothing computes, can make them so under a finite loss)."""
    from stage1_vae import train as stage1_train
    from stage1_vae.experiment import Stage1Experiment

    real = Stage1Experiment.inference_codec

    def nan_codec(self):
        codec = real(self)
        for p in codec.parameters():
            p.data.fill_(float("nan"))
        return codec
    monkeypatch.setattr(Stage1Experiment, "inference_codec", nan_codec)
    exp = tmp_path / "nan"
    assert stage1_train.main(["--config", str(SMOKE), "--data-dir", str(corpus / "train"), "--exp-dir", str(exp),
                              "train.num_threads=1", "validation.num_utts=0", "trainer.max_steps=2"]) == 1
    assert "weight tensors of the codec are not finite" in capsys.readouterr().err
    assert not (exp / "model.pt").exists() and not (exp / "train_summary.json").exists()


@pytest.mark.slow
def test_overwrite_retrains_from_step_zero(trained, corpus, tmp_path):
    """--overwrite on a finished run trains again (it once resumed the finished run's last checkpoint: 0 steps)."""
    exp = tmp_path / "again"
    shutil.copytree(trained, exp)
    out = run_module("stage1_vae.train", "--config", str(SMOKE), "--data-dir", str(corpus / "train"), "--exp-dir", str(exp),
                     "--overwrite", "train.num_threads=1", "trainer.max_steps=2").stdout
    assert "resuming from" not in out and "removed model.pt, train_summary.json, checkpoints" in out
    assert read_json(exp / "train_summary.json")["steps_this_run"] == 2


@pytest.mark.slow
def test_init_from_loads_the_generator_and_checks_the_model(trained, corpus, tmp_path):
    def finetune(exp, *overrides, check=True):
        return run_module("stage1_vae.train", "--config", str(SMOKE), "--data-dir", str(corpus / "train"),
                          "--exp-dir", str(exp), "--init-from", str(trained), "train.num_threads=1",
                          "trainer.max_steps=1", "validation.num_utts=0", *overrides, check=check)

    assert "generator initialised" in finetune(tmp_path / "ft", "train.lr=0.0").stdout
    a, b = torch.load(trained / "model.pt"), torch.load(tmp_path / "ft" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)  # lr 0: one step leaves the loaded weights as they were
    proc = finetune(tmp_path / "other", "model.latent_dim=4", check=False)
    assert proc.returncode != 0 and "model section differs" in proc.stderr and "latent_dim" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rvq", "mel", "hifigan"])
def test_train_variants_smoke(corpus, tmp_path, name):
    small_enc = ["model.latent_dim=8", "model.encoder={kind: convnext, dim: 16, intermediate_dim: 32, num_layers: 1}"]
    vocos = "model.decoder={kind: vocos, dim: 16, intermediate_dim: 32, num_layers: 1}"
    small = {"rvq": [*small_enc, vocos, "model.bottleneck.codebook_size=16", "model.bottleneck.num_quantizers=2"],
             "mel": [vocos],
             "hifigan": [*small_enc, "model.decoder={kind: hifigan, upsample_rates: [8, 8, 4], upsample_initial_channel: 16}"]}[name]
    config = CONF / f"stage1_{'' if name == 'hifigan' else name}.yaml".replace("_.", ".")
    train(corpus, tmp_path / name, *small, "trainer.max_steps=2",
          "train.batch_size=2", "train.segment_seconds=0.32", "trainer.val_check_interval=2", "validation.metrics=false",
          "validation.num_utts=1", "trainer.checkpoint_every_n_steps=2", config=config)
    codec = load_codec(tmp_path / name)
    assert codec.encode(torch.randn(1, 4096) * 0.1).shape[1] == codec.latent_dim


@pytest.mark.slow
def test_train_in_bf16_mixed_precision_with_clipping(corpus, tmp_path):
    # What `precision: auto` picks on a CPU with native bf16: autocast, a fused AdamW and gradient clipping of both
    # G and D (the discriminator is on from step 0) must work together.
    exp = tmp_path / "bf16"
    train(corpus, exp, "trainer.precision=bf16-mixed", "trainer.max_steps=2", "train.disc_start_step=0",
          "train.grad_clip=0.5", "validation.num_utts=0")
    assert read_json(exp / "train_summary.json")["steps"] == 2


@pytest.mark.slow
def test_the_discriminators_schedule_follows_the_generators_steps(corpus, tmp_path):
    """The discriminator's LR is the generator's schedule at the same step, times disc_lr / lr, from its first step
    on: it once had a schedule of its own, stepped only while it trained, so a discriminator started at step N took its
    first step at the LR of warm-up step 1, and warmed up and decayed on its own count, far above the generator's floor
    at the end; and ``train/lr`` is the LR the step used."""
    import csv

    exp = tmp_path / "disc"
    train(corpus, exp, "train.disc_start_step=3", "trainer.max_steps=5", "train.total_steps=5", "train.warmup_steps=2",
          "+train.disc_lr=0.0005", "validation.num_utts=0")
    with open(exp / "logs" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/lr")]
    lr_g = {int(r["step"]): float(r["train/lr"]) for r in rows}
    lr_d = {int(r["step"]): float(r["train/lr_disc"]) for r in rows if r.get("train/lr_disc")}
    assert lr_g[0] == pytest.approx(0.001 / 2)  # the first warm-up step's: (0 + 1) / warmup_steps of train.lr
    assert sorted(lr_d) == [3, 4]  # D trained at steps 3 and 4
    assert lr_g[3] > lr_g[4] > 0  # past warm-up, decaying
    for step in (3, 4):
        assert lr_d[step] == pytest.approx(0.5 * lr_g[step])  # disc_lr / lr: one schedule, on the generator's steps
    ckpt = torch.load(exp / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["optimizer_states"][1]["param_groups"][0]["lr"] == pytest.approx(lr_d[4])  # what its last step used


@pytest.mark.slow
def test_ddp_two_cpu_processes_gloo(corpus, tmp_path):
    """Two processes train; they share the validation (each its dev utterances) and report its mean over all. The LR
    decays over trainer.max_time (the recipe's horizon; the step horizon made too long to matter): the replicas end
    equal, or the training refuses to export (shared.training.check_ranks_agree), as it did when each rank read its
    own clock."""
    exp = tmp_path / "ddp"
    proc = train(corpus, exp, "trainer.devices=2", "trainer.strategy=ddp_find_unused_parameters_true", "trainer.max_steps=4",
                 "train.disc_start_step=1", "validation.num_utts=2", "validation.num_samples=1", "trainer.val_check_interval=4",
                 "+trainer.max_time=00:00:10:00", "+train.lr_horizon=budget", "train.warmup_steps=1", "train.total_steps=10000")
    assert read_json(exp / "train_summary.json")["steps"] == 4
    assert load_codec(exp).latent_dim == 8
    assert "validation step 4 (2 utts) mel_distance=" in proc.stdout, proc.stdout[-2000:]
    assert len(list((exp / "samples" / "step_00000004").glob("*_rec.wav"))) == 1


def test_encodec_adapter_random_weights(tmp_path):
    pytest.importorskip("encodec")
    from stage1_vae.codec import write_adapter_exp_dir

    exp = write_adapter_exp_dir(tmp_path / "encodec", "encodec", None, random_init=True, bandwidth=6.0)
    codec = load_codec(exp)
    z = codec.encode(torch.randn(1, codec.sample_rate // 2) * 0.1)
    assert z.shape[:2] == (1, codec.latent_dim)
    assert codec.decode(z).shape == (1, z.shape[-1] * codec.hop_length)


def test_dac_adapter_random_weights(tmp_path):
    pytest.importorskip("dac")
    from stage1_vae.codec import write_adapter_exp_dir

    exp = write_adapter_exp_dir(tmp_path / "dac", "dac", None, random_init=True, sample_rate=16000,
                                encoder_rates=[2, 4, 5, 8], decoder_rates=[8, 5, 4, 2])
    codec = load_codec(exp)
    z = codec.encode(torch.randn(1, 8000) * 0.1)
    assert z.shape[:2] == (1, codec.latent_dim)
    assert codec.decode(z).shape[-1] == z.shape[-1] * codec.hop_length


def test_adapter_requires_local_weights(tmp_path):
    pytest.importorskip("encodec")
    from stage1_vae.codec import write_adapter_exp_dir

    with pytest.raises(ValueError, match="weights"):
        load_codec(write_adapter_exp_dir(tmp_path / "e", "encodec", None))


@pytest.mark.slow
def test_decoder_finetune_on_given_latents_trains_the_decoder_only(trained, corpus, tmp_path):
    from shared.io import write_kv

    dump = tmp_path / "gta"
    run_module("stage1_vae.encode", "--exp-dir", str(trained), "--data-dir", str(corpus / "train"), "--out-dir", str(dump))
    noisy = {}
    for utt, path in read_latent_scp(dump).items():  # stand-ins for stage two's output: perturbed latents
        z = torch.load(path)
        torch.save(z + 0.1 * torch.randn(z.shape, generator=torch.Generator().manual_seed(0)), path)
        noisy[utt] = path

    def finetune(exp, *extra, check=True):  # the smoke recipe's fine-tuning config: training settings only
        return run_module("stage1_vae.train", "--config", str(CONF / "decoder_gta_smoke.yaml"), "--data-dir", str(corpus / "train"),
                          "--exp-dir", str(exp), "train.num_threads=1", "trainer.max_steps=2", "validation.num_utts=0",
                          *extra, check=check)

    proc = finetune(tmp_path / "nope", "--decoder-latents", str(dump), check=False)
    assert proc.returncode != 0 and "--init-from" in proc.stderr
    clean = tmp_path / "clean"  # stage four's dump of the same audio: its pitch channels are read, not measured
    run_module("stage1_vae.encode", "--exp-dir", str(trained), "--data-dir", str(corpus / "train"), "--out-dir", str(clean))
    finetune(tmp_path / "ft_read", "--decoder-latents", str(dump), "--init-from", str(trained), "--pitch-latents", str(clean))
    proc = finetune(tmp_path / "ft_other", "--decoder-latents", str(dump), "--init-from", str(tmp_path / "ft_read"),
                    "--pitch-latents", str(clean), check=False)
    assert proc.returncode != 0 and "not by the --init-from codec" in proc.stderr
    proc = finetune(tmp_path / "ft_model", "--decoder-latents", str(dump), "--init-from", str(trained), "model.latent_dim=9",
                    check=False)  # the weights are the codec's: another model is refused, by name
    assert proc.returncode != 0 and "latent_dim" in proc.stderr
    finetune(tmp_path / "ft", "--decoder-latents", str(dump), "--init-from", str(trained))
    a, b = torch.load(trained / "model.pt"), torch.load(tmp_path / "ft" / "model.pt")
    changed = {k.split(".")[0] for k in a if not torch.equal(a[k], b[k])}
    assert changed == {"decoder"}, changed
    cfg = load_config(tmp_path / "ft" / "config.yaml")
    assert cfg["train"]["decoder_only"] is True and cfg["data"]["decoder_latents"] == str(dump)
    assert cfg["model"] == load_config(trained / "config.yaml")["model"]
    assert load_codec(tmp_path / "ft").decode(torch.stack([torch.load(p) for p in list(noisy.values())[:1]])).shape[-1] > 0


def test_finetune_config_is_the_codec_config_updated_by_the_finetuning_file(tmp_path):
    from shared.config import ConfigError
    from stage1_vae.train import finetune_config

    codec_cfg = {"model": {"latent_dim": 83, "encoder": {"kind": "mel"}}, "loss_weights": {"mel/l1": 2.0},
                 "train": {"lr": 2e-3, "batch_size": 16, "budget_scale": 3.0},  # trained with --budget-scale 3
                 "trainer": {"max_time": "00:00:24:00", "max_steps": 21000}, "data": {"train": "data/train"}}
    (tmp_path / "ft.yaml").write_text("train: {lr: 0.001}\ntrainer: {max_time: '00:00:03:00'}\n")
    cfg = finetune_config(tmp_path / "ft.yaml", codec_cfg, ["train.batch_size=8"])
    assert cfg["model"] == codec_cfg["model"] and cfg["loss_weights"] == {"mel/l1": 2.0}
    assert cfg["train"] == {"lr": 0.001, "batch_size": 8}  # the codec's budget scale is not this training's...
    assert cfg["trainer"] == {"max_time": "00:00:03:00", "max_steps": 7000} and "data" not in cfg  # ...nor its budget
    assert codec_cfg["train"]["budget_scale"] == 3.0 and codec_cfg["data"]  # the codec's config is left as it was
    with pytest.raises(ConfigError, match="train.nope"):
        finetune_config(tmp_path / "ft.yaml", codec_cfg, ["train.nope=1"])


def test_decode_given_reads_the_latents_without_training_the_quantiser():
    """Decoder fine-tuning runs in training mode; the RVQ's EMA codebooks must not learn from the given latents
    (the encoder and bottleneck are frozen), and the pitch channels come from the audio, not the latents."""
    torch.manual_seed(0)
    cfg = {"sample_rate": 16000, "hop_length": 256, "latent_dim": 8, "pitch": {"f0_min": 50, "f0_max": 500},
           "encoder": {"kind": "convnext", "dim": 16, "intermediate_dim": 32, "num_layers": 1},
           "bottleneck": {"kind": "rvq", "codebook_size": 16, "num_quantizers": 2},
           "decoder": {"kind": "vocos", "dim": 16, "intermediate_dim": 32, "num_layers": 1, "source": "harmonic"}}
    codec = build_codec(cfg).train()
    before = {k: v.clone() for k, v in codec.bottleneck.state_dict().items()}
    wav = 0.3 * torch.sin(2 * math.pi * 150 * torch.arange(20 * 256) / 16000)[None]
    z = torch.randn(1, 8, 21) * 3
    out = codec.decode_given(z, wav)
    assert out.shape == (1, 20 * 256)
    after = codec.bottleneck.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    other = z.clone()
    other[:, 0] = -z[:, 0]  # another pitch channel in the latents: ignored
    assert torch.allclose(codec.decode_given(other, wav), out)
