"""Kaldi data directories: read, write, validate, fix, subset, split and ``utt2dur``.

A data directory holds ``wav.scp`` (``<utt-or-recording> <path>``, or Kaldi's extended filename ``<utt> <command> |``
whose output is the audio), ``text`` (``<utt> <transcript>``), ``utt2spk`` and ``spk2utt``, and optionally
``segments`` (``<utt> <recording> <start> <end>``, seconds; an end of -1 is the recording's end),
``utt2dur``, ``utt2lang`` (``<utt> <espeak-ng language>``, as in ESPnet's multilingual recipes: the text
frontend then phonemises each utterance in its own language or accent, see :mod:`shared.text.tokenize`) and
``token`` (``<utt> <token> <token> ...``, what the frontend made of the text).
Files are sorted by key in C (byte) order, and utterance ids begin with the speaker id so that
sorting by utterance keeps each speaker's utterances together; Kaldi's ``utils/validate_data_dir.sh
--no-feats`` insists on both, and :func:`validate_data_dir` checks the same things (and more), reporting
every problem with its file, line and utterance rather than stopping at the first.

CLI::

    python -m shared.datadir validate data/train [--check-audio --sample-rate 16000]
    python -m shared.datadir fix data/train [--check-audio --sample-rate 16000]
    python -m shared.datadir utt2dur data/train
    python -m shared.datadir subset data/train data/train_100 --first 100
    python -m shared.datadir split data/train 4          # data/train/split4/{1..4}
    python -m shared.datadir combine data/all data/a data/b   # Kaldi's combine_data.sh
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterable, Sequence

from shared.audio import AudioError, audio_info, check_audio, is_pipe, load_audio, read_audio
from shared.io import PathLike, remove_outputs, write_kv

REQUIRED = ("wav.scp", "text", "utt2spk")
# every file this module reads and writes
KNOWN_FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur", "segments", "utt2lang", "token")
OPTIONAL_UTT_TABLES = ("utt2dur", "utt2lang", "token")  # keyed by utterance: when present, every utterance needs a line
KALDI_RESERVED = {"<s>", "</s>", "#0"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a data directory."""

    file: str
    line: int | None
    utt: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {self.utt + ': ' if self.utt else ''}{self.message}"


