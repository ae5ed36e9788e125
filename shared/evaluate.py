"""Evaluate generated speech against references: one ``python -m`` stage of the recipe.

    python -m shared.evaluate --ref-dir data/test --gen-dir exp/stage2/x/synth/test \
        --out exp/stage2/x/eval/test/metrics.json [--mode tts|codec] [--phone-recognizer exp/asr] \
        [--ref-token-file data/test/token] [--plots-dir exp/stage2/x/eval/test/plots] [--nj 2] [--language en-us] \
        [--overwrite]

Both dirs need ``wav.scp`` (one audio file per utterance; no ``segments``) with the same utterance ids (a generated id without a reference, or a
reference without a generated utterance, is an error listing them; ``--allow-subset`` accepts a
generated subset). Per utterance (in ``--nj`` processes): MCD-DTW, log-F0 RMSE, F0 correlation,
voicing error and duration ratio (:mod:`shared.metrics.spectral` documents the recipe); in ``codec``
mode also PESQ-WB, STOI, SI-SDR and multi-resolution mel distance. With ``--phone-recognizer`` the
PER of the generated and of the reference audio. Model-based metrics (:mod:`shared.metrics.optional`)
run when their weights are given (a path given that does not load is an error), else ``metrics.json`` and stderr say
why they were skipped; Whisper's corpus WER is its errors over the reference words. Whisper transcribes each
utterance in its language: the reference dir's ``utt2lang`` where there is one, else ``--language`` (an espeak-ng
language as the recipe's; default English), and ``metrics.json`` says which (:func:`utt_languages`).

Outputs (atomic): ``metrics.json`` (corpus mean/std/median per metric, corpus PER and Whisper WER, skipped metrics,
settings and, where the reference dir has ``utt2spk``, ``speakers``: each speaker's utterance count, metric
means and phone errors of the generated and the real audio), ``<stem>_utt.tsv`` (one row per utterance; with
``--phone-recognizer`` also its phone errors in the generated and the real audio and its reference phones,
``phone_errors_gen``, ``phone_errors_ref`` and ``ref_phones``, which :mod:`shared.compare` pools a PER difference
with; counts, which ``metrics.json`` does not average: :data:`shared.metrics.report.COUNTS`) and ``<stem>_signal.json`` (the per-utterance signal metrics, exactly).
``metrics.json`` is strict JSON: a value that is not finite (a PER ratio with no real-audio errors, or none at all)
is written as ``null``. A rerun with the same inputs (audio, weights, tokens, utt2lang, utt2spk, text) and settings
(``--allow-subset`` and the models the environment enables among them) only makes the plots asked for; a rerun on
the same audio that only adds or changes the phone recogniser (the recipe scores the codec in stage 5 and adds its
PER in stage 9) reuses the signal metrics instead of recomputing them (``--overwrite`` recomputes everything, as
does a ``wav.scp`` with pipes: :func:`fingerprint`); so does a rerun whose ``<stem>_utt.tsv`` has PERs but no
phone counts (written before they were).

Each waveform is read twice where the model-based metrics run on audio whose signal metrics are computed afresh:
once in the ``--nj`` worker that computes them, once in this process for the models (:func:`optional_scores`).
Reading it once would mean sending every waveform back from the workers, which ``ProcessPoolExecutor.map`` keeps
until it is consumed: with models slower than the workers (Whisper on a CPU), much of a bulk corpus in memory at
once. Both passes hold one utterance at a time instead; a read (a 16 kHz wav) is milliseconds against the models'
seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from shared.compare import ratio_ci
from shared.io import MODEL_FILE, PathLike, atomic_write, errors_named, file_sha256, read_json, read_kv, write_json

EVAL_RATE = 16000
# What scores a result, beside its inputs and settings: raise it whenever a metric's code, its analysis settings'
# defaults or the phone recogniser's filter change what they compute, so that results made before are scored again,
# not reused (2: pYIN at 0.1 semitones, 2026-12-07)
SCORING_VERSION = 2


class EvaluationError(ValueError):
    pass


def match_utts(ref_scp: dict[str, str], gen_scp: dict[str, str], allow_subset: bool = False) -> list[str]:
    """Sorted common utterance ids; raises EvaluationError naming every unmatched id."""
    extra = sorted(set(gen_scp) - set(ref_scp))
    missing = sorted(set(ref_scp) - set(gen_scp))
    problems = []
    if extra:
        problems.append(f"{len(extra)} generated utterance(s) have no reference: {', '.join(extra[:20])}"
                        + (" ..." if len(extra) > 20 else ""))
    if missing and not allow_subset:
        problems.append(f"{len(missing)} reference utterance(s) were not generated: {', '.join(missing[:20])}"
                        + (" ..." if len(missing) > 20 else "") + " (--allow-subset to score only the generated ones)")
    if problems:
        raise EvaluationError("; ".join(problems))
    utts = sorted(set(ref_scp) & set(gen_scp))
    if not utts:
        raise EvaluationError("no utterances to evaluate")
    return utts


def speaker_breakdown(utts: list[str], by_utt: dict[str, dict[str, Any]], utt2spk: dict[str, str],
                      phones: dict[str, dict[str, tuple[int, int]]] | None = None) -> dict[str, dict[str, Any]]:
    """``{speaker: {"num_utts", "metrics": {metric: mean}, and with ``phones`` (``{tag: {utt: (errors,
    ref_len)}}``, tags ``gen`` / ``ref``): "ref_phones", "phone_errors_<tag>", "per_<tag>"}}``.

    A corpus mean hides which voices a system fails on: on the default recipe's screening set the codec's
    excess errors sit in two voices and the synthesis's in a third (egs/espeak_mini/tts1/RESULTS.md)."""
    unknown = [u for u in utts if u not in utt2spk]
    if unknown:
        raise EvaluationError(f"utt2spk has no speaker for {len(unknown)} utterance(s): {', '.join(unknown[:20])}")
    from shared.metrics.report import aggregate

    out: dict[str, dict[str, Any]] = {}
    for spk in sorted({utt2spk[u] for u in utts}):
        mine = [u for u in utts if utt2spk[u] == spk]
        stats = aggregate(by_utt[u] for u in mine)
        entry: dict[str, Any] = {"num_utts": len(mine),
                                 "metrics": {k: v["mean"] for k, v in stats.items() if "mean" in v}}
        if phones:  # every tag counts against the same reference tokens
            entry["ref_phones"] = sum(next(iter(phones.values()))[u][1] for u in mine)
        for tag, counts in (phones or {}).items():
            errors = sum(counts[u][0] for u in mine)
            entry[f"phone_errors_{tag}"] = errors
            entry[f"per_{tag}"] = errors / max(entry["ref_phones"], 1)
        out[spk] = entry
    return out


