"""Model-based metrics that need third-party packages *and* local weights; never downloaded.

Each is enabled by a path (command-line option, else environment variable: :func:`requested_models`). One given no
path is skipped: :func:`load_optional_metrics` returns a ``{"skipped": reason}`` entry for it, which
:mod:`shared.evaluate` prints and copies into ``metrics.json``, so a metric is never dropped silently. One given a
path that does not load (no such file, its package not installed, a broken checkpoint) is an error naming the path
and the cause: a metric asked for is never quietly missing from the results.

==============  =======================  ===============================================================
metric          env / option             what is needed
==============  =======================  ===============================================================
whisper_wer     FLOWTTS_WHISPER_MODEL    ``openai-whisper`` and a local checkpoint file (``*.pt``);
                ``--whisper-model``      WER of the transcript against the reference ``text``, transcribed in
                                         each utterance's language (:func:`whisper_language`); both sides
                                         normalised by :func:`wer_words`
spk_sim         FLOWTTS_SPK_MODEL        ``speechbrain`` and a local ECAPA model dir (hyperparams.yaml +
                ``--speaker-model``      embedding_model.ckpt); cosine of reference/generated embeddings
utmos           FLOWTTS_UTMOS_MODEL      a TorchScript file ``f(wav (B, T) 16 kHz) -> (B,)`` MOS
                ``--utmos-model``
==============  =======================  ===============================================================

Whisper is told each utterance's language, the ISO 639-1 code of its ``utt2lang`` entry (an espeak-ng language:
``en-gb-x-rp`` -> ``en``, ``fr-fr`` -> ``fr``), or of the evaluation's ``--language`` where the data dir has no
``utt2lang`` (default English); ``metrics.json`` says which (``optional_metrics.whisper_wer``). The WER's text
normalisation is English only for English: there numbers, amounts and abbreviations are spelled out on both sides
as the TTS frontend does; in any other language both sides are only lowercased and stripped of punctuation, so a
digit on one side and its word on the other count as an error.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from shared.metrics.text import edit_distance

ENV = {"whisper_wer": "FLOWTTS_WHISPER_MODEL", "spk_sim": "FLOWTTS_SPK_MODEL", "utmos": "FLOWTTS_UTMOS_MODEL"}
OPTION = {"whisper_wer": "--whisper-model", "spk_sim": "--speaker-model", "utmos": "--utmos-model"}
PACKAGE = {"whisper_wer": "whisper", "spk_sim": "speechbrain", "utmos": None}

# fn(ref_wav (T,), gen_wav (T',), text, language) -> {metric: value}; both waveforms at 16 kHz, language the
# utterance's Whisper code (whisper_language)
MetricFn = Callable[[np.ndarray, np.ndarray, str, str], dict[str, float]]

# the languages Whisper knows (whisper.tokenizer.LANGUAGES: ISO 639-1 codes, and haw, jw, yue; yue only for large-v3)
WHISPER_LANGUAGES = frozenset(
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg lt la mi ml "
    "cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so af oc ka be tg sd gu am "
    "yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su yue".split())
# espeak-ng language codes whose Whisper code is another: Mandarin, Norwegian Bokmal, Javanese (Whisper's "jw")
_WHISPER_ALIASES = {"cmn": "zh", "nb": "no", "jv": "jw"}


def whisper_language(language: str) -> str:
    """Whisper's code of an espeak-ng language or voice (``utt2lang``, the recipe's ``--language``): its primary
    subtag, ``en-gb-x-rp`` -> ``en``, ``fr-fr`` -> ``fr``, ``cmn`` -> ``zh``. Raises ValueError for one Whisper
    does not know."""
    code = language.strip().lower().replace("_", "-").split("-")[0]
    code = _WHISPER_ALIASES.get(code, code)
    if code not in WHISPER_LANGUAGES:
        raise ValueError(f"Whisper knows no language '{code}' (of '{language}'); it knows "
                         f"{' '.join(sorted(WHISPER_LANGUAGES))}")
    return code


def normalize_words(text: str) -> list[str]:
    """Lowercase words without punctuation (for WER)."""
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def wer_words(text: str, language: str = "en") -> list[str]:
    """The words WER counts. English (Whisper code ``en``): after the TTS frontend's English normalisation, numbers,
    amounts, times and abbreviations in words, so a transcript's "20 apples at 2:30" matches a reference's "twenty
    apples at half past two" only where they say the same (:func:`shared.text.normalize.normalize_text`). Any
    other language: lowercased without punctuation only (:func:`normalize_words`; the frontend spells out no
    numbers there, so a digit against its word is an error)."""
    if language != "en":
        return normalize_words(text)
    from shared.text.normalize import normalize_text

    return normalize_words(normalize_text(text, "en-us"))


def _whisper(path: str) -> MetricFn:
    import whisper

    return whisper_wer(whisper.load_model(path, device="cpu"))


def whisper_wer(model: Any) -> MetricFn:
    """The metric of a loaded Whisper model (anything with ``transcribe(wav, language=, fp16=) -> {"text": str}``
    and ``is_multilingual``)."""

    def fn(ref: np.ndarray, gen: np.ndarray, text: str, language: str) -> dict[str, float]:
        if language != "en" and not model.is_multilingual:  # it would transcribe English, saying so in a warning only
            raise ValueError(f"an English-only Whisper model cannot transcribe language '{language}': give a "
                             "multilingual one (not *.en.pt)")
        hyp = model.transcribe(gen.astype(np.float32), language=language, fp16=False)["text"]
        c = edit_distance(wer_words(text, language), wer_words(hyp, language))
        return {"whisper_wer": c.rate, "whisper_errors": c.errors, "whisper_words": c.ref_len}

    return fn


def _speaker(path: str) -> MetricFn:
    from speechbrain.inference.speaker import EncoderClassifier

    enc = EncoderClassifier.from_hparams(source=path, savedir=path, run_opts={"device": "cpu"})

    def embed(wav: np.ndarray) -> torch.Tensor:  # each recording whole (both cut to the shorter lost the longer one's end)
        return enc.encode_batch(torch.from_numpy(wav).float()[None]).reshape(-1)

    def fn(ref: np.ndarray, gen: np.ndarray, text: str, language: str) -> dict[str, float]:
        return {"spk_sim": float(torch.nn.functional.cosine_similarity(embed(ref), embed(gen), dim=0))}

    return fn


def _utmos(path: str) -> MetricFn:
    model = torch.jit.load(path, map_location="cpu").eval()

    def fn(ref: np.ndarray, gen: np.ndarray, text: str, language: str) -> dict[str, float]:
        with torch.no_grad():
            return {"utmos": float(model(torch.from_numpy(gen).float()[None]).reshape(-1)[0])}

    return fn


_BUILDERS = {"whisper_wer": _whisper, "spk_sim": _speaker, "utmos": _utmos}


class OptionalModelError(ValueError):
    """A model given a path (option or environment variable) that does not load."""


def requested_models(paths: dict[str, str | None]) -> dict[str, str | None]:
    """``{metric: weights path}``: ``paths[metric]`` (the command line's), else its environment variable, else None.
    :mod:`shared.evaluate` stores these in ``metrics.json``'s settings, so a model enabled by the environment counts."""
    return {name: paths.get(name) or os.environ.get(ENV[name]) or None for name in _BUILDERS}


def load_optional_metrics(paths: dict[str, str | None]) -> tuple[dict[str, MetricFn], dict[str, dict[str, str]]]:
    """Build the metrics whose weights are given (``paths[name]`` or its environment variable).

    Returns ``(available {name: fn}, skipped {name: {"skipped": reason}})``, skipped those given no path. Raises
    OptionalModelError for one given a path that does not load.
    """
    available: dict[str, MetricFn] = {}
    skipped: dict[str, dict[str, str]] = {}
    for name, path in requested_models(paths).items():
        pkg = PACKAGE[name]
        if not path:
            also = f"; it would also need the python package '{pkg}'" if pkg and importlib.util.find_spec(pkg) is None else ""
            skipped[name] = {"skipped": f"no weights given ({OPTION[name]} or ${ENV[name]}){also}"}
            continue
        given = f"{name}: {path} (from {OPTION[name] if paths.get(name) else '$' + ENV[name]})"
        if not Path(path).exists():
            raise OptionalModelError(f"{given} not found: give an existing path, or none to skip {name}")
        if pkg and importlib.util.find_spec(pkg) is None:
            raise OptionalModelError(f"{given} needs the python package '{pkg}', which is not installed: install "
                                     f"it, or give no path to skip {name}")
        try:
            available[name] = _BUILDERS[name](path)
        except Exception as e:
            raise OptionalModelError(f"{given} failed to load: {type(e).__name__}: {e}") from e
    return available, skipped
