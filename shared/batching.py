"""Datasets over data directories, a duration-bucketed batch sampler, padding helpers, and a data loader
that resumes mid-epoch.

Samplers yield batches of ``(index, seed)`` pairs: the seed is a pure function of (sampler seed, epoch,
index), so random crops are the same whether a run was interrupted or not, whatever the worker count.
:class:`ResumableDataLoader` counts the batches it has handed out and restores that position from a
Lightning checkpoint (Lightning calls ``state_dict``/``load_state_dict`` on loaders that have them).
Lightning calls ``set_epoch`` on the batch sampler at each epoch (see ``_EpochSampler.sampler``). The
loader draws its worker seeds from a private generator, never from the global RNG, so restoring the
global RNG state from a checkpoint is enough to continue an interrupted run exactly. Samplers shard by DDP rank themselves,
so build the trainer with ``use_distributed_sampler=False`` (``shared.config.build_trainer`` does).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from shared.audio import random_crop
from shared.datadir import DataDir
from shared.latents import load_latent, read_latent_scp

Key = tuple[int, int]  # (dataset index, per-item seed)
# A frame-rate track measured once per utterance and cropped with its audio (e.g. stage one's pitch channels,
# stage1_vae.modules.PitchCache): track(utt, whole audio (T,), first frame, frames) -> (C, frames), frame k
# centred on sample k * hop.
FrameTrack = Callable[[str, torch.Tensor, int, int], torch.Tensor]


def _mixed_seed(*keys: int) -> int:
    """A seed that no other tuple of ``keys`` shares in practice (numpy's SeedSequence hash): ``seed + epoch`` would
    give run seed 4's epoch 0 the batches of run seed 3's epoch 1, and ``epoch * K + index`` item ``i + K`` of one
    epoch the crop of item ``i`` of the next."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1, np.uint64)[0] >> 1)


def _item_seed(seed: int, epoch: int, index: int) -> int:
    return _mixed_seed(seed, epoch, index)


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _EpochSampler(Sampler[list[Key]]):
    """Base: builds the epoch's batches, shards them over ranks, and supports skipping ahead."""

    def __init__(self, seed: int = 0, shuffle: bool = True):
        self.seed, self.shuffle, self.epoch = seed, shuffle, 0
        self.skip, self.skip_epoch = 0, 0  # resume: skip this many batches, only in epoch ``skip_epoch``

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def sampler(self) -> "_EpochSampler":
        # Lightning calls ``batch_sampler.sampler.set_epoch(epoch)`` at every epoch start (and with the
        # restored epoch on resume); pointing ``sampler`` at ourselves is how we receive it.
        return self

    def _batches(self) -> list[list[int]]:
        raise NotImplementedError

    def batches(self, epoch: int) -> list[list[int]]:
        """The item indices of ``epoch``'s batches, all ranks' (for loops that batch without a DataLoader)."""
        self.set_epoch(epoch)
        return self._batches()

    def _rank_batches(self) -> list[list[int]]:
        batches = self._batches()
        rank, world = _dist_info()
        if world > 1:  # every rank gets the same number of batches
            per_rank = math.ceil(len(batches) / world)
            batches = (batches * world)[: per_rank * world][rank::world]
        return batches

    def __iter__(self) -> Iterator[list[Key]]:
        batches = self._rank_batches()
        skip = self.skip if self.epoch == self.skip_epoch else 0  # a checkpoint at an epoch's end skips nothing
        self.skip = 0
        for batch in batches[skip:]:
            yield [(i, _item_seed(self.seed, self.epoch, i)) for i in batch]

    def __len__(self) -> int:
        return len(self._rank_batches())


class RandomBatchSampler(_EpochSampler):
    """Fixed-size random batches (for training on fixed-length crops)."""

    def __init__(self, num_items: int, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = True):
        super().__init__(seed, shuffle)
        if num_items == 0:
            raise ValueError("empty dataset")
        self.num_items, self.batch_size, self.drop_last = num_items, batch_size, drop_last

    def _batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(_mixed_seed(self.seed, self.epoch))
        order = torch.randperm(self.num_items, generator=g).tolist() if self.shuffle else list(range(self.num_items))
        if self.drop_last and self.num_items >= self.batch_size:
            order = order[: len(order) // self.batch_size * self.batch_size]
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]


class BucketBatchSampler(_EpochSampler):
    """Batches of similar length under a padded-frames budget (``batch size x longest <= max_frames``).

    Lengths are sorted (with a small per-epoch random jitter when shuffling, so batch composition varies
    between epochs), packed greedily, and the batch order is shuffled. Padding waste is typically a few
    percent; :meth:`padding_fraction` measures it. An item longer than ``max_frames`` is refused, or with
    ``fit_longest`` the budget is raised to the longest item (which then fills a batch alone).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        max_frames: int,
        max_batch: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        jitter: float = 0.05,
        fit_longest: bool = False,
    ):
        super().__init__(seed, shuffle)
        if len(lengths) == 0:
            raise ValueError("empty dataset")
        if fit_longest:
            max_frames = max(max_frames, max(lengths))
        too_long = [i for i, n in enumerate(lengths) if n > max_frames]
        if too_long:
            raise ValueError(f"{len(too_long)} item(s) longer than max_frames={max_frames} "
                             f"(longest {max(lengths)}); raise max_frames or filter them")
        self.lengths = torch.as_tensor(lengths, dtype=torch.float64)
        self.max_frames, self.max_batch, self.jitter = max_frames, max_batch, jitter

    def _batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(_mixed_seed(self.seed, self.epoch))
        keys = self.lengths
        if self.shuffle and self.jitter > 0:
            keys = keys * (1 + self.jitter * (2 * torch.rand(len(keys), generator=g, dtype=torch.float64) - 1))
        order = torch.argsort(keys, stable=True).tolist()
        batches, current, longest = [], [], 0.0
        for i in order:
            n = float(self.lengths[i])
            full = self.max_batch is not None and len(current) >= self.max_batch
            if current and (full or max(longest, n) * (len(current) + 1) > self.max_frames):
                batches.append(current)
                current, longest = [], 0.0
            current.append(i)
            longest = max(longest, n)
        if current:
            batches.append(current)
        if self.shuffle:
            batches = [batches[j] for j in torch.randperm(len(batches), generator=g).tolist()]
        return batches

    def padding_fraction(self) -> float:
        """Fraction of padded frames over one epoch."""
        padded = real = 0.0
        for b in self._batches():
            lens = self.lengths[b]
            padded += float(lens.max()) * len(b)
            real += float(lens.sum())
        return 1 - real / padded


class ResumableDataLoader(DataLoader):
    """A DataLoader over an :class:`_EpochSampler` that restores its position within an epoch."""

    def __init__(self, dataset: Dataset, batch_sampler: _EpochSampler, **kwargs: Any):
        kwargs.setdefault("generator", torch.Generator().manual_seed(batch_sampler.seed))
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)
        self._yielded = 0

    def __iter__(self):
        sampler = self.batch_sampler
        self._yielded = sampler.skip if sampler.epoch == sampler.skip_epoch else 0
        for batch in super().__iter__():
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.batch_sampler.epoch, "yielded": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.batch_sampler.set_epoch(state["epoch"])
        self.batch_sampler.skip, self.batch_sampler.skip_epoch = state["yielded"], state["epoch"]


# ---- padding ------------------------------------------------------------------------------------------
def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """``(B,)`` lengths -> bool mask ``(B, max_len)``, True on valid positions."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def pad_1d(items: Sequence[torch.Tensor], value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """List of ``(T_i,)`` -> ``(B, T_max)`` and lengths ``(B,)``."""
    lengths = torch.tensor([x.shape[-1] for x in items], dtype=torch.long)
    out = items[0].new_full((len(items), int(lengths.max())), value)
    for i, x in enumerate(items):
        out[i, : x.shape[-1]] = x
    return out, lengths


def pad_2d(items: Sequence[torch.Tensor], value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """List of ``(C, T_i)`` -> ``(B, C, T_max)`` and lengths ``(B,)``."""
    lengths = torch.tensor([x.shape[-1] for x in items], dtype=torch.long)
    out = items[0].new_full((len(items), items[0].shape[0], int(lengths.max())), value)
    for i, x in enumerate(items):
        out[i, :, : x.shape[-1]] = x
    return out, lengths


# ---- datasets -----------------------------------------------------------------------------------------
class AudioSegmentDataset(Dataset):
    """Random fixed-length crops of the utterances of a data dir (for codec training).

    ``dataset[(index, seed)]`` -> ``(segment_samples,)`` float tensor. Whole files are cached in memory
    once read when ``cache`` (a small corpus fits easily; a large one should not cache: every loader worker
    holds its own copy). With a ``track`` (:data:`FrameTrack`) the crops start on a frame of ``hop_length``
    samples and items are ``{"wav": (segment_samples,), "track": (C, segment_samples // hop + 1)}``.
    """

    def __init__(self, data_dir: str | Path | DataDir, sample_rate: int, segment_samples: int, cache: bool = True,
                 track: FrameTrack | None = None, hop_length: int | None = None):
        self.data = data_dir if isinstance(data_dir, DataDir) else DataDir.load(data_dir)
        self.utts, self.sample_rate, self.segment_samples = self.data.utts, sample_rate, segment_samples
        self._cache: dict[str, torch.Tensor] | None = {} if cache else None
        if track is not None and (hop_length is None or segment_samples % hop_length):
            raise ValueError(f"a frame track needs segments of whole frames: {segment_samples} samples, hop {hop_length}")
        self.track, self.hop = track, hop_length

    def __len__(self) -> int:
        return len(self.utts)

    def wav(self, index: int) -> torch.Tensor:
        utt = self.utts[index]
        if self._cache is not None and utt in self._cache:
            return self._cache[utt]
        wav = self.data.load_audio(utt, self.sample_rate)
        if self._cache is not None:
            self._cache[utt] = wav
        return wav

    def __getitem__(self, key: Key | int) -> torch.Tensor | dict[str, torch.Tensor]:
        index, seed = key if isinstance(key, tuple) else (key, key)
        g = torch.Generator().manual_seed(seed)
        wav = self.wav(index)
        if self.track is None:
            return random_crop(wav, self.segment_samples, g)[0]
        hop, n = self.hop, self.segment_samples // self.hop
        start = int(torch.randint(0, max(0, -(-wav.shape[-1] // hop) - n) + 1, (1,), generator=g))
        segment = wav[start * hop : (start + n) * hop]
        return {"wav": torch.nn.functional.pad(segment, (0, n * hop - segment.shape[-1])),
                "track": self.track(self.utts[index], wav, start, n + 1)}


class LatentAudioSegmentDataset(Dataset):
    """Aligned random crops of given latents and their audio (decoder fine-tuning on, e.g., stage two's
    ground-truth-aligned output).

    ``latent_dir`` is a latent dump (``latents.scp``: ``<key> <path to (D, F) tensor>``) whose optional
    ``key2utt`` names each key's utterance in ``data_dir`` (several keys may share one, e.g. several noise
    draws); without it keys are utterance ids. Latent frame ``k`` is centred on sample ``k * hop`` (the
    codec's framing), so ``dataset[(index, seed)]`` -> ``{"latents": (D, n + 1), "wav": (n * hop,)}`` with
    ``n = segment_frames``, plus ``"track": (C, n + 1)`` with a ``track`` (:data:`FrameTrack`) of the
    utterance's audio; shorter items are zero-padded. Everything is cached in memory once read."""

    def __init__(self, latent_dir: str | Path, data_dir: str | Path | DataDir, sample_rate: int, hop_length: int, segment_frames: int,
                 track: FrameTrack | None = None):
        from shared.io import read_kv

        latent_dir = Path(latent_dir)
        self.data = data_dir if isinstance(data_dir, DataDir) else DataDir.load(data_dir)
        self.paths = read_latent_scp(latent_dir)
        key2utt = read_kv(latent_dir / "key2utt") if (latent_dir / "key2utt").is_file() else {k: k for k in self.paths}
        missing = [k for k in self.paths if key2utt.get(k) not in self.data.utt2spk]
        if missing:
            raise KeyError(f"{latent_dir}: {len(missing)} latents have no utterance in {data_dir} (first: {missing[0]!r} -> "
                           f"{key2utt.get(missing[0])!r})")
        self.keys = list(self.paths)
        self.key2utt, self.sample_rate, self.hop, self.n = key2utt, sample_rate, hop_length, segment_frames
        self.track = track
        self._latents: dict[str, torch.Tensor] = {}
        self._wavs: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def pair(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Item ``index``'s latents ``(D, F)`` and its utterance's whole audio, read once; a length mismatch
        of more than one frame is an error naming the latent file."""
        key = self.keys[index]
        if key not in self._latents:
            utt = self.key2utt[key]
            z = load_latent(self.paths[key], f"utterance '{utt}'" if utt == key else f"'{key}' (utterance '{utt}')")
            if utt not in self._wavs:
                self._wavs[utt] = self.data.load_audio(utt, self.sample_rate)
            frames = self._wavs[utt].shape[-1] / self.hop
            if z.ndim != 2 or abs(frames - (z.shape[1] - 1)) > 1:
                raise ValueError(f"{self.paths[key]}: latents {tuple(z.shape)} do not fit {utt}'s audio "
                                 f"({frames:.1f} frames of {self.hop} samples)")
            self._latents[key] = z
        return self._latents[key], self._wavs[self.key2utt[key]]

    def __getitem__(self, key: Key | int) -> dict[str, torch.Tensor]:
        index, seed = key if isinstance(key, tuple) else (key, key)
        latents, whole = self.pair(index)
        n, hop = self.n, self.hop
        z, start = random_crop(latents, n + 1, torch.Generator().manual_seed(seed))
        # the crop's audio, no further than the utterance's last frame at (F - 1) hop; zero-padded past it
        wav = whole[start * hop : min(start + n, latents.shape[1] - 1) * hop]
        item = {"latents": z, "wav": torch.nn.functional.pad(wav, (0, n * hop - wav.shape[-1]))}
        if self.track is not None:
            item["track"] = self.track(self.key2utt[self.keys[index]], whole, start, n + 1)
        return item


class AudioUttDataset(Dataset):
    """Whole utterances: ``dataset[i]`` -> ``{"utt", "spk", "text", "wav" (T,)}``; :func:`collate_audio` pads."""

    def __init__(self, data_dir: str | Path | DataDir, sample_rate: int):
        self.data = data_dir if isinstance(data_dir, DataDir) else DataDir.load(data_dir)
        self.utts, self.sample_rate = self.data.utts, sample_rate

    def __len__(self) -> int:
        return len(self.utts)

    def lengths(self, hop_length: int = 1) -> list[int]:
        """Lengths in ``hop_length`` units from ``utt2dur`` (required for bucketing)."""
        if not self.data.utt2dur:
            raise ValueError("utt2dur is missing: run `python -m shared.datadir utt2dur <dir>` first")
        return [max(1, int(self.data.utt2dur[u] * self.sample_rate) // hop_length) for u in self.utts]

    def __getitem__(self, key: Key | int) -> dict[str, Any]:
        index = key[0] if isinstance(key, tuple) else key
        utt = self.utts[index]
        return {"utt": utt, "spk": self.data.utt2spk[utt], "text": self.data.text[utt],
                "wav": self.data.load_audio(utt, self.sample_rate)}


def collate_audio(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad ``wav`` to ``(B, T_max)`` with ``wav_lengths``; other keys become lists."""
    wav, lengths = pad_1d([it["wav"] for it in items])
    out: dict[str, Any] = {k: [it[k] for it in items] for k in items[0] if k != "wav"}
    out.update(wav=wav, wav_lengths=lengths)
    return out


def make_loader(dataset: Dataset, sampler: _EpochSampler, num_workers: int = 0,
                collate_fn: Callable | None = None) -> ResumableDataLoader:
    """The standard training loader: resumable, persistent workers when there are any."""
    return ResumableDataLoader(dataset, sampler, num_workers=num_workers, collate_fn=collate_fn,
                               persistent_workers=num_workers > 0, pin_memory=torch.cuda.is_available())