def utt_languages(ref_dir: Path, utts: list[str], language: str | None) -> tuple[dict[str, str], str]:
    """``({utt: Whisper language code}, where they come from)``: ``ref_dir/utt2lang`` (espeak-ng languages, as the
    text frontend reads them) where it exists, else ``language`` for every utterance (None: English). Raises
    EvaluationError for an utterance utt2lang leaves out, or a language Whisper does not know."""
    from shared.metrics.optional import whisper_language

    path = ref_dir / "utt2lang"
    if path.is_file():
        utt2lang, source = read_kv(path), f"utt2lang ({path})"
        missing = [u for u in utts if u not in utt2lang]
        if missing:
            raise EvaluationError(f"{path}: no language for {len(missing)} utterance(s): {', '.join(missing[:20])}")
    else:
        utt2lang = dict.fromkeys(utts, language or "en")
        source = f"--language {language}" if language else "English (no utt2lang, no --language)"
    codes = {}
    for lang in sorted({utt2lang[u] for u in utts}):
        try:
            codes[lang] = whisper_language(lang)
        except ValueError as e:
            users = [u for u in utts if utt2lang[u] == lang]
            raise EvaluationError(f"whisper_wer: {e} ({len(users)} utterance(s) from {source}: "
                                  f"{', '.join(users[:5])})") from e
    return {u: codes[utt2lang[u]] for u in utts}, source


