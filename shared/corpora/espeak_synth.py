"""espeak-ng speech synthesis through ctypes against the library in the ``espeakng-loader`` wheel.

No ``espeak-ng`` binary is needed. :func:`synthesize` is also the *reference* for evaluation: espeak-ng is
deterministic, so the reference audio of any sentence and voice can be produced at any time::

    from shared.corpora.espeak_synth import synthesize
    wav = synthesize("Hello world.", voice="en-us+f2", sample_rate=16000)   # float32 (T,)
"""

from __future__ import annotations

import ctypes
import functools
import threading

import numpy as np

from shared.text.espeak import setup_espeak

NATIVE_RATE = 22050
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakSynthError(RuntimeError):
    pass


class _Engine:
    """One espeak-ng instance per process (the C library keeps global state)."""

    def __init__(self) -> None:
        paths = setup_espeak()
        # phonemizer loads its own private copy of the library, so this handle is independent of it
        self.lib = ctypes.CDLL(paths.library)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, paths.data.encode(), 0)
        if rate <= 0:
            raise EspeakSynthError(f"espeak_Initialize failed (data path {paths.data})")
        self.sample_rate = rate
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._on_audio)  # keep a reference: ctypes must not free it
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.lock = threading.Lock()

    def _on_audio(self, wav, num_samples, events) -> int:  # noqa: ANN001 - ctypes callback
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    def synth(self, text: str, voice: str, rate: int | None, pitch: int | None) -> np.ndarray:
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EspeakSynthError(f"espeak-ng has no voice {voice!r} (see shared.text.espeak.list_voice_names "
                                       "and list_variants)")
            if hasattr(self.lib, "espeak_ng_SetRandSeed"):
                self.lib.espeak_ng_SetRandSeed(0)
            if rate is not None:
                self.lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
            if pitch is not None:
                self.lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
            self._chunks = []
            data = text.encode("utf-8") + b"\0"
            buf = ctypes.create_string_buffer(data, len(data))
            status = self.lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if status != 0:
                raise EspeakSynthError(f"espeak_Synth failed with status {status} for {text!r}")
            self.lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32) / 32768.0


@functools.lru_cache(maxsize=1)
def _engine() -> _Engine:
    return _Engine()


def trim_silence(wav: np.ndarray, sample_rate: int, threshold_db: float = -45.0, margin_s: float = 0.05) -> np.ndarray:
    """Cut leading/trailing parts quieter than ``threshold_db`` below the peak, keeping ``margin_s``."""
    if wav.size == 0:
        return wav
    peak = float(np.abs(wav).max())
    if peak <= 0:
        return wav
    hop = max(1, int(0.01 * sample_rate))
    n = wav.size // hop
    if n == 0:
        return wav
    frames = np.abs(wav[: n * hop]).reshape(n, hop).max(axis=1)
    loud = np.nonzero(frames > peak * 10 ** (threshold_db / 20))[0]
    if loud.size == 0:
        return wav
    margin = int(margin_s * sample_rate)
    start = max(0, loud[0] * hop - margin)
    end = min(wav.size, (loud[-1] + 1) * hop + margin)
    return wav[start:end]


def synthesize(
    text: str, voice: str = "en-us", sample_rate: int = 16000, trim: bool = True,
    rate: int | None = None, pitch: int | None = None,
) -> np.ndarray:
    """Speak ``text`` with espeak-ng ``voice`` (e.g. ``en-us``, ``en-gb-x-rp+m3``) -> float32 ``(T,)``.

    Args:
        sample_rate: output rate; espeak-ng renders at 22050 Hz and this resamples (soxr, high quality).
        trim: cut leading/trailing silence lightly (-45 dB below the peak, 50 ms margin kept).
        rate: words per minute (espeak default 175); pitch: 0-100 (default from the voice).
    """
    engine = _engine()
    wav = engine.synth(text, voice, rate, pitch)
    if wav.size == 0:
        raise EspeakSynthError(f"espeak-ng produced no audio for {text!r} (voice {voice})")
    if trim:
        wav = trim_silence(wav, engine.sample_rate)
    if sample_rate != engine.sample_rate:
        import soxr

        wav = soxr.resample(wav, engine.sample_rate, sample_rate, quality="HQ").astype(np.float32)
    return wav
