"""espeak-ng speech synthesis through ctypes against the library in the ``espeakng-loader`` wheel.

No ``espeak-ng`` binary is needed. :func:`synthesize` is also the *reference* for evaluation: espeak-ng is
deterministic, so the reference audio of any sentence and voice can be produced at any time::

    from shared.corpora.espeak_synth import synthesize
    wav = synthesize("Hello world.", voice="en-us+f2", sample_rate=16000)   # float32 (T,)
"""

from __future__ import annotations

import _ctypes
import ctypes
import functools
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from shared.text.espeak import resolve_voice, setup_espeak

NATIVE_RATE = 22050
RANDOM_SEED = 1234
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakSynthError(RuntimeError):
    pass


def private_library(library: Path) -> Path:
    """A copy of ``library`` that only this module loads, one per user and library version (named by its SHA-256),
    kept between runs and shared by processes (each process maps it on its own): a temporary copy per process was
    left behind by every pool worker, which exits without cleaning up."""
    from shared.io import file_sha256

    path = Path(tempfile.gettempdir()) / f"flowtts_espeak_{os.getuid()}" / f"{file_sha256(library)[:16]}_{library.name}"
    if not path.is_file():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        shutil.copy(library, tmp)
        os.replace(tmp, path)  # atomic: a process starting meanwhile sees the whole file or none
    return path


class _Engine:
    """espeak-ng keeps global state across utterances (pitch flutter index, noise generator, echo buffer), so
    the same text would sound slightly different depending on what was said before. To make every call
    depend only on (text, voice, params), the library is loaded fresh for each utterance (``dlopen`` ->
    ``espeak_Initialize`` -> synth -> ``espeak_Terminate`` -> ``dlclose``); that costs about 1 ms.
    The library is loaded from a copy (:func:`private_library`): phonemizer keeps the original file loaded, and
    ``dlclose`` only unloads a library nobody else in the process holds.
    """

    def __init__(self) -> None:
        self.paths = setup_espeak()
        self.library = str(private_library(Path(self.paths.library)))
        self.sample_rate = NATIVE_RATE
        self._chunks: list[np.ndarray] = []
        self._callback = _SYNTH_CALLBACK(self._on_audio)  # keep a reference: ctypes must not free it
        self.lock = threading.Lock()

    def _on_audio(self, wav, num_samples, events) -> int:  # noqa: ANN001 - ctypes callback
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    def _open(self) -> ctypes.CDLL:
        lib = ctypes.CDLL(self.library)
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.paths.data.encode(), 0)
        if rate <= 0:
            raise EspeakSynthError(f"espeak_Initialize failed (data path {self.paths.data})")
        self.sample_rate = rate
        lib.espeak_SetSynthCallback(self._callback)
        # espeak-ng seeds its noise generator (breathy voices such as +f2) from the clock
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed(RANDOM_SEED)
        return lib

    @staticmethod
    def _close(lib: ctypes.CDLL) -> None:
        lib.espeak_Terminate()
        _ctypes.dlclose(lib._handle)

    def synth(self, text: str, voice: str, rate: int | None, pitch: int | None) -> np.ndarray:
        with self.lock:
            lib = self._open()
            try:
                if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    raise EspeakSynthError(f"espeak-ng has no voice {voice!r} (see shared.text.espeak."
                                           "list_voice_names and list_variants)")
                if rate is not None:
                    lib.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
                if pitch is not None:
                    lib.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
                self._chunks = []
                data = text.encode("utf-8") + b"\0"
                buf = ctypes.create_string_buffer(data, len(data))
                status = lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
                if status != 0:
                    raise EspeakSynthError(f"espeak_Synth failed with status {status} for {text!r}")
                lib.espeak_Synchronize()
            finally:
                self._close(lib)
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
    wav = engine.synth(text, resolve_voice(voice), rate, pitch)
    if wav.size == 0:
        raise EspeakSynthError(f"espeak-ng produced no audio for {text!r} (voice {voice})")
    if trim:
        wav = trim_silence(wav, engine.sample_rate)
    if sample_rate != engine.sample_rate:
        import soxr

        wav = soxr.resample(wav, engine.sample_rate, sample_rate, quality="HQ").astype(np.float32)
    return wav
