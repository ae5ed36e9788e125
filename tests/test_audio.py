import math

import numpy as np
import pytest
import soundfile as sf
import torch

from shared.audio import (AudioError, check_audio, load_audio, loudness_normalize, peak_normalize, random_crop,
                          resample, save_audio)
from shared.features import MelSpectrogram, interpolate_unvoiced, n_frames, phase_locked_f0, resample_track, stft, yin_f0


def test_save_load_round_trip(tmp_path):
    wav = torch.sin(torch.linspace(0, 200, 16000)) * 0.5
    save_audio(tmp_path / "a.wav", wav, 16000)
    back = load_audio(tmp_path / "a.wav", 16000)
    assert back.shape == wav.shape
    assert torch.allclose(back, wav, atol=1e-4)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left nothing behind


def test_load_resamples_and_strict_rate(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(22050, dtype=np.float32) + 0.1, 22050)
    assert load_audio(tmp_path / "a.wav", 16000).shape == (16000,)
    with pytest.raises(AudioError, match=r"a\.wav.*22050 Hz, expected 16000"):
        load_audio(tmp_path / "a.wav", 16000, strict_rate=True)


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="missing.wav: no such audio file"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(AudioError, match="corrupt.wav: cannot read audio"):
        load_audio(tmp_path / "corrupt.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty.wav: empty audio"):
        load_audio(tmp_path / "empty.wav")
    # a float file with a NaN sample (one trained the phone recogniser to an all-NaN model.pt, exported with exit 0)
    wav = np.full(100, 0.1, dtype=np.float32)
    wav[[3, 50]] = [np.nan, np.inf]
    sf.write(tmp_path / "nan.wav", wav, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: 2 of 100 samples are NaN or infinite"):
        load_audio(tmp_path / "nan.wav")


def test_check_audio():
    check_audio(torch.randn(1000) * 0.1, 16000, "ok.wav")
    with pytest.raises(AudioError, match="x.wav: silent"):
        check_audio(torch.zeros(1000), 16000, "x.wav")
    with pytest.raises(AudioError, match="x.wav: clipped"):
        check_audio(torch.ones(1000), 16000, "x.wav")
    with pytest.raises(AudioError, match="x.wav: sample rate 8000 Hz, expected 16000"):
        check_audio(torch.randn(1000), 8000, "x.wav", expected_rate=16000)
    with pytest.raises(AudioError, match="empty"):
        check_audio(torch.zeros(0), 16000, "x.wav")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_check_audio_refuses_non_finite_samples(bad):
    """A NaN peak compares False with every threshold: such a file once passed as neither silent nor clipped."""
    wav = torch.randn(1000) * 0.1
    wav[10] = bad
    with pytest.raises(AudioError, match=r"x.wav: 1 of 1000 samples are NaN or infinite"):
        check_audio(wav, 16000, "x.wav")


def test_save_audio_refuses_non_finite_samples(tmp_path):
    """A NaN waveform (a model gone NaN) was written as a 16-bit file of full-scale samples, with no error."""
    from shared.audio import save_audio

    wav = np.zeros(100, dtype=np.float32)
    wav[[3, 50]] = np.nan
    with pytest.raises(AudioError, match=r"u1.wav: 2 of 100 samples to write are NaN or infinite .*nothing was written"):
        save_audio(tmp_path / "u1.wav", wav, 16000)
    assert not (tmp_path / "u1.wav").exists()


def test_pad_to_multiple():
    from shared.audio import pad_to_multiple

    assert pad_to_multiple(torch.ones(2, 512), 256).shape == (2, 512)
    padded = pad_to_multiple(torch.ones(2, 513), 256)
    assert padded.shape == (2, 768) and padded[:, 513:].abs().sum() == 0 and padded[:, :513].eq(1).all()


def test_normalisation_and_crop():
    wav = torch.randn(16000) * 0.01
    assert peak_normalize(wav).abs().max() == pytest.approx(0.95)
    level = 20 * torch.log10(loudness_normalize(wav, 16000, -20.0).pow(2).mean().sqrt())
    assert float(level) == pytest.approx(-20.0, abs=0.5)
    assert torch.equal(peak_normalize(torch.zeros(10)), torch.zeros(10))
    crop, start = random_crop(torch.arange(100.0), 10, torch.Generator().manual_seed(0))
    assert crop.shape == (10,) and torch.equal(crop, torch.arange(start, start + 10.0))
    padded, _ = random_crop(torch.ones(5), 10)
    assert padded.shape == (10,) and padded[5:].abs().sum() == 0


def test_resample_keeps_a_tone():
    t = torch.arange(22050) / 22050
    wav = torch.sin(2 * torch.pi * 440 * t)
    out = resample(wav, 22050, 16000)
    spec = torch.fft.rfft(out[1000:-1000]).abs()
    assert out.shape == (16000,)
    assert abs(int(spec.argmax()) * 16000 / (out.shape[0] - 2000) - 440) < 3


def test_mel_shapes_and_device_agnostic():
    mel = MelSpectrogram(16000, 1024, 256, n_mels=80)
    x = torch.randn(3, 16000)
    y = mel(x)
    assert y.shape == (3, 80, n_frames(16000, 256))
    assert torch.allclose(mel(x[0]), y[0], atol=1e-5)
    assert stft(x, 512, 128).shape == (3, 257, n_frames(16000, 128))
    assert mel.to(torch.float64).fbank.dtype == torch.float64  # buffers follow .to()


def test_mel_is_float32_under_autocast():
    """Autocast ran the filterbank's matmul in bfloat16: a mel codec's latents were rounded in training (by up to
    0.03 in log-mel) but not in encode."""
    mel, x = MelSpectrogram(16000, 1024, 256, n_mels=80), torch.randn(2, 8000) * 0.1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = mel(x)
    assert y.dtype == torch.float32 and torch.equal(y, mel(x))


def _pulse_train(f0_hz: float, seconds: float, sr: int = 16000) -> torch.Tensor:
    """A glottal-like periodic signal: decaying resonance (formant near 700 Hz) excited at f0."""
    t = torch.arange(int(seconds * sr)) / sr
    phase = (t * f0_hz) % 1.0
    return torch.exp(-phase * 8) * torch.sin(2 * math.pi * 700 * phase / f0_hz) * 0.3


@pytest.mark.parametrize("f0_hz", [62.0, 95.0, 140.0, 230.0, 410.0])
def test_yin_f0_finds_the_pitch_of_periodic_signals(f0_hz):
    wav = _pulse_train(f0_hz, 0.5)[None]
    f0, aperiodicity = yin_f0(wav, 16000, 128)
    assert f0.shape == aperiodicity.shape == (1, wav.shape[-1] // 128 + 1)
    mid = slice(5, -5)  # away from the reflect-padded edges
    cents = 1200 * torch.log2(f0[0, mid] / f0_hz).abs()
    assert float(cents.max()) < 10, cents
    assert float(aperiodicity[0, mid].max()) < 0.1


def test_pitch_channel_reports_a_moving_pitch_at_the_frame_centre():
    """A log sweep 100 -> 300 Hz in 1 s: YIN's raw estimate of a frame describes the signal 5-8 ms before
    its centre (-12.5 cents here); the pitch channel, resampled onto the centres, is within a few cents."""
    from stage1_vae.modules import PitchChannel

    sr, hop = 16000, 256
    t = torch.arange(sr, dtype=torch.float64) / sr
    phase = 2 * math.pi * torch.cumsum(100 * 3 ** t / sr, 0)
    wav = (0.1 * sum(torch.sin(k * phase) / k for k in range(1, 15))).float()[None]
    true = 100 * 3 ** (torch.arange(sr // hop + 1, dtype=torch.float64) * hop / sr)
    raw, _ = yin_f0(wav, sr, hop)
    late = (1200 * torch.log2(raw[0].double() / true))[8:-8]
    assert float(late.mean()) < -10  # what the correction is for
    pitch = PitchChannel(sr, hop)
    f0 = pitch.to_hz(pitch(wav)[:, 0])
    cents = (1200 * torch.log2(f0[0].double() / true))[8:-8]
    assert abs(float(cents.mean())) < 2 and float(cents.abs().max()) < 6, cents


def test_phase_locked_f0_keeps_the_source_in_phase_with_the_input():
    """A voiced signal with a 6 Hz vibrato, given a track that is +-17 cents off (as YIN is on espeak-ng):
    integrated, that track drifts by radians against the input's phase; locked to the harmonics' phase
    advance, the source stays within a few hundredths of a radian. Frames marked unvoiced keep their value."""
    from stage1_vae.modules import source_phase

    sr, hop, frames = 16000, 256, 126
    t = torch.arange((frames - 1) * hop, dtype=torch.float64) / sr
    f0 = 140 * (1 + 0.03 * torch.sin(2 * math.pi * 6 * t))
    theta = 2 * math.pi * torch.cumsum(f0, 0) / sr + 0.4
    gains = [1.0, 1.6, 1.2, 0.5, 0.3, 0.4, 0.2, 0.1]  # a formant-like envelope, weak fundamental
    wav = (0.05 * sum(g * torch.sin((k + 1) * theta) for k, g in enumerate(gains))).float()[None]
    wav = torch.nn.functional.pad(wav, (0, hop)) + 1e-3 * torch.randn(1, frames * hop)
    at_frames = f0[(torch.arange(frames) * hop).clamp(max=t.numel() - 1)][None]
    wrong = at_frames * (1 + 0.01 * torch.sin(torch.linspace(0, 3 * math.pi, frames)))[None]
    voiced = torch.ones(1, frames, dtype=torch.bool)
    voiced[0, -6:] = False
    locked = phase_locked_f0(wav, wrong, voiced, hop, sr)
    assert torch.equal(locked[0, -5:], wrong[0, -5:])

    def drift(track: torch.Tensor) -> float:
        phi, _ = source_phase(track, hop, sr)
        err = (theta - phi[0])[4 * hop : -8 * hop]
        return float((err - err.mean()).abs().max())

    assert drift(wrong) > 1.0 and drift(locked) < 0.05, (drift(wrong), drift(locked))


def test_resample_track_matches_numpy_interp():
    times = torch.tensor([[0.0, 3.0, 1.0, 7.0]])  # unsorted, as estimates near octave jumps can be
    values = torch.tensor([[[1.0, 4.0, 2.0, 0.0]], [[0.0, 1.0, 2.0, 3.0]]])
    grid = torch.tensor([-1.0, 0.5, 2.0, 5.0, 9.0])
    out = resample_track(values, times, grid)
    assert torch.allclose(out[0, 0], torch.tensor(np.interp(grid, [0, 1, 3, 7], [1, 2, 4, 0]), dtype=torch.float32))
    assert torch.allclose(out[1, 0], torch.tensor(np.interp(grid, [0, 1, 3, 7], [0, 2, 1, 3]), dtype=torch.float32))


def test_yin_f0_marks_noise_and_silence_aperiodic():
    noise = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    _, ap = yin_f0(noise, 16000, 128)
    assert float(ap.median()) > 0.5
    _, ap = yin_f0(torch.zeros(1, 8000), 16000, 128)
    assert bool((ap == 1).all())
    with pytest.raises(ValueError, match="win_length"):
        yin_f0(noise, 16000, 128, win_length=512, f0_min=40)


def test_interpolate_unvoiced_fills_gaps_and_holds_ends():
    log_f0 = torch.tensor([[9.0, 1.0, 9.0, 9.0, 4.0, 9.0], [9.0] * 6])
    voiced = torch.tensor([[False, True, False, False, True, False], [False] * 6])
    out = interpolate_unvoiced(log_f0, voiced, default=5.0)
    assert torch.allclose(out[0], torch.tensor([1.0, 1.0, 2.0, 3.0, 4.0, 4.0]))
    assert torch.allclose(out[1], torch.full((6,), 5.0))



def test_features_keep_their_frame_count_for_signals_of_at_most_half_a_window():
    """``center=True`` reflect padding needs more than n_fft / 2 samples: shorter signals are padded with zeros."""
    for length in (1, 100, 256, 512, 513):
        wav = torch.randn(1, length)
        frames = length // 256 + 1
        assert stft(wav, 1024, 256).shape == (1, 513, frames), length
        assert MelSpectrogram(16000, 1024, 256)(wav).shape == (1, 80, frames), length
        assert all(t.shape == (1, frames) for t in yin_f0(wav, 16000, 256)), length
    window = torch.hann_window(1024)  # long enough (513 samples): reflected as before
    assert torch.equal(stft(wav, 1024, 256), torch.stft(wav, 1024, 256, window=window, return_complex=True))