def _load(path: str) -> np.ndarray:
    from shared.audio import load_audio

    return load_audio(path, EVAL_RATE).numpy()


def cached_ref_analysis(utt: str, ref: np.ndarray, with_f0: bool, cache_dir: str | None):
    """``analyse(ref)`` through ``cache_dir/<utt>.pkl``, reused while the reference audio (its samples' SHA-1: a file
    or a wav.scp pipe alike), the analysis settings, ``with_f0``, :data:`SCORING_VERSION` and librosa's version are
    the same (a scoring change recomputed the generated side only, against the old reference analysis); ``None``
    cache: computed every time."""
    import pickle

    import librosa

    from shared.metrics.spectral import DEFAULT_ANALYSIS, MCEP_CONVENTION, analyse

    if cache_dir is None:
        return analyse(ref, DEFAULT_ANALYSIS, with_f0)
    key = (hashlib.sha1(np.ascontiguousarray(ref).tobytes()).hexdigest(), repr(DEFAULT_ANALYSIS), MCEP_CONVENTION, with_f0,
           SCORING_VERSION, librosa.__version__)
    path = Path(cache_dir) / f"{utt}.pkl"
    if path.is_file():
        with open(path, "rb") as f:
            stored_key, analysis = pickle.load(f)
        if stored_key == key:
            return analysis
    analysis = analyse(ref, DEFAULT_ANALYSIS, with_f0)
    with atomic_write(path, "wb") as f:
        pickle.dump((key, analysis), f)
    return analysis


def check_phone_scoring(phone_recognizer: PathLike, ref_token_file: Path, utts: list[str]) -> None:
    """An EvaluationError where the phone error rates cannot be scored: no trained recogniser, no reference tokens, or
    none for some of ``utts`` (named)."""
    if not (Path(phone_recognizer) / MODEL_FILE).is_file():
        raise EvaluationError(f"--phone-recognizer {phone_recognizer}: no {MODEL_FILE} (train it with python -m "
                              "shared.phone_recognizer.train)")
    if not ref_token_file.is_file():
        raise EvaluationError(f"--phone-recognizer needs reference tokens: {ref_token_file} not found")
    missing = [u for u in utts if u not in read_kv(ref_token_file, allow_empty_value=True)]
    if missing:
        raise EvaluationError(f"{ref_token_file}: no reference tokens for {len(missing)} utterance(s) to score: "
                              f"{', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")