class DataDirError(ValueError):
    """A data directory failed validation; ``problems`` lists everything that is wrong."""

    def __init__(self, path: PathLike, problems: list[Problem], note: str = ""):
        self.problems = problems
        shown = "\n  ".join(str(p) for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{path}: {len(problems)} problem(s):\n  {shown}{more}" + (f"\n({note})" if note else ""))


@dataclass
class DataDir:
    """In-memory Kaldi data directory; every mapping is keyed by utterance except ``wav_scp`` with segments."""

    wav_scp: dict[str, str]
    text: dict[str, str]
    utt2spk: dict[str, str]
    utt2dur: dict[str, float] = field(default_factory=dict)
    segments: dict[str, tuple[str, float, float]] = field(default_factory=dict)
    utt2lang: dict[str, str] = field(default_factory=dict)
    token: dict[str, str] = field(default_factory=dict)

    # ---- reading and writing -------------------------------------------------------------------
    @classmethod
    def load(cls, path: PathLike, validate: bool = True, skip: tuple[str, ...] = ()) -> "DataDir":
        """Read a data directory; with ``validate`` (default) raise DataDirError listing every problem.

        ``skip``: optional tables read as if absent, neither validated nor loaded: the ones a command is about to
        rebuild (the ``utt2dur`` command would otherwise refuse the very utt2dur it is asked to replace)."""
        path = Path(path)
        if set(skip) - set(OPTIONAL_UTT_TABLES):
            raise ValueError(f"only optional tables can be skipped ({', '.join(OPTIONAL_UTT_TABLES)}), "
                             f"not {sorted(set(skip) - set(OPTIONAL_UTT_TABLES))}")
        if validate:
            problems, tables = _validate(path, skip=skip)
            if problems:
                raise DataDirError(path, problems)
        else:
            tables = _read_tables(path, skip)[0]
        segments = {u: (v[0], float(v[1]), float(v[2])) for u, v in _split_values(tables.get("segments", {})).items()}
        return cls(
            wav_scp=tables["wav.scp"],
            text=tables["text"],
            utt2spk=tables["utt2spk"],
            utt2dur={u: float(d) for u, d in tables.get("utt2dur", {}).items()},
            segments=segments,
            utt2lang=tables.get("utt2lang", {}),
            token=tables.get("token", {}),
        )

    def save(self, path: PathLike) -> None:
        """Write all files sorted by key (``spk2utt`` derived; :func:`validate_data_dir` checks them), each
        atomically (written beside, then renamed over the old one), ``wav.scp`` last: a new directory with one is
        whole (a writer killed midway leaves none).

        Nothing is deleted before its replacement is in place: an old directory's wav.scp may be its only copy (a
        data dir from another Kaldi recipe cannot be regenerated), so a save killed midway leaves it beside some new
        files, a mix that validation reports where their utterances differ. A writer whose wav.scp marks a finished
        output removes it itself before its work (``stage1_vae.decode``). The optional tables this one lacks are
        removed, and before wav.scp is replaced: once the new wav.scp is in, nothing of the old directory is left
        (a stale utt2dur or segments would describe other audio)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        write_kv(path / "text", self.text)
        write_kv(path / "utt2spk", self.utt2spk)
        write_kv(path / "spk2utt", self.spk2utt)
        for name, table in (("utt2dur", _utt2dur_lines(self.utt2dur)),
                            ("segments", {u: f"{r} {s:.3f} {e:.3f}" for u, (r, s, e) in self.segments.items()}),
                            ("utt2lang", self.utt2lang), ("token", self.token)):
            if table:
                write_kv(path / name, table)
            else:
                (path / name).unlink(missing_ok=True)
        write_kv(path / "wav.scp", self.wav_scp)

    # ---- views ---------------------------------------------------------------------------------
    @property
    def utts(self) -> list[str]:
        return sorted(self.utt2spk)

    @property
    def speakers(self) -> list[str]:
        return sorted(set(self.utt2spk.values()))

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for utt in self.utts:
            out.setdefault(self.utt2spk[utt], []).append(utt)
        return out

    def __len__(self) -> int:
        return len(self.utt2spk)

    def audio_source(self, utt: str) -> tuple[str, float | None, float | None]:
        """``(path, start_s, end_s)`` of an utterance; start/end are None without segments (end -1: the recording's
        end)."""
        if self.segments:
            reco, start, end = self.segments[utt]
            return self.wav_scp[reco], start, end
        return self.wav_scp[utt], None, None

    def load_audio(self, utt: str, sample_rate: int) -> "torch.Tensor":  # noqa: F821
        """The utterance's waveform ``(T,)`` at ``sample_rate``."""
        path, start, end = self.audio_source(utt)
        wav = load_audio(path, sample_rate)
        if start is not None:
            # rounded to the nearest sample, as Kaldi's extract-segments does (2.01 s * 16000 is 32159.999...)
            wav = wav[round(start * sample_rate) : (round(end * sample_rate) if end >= 0 else None)]
            if wav.numel() == 0:
                raise AudioError(f"{path}: segment of '{utt}' ({start}-{end} s) is empty")
        return wav

    # ---- subsets -------------------------------------------------------------------------------
    def subset(self, utts: Iterable[str]) -> "DataDir":
        """The utterances in ``utts`` (unknown ids raise KeyError naming them)."""
        keep = set(utts)
        unknown = sorted(keep - set(self.utt2spk))
        if unknown:
            raise KeyError(f"{len(unknown)} utterance(s) not in the data dir: {', '.join(unknown[:10])}")
        segments = {u: s for u, s in self.segments.items() if u in keep}
        recos = {s[0] for s in segments.values()} if self.segments else keep
        return DataDir(
            wav_scp={k: v for k, v in self.wav_scp.items() if k in recos},
            text={u: t for u, t in self.text.items() if u in keep},
            utt2spk={u: s for u, s in self.utt2spk.items() if u in keep},
            utt2dur={u: d for u, d in self.utt2dur.items() if u in keep},
            segments=segments,
            utt2lang={u: lang for u, lang in self.utt2lang.items() if u in keep},
            token={u: t for u, t in self.token.items() if u in keep},
        )

    @classmethod
    def combine(cls, parts: Sequence["DataDir"], names: Sequence[str] | None = None) -> "DataDir":
        """One data dir holding every part's utterances (Kaldi's ``utils/combine_data.sh``). An utterance in two
        parts, or a recording with two different paths, is an error naming it and the parts (``names``); an
        optional table (utt2dur, token) is kept only if every part has it. ``utt2lang`` is an error unless all parts
        have it or none: dropped, it would phonemise the parts that had it in the default language."""
        if not parts:
            raise ValueError("combine: no data dirs given")
        names = list(names) if names is not None else [f"part {i + 1}" for i in range(len(parts))]
        seen: dict[str, str] = {}
        for d, name in zip(parts, names):
            for u in d.utt2spk:
                if u in seen:
                    raise ValueError(f"combine: utterance '{u}' is in both {seen[u]} and {name}")
                seen[u] = name
        langs = [bool(d.utt2lang) for d in parts]
        if any(langs) and not all(langs):
            raise ValueError(f"combine: {', '.join(n for d, n in zip(parts, names) if d.utt2lang)} have utt2lang, "
                             f"{', '.join(n for d, n in zip(parts, names) if not d.utt2lang)} not: write one for each "
                             f"(<utt> <espeak-ng language> lines)")
        if len({bool(d.segments) for d in parts}) > 1:
            raise ValueError(f"combine: {', '.join(n for d, n in zip(parts, names) if d.segments)} have segments, the others not")

        def union(table: str) -> dict:
            out: dict = {}
            owner: dict[str, str] = {}
            for d, name in zip(parts, names):
                for k, v in getattr(d, table).items():
                    if out.get(k, v) != v:  # only a recording shared by segmented parts can repeat
                        raise ValueError(f"combine: '{k}' is in both {owner[k]} and {name} ({table}) with different entries")
                    out[k] = v
                    owner.setdefault(k, name)
            return out

        return cls(**{f.name: union(f.name) if f.name not in OPTIONAL_UTT_TABLES or all(getattr(d, f.name) for d in parts)
                      else {} for f in fields(cls)})

    def split(self, num_parts: int, by_speaker: bool = False) -> list["DataDir"]:
        """Split into ``num_parts`` contiguous parts of (nearly) equal size, optionally whole speakers per part; no
        part is empty (each has at least one speaker, or utterance)."""
        if num_parts < 1:
            raise ValueError("num_parts must be >= 1")
        groups = list(self.spk2utt.values()) if by_speaker else [[u] for u in self.utts]
        if len(groups) < num_parts:
            raise ValueError(f"cannot split {len(groups)} {'speakers' if by_speaker else 'utterances'} into {num_parts} parts")
        parts: list[list[str]] = [[] for _ in range(num_parts)]
        total = sum(len(g) for g in groups)
        done, k = 0, 0
        for i, g in enumerate(groups):  # fill part k until it reaches its share of the total, or until the groups
            # left are only enough for one per later part; a part is never passed over empty
            while k < num_parts - 1 and parts[k] and (done >= total * (k + 1) / num_parts
                                                      or len(groups) - i <= num_parts - 1 - k):
                k += 1
            parts[k].extend(g)
            done += len(g)
        return [self.subset(p) for p in parts]

    def random_subset(self, n: int, seed: int = 0) -> "DataDir":
        utts = self.utts
        return self.subset(random.Random(seed).sample(utts, min(n, len(utts))))


# ---- validation ------------------------------------------------------------------------------------
def _split_values(table: dict[str, str]) -> dict[str, list[str]]:
    return {k: v.split() for k, v in table.items()}


def _positive(value: str) -> bool:
    try:
        return float(value) > 0
    except ValueError:
        return False


def _read_tables(path: Path, skip: tuple[str, ...] = ()
                 ) -> tuple[dict[str, dict[str, str]], list[Problem], dict[str, dict[str, int]]]:
    """Read every known file but those in ``skip`` leniently, collecting problems instead of raising; also returns
    each key's line (``lines[file][key]``, its first line) for naming the lines of problems found later, without
    rereading the file for each (which made validating a dir of n utterances take time in n squared)."""
    tables: dict[str, dict[str, str]] = {}
    problems: list[Problem] = []
    lines: dict[str, dict[str, int]] = {}
    for name in KNOWN_FILES:
        f = path / name
        if name in skip or not f.exists():
            if name in REQUIRED:
                problems.append(Problem(name, None, None, "missing (required)"))
            continue
        table: dict[str, str] = {}
        key_lines = lines[name] = {}
        prev = None
        with open(f, "rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                try:
                    line = raw.decode("utf-8").rstrip("\n")
                except UnicodeDecodeError:
                    problems.append(Problem(name, lineno, None, "not valid UTF-8"))
                    continue
                if line.endswith("\r"):
                    problems.append(Problem(name, lineno, None, "Windows line ending (\\r)"))
                    line = line.rstrip("\r")
                if lineno == 1 and line.startswith("\ufeff"):
                    problems.append(Problem(name, lineno, None, "byte-order mark at the start of the file"))
                    line = line[1:]
                parts = line.split(maxsplit=1)
                if not parts:
                    problems.append(Problem(name, lineno, None, "empty line"))
                    continue
                key, value = parts[0], (parts[1].strip() if len(parts) > 1 else "")
                if key in table:
                    problems.append(Problem(name, lineno, key, "duplicate key"))
                    continue
                if prev is not None and key.encode() < prev.encode():
                    problems.append(Problem(name, lineno, key, f"not sorted (comes after '{prev}'; use LC_ALL=C sort)"))
                prev = key
                if not value:
                    what = "empty transcript" if name == "text" else "no value"
                    problems.append(Problem(name, lineno, key, what))
                elif name == "text" and any(unicodedata.category(c) == "Cc" for c in value):
                    problems.append(Problem(name, lineno, key, "control character in transcript"))
                elif name == "text" and set(value.split()) & KALDI_RESERVED:
                    problems.append(Problem(name, lineno, key, "reserved Kaldi symbol (<s>, </s> or #0) in transcript"))
                elif name == "utt2spk" and len(value.split()) != 1:
                    problems.append(Problem(name, lineno, key, "speaker id must be one token"))
                elif name == "wav.scp" and value.startswith("~"):
                    problems.append(Problem(name, lineno, key, "path starts with '~' (not expanded); use an absolute path"))
                table[key] = value
                key_lines[key] = lineno
        tables[name] = table
    return tables, problems, lines


def validate_data_dir(
    path: PathLike, check_audio_files: bool = False, sample_rate: int | None = None
) -> list[Problem]:
    """Every problem with the data directory at ``path`` (empty list: valid).

    Checks what Kaldi's ``validate_data_dir.sh --no-feats`` checks (files present, sorted, no
    duplicates, the same utterances in every file, spk2utt consistent with utt2spk, in its order, utterance ids
    sorting speakers together, segments pointing at recordings) plus: empty transcripts, missing audio files,
    unsupported piped wav.scp entries, non-positive durations and, with ``check_audio_files``, unreadable,
    empty, silent, clipped or wrong-rate audio.
    """
    return _validate(Path(path), check_audio_files, sample_rate)[0]


def _validate(path: Path, check_audio_files: bool = False, sample_rate: int | None = None, skip: tuple[str, ...] = ()
              ) -> tuple[list[Problem], dict[str, dict[str, str]]]:
    """:func:`validate_data_dir`'s problems and the tables it read (for :meth:`DataDir.load`: each file read once)."""
    if not path.is_dir():
        return [Problem(str(path), None, None, "not a directory")], {}
    tables, problems, lines = _read_tables(path, skip)
    if any(p.message == "missing (required)" for p in problems):
        return [Problem(str(path / p.file), p.line, p.utt, p.message) for p in problems], tables
    utt2spk, text, wav_scp = tables["utt2spk"], tables["text"], tables["wav.scp"]
    if not utt2spk:
        problems.append(Problem("utt2spk", None, None, "no utterances"))
    segments = _split_values(tables.get("segments", {}))
    has_segments = "segments" in tables

    # the same utterances everywhere
    utt_sets = {"utt2spk": set(utt2spk), "text": set(text)}
    utt_sets["segments" if has_segments else "wav.scp"] = set(segments) if has_segments else set(wav_scp)
    for name in OPTIONAL_UTT_TABLES:
        if name in tables:
            utt_sets[name] = set(tables[name])
    all_utts = set().union(*utt_sets.values())
    for utt in sorted(all_utts):
        missing = [name for name, s in utt_sets.items() if utt not in s]
        if missing:
            present = next(n for n in utt_sets if utt in utt_sets[n])
            problems.append(Problem(present, lines[present][utt], utt, f"not in {', '.join(missing)}"))

    problems += _speaker_problems(utt2spk, tables.get("spk2utt"), lines)

    # segments and durations
    for utt, fields in segments.items():
        line = lines["segments"][utt]
        if len(fields) >= 3 and fields[0] not in wav_scp:
            problems.append(Problem("segments", line, utt, f"recording '{fields[0]}' not in wav.scp"))
        why = _segment_fields_problem(fields)
        if why:
            problems.append(Problem("segments", line, utt, why))
    if has_segments:
        unused = sorted(set(wav_scp) - {f[0] for f in segments.values() if f})
        for reco in unused:
            problems.append(Problem("wav.scp", lines["wav.scp"][reco], reco, "recording used by no segment"))
    for utt, dur in tables.get("utt2dur", {}).items():
        if not _positive(dur):
            problems.append(Problem("utt2dur", lines["utt2dur"][utt], utt, f"bad duration '{dur}'"))

    # audio
    for key, wav in wav_scp.items():
        pipe = is_pipe(wav)  # a command: run only with check_audio_files
        if not pipe and not Path(wav).is_file():
            problems.append(Problem("wav.scp", lines["wav.scp"][key], key, f"audio file not found: {wav}"))
        elif check_audio_files and (why := _audio_problem(wav, sample_rate)):
            problems.append(Problem("wav.scp", lines["wav.scp"][key], key, why))
    return [Problem(str(path / p.file), p.line, p.utt, p.message) for p in problems], tables


def _audio_problem(wav: str, sample_rate: int | None) -> str | None:
    """Why the audio of a wav.scp entry is unusable (unreadable, empty, silent, clipped, not ``sample_rate``), or
    None. Decodes it whole."""
    try:
        audio, sr = read_audio(wav)
        check_audio(audio, sr, wav, sample_rate)
    except AudioError as e:
        return str(e)
    return None


def _speaker_problems(utt2spk: dict[str, str], spk2utt: dict[str, str] | None,
                      lines: dict[str, dict[str, int]]) -> list[Problem]:
    """Speakers not sorting together with their utterance ids, and each spk2utt line (if given) that is not what
    Kaldi's ``utt2spk_to_spk2utt.pl`` makes of utt2spk: ``validate_data_dir.sh`` compares the two in order (it
    turns spk2utt back into utt2spk and ``cmp``s the files), so a speaker's utterances in another order are wrong
    too."""
    problems: list[Problem] = []
    expected: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        expected.setdefault(utt2spk[utt], []).append(utt)
    if spk2utt is not None:
        fix = "regenerate spk2utt from utt2spk"
        for spk, value in spk2utt.items():
            why = _spk2utt_line_problem(value.split(), expected.get(spk, []))
            if why:
                problems.append(Problem("spk2utt", lines["spk2utt"][spk], spk, f"{why} ({fix})"))
        for spk in sorted(expected.keys() - spk2utt.keys()):
            problems.append(Problem("spk2utt", None, spk, f"speaker missing ({len(expected[spk])} utterance(s) in "
                                                          f"utt2spk; {fix})"))
    prev_spk = None
    seen: set[str] = set()
    for utt in sorted(utt2spk):
        spk = utt2spk[utt]
        if spk != prev_spk and spk in seen:
            problems.append(Problem("utt2spk", lines["utt2spk"][utt], utt, f"speaker '{spk}' not contiguous when "
                                    "sorted by utterance (prefix utterance ids with the speaker id)"))
            break
        if prev_spk is not None and spk != prev_spk and spk.encode() < prev_spk.encode():
            problems.append(Problem("utt2spk", lines["utt2spk"][utt], utt, "sorting by utterance does not sort "
                                    "speakers (prefix utterance ids with the speaker id)"))
            break
        seen.add(spk)
        prev_spk = spk
    return problems


def _spk2utt_line_problem(given: list[str], expected: list[str]) -> str | None:
    """How a speaker's spk2utt utterances differ from ``expected`` (its utt2spk utterances, sorted), or None."""
    if given == expected:
        return None
    if not expected:
        return "speaker not in utt2spk"

    def some(utts: list[str]) -> str:
        return " ".join(utts[:5]) + (f" ... ({len(utts)} in all)" if len(utts) > 5 else "")

    known = set(expected)
    extra = [u for u in given if u not in known]
    if extra:
        return f"lists {some(extra)}, not this speaker's in utt2spk"
    listed = set(given)
    lacking = [u for u in expected if u not in listed]
    if lacking:
        return f"lacks {some(lacking)}, this speaker's in utt2spk"
    if len(given) != len(listed):
        return f"lists {some(sorted(u for u, n in Counter(given).items() if n > 1))} more than once"
    i = next(i for i, (g, e) in enumerate(zip(given, expected)) if g != e)
    return f"utterances not in utt2spk's (sorted) order: '{given[i]}' is where '{expected[i]}' belongs"


def _segment_fields_problem(fields: list[str]) -> str | None:
    """What is wrong with a segments line's fields after the utterance id, or None. Kaldi's fifth field, a
    channel, is refused: the audio is read as mono, the mean of its channels."""
    if len(fields) == 4:
        return (f"a fifth field (channel {fields[3]}) is not supported: the audio is read as mono (the mean of its "
                f"channels); split the channels into files")
    if len(fields) != 3:
        return "expected '<utt> <recording> <start> <end>'"
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        return f"non-numeric times {fields[1]} {fields[2]}"
    return None if 0 <= start and (start < end or end == -1) else f"bad times {fields[1]} {fields[2]}"


def _bad_segment(fields: list[str], wav_scp: dict[str, str]) -> str | None:
    """Why a segments line's fields are unusable, or None."""
    return _segment_fields_problem(fields) or (None if fields[0] in wav_scp else "recording not in wav.scp")


def _bad_lines(tables: dict[str, dict[str, str]], problems: list[Problem], keyed: Sequence[str],
               utts: set[str]) -> list[tuple[str, str, str]]:
    """``(file, why, utt)`` for each line about one of ``utts`` that is unusable: flagged by :func:`_read_tables`
    (``problems``; an unsorted line is only rewritten in order) in a file keyed by utterance (``keyed``) or in
    wav.scp, a bad segment or a bad duration."""
    segments = _split_values(tables.get("segments", {}))
    reco_utts: dict[str, list[str]] = {}  # a wav.scp key -> its utterances
    for u in utts:
        reco_utts.setdefault((segments[u] or [""])[0] if segments else u, []).append(u)
    bad: list[tuple[str, str, str]] = []
    for p in problems:
        if p.utt is None or p.message.startswith("not sorted"):
            continue
        if p.file == "wav.scp":
            bad += [(p.file, p.message, u) for u in reco_utts.get(p.utt, [])]
        elif p.file in keyed:
            bad.append((p.file, p.message, p.utt))
    for u, fields in segments.items():
        why = _bad_segment(fields, tables["wav.scp"])
        if why:
            bad.append(("segments", why, u))
    return bad + [("utt2dur", "bad duration", u) for u, d in tables.get("utt2dur", {}).items() if not _positive(d)]


def fix_data_dir(path: PathLike, check_audio_files: bool = False, sample_rate: int | None = None
                 ) -> dict[str, list[str]]:
    """Keep only utterances that are complete and well-formed, back up the old files, rewrite the rest.

    An utterance goes if any file lacks it or has a line for it that :func:`validate_data_dir` flags (no value, a
    duplicate key, a speaker id of two tokens, a bad segment or duration, ...; an unsorted line is only sorted),
    if its audio file is missing or, with ``check_audio_files``, if its audio fails the check of
    ``validate_data_dir(..., check_audio_files, sample_rate)`` (unreadable, empty, silent, clipped, another rate;
    each recording decoded once). The rewritten directory is then validated: what dropping utterances cannot
    fix (speakers not contiguous when sorted by utterance, ...) raises DataDirError listing it.
    The old files are kept in ``.backup/`` (then ``.backup.1/``, ...: each fix its own); a fix that would drop every
    utterance changes nothing and raises DataDirError saying why.
    Returns a report ``{reason: [utt, ...]}`` of what was dropped (also printed by the CLI); a failed audio check's
    reason is ``wav.scp:<line>: <why>``, its line in the old wav.scp (now in the backup), ``why`` naming the file.
    """
    path = Path(path)
    tables, problems, lines = _read_tables(path)
    for name in REQUIRED:
        if name not in tables:
            raise DataDirError(path, [Problem(str(path / name), None, None, "missing (required)")])
    has_segments = "segments" in tables
    keyed = {"text": tables["text"], "utt2spk": tables["utt2spk"]}
    keyed["segments" if has_segments else "wav.scp"] = tables["segments" if has_segments else "wav.scp"]
    for name in OPTIONAL_UTT_TABLES:
        if name in tables:
            keyed[name] = tables[name]
    report: dict[str, list[str]] = {}
    keep = set().union(*map(set, keyed.values()))
    for name, table in keyed.items():
        missing = sorted(keep - set(table))
        if missing:
            report[f"not in {name}"] = missing
    keep = set.intersection(*map(set, keyed.values()))
    segments = _split_values(tables.get("segments", {}))
    for name, message, u in _bad_lines(tables, problems, keyed, keep):
        if u in keep:
            report.setdefault(f"{name}: {message}", []).append(u)
            keep.discard(u)
    recos = {u: segments[u][0] for u in keep} if has_segments else {u: u for u in keep}
    gone = sorted(u for u in keep if not is_pipe(tables["wav.scp"][recos[u]]) and not Path(tables["wav.scp"][recos[u]]).is_file())
    if gone:
        report["audio file not found"] = gone
    keep -= set(gone)
    if check_audio_files:
        for reason, utts in _bad_audio(tables["wav.scp"], {u: recos[u] for u in keep}, lines["wav.scp"],
                                       sample_rate).items():
            report[reason] = utts
            keep -= set(utts)
    if not keep:
        why = [Problem(str(path), None, None, f"fix would drop every utterance ({reason}: {len(utts)})")
               for reason, utts in report.items()]
        raise DataDirError(path, why or [Problem(str(path), None, None, "no utterances")], "nothing was changed")
    backup = _new_backup_dir(path)
    for name in KNOWN_FILES:
        if (path / name).exists():
            shutil.copy2(path / name, backup / name)
    DataDir(  # a dropped utterance's lines may not parse
        wav_scp=tables["wav.scp"],
        text=tables["text"],
        utt2spk=tables["utt2spk"],
        utt2dur={u: float(v) for u, v in tables.get("utt2dur", {}).items() if u in keep},
        segments={u: (v[0], float(v[1]), float(v[2])) for u, v in segments.items() if u in keep},
        utt2lang=tables.get("utt2lang", {}),
        token=tables.get("token", {}),
    ).subset(keep).save(path)
    left = validate_data_dir(path)
    if left:
        raise DataDirError(path, left, f"dropping utterances cannot fix it; the old files are in {backup}")
    return {reason: sorted(utts) for reason, utts in report.items()}


def _bad_audio(wav_scp: dict[str, str], recos: dict[str, str], reco_lines: dict[str, int], sample_rate: int | None
               ) -> dict[str, list[str]]:
    """``{"wav.scp:<line>: <why>": [utt, ...]}``: the utterances (``recos``: utterance -> its wav.scp key) whose
    recording fails :func:`_audio_problem`, each recording decoded once however many segments it has."""
    utts_of: dict[str, list[str]] = {}
    for utt, reco in recos.items():
        utts_of.setdefault(reco, []).append(utt)
    bad: dict[str, list[str]] = {}
    for reco in sorted(utts_of):
        why = _audio_problem(wav_scp[reco], sample_rate)
        if why:
            bad[f"wav.scp:{reco_lines[reco]}: {why}"] = sorted(utts_of[reco])
    return bad


def _new_backup_dir(path: Path) -> Path:
    """``.backup`` the first time, then ``.backup.1``, ``.backup.2``, ...: a second fix never overwrites what the
    first one saved."""
    backup, k = path / ".backup", 0
    while backup.exists():
        k += 1
        backup = path / f".backup.{k}"
    backup.mkdir()
    return backup


def spread_subset(utts: list[str], k: int | None) -> list[str]:
    """``k`` of ``utts`` (sorted ids), evenly spaced: Kaldi ids sort by speaker, so a prefix would hold only the
    first speakers. All of them when ``k`` is None or not smaller. Used for fixed dev and test subsets."""
    if k is None or k >= len(utts):
        return list(utts)
    if k <= 0:
        raise ValueError(f"spread_subset: k must be positive, got {k}")
    return [utts[(i * len(utts)) // k] for i in range(k)]


def utt_duration(data: DataDir, utt: str) -> float:
    """Seconds of ``utt``, from segments or from its audio file's header (no decoding)."""
    if data.segments:
        reco, start, end = data.segments[utt]
        if end >= 0:
            return end - start
        frames, sr = audio_info(data.wav_scp[reco])  # -1: to the recording's end
        return frames / sr - start
    frames, sr = audio_info(data.wav_scp[utt])
    return frames / sr


def compute_utt2dur(data: DataDir, path: PathLike | None = None) -> dict[str, float]:
    """Durations in seconds, from segments or from the audio files' headers (no decoding).

    Raises DataDirError listing every utterance whose audio cannot be read, with its wav.scp line when ``path``,
    the directory ``data`` was loaded from, is given."""
    durations: dict[str, float] = {}
    failed: list[tuple[str, str, str]] = []  # (wav.scp key, utterance, why)
    for utt in data.utts:
        try:
            durations[utt] = utt_duration(data, utt)
        except AudioError as e:
            failed.append((data.segments[utt][0] if data.segments else utt, utt, str(e)))
    if failed:
        scp = Path(path) / "wav.scp" if path is not None else None
        lines = _key_lines(scp) if scp is not None else {}
        raise DataDirError(path if path is not None else "compute_utt2dur",
                           [Problem(str(scp or "wav.scp"), lines.get(key), utt, why) for key, utt, why in failed],
                           "fix the files, or drop their utterances: python -m shared.datadir fix --check-audio")
    return durations


def _utt2dur_lines(utt2dur: dict[str, float]) -> dict[str, str]:
    """utt2dur's lines as :meth:`DataDir.save` and the ``utt2dur`` command write them."""
    return {u: f"{d:.4f}" for u, d in utt2dur.items()}


def _key_lines(path: Path) -> dict[str, int]:
    """Each key's first line in a Kaldi file (none where the file is missing), in one pass."""
    lines: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                for key in line.split(maxsplit=1)[:1]:
                    lines.setdefault(key, lineno)
    except FileNotFoundError:
        pass
    return lines


# ---- CLI ---------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.datadir", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("validate", help="report every problem; exit 1 if any")
    p.add_argument("data_dir")
    p.add_argument("--check-audio", action="store_true", help="also decode every file (slow on big sets)")
    p.add_argument("--sample-rate", type=int, default=None)
    p = sub.add_parser("fix", help="drop incomplete utterances (report printed; old files in .backup/)")
    p.add_argument("data_dir")
    p.add_argument("--check-audio", action="store_true", help="also drop those whose audio validate --check-audio "
                                                               "rejects (decodes every file: slow on big sets)")
    p.add_argument("--sample-rate", type=int, default=None, help="with --check-audio: drop audio at other rates")
    p = sub.add_parser("utt2dur", help="write utt2dur from the audio headers")
    p.add_argument("data_dir")
    p = sub.add_parser("subset", help="write a subset to a new data dir")
    p.add_argument("src")
    p.add_argument("dst")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--first", type=int)
    g.add_argument("--random", type=int)
    g.add_argument("--utt-list")
    g.add_argument("--spk-list")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("split", help="split into N parts under SRC/splitN/{1..N}")
    p.add_argument("src")
    p.add_argument("num_parts", type=int)
    p.add_argument("--per-spk", action="store_true")
    p = sub.add_parser("combine", help="write the union of SRC... to DST (an utterance in two is an error); their latent dumps too where every SRC holds one")
    p.add_argument("dst")
    p.add_argument("srcs", nargs="+")
    args = parser.parse_args(argv)

    if args.cmd == "validate":
        problems = validate_data_dir(args.data_dir, args.check_audio, args.sample_rate)
        for prob in problems:
            print(prob, file=sys.stderr)
        if not problems:
            print(f"{args.data_dir}: OK ({len(DataDir.load(args.data_dir, validate=False))} utterances)")
        return 1 if problems else 0
    if args.cmd == "fix":
        if args.sample_rate is not None and not args.check_audio:
            parser.error("fix: --sample-rate is checked only with --check-audio")
        try:
            report = fix_data_dir(args.data_dir, args.check_audio, args.sample_rate)
        except DataDirError as e:
            print(e, file=sys.stderr)
            return 1
        for reason, utts in report.items():
            print(f"dropped {len(utts)} utterance(s): {reason}: {' '.join(utts[:20])}{' ...' if len(utts) > 20 else ''}")
        print(f"{args.data_dir}: {len(DataDir.load(args.data_dir, validate=False))} utterances kept, "
              f"{len(set().union(*report.values()))} dropped")  # one lacking from two files is under both
        return 0
    if args.cmd == "utt2dur":
        # only utt2dur is written: saving the whole dir back would rewrite the user's files (segments' times
        # rounded) for nothing, and risk them if interrupted
        try:
            data = DataDir.load(args.data_dir, skip=("utt2dur",))  # the old one, stale or bad, is what is replaced
            utt2dur = compute_utt2dur(data, args.data_dir)
        except DataDirError as e:
            print(e, file=sys.stderr)
            return 1
        write_kv(Path(args.data_dir) / "utt2dur", _utt2dur_lines(utt2dur))
        print(f"{args.data_dir}/utt2dur: {len(data)} utterances, {sum(utt2dur.values()) / 3600:.3f} h")
        return 0
    if args.cmd == "combine":
        out = DataDir.combine([DataDir.load(d) for d in args.srcs], names=args.srcs)
        with_latents = [d for d in args.srcs if (Path(d) / "latents.scp").is_file()]
        if with_latents and len(with_latents) < len(args.srcs):  # before anything is written
            raise SystemExit(f"combine: {len(with_latents)} of the {len(args.srcs)} data dirs hold a latent dump "
                             f"(latents.scp; e.g. {with_latents[0]}), the others not: their latents cannot be joined")
        if with_latents:  # synthesize --save-latents' dumps, one per job (an error in them writes nothing)
            from shared.latents import combine_latent_dumps

            print(f"{args.dst}: latent dump of {combine_latent_dumps(args.dst, with_latents)} utterances")
        elif Path(args.dst).resolve() not in {Path(d).resolve() for d in args.srcs}:
            # an earlier dump in DST (a run with --save-latents, redone without) is not of this audio: it goes, its
            # mark of a finished dump first (a one-job run's latents/ too)
            remove_outputs(args.dst, ("latents.scp", "utt2frames", "key2utt", "codec.json", "latents"),
                           reason="combine: a latent dump that is not of the combined audio")
        out.save(args.dst)
        print(f"{args.dst}: {len(out)} utterances from {len(args.srcs)} data dirs")
        return 0
    data = DataDir.load(args.src)
    if args.cmd == "subset":
        if args.first is not None:
            out = data.subset(data.utts[: args.first])
        elif args.random is not None:
            out = data.random_subset(args.random, args.seed)
        else:
            lst = [line.split()[0] for line in Path(args.utt_list or args.spk_list).read_text().splitlines() if line.strip()]
            out = data.subset(lst) if args.utt_list else data.subset(
                [u for u in data.utts if data.utt2spk[u] in set(lst)])
        out.save(args.dst)
        print(f"{args.dst}: {len(out)} utterances")
        return 0
    parts = data.split(args.num_parts, by_speaker=args.per_spk)
    for i, part in enumerate(parts, 1):
        part.save(Path(args.src) / f"split{args.num_parts}" / str(i))
    print(f"{args.src}/split{args.num_parts}: {[len(p) for p in parts]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
