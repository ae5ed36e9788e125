"""Model-based metrics that need third-party packages *and* local weights; never downloaded.

Each is enabled by a path (command-line option or environment variable). When the package or the weights
are missing, :func:`load_optional_metrics` returns a ``{"skipped": reason}`` entry for it instead, and
:mod:`shared.evaluate` copies that into ``metrics.json``: a metric is never dropped silently.

==============  =======================  ===============================================================
metric          env / option             what is needed
==============  =======================  ===============================================================
whisper_wer     FLOWTTS_WHISPER_MODEL    ``openai-whisper`` and a local checkpoint file (``*.pt``);
                ``--whisper-model``      WER of the English transcript against the reference ``text``, both
                                         normalised as the TTS frontend does (numbers in words)
spk_sim         FLOWTTS_SPK_MODEL        ``speechbrain`` and a local ECAPA model dir (hyperparams.yaml +
                ``--speaker-model``      embedding_model.ckpt); cosine of reference/generated embeddings
utmos           FLOWTTS_UTMOS_MODEL      a TorchScript file ``f(wav (B, T) 16 kHz) -> (B,)`` MOS
                ``--utmos-model``
==============  =======================  ===============================================================
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from shared.metrics.text import edit_distance

ENV = {"whisper_wer": "FLOWTTS_WHISPER_MODEL", "spk_sim": "FLOWTTS_SPK_MODEL", "utmos": "FLOWTTS_UTMOS_MODEL"}
PACKAGE = {"whisper_wer": "whisper", "spk_sim": "speechbrain", "utmos": None}

# fn(ref_wav (T,), gen_wav (T',), text) -> {metric: value}; both waveforms at 16 kHz
MetricFn = Callable[[np.ndarray, np.ndarray, str], dict[str, float]]


def normalize_words(text: str) -> list[str]:
    """Lowercase words without punctuation (for WER)."""
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def wer_words(text: str) -> list[str]:
    """The words WER counts, after the TTS frontend's English normalisation: numbers, amounts, times and
    abbreviations in words, so a transcript's "20 apples at 2:30" matches a reference's "twenty apples at half
    past two" only where they say the same (:func:`shared.text.normalize.normalize_text`)."""
    from shared.text.normalize import normalize_text

    return normalize_words(normalize_text(text, "en-us"))


def _whisper(path: str) -> MetricFn:
    import whisper

    model = whisper.load_model(path, device="cpu")

    def fn(ref: np.ndarray, gen: np.ndarray, text: str) -> dict[str, float]:
        hyp = model.transcribe(gen.astype(np.float32), language="en", fp16=False)["text"]
        c = edit_distance(wer_words(text), wer_words(hyp))
        return {"whisper_wer": c.rate, "whisper_errors": c.errors, "whisper_words": c.ref_len}

    return fn


def _speaker(path: str) -> MetricFn:
    from speechbrain.inference.speaker import EncoderClassifier

    enc = EncoderClassifier.from_hparams(source=path, savedir=path, run_opts={"device": "cpu"})

    def fn(ref: np.ndarray, gen: np.ndarray, text: str) -> dict[str, float]:
        e = enc.encode_batch(torch.from_numpy(np.stack([ref[: gen.size], gen[: ref.size]])).float()).squeeze(1)
        return {"spk_sim": float(torch.nn.functional.cosine_similarity(e[0], e[1], dim=-1))}

    return fn


def _utmos(path: str) -> MetricFn:
    model = torch.jit.load(path, map_location="cpu").eval()

    def fn(ref: np.ndarray, gen: np.ndarray, text: str) -> dict[str, float]:
        with torch.no_grad():
            return {"utmos": float(model(torch.from_numpy(gen).float()[None]).reshape(-1)[0])}

    return fn


_BUILDERS = {"whisper_wer": _whisper, "spk_sim": _speaker, "utmos": _utmos}


def load_optional_metrics(paths: dict[str, str | None]) -> tuple[dict[str, MetricFn], dict[str, dict[str, str]]]:
    """Build the metrics whose weights are given (``paths[name]`` or its environment variable).

    Returns ``(available {name: fn}, skipped {name: {"skipped": reason}})``.
    """
    available: dict[str, MetricFn] = {}
    skipped: dict[str, dict[str, str]] = {}
    for name, builder in _BUILDERS.items():
        path = paths.get(name) or os.environ.get(ENV[name])
        pkg = PACKAGE[name]
        if not path:
            reason = f"no weights given (set {ENV[name]} or the matching --*-model option)"
        elif not Path(path).exists():
            reason = f"weights not found at {path}"
        elif pkg and importlib.util.find_spec(pkg) is None:
            reason = f"python package '{pkg}' is not installed"
        else:
            try:
                available[name] = builder(path)
                continue
            except Exception as e:  # a broken model must not kill the evaluation; say why instead
                reason = f"failed to load {path}: {type(e).__name__}: {e}"
        skipped[name] = {"skipped": reason}
    return available, skipped
