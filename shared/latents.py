"""Latent dumps: the one on-disk form of latent sequences, written by stage one's encoder
(``stage1_vae.encode``), stage two's ground-truth-aligned output (``stage2_flow.gta``), bulk synthesis
(``stage2_flow.synthesize --save-latents``) and the test stand-ins, and read by stage two's datasets and the
decoder fine-tuning.

A dump directory holds ``latents/<key>.pt`` (a float32 ``(D, F)`` tensor), ``utt2frames`` (``<key> <F>``),
``key2utt`` where a key is not an utterance id (several noise draws of one utterance), ``codec.json``
(:func:`codec_info`: the codec that made or decodes the latents) where a writer knows it, and ``latents.scp``
(``<key> <path>``), written last: its presence marks a finished dump. The writers here put paths relative to
the dump dir in ``latents.scp``, so a dump can be moved or copied whole; a reader also takes absolute paths
and, where no such file is in the dump dir, paths relative to the working directory (Kaldi's scp files),
``.npy`` files and ``.pt`` dicts with a ``z``/``latent``/``latents`` entry (other tools' dumps).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.io import MODEL_FILE, PathLike, atomic_save_torch, file_sha256, read_json, read_kv, write_json, write_kv


def codec_fingerprint(exp_dir: PathLike) -> str | None:
    """SHA-256 of a codec dir's weights: the same codec wherever its dir lies (None: a dir without weights, such as
    a stand-in codec's)."""
    weights = Path(exp_dir) / MODEL_FILE
    return file_sha256(weights) if weights.is_file() else None


def codec_info(codec: Any, exp_dir: PathLike, continuous: bool = False, encoded: bool = False) -> dict[str, Any]:
    """``codec.json`` of a latent dump: which codec made (or decodes) its latents (its dir, where it was then,
    and its weights' SHA-256, which still names it after a move), and their frame rate. ``encoded``: the latents
    are the codec's own ``encode`` output, decoded as they are (``decode(z, encoded=True)``), not snapped."""
    return {"exp_dir": str(Path(exp_dir).resolve()), "model_sha256": codec_fingerprint(exp_dir),
            "sample_rate": codec.sample_rate, "hop_length": codec.hop_length,
            "latent_dim": codec.latent_dim, "frame_rate": codec.sample_rate / codec.hop_length, "continuous": continuous,
            "encoded": encoded}


def _same_weights(sha_a: str | None, dir_a: PathLike, sha_b: str | None, dir_b: PathLike) -> bool:
    """By the weights' hash where both sides have one (a moved or copied dir still matches; retrained weights
    in the same dir do not), else by path (a stand-in codec has no weights)."""
    if sha_a is not None and sha_b is not None:
        return sha_a == sha_b
    return Path(dir_a).resolve() == Path(dir_b).resolve()


def same_codec(info: dict[str, Any], exp_dir: PathLike) -> bool:
    """Whether the ``codec.json`` ``info`` names the codec in ``exp_dir`` (see :func:`_same_weights`)."""
    return _same_weights(info.get("model_sha256"), info["exp_dir"], codec_fingerprint(exp_dir), exp_dir)


def require_codec(dump: PathLike, exp_dir: PathLike, option: str, what: str, required: bool = True) -> None:
    """Refuse (SystemExit) the latent dump ``dump`` given as ``option`` if its ``codec.json`` names another codec than
    ``exp_dir``'s, ``what`` the caller calls it ("the stage-one codec"): by the weights' hash, as when the codec was
    retrained and the data not encoded again. A dump without a ``codec.json`` (another tool's) is an error if
    ``required``, else not checked here."""
    path = Path(dump) / "codec.json"
    if not path.is_file():
        if required:
            raise SystemExit(f"{option} {dump}: not a finished stage1_vae.encode dump (no codec.json)")
        return
    info = read_json(path)
    if not same_codec(info, exp_dir):
        raise SystemExit(f"{option} {dump}: encoded by the codec of {info['exp_dir']} (weights sha256 "
                         f"{info.get('model_sha256')}), not by {what} {Path(exp_dir).resolve()} (sha256 "
                         f"{codec_fingerprint(exp_dir)}): encode the data again with that codec, or give the codec that "
                         "made the dump")


