"""Helpers shared by the corpus preparation scripts."""

from __future__ import annotations

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
