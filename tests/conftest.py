"""Fixtures shared by the test files: tiny generated audio and data directories."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP: no spinning threads

import math  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np
import pytest
import soundfile as sf


def harmonic_tone(seconds: float, sample_rate: int = 16000, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: a few harmonics with vibrato and an amplitude envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f = f0 * (1 + 0.05 * np.sin(2 * math.pi * 3 * t))
    phase = 2 * math.pi * np.cumsum(f) / sample_rate
    wav = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = 0.5 * (1 - np.cos(2 * math.pi * np.minimum(t / seconds, 1)))
    return (0.3 * wav * env / 2 + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def write_data_dir(root: Path, utts: dict[str, tuple[str, str, float]], sample_rate: int = 16000) -> Path:
    """A Kaldi data dir at ``root`` from ``{utt: (speaker, transcript, seconds)}`` with generated wavs."""
    root.mkdir(parents=True, exist_ok=True)
    wav_dir = root / "wav"
    wav_dir.mkdir(exist_ok=True)
    lines = {"wav.scp": [], "text": [], "utt2spk": []}
    for i, (utt, (spk, text, secs)) in enumerate(sorted(utts.items())):
        path = wav_dir / f"{utt}.wav"
        sf.write(path, harmonic_tone(secs, sample_rate, 100 + 20 * i, seed=i), sample_rate)
        lines["wav.scp"].append(f"{utt} {path}")
        lines["text"].append(f"{utt} {text}")
        lines["utt2spk"].append(f"{utt} {spk}")
    for name, rows in lines.items():
        (root / name).write_text("\n".join(rows) + "\n")
    spk2utt: dict[str, list[str]] = {}
    for utt, (spk, _, _) in sorted(utts.items()):
        spk2utt.setdefault(spk, []).append(utt)
    (root / "spk2utt").write_text("".join(f"{s} {' '.join(u)}\n" for s, u in sorted(spk2utt.items())))
    return root


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    utts = {
        f"spk{s}-utt{i}": (f"spk{s}", f"hello world number {i}", 0.5 + 0.25 * i)
        for s in (1, 2)
        for i in range(3)
    }
    return write_data_dir(tmp_path / "data" / "train", utts)
