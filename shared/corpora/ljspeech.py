"""LJSpeech-1.1 -> Kaldi data dirs.

::

    python -m shared.corpora.ljspeech --corpus-dir /path/LJSpeech-1.1 --data-dir data [--num-dev 250]
        [--num-test 250] [--text normalized|raw]

Reads ``metadata.csv`` (``id|raw transcript|normalized transcript``) and ``wavs/<id>.wav``. One speaker
``LJ``; utterance ids are the corpus ids (``LJ001-0001``), which already begin with it. Split as ESPnet
does: the last ``num_dev + num_test`` utterances (by id) are held out, the first ``num_dev`` of them are
``dev``, the rest ``test``; everything else is ``train``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.corpora.common import (CorpusError, Utterance, check_counts, clean_transcript, decode_utf8, require, summary,
                                   write_splits)

SPEAKER = "LJ"


def read_ljspeech(corpus_dir: Path, text: str = "normalized") -> list[Utterance]:
    """All utterances, sorted by id; errors list every malformed line and missing wav."""
    corpus_dir = Path(corpus_dir)
    meta = require(corpus_dir / "metadata.csv", "LJSpeech metadata", "expected LJSpeech-1.1/metadata.csv")
    require(corpus_dir / "wavs", "LJSpeech wav directory", "expected LJSpeech-1.1/wavs/")
    utts, problems = [], []
    with open(meta, "rb") as f:
        for lineno, raw_line in enumerate(f, 1):
            line = decode_utf8(raw_line, f"{meta}:{lineno}", problems)
            if line is None:
                continue
            fields = line.rstrip("\n").rstrip("\r").split("|")
            if not 2 <= len(fields) <= 3 or not fields[0]:  # a '|' inside a text would shift the fields silently
                problems.append(f"{meta}:{lineno}: {len(fields)} '|'-separated field(s), expected 'id|raw|normalized'")
                continue
            raw = fields[1]
            norm = fields[2] if len(fields) > 2 else ""
            transcript = clean_transcript(norm if text == "normalized" and norm.strip() else raw)
            wav = corpus_dir / "wavs" / f"{fields[0]}.wav"
            if not wav.is_file():
                problems.append(f"{meta}:{lineno}: {fields[0]}: wav not found: {wav}")
                continue
            if not transcript:
                problems.append(f"{meta}:{lineno}: {fields[0]}: empty transcript")
                continue
            utts.append(Utterance(fields[0], SPEAKER, wav, transcript))
    if problems:
        raise CorpusError(f"{len(problems)} problem(s) in {corpus_dir}:\n  " + "\n  ".join(problems))
    return sorted(utts, key=lambda u: u.utt)


def prepare_ljspeech(corpus_dir: Path, data_dir: Path, num_dev: int = 250, num_test: int = 250,
                     text: str = "normalized") -> dict:
    check_counts({"--num-dev": num_dev, "--num-test": num_test})
    utts = read_ljspeech(corpus_dir, text)
    if num_dev + num_test >= len(utts):
        raise CorpusError(f"{corpus_dir}: {len(utts)} utterances, cannot hold out {num_dev} + {num_test}")
    held = len(utts) - num_dev - num_test
    splits = {"train": utts[:held], "dev": utts[held : held + num_dev], "test": utts[held + num_dev :]}
    return write_splits(data_dir, splits)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.corpora.ljspeech", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus-dir", type=Path, required=True, help="the LJSpeech-1.1 directory")
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--num-dev", type=int, default=250)
    p.add_argument("--num-test", type=int, default=250)
    p.add_argument("--text", choices=["normalized", "raw"], default="normalized")
    args = p.parse_args(argv)
    try:
        dirs = prepare_ljspeech(args.corpus_dir, args.data_dir, args.num_dev, args.num_test, args.text)
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(summary("ljspeech", dirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