def same_codec_json(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two dumps' ``codec.json`` name one codec and latent format: dumps of it made before and after
    the codec's dir moved still match (their ``exp_dir`` differ, their weights' hash does not)."""
    fmt = ("sample_rate", "hop_length", "latent_dim", "continuous")
    return (all(a.get(k) == b.get(k) for k in fmt)
            and _same_weights(a.get("model_sha256"), a["exp_dir"], b.get("model_sha256"), b["exp_dir"]))


def load_latent(path: PathLike, what: str | None = None) -> torch.Tensor:
    """One utterance's latents (D, F) float32. NaN or infinite values are an error naming the file, the frames that
    hold them and ``what`` the caller calls these latents (``"utterance 'u1'"``): read on, one such frame makes every
    weight of a training NaN from the first batch it is in (stage two's, the decoder fine-tuning's), or a decoded
    file silent noise, with exit status 0."""
    path = Path(path)
    if path.suffix == ".npy":
        z = torch.from_numpy(np.load(path))
    else:
        obj = torch.load(path, map_location="cpu", weights_only=False)
        if isinstance(obj, dict):
            for key in ("z", "latent", "latents"):
                if key in obj:
                    obj = obj[key]
                    break
            else:
                raise ValueError(f"{path}: dict without a 'z'/'latent'/'latents' entry (keys {sorted(obj)})")
        z = torch.as_tensor(obj)
    if z.dim() == 3 and z.shape[0] == 1:
        z = z[0]
    if z.dim() != 2:
        raise ValueError(f"{path}: expected latents (D, F), got shape {tuple(z.shape)}")
    z = z.float()
    require_finite_latent(z, f"{path}: the latents{f' of {what}' if what else ''}",
                          "make the dump again (stage one's encode, or the verb that wrote it), or leave this one out of "
                          "its latents.scp and the data")
    return z


def require_finite_latent(z: torch.Tensor, what: str, remedy: str) -> None:
    """ValueError ``"<what> hold NaN or infinite values in N frame(s) (e.g. [...]): <remedy>"`` unless every value of
    ``z (D, F)`` is finite."""
    if not torch.isfinite(z).all():
        frames = (~torch.isfinite(z)).any(0).nonzero().flatten().tolist()
        raise ValueError(f"{what} hold NaN or infinite values in {len(frames)} frame(s) (e.g. {frames[:3]}): {remedy}")


class LatentStats:
    """Per-channel mean and standard deviation of latents over all their frames (streaming float64 sums), as
    ``latent_stats.json`` holds them (:meth:`result`), with where they come from: the dump and its codec.json, so that
    stage two refuses them for latents of another codec or kind (:func:`stage2_flow.data.check_stats_codec`)."""

    def __init__(self) -> None:
        self.n, self.s, self.ss = 0, None, None

    def add(self, z: torch.Tensor) -> None:
        """Count the frames of ``z (D, F)``."""
        z = z.double()
        self.s = z.sum(1) if self.s is None else self.s + z.sum(1)
        self.ss = z.pow(2).sum(1) if self.ss is None else self.ss + z.pow(2).sum(1)
        self.n += z.shape[1]

    def result(self, dump: PathLike, codec: dict[str, Any]) -> dict[str, Any]:
        """``{"mean": [D], "std": [D], "num_frames": N, "latent_dim": D, "dump": <dir>, "codec": <codec.json>}`` of the
        latents of ``dump`` (its path, resolved), made by ``codec`` (:func:`codec_info`, as the dump's codec.json)."""
        if not self.n:
            raise ValueError(f"{dump}: no latent frames to compute statistics on")
        mean = self.s / self.n
        std = (self.ss / self.n - mean.pow(2)).clamp(min=1e-10).sqrt()
        return {"mean": mean.tolist(), "std": std.tolist(), "num_frames": self.n, "latent_dim": int(mean.numel()),
                "dump": str(Path(dump).resolve()), "codec": codec}


def read_latent_scp(dump_dir: PathLike) -> dict[str, Path]:
    """``{key: path}`` of a finished dump; a relative path is taken relative to the dump dir, or to the working
    directory where the dump dir has no such file."""
    dump_dir = Path(dump_dir)
    scp = dump_dir / "latents.scp"
    if not scp.is_file():
        raise FileNotFoundError(f"{scp}: no latents.scp in the latent dump dir (run stage one's encode first)")
    out = {}
    for utt, p in read_kv(scp).items():
        path = Path(p)
        out[utt] = path if path.is_absolute() or (path.exists() and not (dump_dir / path).exists()) else dump_dir / path
    return out


class LatentDumpWriter:
    """Writes a dump dir: each ``add`` saves one key's latents at once (atomically), ``finish`` the tables,
    ``latents.scp`` last. ``keep`` lists a key whose file an earlier, interrupted run left."""

    def __init__(self, out_dir: PathLike) -> None:
        self.out = Path(out_dir)
        (self.out / "latents").mkdir(parents=True, exist_ok=True)
        self.scp: dict[str, str] = {}
        self.frames: dict[str, int] = {}
        self.key2utt: dict[str, str] = {}

    def path(self, key: str) -> Path:
        return self.out / self.relative(key)

    @staticmethod
    def relative(key: str) -> str:
        """``key``'s file relative to the dump dir, as ``latents.scp`` lists it."""
        return f"latents/{key}.pt"

    def add(self, key: str, z: torch.Tensor, utt: str | None = None) -> torch.Tensor:
        """Save ``z (D, F)`` as float32 under ``key`` (of utterance ``utt``, default the key); returns what was saved."""
        # a copy of its own: a view of a batch (a slice, contiguous or not) would save the whole batch's storage
        z = z.detach().float().cpu().clone(memory_format=torch.contiguous_format)
        if z.dim() != 2:
            raise ValueError(f"{key}: expected latents (D, F), got shape {tuple(z.shape)}")
        # refused where they are made (NaN audio, or a model gone NaN), not found by the training that reads them
        require_finite_latent(z, f"{self.out}: the latents of '{key}'",
                              "check what it was made from (the audio an encoder read, or the model that generated "
                              "it); nothing was written for it")
        atomic_save_torch(z, self.path(key))
        self._register(key, z.shape[1], utt)
        return z

    def keep(self, key: str, utt: str | None = None) -> torch.Tensor:
        """List ``key``'s existing file as it is; returns its latents."""
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no latents for {key} to keep")
        z = load_latent(path, f"'{key}'")
        self._register(key, z.shape[1], utt)
        return z

    def _register(self, key: str, frames: int, utt: str | None) -> None:
        self.scp[key], self.frames[key] = self.relative(key), frames
        if utt is not None:
            self.key2utt[key] = utt

    def finish(self) -> None:
        write_kv(self.out / "utt2frames", self.frames)
        if self.key2utt:
            write_kv(self.out / "key2utt", {k: self.key2utt.get(k, k) for k in self.scp})
        write_kv(self.out / "latents.scp", self.scp)  # last: its presence marks a finished dump


def combine_latent_dumps(out_dir: PathLike, parts: list[PathLike]) -> int:
    """Join the finished dumps ``parts`` (e.g. one per synthesis job) into ``out_dir``: its ``latents.scp``
    points at the parts' files (nothing is copied; paths relative to ``out_dir``, so the tree that holds both
    can be moved), with the union of their ``utt2frames``
    and ``key2utt``. A key in two parts, or parts whose ``codec.json`` name two codecs (:func:`same_codec_json`),
    is an error naming them, raised before anything is written. Returns the number of keys."""
    out = Path(out_dir)
    scp: dict[str, str] = {}
    frames: dict[str, str] = {}
    key2utt: dict[str, str] = {}
    owner: dict[str, Path] = {}
    codec, codec_from, encoded = None, None, True
    for part in map(Path, parts):
        part_scp = read_latent_scp(part)
        for key, path in part_scp.items():
            if key in owner:
                raise ValueError(f"combine: latent key '{key}' is in both {owner[key]} and {part}")
            owner[key], scp[key] = part, os.path.relpath(path.resolve(), out.resolve())
        part_frames = read_kv(part / "utt2frames") if (part / "utt2frames").is_file() else {}
        missing = sorted(set(part_scp) - set(part_frames))
        if missing:
            raise ValueError(f"combine: {part}/utt2frames lacks {len(missing)} key(s) of its latents.scp, e.g. '{missing[0]}'")
        frames.update(part_frames)
        if (part / "key2utt").is_file():
            key2utt.update(read_kv(part / "key2utt"))
        info = read_json(part / "codec.json") if (part / "codec.json").is_file() else None
        agree = info == codec or (info is not None and codec is not None and same_codec_json(info, codec))
        if codec_from is not None and not agree:
            raise ValueError(f"combine: {part}/codec.json differs from {codec_from}/codec.json: latents of two codecs")
        encoded = encoded and bool(info and info.get("encoded"))  # the codec's own encode output only if every part is
        codec, codec_from = info, part
    out.mkdir(parents=True, exist_ok=True)
    if codec is not None:
        write_json(out / "codec.json", {**codec, "encoded": encoded} if "encoded" in codec else codec)
    write_kv(out / "utt2frames", {k: frames[k] for k in scp})
    if key2utt:
        write_kv(out / "key2utt", {k: key2utt.get(k, k) for k in scp})
    write_kv(out / "latents.scp", scp)  # last: its presence marks a finished dump
    return len(scp)
