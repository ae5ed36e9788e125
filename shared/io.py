"""Small file helpers: atomic writes, JSON, and Kaldi-style key/value files (``wav.scp``, ``text``, ...).

Every file the toolkit writes goes through :func:`atomic_write`, so a killed process never leaves a
half-written file behind: readers see either the old file or the new one.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Iterable, Iterator, Mapping

import torch

PathLike = str | os.PathLike
MODEL_FILE = "model.pt"  # every trained exp dir's exported weights: stage one, stage two, a fine-tuned decoder, the phone recogniser


class KaldiFileError(ValueError):
    """A malformed line in a Kaldi-style file; the message names the file and line."""


@functools.cache
def _umask() -> int:
    """The process's umask, read once (the only portable way, setting and restoring it, would race with other threads'
    file creation if done at every write)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path`` and move it into place only if the block succeeds (with the
    permissions ``open`` would give a new file: 0666 less the umask). The file is fsynced before the rename, its
    directory not: after a power loss the rename may be lost, which leaves the old file or none (the work is redone),
    never a partial one, and a directory fsync per file would cost each of a corpus's hundred thousand latents and wavs
    a metadata sync (on a network file system, a slow one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would stay with the file: as open() makes files
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_save_torch(obj: Any, path: PathLike) -> None:
    """``torch.save`` that never leaves a partial file."""
    with atomic_write(path, "wb") as f:
        torch.save(obj, f)


def atomic_copy(src: PathLike, dst: PathLike) -> None:
    """Copy ``src`` to ``dst`` through :func:`atomic_write`: a kill mid-copy leaves the old ``dst``, never a truncated
    one (``shutil.copyfile`` truncates it first)."""
    with atomic_write(dst, "wb", encoding=None) as f:
        f.write(Path(src).read_bytes())


@contextlib.contextmanager
def errors_named(what: str, error: type[Exception] = RuntimeError) -> Iterator[None]:
    """Re-raise an error of the block as ``error`` whose message starts with ``what`` (the utterance, its files), the
    original chained: per-utterance work, also in a process pool, whose traceback would name no utterance."""
    try:
        yield
    except Exception as e:
        raise error(f"{what}: {type(e).__name__}: {e}") from e


def remove_files(*paths: PathLike | None) -> None:
    """Delete the files that exist of ``paths`` (None skipped): a rerun's finished-markers, before it rewrites."""
    for path in paths:
        if path is not None:
            Path(path).unlink(missing_ok=True)


def remove_outputs(out: PathLike, names: Iterable[str], reason: str = "--overwrite") -> list[str]:
    """``--overwrite`` (or another ``reason``): remove the files and dirs ``names`` of ``out`` that exist (in order: the
    mark of a finished output first), before anything new is written, so that a run stopped part way leaves no
    finished-looking mix of old and new and the next run redoes it; says what went. Returns the names removed."""
    out = Path(out)
    gone = [name for name in names if (out / name).exists()]
    for name in gone:
        (shutil.rmtree if (out / name).is_dir() else Path.unlink)(out / name)
    if gone:
        print(f"{reason}: removed {', '.join(gone)} from {out}", flush=True)
    return gone


def write_json(path: PathLike, obj: Any) -> None:
    with atomic_write(path) as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


def file_sha256(path: PathLike) -> str:
    """Hex SHA-256 of a file's bytes (identifies a model.pt across copies and packing)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_json(path: PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_kv(path: PathLike, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a Kaldi ``<key> <value...>`` file into an insertion-ordered dict.

    Raises:
        KaldiFileError: on a duplicate key or (unless ``allow_empty_value``) a line with no value,
            naming ``file:line``. All bad lines are reported together.
    """
    out: dict[str, str] = {}
    problems: list[str] = []
    # utf-8-sig: a byte-order mark (which Windows editors write) would otherwise join the first key.
    with open(path, encoding="utf-8-sig") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                problems.append(f"{path}:{lineno}: empty line")
                continue
            parts = line.split(maxsplit=1)
            key = parts[0]
            value = parts[1].strip() if len(parts) > 1 else ""
            if not value and not allow_empty_value:
                problems.append(f"{path}:{lineno}: '{key}' has no value")
            if key in out:
                problems.append(f"{path}:{lineno}: duplicate key '{key}'")
                continue
            out[key] = value
    if problems:
        raise KaldiFileError("\n".join(problems))
    return out


def write_kv(path: PathLike, mapping: Mapping[str, Any], sort: bool = True) -> None:
    """Write ``<key> <value>`` lines (sorted by key, as Kaldi wants), atomically."""
    keys = sorted(mapping) if sort else list(mapping)
    with atomic_write(path) as f:
        for key in keys:
            value = mapping[key]
            if isinstance(value, (list, tuple)):
                value = " ".join(str(v) for v in value)
            f.write(f"{key} {value}\n")
