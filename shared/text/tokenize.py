"""Turn a data directory's transcripts into token sequences (and build or check the vocabulary).

::

    python -m shared.text.tokenize --data-dir data/train --frontend phoneme --language en-us \\
        --out data/train/token --build-vocab exp/tokens.txt --save-config exp/frontend.yaml
    python -m shared.text.tokenize --data-dir data/test --config exp/frontend.yaml \\
        --out data/test/token --vocab exp/tokens.txt

Writes ``<utt> tok tok ...`` lines (Kaldi text file, sorted, atomic; the word boundary is ``▁``).
Where the data dir has ``utt2lang`` (``<utt> <espeak-ng language>``; or ``--utt2lang FILE``), each utterance is
phonemised in its own language (the frontend's other settings unchanged), so a British voice's transcripts
say what it speaks (``en-gb-x-rp``: ``bˈɑːθ``) rather than the American phones of the same words (``bˈæθ``).
An utterance without an entry is an error naming it; ``--ignore-utt2lang`` phonemises everything in
``--language``. A data dir without ``utt2lang`` (a new test set, say) whose ``utt2spk`` names voices of the
training data takes their languages from the frontend config (``speaker_languages``, which ``--build-vocab``
records), so it is tokenised the way those voices were trained.
With ``--vocab`` every utterance with a symbol outside the vocabulary is listed in one error (exit 1)
unless ``--map-unknown`` maps them to ``<unk>``. With ``--build-vocab`` the vocabulary is built from these
tokens (use it on the training set only).

The frontend config travels with the vocabulary: ``--build-vocab DIR/tokens.txt`` also writes
``DIR/frontend.yaml`` (unless ``--save-config`` names another path), and ``--vocab DIR/tokens.txt`` without
``--config`` starts from ``DIR/frontend.yaml`` when it exists (explicit flags still override it), so dev/test
sets and synthesis are tokenised exactly like the training set.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

from shared.io import read_kv, write_kv
from shared.text.frontend import Frontend, SPACE
from shared.text.inventory import base_symbols
from shared.text.vocab import UNK, UnknownTokenError, Vocab


class TokenizeError(ValueError):
    """``utts``: the utterances it is about, for a caller that can say where they came from (a text file's lines)."""

    def __init__(self, message: str, utts: Sequence[str] = ()):
        super().__init__(message)
        self.utts = list(utts)


def tokenize_texts(frontend: Frontend, utt2text: dict[str, str], batch_size: int = 2000) -> dict[str, list[str]]:
    """Tokens for every utterance (batched); raises TokenizeError listing utterances with no tokens."""
    utts = list(utt2text)
    out: dict[str, list[str]] = {}
    for start in range(0, len(utts), batch_size):
        chunk = utts[start : start + batch_size]
        for utt, toks in zip(chunk, frontend.tokens_batch([utt2text[u] for u in chunk])):
            out[utt] = toks
    empty = [u for u in utts if not any(t != SPACE for t in out[u])]
    if empty:
        shown = "\n  ".join(f"{u}: {utt2text[u]!r}" for u in empty)
        raise TokenizeError(f"{len(empty)} utterance(s) produced no tokens:\n  {shown}", empty)
    return out


def tokenize_by_language(frontend: Frontend, utt2text: dict[str, str], utt2lang: dict[str, str] | None,
                         frontends: dict[str, Frontend] | None = None) -> dict[str, list[str]]:
    """:func:`tokenize_texts` per language of ``utt2lang`` (one frontend each, otherwise configured like
    ``frontend``; ``frontends`` keeps them for the next call); with ``utt2lang`` None everything in
    ``frontend``'s language. Raises TokenizeError naming utterances that have no language."""
    if utt2lang is None:
        return tokenize_texts(frontend, utt2text)
    missing = sorted(set(utt2text) - set(utt2lang))
    if missing:
        raise TokenizeError(f"utt2lang has no language for {len(missing)} utterance(s): {', '.join(missing[:20])}")
    out: dict[str, list[str]] = {}
    frontends = {} if frontends is None else frontends
    frontends.setdefault(frontend.config.language, frontend)
    for lang in sorted(set(utt2lang[u] for u in utt2text)):
        if lang not in frontends:
            frontends[lang] = Frontend.from_config(frontend.config, language=lang)
        fe = frontends[lang]
        out.update(tokenize_texts(fe, {u: t for u, t in utt2text.items() if utt2lang[u] == lang}))
    return {u: out[u] for u in utt2text}


def speaker_languages(utt2lang: dict[str, str], utt2spk: dict[str, str]) -> dict[str, str]:
    """``{speaker: language}`` for the speakers of ``utt2spk`` whose utterances all have one language (a
    speaker heard in several has none: its text needs an explicit language)."""
    langs: dict[str, set[str]] = {}
    for utt, spk in utt2spk.items():
        if utt in utt2lang:
            langs.setdefault(spk, set()).add(utt2lang[utt])
    return {spk: next(iter(v)) for spk, v in sorted(langs.items()) if len(v) == 1}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m shared.text.tokenize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, help="data dir whose 'text' is read")
    p.add_argument("--text", type=Path, help="a Kaldi text file to read instead of DATA_DIR/text")
    p.add_argument("--out", type=Path, required=True, help="token file to write, e.g. data/train/token")
    p.add_argument("--config", type=Path, help="frontend config (YAML/JSON) written by --save-config")
    p.add_argument("--frontend", choices=["phoneme", "char"])
    p.add_argument("--language", help="espeak-ng language, e.g. en-us, en-gb, de, fr-fr, es")
    p.add_argument("--utt2lang", type=Path, help="per-utterance languages (default: DATA_DIR/utt2lang when it exists)")
    p.add_argument("--ignore-utt2lang", action="store_true", help="phonemise every utterance in --language")
    p.add_argument("--stress", choices=["separate", "attached", "none"])
    p.add_argument("--no-punctuation", action="store_true", help="drop punctuation tokens")
    p.add_argument("--keep-case", action="store_true", help="char frontend: do not lowercase")
    vocab = p.add_mutually_exclusive_group()
    vocab.add_argument("--build-vocab", type=Path, help="build tokens.txt from these tokens and write it here")
    p.add_argument("--no-base-symbols", action="store_true",
                   help="with --build-vocab: only the symbols seen in this text, not the frontend's whole known "
                        "symbol set (phone inventory / alphabet + punctuation; see shared/text/inventory.py)")
    vocab.add_argument("--vocab", type=Path, help="check the tokens against this tokens.txt")
    p.add_argument("--map-unknown", action="store_true", help=f"with --vocab: write {UNK} for unknown symbols")
    p.add_argument("--save-config", type=Path,
                   help="write the resolved frontend config (YAML) here (default with --build-vocab: "
                        "frontend.yaml beside the vocabulary)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    text_path = args.text or (args.data_dir / "text" if args.data_dir else None)
    if text_path is None:
        raise SystemExit("give --data-dir or --text")
    if not text_path.is_file():
        raise SystemExit(f"error: transcript file not found: {text_path}")
    cfg: dict = {}
    config_path = args.config
    if config_path is None and args.vocab and (args.vocab.parent / "frontend.yaml").is_file():
        config_path = args.vocab.parent / "frontend.yaml"
    if config_path:
        from shared.config import read_yaml

        cfg = read_yaml(config_path.read_text(encoding="utf-8")) or {}
    for key, value in (("frontend", args.frontend), ("language", args.language), ("stress", args.stress)):
        if value is not None:
            cfg[key] = value
    if args.no_punctuation:
        cfg["punctuation"] = False
    if args.keep_case:
        cfg["lowercase"] = False
    try:
        frontend = Frontend.from_config(cfg)
    except ValueError as e:  # a misspelt key of the config file
        raise ValueError(f"{config_path}: {e}" if config_path else str(e)) from None

    t0 = time.time()
    utt2text = read_kv(text_path)
    utt2lang, lang_source = None, ""
    lang_path = args.utt2lang or (args.data_dir / "utt2lang" if args.data_dir else None)
    spk_path = args.data_dir / "utt2spk" if args.data_dir else None
    utt2spk = read_kv(spk_path) if spk_path and spk_path.is_file() else {}
    known = frontend.config.speaker_languages
    if not args.ignore_utt2lang:
        if lang_path and lang_path.is_file():
            utt2lang, lang_source = read_kv(lang_path), str(lang_path)
        elif known and utt2spk:
            utt2lang = {u: known.get(spk, frontend.config.language) for u, spk in utt2spk.items()}
            lang_source = f"{spk_path} and the frontend's speaker_languages"
    try:
        utt2tokens = tokenize_by_language(frontend, utt2text, utt2lang)
        if args.vocab:
            vocab = Vocab.load(args.vocab)
            ids = vocab.encode_all(utt2tokens, map_unknown=args.map_unknown)
            utt2tokens = {u: vocab.decode(i) for u, i in ids.items()}
    except (TokenizeError, UnknownTokenError, ValueError) as e:
        # where the languages came from: an utterance missing from utt2spk lacks one as much as one missing in utt2lang
        source = f" (the languages from {lang_source})" if isinstance(e, TokenizeError) and lang_source else ""
        print(f"error: {text_path}: {e}{source}", file=sys.stderr)
        return 1
    write_kv(args.out, {u: " ".join(t) for u, t in utt2tokens.items()})
    if args.build_vocab:
        languages = sorted(set(utt2lang.values())) if utt2lang else [frontend.config.language]
        extra = [] if args.no_base_symbols else [sym for lang in languages for sym in base_symbols(
            **{k: getattr(frontend.config, k) for k in ("frontend", "stress", "punctuation", "lowercase")}, language=lang)]
        vocab = Vocab.build([*utt2tokens.values(), extra])
        vocab.save(args.build_vocab)
        print(f"wrote {args.build_vocab} ({len(vocab)} tokens)")
        # the training voices' languages, for synthesis from raw text
        frontend.config.speaker_languages = speaker_languages(utt2lang, utt2spk) if utt2lang else {}
    save_config = args.save_config or (args.build_vocab.parent / "frontend.yaml" if args.build_vocab else None)
    if save_config:
        import yaml
        from shared.io import atomic_write

        with atomic_write(save_config) as f:
            yaml.safe_dump(frontend.to_dict(), f, sort_keys=False, allow_unicode=True)
    n_tok = sum(len(t) for t in utt2tokens.values())
    languages = frontend.config.language
    if utt2lang:
        counts = Counter(utt2lang[u] for u in utt2tokens)
        languages = ", ".join(f"{n} {lang}" for lang, n in sorted(counts.items())) + f" from {lang_source}"
    print(f"wrote {args.out}: {len(utt2tokens)} utterances, {n_tok} tokens "
          f"({frontend.config.frontend}: {languages}) in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
