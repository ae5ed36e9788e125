"""VCTK -> Kaldi data dirs (0.92 ``wav48_silence_trimmed/*.flac`` layout or the older ``wav48/*.wav``).

::

    python -m shared.corpora.vctk --corpus-dir /path/VCTK-Corpus-0.92 --data-dir data [--mic mic1] \\
        [--num-dev-per-spk 5] [--num-test-per-spk 5] [--heldout-speakers p225,p226]

Layouts: ``wav48_silence_trimmed/<spk>/<spk>_<nnn>_<mic>.flac`` (0.92) or ``wav48/<spk>/<spk>_<nnn>.wav``
(VCTK-Corpus), with ``txt/<spk>/<spk>_<nnn>.txt``. Audio without a transcript (all of p315 in 0.92, a few
single files) is skipped and listed in ``<data-dir>/local/vctk_skipped.txt``. For every seen speaker the
last ``num_test`` utterances (by id) go to ``test``, the ``num_dev`` before them to ``dev``; held-out
speakers go whole to ``test_unseen``. Utterance ids are ``<spk>-<nnn>``.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from shared.corpora.common import (CorpusError, Utterance, check_counts, clean_transcript, decode_utf8, require,
                                   skipped_listing, summary, write_skipped, write_splits)


def find_audio(corpus_dir: Path, mic: str = "mic1") -> tuple[str, list[tuple[str, str, Path]]]:
    """``(layout, [(spk, nnn, path)])`` for whichever layout the corpus has."""
    new, old = corpus_dir / "wav48_silence_trimmed", corpus_dir / "wav48"
    if new.is_dir():
        suffix = f"_{mic}.flac"
        files = [(p.parent.name, p.name[len(p.parent.name) + 1 : -len(suffix)], p)
                 for p in sorted(new.glob(f"*/*{suffix}"))]
        return "0.92", files
    if old.is_dir():
        return "old", [(p.parent.name, p.stem[len(p.parent.name) + 1 :], p) for p in sorted(old.glob("*/*.wav"))]
    raise CorpusError(f"VCTK audio not found: neither {new} (VCTK 0.92) nor {old} (VCTK-Corpus) exists")


def read_vctk(corpus_dir: Path, mic: str = "mic1") -> tuple[list[Utterance], list[str]]:
    """``(utterances, skipped)``: utterances with a transcript, and 'path: reason' for the rest."""
    corpus_dir = Path(corpus_dir)
    require(corpus_dir, "VCTK directory")
    txt_dir = require(corpus_dir / "txt", "VCTK transcripts", "expected txt/<spk>/<spk>_<nnn>.txt")
    layout, files = find_audio(corpus_dir, mic)
    if not files:
        raise CorpusError(f"no audio files found in {corpus_dir} ({layout} layout, mic {mic})")
    utts, skipped, problems = [], [], []
    if layout == "0.92":  # a speaker recorded on the other microphone only would vanish from every split unsaid
        have = {spk for spk, _, _ in files}
        for spk_dir in sorted(p for p in (corpus_dir / "wav48_silence_trimmed").iterdir() if p.is_dir()):
            if spk_dir.name not in have and any(spk_dir.glob("*.flac")):
                skipped.append(f"{spk_dir}: no {mic} recordings (only the other microphone's)")
    for spk, nnn, path in files:
        txt = txt_dir / spk / f"{spk}_{nnn}.txt"
        if not txt.is_file():
            skipped.append(f"{path}: no transcript {txt}")
            continue
        text_read = decode_utf8(txt.read_bytes(), str(txt), problems)  # was read with U+FFFD for each bad byte
        if text_read is None:
            continue
        transcript = clean_transcript(text_read)
        if not transcript:
            skipped.append(f"{path}: empty transcript {txt}")
            continue
        utts.append(Utterance(f"{spk}-{nnn}", spk, path, transcript))
    if problems:
        raise CorpusError(f"{len(problems)} problem(s) in {txt_dir}:\n  " + "\n  ".join(problems))
    return utts, skipped


def prepare_vctk(corpus_dir: Path, data_dir: Path, mic: str = "mic1", num_dev: int = 5, num_test: int = 5,
                 heldout_speakers: list[str] | None = None) -> dict:
    check_counts({"--num-dev-per-spk": num_dev, "--num-test-per-spk": num_test})
    utts, skipped = read_vctk(corpus_dir, mic)
    by_spk: dict[str, list[Utterance]] = defaultdict(list)
    for u in utts:
        by_spk[u.spk].append(u)
    heldout = set(heldout_speakers or [])
    unknown = sorted(heldout - set(by_spk))
    if unknown:
        raise CorpusError(f"held-out speaker(s) without transcribed {mic} utterances in {corpus_dir}: {', '.join(unknown)} "
                          f"(see {skipped_listing(data_dir, 'vctk')} once prepared without them)")
    splits: dict[str, list[Utterance]] = {"train": [], "dev": [], "test": [], "test_unseen": []}
    for spk, spk_utts in sorted(by_spk.items()):
        spk_utts.sort(key=lambda u: u.utt)
        if spk in heldout:
            splits["test_unseen"].extend(spk_utts)
            continue
        n_train = len(spk_utts) - num_dev - num_test
        if n_train < 1:
            raise CorpusError(f"speaker {spk} has {len(spk_utts)} utterances; cannot hold out {num_dev}+{num_test}")
        splits["train"] += spk_utts[:n_train]
        splits["dev"] += spk_utts[n_train : n_train + num_dev]
        splits["test"] += spk_utts[n_train + num_dev :]
    write_skipped(data_dir, "vctk", skipped, f"audio file(s) or speaker(s) without transcript or {mic} recordings")
    return write_splits(data_dir, splits)  # test_unseen without held-out speakers: an earlier one's is removed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.corpora.vctk", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus-dir", type=Path, required=True, help="VCTK-Corpus-0.92 or VCTK-Corpus directory")
    p.add_argument("--data-dir", type=Path, default=Path("data"))
    p.add_argument("--mic", default="mic1", choices=["mic1", "mic2"], help="0.92 layout only")
    p.add_argument("--num-dev-per-spk", type=int, default=5)
    p.add_argument("--num-test-per-spk", type=int, default=5)
    p.add_argument("--heldout-speakers", default="", help="comma-separated speakers for data/test_unseen")
    args = p.parse_args(argv)
    try:
        dirs = prepare_vctk(args.corpus_dir, args.data_dir, args.mic, args.num_dev_per_spk, args.num_test_per_spk,
                            [s for s in args.heldout_speakers.split(",") if s])
    except CorpusError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(summary("vctk", dirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
