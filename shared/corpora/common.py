"""Helpers shared by the corpus preparation scripts."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from shared.audio import AudioError, audio_info
from shared.datadir import DataDir
from shared.io import PathLike, atomic_write


class CorpusError(ValueError):
    """The corpus on disk is not where or what it should be; the message names the path."""


@dataclass(frozen=True)
class Utterance:
    utt: str
    spk: str
    wav: Path
    text: str


def require(path: Path, what: str, hint: str = "") -> Path:
    """Return ``path`` if it exists, else raise CorpusError naming it (and what was expected there)."""
    if not path.exists():
        raise CorpusError(f"{what} not found: {path}" + (f" ({hint})" if hint else ""))
    return path


def clean_transcript(text: str) -> str:
    return " ".join(text.split())


def decode_utf8(data: bytes, where: str, problems: list[str]) -> str | None:
    """``data`` decoded as UTF-8, or None with ``where: not valid UTF-8 (...)`` added to ``problems``: a transcript in
    another encoding is reported with the file (and line) it is in, with every other such one, not as a traceback."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        problems.append(f"{where}: not valid UTF-8 (byte 0x{data[e.start]:02x} at position {e.start})")
        return None


def duration(path: Path) -> float:
    frames, rate = audio_info(path)
    return frames / rate


def write_data_dir(data_dir: Path, utts: Iterable[Utterance], with_utt2dur: bool = True) -> DataDir:
    """Write a Kaldi data dir (absolute wav paths, sorted, atomic); errors list every bad utterance."""
    utts = list(utts)
    if not utts:
        raise CorpusError(f"no utterances for {data_dir}")
    seen: dict[str, Utterance] = {}
    problems: list[str] = []
    for u in utts:
        if not u.utt.startswith(u.spk):
            problems.append(f"{u.utt}: utterance id does not start with speaker id {u.spk!r}")
        if u.utt in seen:
            problems.append(f"{u.utt}: duplicate utterance id ({seen[u.utt].wav} and {u.wav})")
        if not u.text:
            problems.append(f"{u.utt}: empty transcript ({u.wav})")
        seen[u.utt] = u
    durations: dict[str, float] = {}
    if with_utt2dur:
        for u in utts:
            try:
                durations[u.utt] = duration(u.wav)
            except AudioError as e:
                problems.append(f"{u.utt}: {e}")
    if problems:
        raise CorpusError(f"{data_dir}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    data = DataDir(
        wav_scp={u.utt: str(Path(u.wav).resolve()) for u in utts},
        text={u.utt: u.text for u in utts},
        utt2spk={u.utt: u.spk for u in utts},
        utt2dur=durations,
    )
    data.save(data_dir)
    return data


def write_splits(data_dir: PathLike, splits: dict[str, list[Utterance]]) -> dict[str, DataDir]:
    """Write each split that has utterances as ``data_dir/<name>`` (:func:`write_data_dir`), then remove an earlier
    preparation's directory of a split that now has none: a rerun with ``--num-dev 0`` must not leave the old dev
    set, whose utterances are now in train, for the next stages to validate on."""
    written = {name: write_data_dir(Path(data_dir) / name, part) for name, part in splits.items() if part}
    for name, part in splits.items():
        if not part and (Path(data_dir) / name).is_dir():
            shutil.rmtree(Path(data_dir) / name)
    return written


def check_counts(counts: dict[str, int]) -> None:
    """Refuse (CorpusError) a negative count of held-out utterances (``{"--num-dev": -2}``, named by its option): a
    negative one slices from the other end, putting the same utterances in train and in test."""
    for option, value in counts.items():
        if value < 0:
            raise CorpusError(f"{option} {value}: must be 0 or more")


def skipped_listing(data_dir: PathLike, corpus: str) -> Path:
    """Where a corpus's preparation lists the files it skipped: ``<data-dir>/local/<corpus>_skipped.txt``."""
    return Path(data_dir) / "local" / f"{corpus}_skipped.txt"


def write_skipped(data_dir: PathLike, corpus: str, skipped: list[str], what: str) -> None:
    """List the skipped files ('path: reason' lines) in :func:`skipped_listing` (written, empty too, so that none
    of an earlier preparation's stays), and say on stderr how many and ``what`` they were."""
    listing = skipped_listing(data_dir, corpus)
    with atomic_write(listing) as f:
        f.writelines(line + "\n" for line in skipped)
    if skipped:
        print(f"{corpus}: skipped {len(skipped)} {what} (listed in {listing})", file=sys.stderr)


def summary(name: str, dirs: dict[str, DataDir]) -> str:
    parts = []
    for split, d in dirs.items():
        hours = sum(d.utt2dur.values()) / 3600 if d.utt2dur else float("nan")
        parts.append(f"{split}: {len(d)} utts, {len(d.speakers)} speakers, {hours:.2f} h")
    return f"{name}: " + "; ".join(parts)