def utt_metrics(job: tuple[str, str, str, str, bool, str | None]) -> dict[str, Any]:
    """Metrics of one utterance: ``job = (utt, ref_path, gen_path, mode, with_f0, ref_cache_dir)``."""
    from shared.metrics.signal import codec_metrics, is_silent
    from shared.metrics.spectral import tts_metrics

    utt, ref_path, gen_path, mode, with_f0, ref_cache = job
    with errors_named(f"utterance {utt} (reference {ref_path}, generated {gen_path})", EvaluationError):  # in a pool
        ref, gen = _load(ref_path), _load(gen_path)  # NaN samples are an AudioError naming the file (librosa named none)
        if is_silent(gen):  # a system's failure, scored as one (shared.metrics.signal), and said
            print(f"[evaluate] WARNING: utterance {utt}: the generated audio {gen_path} is digitally silent"
                  + (" (PESQ-WB at the scale's floor, STOI 0, SI-SDR undefined)" if mode == "codec" else ""),
                  file=sys.stderr, flush=True)
        row: dict[str, Any] = {"utt": utt, "ref_seconds": ref.size / EVAL_RATE, "gen_seconds": gen.size / EVAL_RATE}
        row.update(tts_metrics(ref, gen, with_f0=with_f0,
                               ref_analysis=cached_ref_analysis(utt, ref, with_f0, ref_cache)))
        if mode == "codec":
            row.update(codec_metrics(ref, gen, EVAL_RATE))
    return row


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def run_utt_metrics(jobs: list[tuple], nj: int) -> list[dict[str, Any]]:
    if nj <= 1 or len(jobs) < 4:
        _init_worker()
        return [utt_metrics(j) for j in jobs]
    with ProcessPoolExecutor(nj, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        return list(pool.map(utt_metrics, jobs, chunksize=max(1, len(jobs) // (4 * nj))))


def fingerprint(paths: list[PathLike]) -> dict[str, Any]:
    """``{path: {"size", "mtime_ns"}}`` of the input files (None: absent; a directory, as a speaker model's: a digest
    of its files' sizes and mtimes), and for a ``wav.scp`` a digest of the size and mtime of every audio file it
    names (so audio rewritten under an unchanged index counts as new) and how many of its entries are pipes: a
    rerun with the same inputs is skipped, and the signal metrics of the same audio are reused. A pipe (``sox a.sph
    -t wav - |``) has no file to date: its command is in the digest, but what it reads may have changed, so
    :func:`evaluate` reuses nothing of a wav.scp with pipes (telling by its samples would mean decoding the corpus)."""
    from shared.audio import is_pipe

    out: dict[str, Any] = {}
    for p in map(Path, paths):
        if p.is_dir():
            out[str(p)] = {"files": _stat_digest((str(f.relative_to(p)), f) for f in sorted(p.rglob("*")) if f.is_file())}
        elif p.exists():
            st = p.stat()
            out[str(p)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
            if p.name == "wav.scp":
                scp = read_kv(p)
                out[str(p)].update(audio=_stat_digest(scp.items()), pipes=sum(map(is_pipe, scp.values())))
        else:
            out[str(p)] = None
    return out


def _stat_digest(named: Iterable[tuple[str, str | Path]]) -> str:
    """SHA-1 of every ``(name, path)``: the name, the path and, where it is a file, its size and mtime."""
    digest = hashlib.sha1()
    for name, path in named:
        st = Path(path).stat() if Path(path).is_file() else None
        digest.update(f"{name} {path} {st.st_size if st else -1} {st.st_mtime_ns if st else -1}\n".encode())
    return digest.hexdigest()


def write_utt_table(path: PathLike, rows: list[dict[str, Any]]) -> None:
    cols = list(dict.fromkeys(k for r in rows for k in r if k != "utt"))
    with atomic_write(path) as f:
        f.write("\t".join(["utt"] + cols) + "\n")
        for r in rows:
            vals = [r.get(c) for c in cols]
            f.write("\t".join([r["utt"]] + [_cell(v) for v in vals]) + "\n")


def signal_rows_path(out: Path) -> Path:
    return out.with_name(out.stem + "_signal.json")


def utt_table_path(out: Path) -> Path:
    return out.with_name(out.stem + "_utt.tsv")


def has_phone_counts(table: Path) -> bool:
    """Whether the per-utterance table ``table`` is there with the phone counts (``ref_phones`` and the errors; one
    written before they were has the PERs only)."""
    if not table.is_file():
        return False
    with table.open() as f:
        return "ref_phones" in f.readline().rstrip("\n").split("\t")


def reusable_signal_rows(out: Path, key: dict[str, Any], utts: list[str]) -> list[dict[str, Any]] | None:
    """The per-utterance signal metrics an earlier call wrote beside ``out``, if they were computed with the
    same ``key`` (mode, F0 on or off, the two wav.scp files' size and mtime) for exactly ``utts``."""
    path = signal_rows_path(out)
    if not path.is_file():
        return None
    stored = read_json(path)
    rows = stored.get("rows", [])
    if stored.get("key") != key or [r.get("utt") for r in rows] != utts:
        return None
    return rows


def json_safe(obj: Any) -> Any:
    """``obj`` with every float that is not finite (nan, inf) replaced by None: ``json`` would write them as
    ``NaN`` / ``Infinity``, which strict JSON readers (``jq``, JavaScript) refuse."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def _cell(v: Any) -> str:
    if v is None:
        return "nan"
    if isinstance(v, float):
        return "nan" if not math.isfinite(v) else f"{v:.6g}"
    return str(v)


def evaluate(ref_dir: PathLike, gen_dir: PathLike, out: PathLike, mode: str = "tts", phone_recognizer: PathLike | None = None,
             ref_token_file: PathLike | None = None, plots_dir: PathLike | None = None, nj: int = 2,
             with_f0: bool = True, allow_subset: bool = False, optional_models: dict[str, str | None] | None = None,
             overwrite: bool = False, num_plots: int = 3, ref_cache: PathLike | None = None,
             language: str | None = None) -> dict[str, Any]:
    """Run the evaluation and write ``out`` (metrics.json) and ``<stem>_utt.tsv``; returns the summary.
    ``ref_cache``: a directory keeping the references' spectral / F0 analyses for the next call (the NFE sweep
    scores a dozen systems against the same references). ``language``: the espeak-ng language of the utterances
    where ``ref_dir`` has no ``utt2lang`` (Whisper's; None: English)."""
    from shared.metrics.report import aggregate

    if mode not in ("tts", "codec"):
        raise EvaluationError(f"--mode must be 'tts' or 'codec', got {mode!r}")
    ref_dir, gen_dir, out = Path(ref_dir), Path(gen_dir), Path(out)
    for d in (ref_dir, gen_dir):
        if not (d / "wav.scp").is_file():
            raise EvaluationError(f"{d}: no wav.scp")
        if (d / "segments").exists():
            raise EvaluationError(f"{d}: has 'segments'; evaluation needs one file per utterance (extract them first)")
    ref_token_file = Path(ref_token_file) if ref_token_file else ref_dir / "token"
    scps = [ref_dir / "wav.scp", gen_dir / "wav.scp"]
    utt2spk_path = ref_dir / "utt2spk"
    from shared.metrics.optional import OptionalModelError, load_optional_metrics, requested_models
    # here: librosa is slow to import for the CLIs that need none
    from shared.metrics.spectral import DEFAULT_ANALYSIS, MCEP_CONVENTION

    models = requested_models(optional_models or {})  # those the environment enables too: they change the results
    # every input a result depends on: the audio, the recognisers' and models' weights, the tokens, languages,
    # speakers and texts (Whisper's references)
    inputs = fingerprint(scps + [ref_token_file, ref_dir / "utt2lang", utt2spk_path, ref_dir / "text"]
                         + ([Path(phone_recognizer) / MODEL_FILE] if phone_recognizer else [])
                         + [Path(m) for m in models.values() if m])
    settings = {"mode": mode, "phone_recognizer": str(phone_recognizer) if phone_recognizer else None,
                "with_f0": with_f0, "optional_models": models, "per_speaker": utt2spk_path.is_file(),
                "language": language, "allow_subset": allow_subset, "mcep": MCEP_CONVENTION}
    scoring = {"scoring": SCORING_VERSION, "analysis": repr(DEFAULT_ANALYSIS)}  # what computed them
    settings.update(scoring)
    ref_scp, gen_scp = read_kv(ref_dir / "wav.scp"), read_kv(gen_dir / "wav.scp")
    utts = match_utts(ref_scp, gen_scp, allow_subset)
    piped = [str(p) for p in scps if inputs[str(p)]["pipes"]]
    if piped:
        print(f"[evaluate] {' and '.join(piped)} read audio through commands ('... |'), which have no date to "
              "compare: scoring afresh")
    fresh = overwrite or bool(piped)
    if out.exists() and not fresh:
        old = read_json(out)
        same = old.get("inputs") == inputs and old.get("settings") == settings
        if same and not utt_table_path(out).is_file():  # shared.compare and RESULTS.md read it
            print(f"[evaluate] {utt_table_path(out)} is missing: scoring again (the signal metrics are reused)")
        elif same and phone_recognizer and not has_phone_counts(utt_table_path(out)):
            print(f"[evaluate] {utt_table_path(out)} has no phone counts (written before they were): scoring again "
                  "(the signal metrics are reused; the phone recogniser and any model-based metrics run again)")
        elif same:
            print(f"[evaluate] {out} is up to date; nothing to do{' but the plots' if plots_dir else ''} "
                  "(--overwrite to recompute)")
            if plots_dir:  # asked for now, perhaps not when the metrics were made
                make_plots(Path(plots_dir), utts[:num_plots], ref_scp, gen_scp)
            return old
    t0 = time.time()
    if phone_recognizer:  # before the signal metrics, as the optional models below: found after them, it was a traceback
        check_phone_scoring(phone_recognizer, ref_token_file, utts)
    try:  # before the signal metrics: a model asked for that does not load stops the run at once
        available, skipped = load_optional_metrics(optional_models or {})
    except OptionalModelError as e:
        raise EvaluationError(str(e)) from e
    if skipped:  # one line, as a recipe scores several systems
        print("[evaluate] model-based metrics skipped: " + "; ".join(f"{name}: {why['skipped']}"
                                                                    for name, why in skipped.items()), file=sys.stderr)
    signal_key = {"mode": mode, "with_f0": with_f0, "mcep": MCEP_CONVENTION, **scoring,
                  "inputs": {str(p): inputs[str(p)] for p in scps}}
    rows = None if fresh else reusable_signal_rows(out, signal_key, utts)
    if rows is not None:
        print(f"[evaluate] signal metrics of {len(utts)} utts reused from {signal_rows_path(out)} (same audio)")
    else:
        jobs = [(u, ref_scp[u], gen_scp[u], mode, with_f0, str(ref_cache) if ref_cache else None) for u in utts]
        rows = run_utt_metrics(jobs, nj)
        write_json(signal_rows_path(out), {"key": signal_key, "rows": rows})
    by_utt = {r["utt"]: r for r in rows}
    corpus: dict[str, Any] = {}
    summary: dict[str, Any] = {"mode": mode, "ref_dir": str(ref_dir), "gen_dir": str(gen_dir), "num_utts": len(utts),
                               "sample_rate": EVAL_RATE}

    # intelligibility: PER of generated and of real audio with the same recogniser
    if phone_recognizer:
        from shared.phone_recognizer.score import LoadedRecognizer, score_dir

        rec = LoadedRecognizer(phone_recognizer)
        phones = {}
        for tag, d in (("gen", gen_dir), ("ref", ref_dir)):
            with errors_named(f"phone scoring of {d}", EvaluationError):
                res = score_dir(phone_recognizer, d, ref_token_file, recognizer=rec, utts=utts)
            corpus[f"per_{tag}"] = res["per"]
            summary[f"phone_errors_{tag}"] = res["errors"]
            for u, r in res["utts"].items():
                # the counts a PER pooled over any set of utterances needs; never averaged (report.COUNTS)
                by_utt[u].update({f"per_{tag}": r["per"], f"phone_errors_{tag}": r["errors"], "ref_phones": r["ref_len"]})
            phones[tag] = {u: (res["utts"][u]["errors"], res["utts"][u]["ref_len"]) for u in utts}
        # how many times the real audio's errors the generated audio makes, with a 95% interval over the
        # utterances (bootstrap; exact where the generated or the real audio has under 5 errors): with a few dozen errors in
        # either, the ratio alone says little
        corpus["per_ratio"], summary["per_ratio_ci"], summary["per_ratio_ci_method"] = ratio_ci(
            *(np.array([phones[tag][u][0] for u in utts]) for tag in ("gen", "ref")))
        # the digests let shared.compare refuse PERs of two systems scored by different recognisers or tokens
        summary["phone_recognizer"] = {"exp_dir": str(phone_recognizer), "ref_token_file": str(ref_token_file),
                                       "model_sha256": file_sha256(Path(phone_recognizer) / MODEL_FILE),
                                       "ref_token_file_sha256": file_sha256(ref_token_file)}
    else:
        phones = None
        summary["phone_recognizer"] = {"skipped": "no --phone-recognizer given"}

    summary["optional_metrics"] = {**optional_scores(available, ref_dir, utts, ref_scp, gen_scp, by_utt, language, corpus),
                                   **skipped}

    summary["metrics"] = aggregate(by_utt[u] for u in utts)
    if settings["per_speaker"]:
        summary["speakers"] = speaker_breakdown(utts, by_utt, read_kv(utt2spk_path), phones)
    summary["corpus"] = corpus
    summary["elapsed_s"] = round(time.time() - t0, 2)
    summary["settings"], summary["inputs"] = settings, inputs
    summary["recipe"] = ("MCD-DTW: warped cepstra c1..c24 (alpha 0.42), 32 ms Hann / 10 ms hop, Euclidean DTW; "
                         "F0: librosa.pyin 60-500 Hz on the same frames and DTW path; see shared/metrics/spectral.py")
    write_utt_table(utt_table_path(out), [by_utt[u] for u in utts])
    if plots_dir:
        make_plots(Path(plots_dir), utts[:num_plots], ref_scp, gen_scp)
    summary = json_safe(summary)  # what a rerun reads back from metrics.json
    write_json(out, summary)
    return summary


def optional_scores(available: dict[str, Any], ref_dir: Path, utts: list[str], ref_scp: dict[str, str],
                    gen_scp: dict[str, str], by_utt: dict[str, dict[str, Any]], language: str | None,
                    corpus: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Score every utterance with the loaded model-based metrics (:mod:`shared.metrics.optional`) into ``by_utt``;
    returns their ``metrics.json`` entries. Whisper's WER also goes into ``corpus``: its errors over its reference
    words, as WER is defined (the mean of the utterances' rates weights a two-word one as much as a forty-word one)."""
    enabled: dict[str, dict[str, Any]] = {k: {"enabled": True} for k in available}
    if not available:
        return enabled
    langs = dict.fromkeys(utts, "en")
    text = read_kv(ref_dir / "text") if (ref_dir / "text").exists() else {}
    if "whisper_wer" in available:  # an empty reference would make the WER infinite, then dropped as nan
        if not (ref_dir / "text").is_file():
            raise EvaluationError(f"whisper_wer needs the reference text: {ref_dir / 'text'} not found")
        no_text = [u for u in utts if not text.get(u, "").strip()]
        if no_text:
            raise EvaluationError(f"{ref_dir / 'text'}: no text for {len(no_text)} utterance(s) (whisper_wer "
                                  f"needs it): {', '.join(no_text[:20])}")
        langs, source = utt_languages(ref_dir, utts, language)
        counts = {c: sum(v == c for v in langs.values()) for c in sorted(set(langs.values()))}
        enabled["whisper_wer"].update(languages=counts, language_source=source)
        print(f"[evaluate] whisper_wer: utterances per language {counts}, from {source}")
    for u in utts:
        with errors_named(f"utterance {u} (reference {ref_scp[u]}, generated {gen_scp[u]})", EvaluationError):
            ref, gen = _load(ref_scp[u]), _load(gen_scp[u])
            for fn in available.values():
                by_utt[u].update(fn(ref, gen, text.get(u, ""), langs[u]))
        if "whisper_wer" in available:
            by_utt[u]["whisper_language"] = langs[u]
    if "whisper_wer" in available:
        errors, words = (sum(by_utt[u][k] for u in utts) for k in ("whisper_errors", "whisper_words"))
        enabled["whisper_wer"].update(errors=errors, words=words)
        corpus["whisper_wer"] = errors / words if words else float("nan")  # no words at all: null in metrics.json
    return enabled


def make_plots(plots_dir: Path, utts: list[str], ref_scp: dict[str, str], gen_scp: dict[str, str]) -> None:
    """Mel spectrograms side by side and the MCD-DTW path of the first few utterances."""
    import torch

    from shared.features import MelSpectrogram
    from shared.metrics.spectral import mcd_dtw, mel_cepstrum
    from shared.plots import plot_alignment, plot_mel_comparison

    mel = MelSpectrogram(EVAL_RATE, n_fft=1024, hop_length=256, n_mels=80)
    for u in utts:
        ref, gen = _load(ref_scp[u]), _load(gen_scp[u])
        with torch.no_grad():
            m_ref, m_gen = mel(torch.from_numpy(ref)).numpy(), mel(torch.from_numpy(gen)).numpy()
        plot_mel_comparison(m_ref, m_gen, plots_dir / f"{u}_mel.png", title=u)
        c_ref, c_gen = mel_cepstrum(ref), mel_cepstrum(gen)
        mcd, path = mcd_dtw(c_ref, c_gen)
        plot_alignment(path, plots_dir / f"{u}_dtw.png", shape=(len(c_ref), len(c_gen)),
                       title=f"{u}: MCD-DTW {mcd:.2f} dB", ylabel="reference frame", xlabel="generated frame")


def per_ratio_line(res: dict[str, Any]) -> str:
    """The PER ratio of a summary with its interval (:func:`shared.compare.format_ratio`), e.g. ``PER synth / real
    5.00x [0.56x, 236.49x] (exact) (5 / 1 phone errors)``; as metrics.json holds it (an infinite value is null)."""
    from shared.compare import format_ratio

    method = res.get("per_ratio_ci_method", "bootstrap")  # (a metrics.json from before the exact interval)
    return (f"PER synth / real {format_ratio(res['corpus']['per_ratio'], res['per_ratio_ci'], method)} "
            f"({res['phone_errors_gen']} / {res['phone_errors_ref']} phone errors)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref-dir", required=True, help="reference data dir (wav.scp; token for PER)")
    p.add_argument("--gen-dir", required=True, help="generated data dir (wav.scp)")
    p.add_argument("--out", required=True, help="metrics.json to write")
    p.add_argument("--mode", choices=["tts", "codec"], default="tts")
    p.add_argument("--phone-recognizer", default=None, help="exp dir of shared.phone_recognizer.train")
    p.add_argument("--ref-token-file", default=None, help="reference tokens (default REF_DIR/token)")
    p.add_argument("--plots-dir", default=None)
    p.add_argument("--num-plots", type=int, default=3)
    p.add_argument("--nj", type=int, default=2, help="worker processes for per-utterance metrics")
    p.add_argument("--no-f0", action="store_true", help="skip pYIN F0 / voicing metrics")
    p.add_argument("--allow-subset", action="store_true", help="score only the generated subset of the references")
    p.add_argument("--whisper-model", default=None, help="local openai-whisper checkpoint (or $FLOWTTS_WHISPER_MODEL)")
    p.add_argument("--speaker-model", default=None, help="local speechbrain ECAPA dir (or $FLOWTTS_SPK_MODEL)")
    p.add_argument("--utmos-model", default=None, help="local TorchScript MOS model (or $FLOWTTS_UTMOS_MODEL)")
    p.add_argument("--language", default=None,
                   help="espeak-ng language (en-us, fr-fr, ...) Whisper transcribes the utterances in where REF_DIR "
                        "has no utt2lang (default: English)")
    p.add_argument("--ref-cache", default=None, metavar="DIR",
                   help="keep the references' spectral and F0 analyses here for the next evaluation against them "
                        "(another system, or codec then TTS), keyed by the audio's samples and the analysis settings")
    p.add_argument("--overwrite", action="store_true")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # work is parallel over utterances (--nj) instead
    try:
        res = evaluate(a.ref_dir, a.gen_dir, a.out, a.mode, a.phone_recognizer, a.ref_token_file, a.plots_dir, a.nj,
                       not a.no_f0, a.allow_subset, {"whisper_wer": a.whisper_model, "spk_sim": a.speaker_model,
                                                     "utmos": a.utmos_model}, a.overwrite, a.num_plots,
                       ref_cache=a.ref_cache, language=a.language)
    except EvaluationError as e:
        print(f"[evaluate] error: {e}", file=sys.stderr)
        return 1
    shown = {k: round(v["mean"], 4) for k, v in res["metrics"].items()  # a corpus-level value shown as such, below
             if "mean" in v and not k.endswith("seconds") and k not in res.get("corpus", {})}
    print(f"[evaluate] {res['num_utts']} utts -> {a.out}: {shown} {res.get('corpus', {})}")
    if res.get("per_ratio_ci"):
        print(f"[evaluate] {per_ratio_line(res)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
