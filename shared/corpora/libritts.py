"""LibriTTS (or LibriTTS-R, same layout) -> Kaldi data dirs.

::

    python -m shared.corpora.libritts --corpus-dir /path/LibriTTS --data-dir data \\
        [--train-sets train-clean-100[,train-clean-360]] [--dev-sets dev-clean] [--test-sets test-clean] \\
        [--text normalized|original]

Layout: ``<corpus>/<subset>/<speaker>/<chapter>/<spk>_<chapter>_<par>_<sent>.wav`` with
``.normalized.txt`` (and ``.original.txt``) beside each wav. Subsets are merged into ``data/train``,
``data/dev`` and ``data/test``. Utterance ids are ``<spk>-<chapter>_<par>_<sent>`` (the ``-`` after the
speaker id keeps speakers contiguous when sorted: ``103-...`` < ``1034-...``). A wav without a transcript (or with an
empty one) and a hidden file (LibriTTS-R ships macOS ``._*.wav`` metadata files beside the audio) are skipped and
listed in ``<data-dir>/local/libritts_skipped.txt``, as VCTK's untranscribed files are; audio that cannot be read
stops the preparation, naming it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.corpora.common import (CorpusError, Utterance, clean_transcript, decode_utf8, require, summary,
                                   write_skipped, write_splits)


def read_subset(corpus_dir: Path, subset: str, text: str = "normalized") -> tuple[list[Utterance], list[str]]:
    """``(utterances, skipped)`` of one subset (e.g. ``dev-clean``): the wavs with a transcript, and 'path: reason'
    for the rest; a file named otherwise than its speaker directory is an error."""
    root = require(Path(corpus_dir) / subset, f"LibriTTS subset '{subset}'",
                   f"expected {Path(corpus_dir) / subset}/<speaker>/<chapter>/*.wav")
    utts, skipped, problems = [], [], []
    for wav in sorted(root.glob("*/*/*.wav")):
        if wav.name.startswith("."):  # pathlib's glob matches hidden files too
            skipped.append(f"{wav}: a hidden file (macOS metadata, not audio)")
            continue
        spk, chapter = wav.parent.parent.name, wav.parent.name
        base = wav.name[: -len(".wav")]
        txt = wav.with_name(f"{base}.{text}.txt")
        if not txt.is_file():
            skipped.append(f"{wav}: no transcript {txt.name}")
            continue
        text_read = decode_utf8(txt.read_bytes(), str(txt), problems)
        if text_read is None:
            continue
        transcript = clean_transcript(text_read)
        if not transcript:
            skipped.append(f"{wav}: empty transcript {txt.name}")
            continue
        prefix = f"{spk}_"
        if not base.startswith(prefix):
            problems.append(f"{wav}: file name does not start with the speaker directory name '{spk}'")
            continue
        utts.append(Utterance(f"{spk}-{base[len(prefix):]}", spk, wav, transcript))
    if problems:
        raise CorpusError(f"{len(problems)} problem(s) in {root}:\n  " + "\n  ".join(problems))
    if not utts:
        raise CorpusError(f"no transcribed wavs under {root} (expected <speaker>/<chapter>/*.wav with "
                          f".{text}.txt beside each)")
    return utts, skipped


def prepare_libritts(corpus_dir: Path, data_dir: Path, train_sets: list[str], dev_sets: list[str],
                     test_sets: list[str], text: str = "normalized") -> dict:
    require(Path(corpus_dir), "LibriTTS directory")
    parts, skipped = {}, []
    for name, subsets in (("train", train_sets), ("dev", dev_sets), ("test", test_sets)):
        for subset in subsets:  # every subset read before anything is written
            utts, gone = read_subset(corpus_dir, subset, text)
            parts.setdefault(name, []).extend(utts)
            skipped += gone
    write_skipped(data_dir, "libritts", skipped, "file(s) without a transcript, or hidden")
    return write_splits(data_dir, {name: parts.get(name, []) for name in ("train", "dev", "test")})


def _sets(value: str) -> list[str]:
    return [s for s in value.split(",") if s]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.corpora.libritts", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus-dir", type=Path, required=True, help="the LibriTTS directory (holds the subsets)")
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--train-sets", type=_sets, default=["train-clean-100"])
    p.add_argument("--dev-sets", type=_sets, default=["dev-clean"])
    p.add_argument("--test-sets", type=_sets, default=["test-clean"])
    p.add_argument("--text", choices=["normalized", "original"], default="normalized")
    args = p.parse_args(argv)
    try:
        dirs = prepare_libritts(args.corpus_dir, args.data_dir, args.train_sets, args.dev_sets, args.test_sets,
                                args.text)
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(summary("libritts", dirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
