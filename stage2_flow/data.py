"""Stage-two data: latent dumps (``latents.scp`` + ``utt2frames``), token files, speakers, latent
normalisation, training prompts, external durations, and reflow pair directories.

Latent dumps are :mod:`shared.latents`'s. Latent statistics are ``latent_stats.json`` {"mean": [D], "std": [D], ...} from
stage one, which also record the dump and codec they were computed on (:class:`shared.latents.LatentStats`,
:func:`check_stats_codec`).
"""

from __future__ import annotations

import copy
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from shared.batching import pad_1d, pad_2d
from shared.io import read_json, read_kv
from shared.latents import codec_fingerprint, load_latent, read_latent_scp, require_codec, same_codec, same_codec_json
from stage2_flow.alignment import read_durations

PROMPT_SECONDS = (1.0, 3.0)  # data.prompt_seconds where a config gives none: training's and reflow's speech-prompt lengths


class LatentNormalizer:
    """x = (z - mean) / std per channel. z, x: (B, D, F) or (D, F)."""

    def __init__(self, mean: list[float] | torch.Tensor, std: list[float] | torch.Tensor) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float32)
        self.std = torch.as_tensor(std, dtype=torch.float32).clamp(min=1e-5)

    @classmethod
    def load(cls, path: str | Path) -> "LatentNormalizer":
        stats = read_json(path)
        if "mean" not in stats or "std" not in stats:
            raise ValueError(f"{path}: latent stats need 'mean' and 'std' lists")
        return cls(stats["mean"], stats["std"])

    def _shape(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        t = t.to(z.device, z.dtype)
        return t[:, None] if z.dim() == 2 else t[None, :, None]

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self._shape(self.mean, z)) / self._shape(self.std, z)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._shape(self.std, x) + self._shape(self.mean, x)

    def log_abs_det_per_frame(self) -> float:
        """log |d x / d z| for one frame = -sum_d log std_d; log p(z) = log p(x) + F * this."""
        return float(-torch.log(self.std).sum())


def dump_is_continuous(latents: str | Path) -> bool:
    """Whether a latent dump holds a quantised codec's pre-quantisation latents (``stage1_vae.encode --continuous``),
    by its ``codec.json`` (a dump without one, another tool's: not)."""
    path = Path(latents) / "codec.json"
    return bool(read_json(path).get("continuous")) if path.is_file() else False


def check_latent_codec(latents: str | Path, stage1_exp_dir: str | Path, option: str) -> None:
    """Refuse a latent dump made by another codec than the stage-one exp dir the model is (to be) trained for
    (:func:`shared.latents.require_codec`); a dump without a ``codec.json`` (another tool's) is only checked latent by
    latent (:class:`TTSDataset`)."""
    require_codec(latents, stage1_exp_dir, option, "the stage-one codec", required=False)


def check_model_latents(exp_dir: str | Path, latents: str | Path, option: str) -> None:
    """Refuse (SystemExit) a latent dump given as ``option`` that a trained (or training) stage-two model of ``exp_dir``
    does not model: one made by another codec than its stage-one codec (:func:`check_latent_codec`; its normalisation
    and its decoder are that codec's), or of the other kind (pre-quantisation ``--continuous`` latents or the
    codec's own) than ``stage1.json`` records."""
    from stage2_flow.model import stage1_dir, trained_continuous

    check_latent_codec(latents, stage1_dir(exp_dir), option)
    dump, model = dump_is_continuous(latents), trained_continuous(exp_dir)
    if dump != model:
        kind = {True: "pre-quantisation latents (stage1_vae.encode --continuous)", False: "the codec's own encode output"}
        raise SystemExit(f"{option} {latents}: {kind[dump]} ({Path(latents) / 'codec.json'}), but the model of {exp_dir} is "
                         f"trained on {kind[model]} ({Path(exp_dir) / 'stage1.json'}): encode the data "
                         f"{'with' if model else 'without'} --continuous, or give a model trained on this kind")
    check_stats_codec(Path(exp_dir) / "latent_stats.json", latents, stage1_dir(exp_dir), option)


_UNCHECKED_STATS: set[Path] = set()  # latent_stats.json files without a codec, warned of once


def _describe_codec(info: dict[str, Any]) -> str:
    return (f"the codec of {info.get('exp_dir')} (weights sha256 {info.get('model_sha256')}, continuous "
            f"{bool(info.get('continuous'))})")


def check_stats_codec(stats_path: str | Path, latents: str | Path, stage1_exp_dir: str | Path, option: str) -> None:
    """Refuse (SystemExit) the latent statistics ``stats_path`` for the dump given as ``option``, ``latents``, if the
    codec they record (``codec``: the codec.json of the dump they were computed on, :class:`shared.latents.LatentStats`)
    is not the dump's: another codec (stage one retrained, and the training set encoded again without ``--stats-out``)
    or another kind of latents (``--continuous`` or not), whose statistics would normalise these latents to something
    else than the model expects. A dump without a codec.json (another tool's) is checked against the stage-one codec
    ``stage1_exp_dir`` instead, as its own latents (not ``--continuous``, as :func:`dump_is_continuous` reads it).
    Statistics written before they recorded a codec still load: a warning, once per file. No file at all is left to
    its reader (:meth:`LatentNormalizer.load`) to report."""
    if not Path(stats_path).is_file():
        return
    stats = read_json(stats_path)
    made = stats.get("codec")
    if made is None:
        key = Path(stats_path).resolve()
        if key not in _UNCHECKED_STATS:
            _UNCHECKED_STATS.add(key)
            warn(f"{stats_path} records no codec (written before latent statistics recorded theirs), so it is not checked "
                 f"to be of the codec of {option} {latents}: stage1_vae.encode --stats-out writes statistics that record it")
        return
    dump_json = Path(latents) / "codec.json"
    if dump_json.is_file():
        info = read_json(dump_json)
        if same_codec_json(made, info):
            return
        theirs = f"{option} {latents} holds latents of {_describe_codec(info)} ({dump_json})"
    else:  # another tool's dump: taken as the stage-one codec's own latents (dump_is_continuous)
        if same_codec(made, stage1_exp_dir) and not made.get("continuous"):
            return
        theirs = (f"{option} {latents} (no codec.json) is to be of the stage-one codec {Path(stage1_exp_dir).resolve()} "
                  f"(weights sha256 {codec_fingerprint(stage1_exp_dir)}, continuous False)")
    raise SystemExit(f"{stats_path}: latent statistics of {_describe_codec(made)}, computed on {stats.get('dump')}, but "
                     f"{theirs}: give latents of the codec they were computed on; or, to train on these, compute the "
                     f"statistics on this codec's latents of the training set (stage1_vae.encode --stats-out "
                     f"{Path(stage1_exp_dir) / 'latent_stats.json'}) and train the model again")


def read_tokens(data_dir: str | Path, vocab) -> dict[str, list[int]]:
    """``<data_dir>/token`` -> ids (the vocab raises naming every utterance with unknown symbols)."""
    path = Path(data_dir) / "token"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no token file (run `python -m shared.text.tokenize` on {data_dir})")
    utt2tok = {u: v.split() for u, v in read_kv(path).items()}
    return vocab.encode_all(utt2tok)


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


class TTSDataset(Dataset):
    """All utterances in memory: tokens (L,), normalised latents (D, F), speaker index, optional
    durations, and (``prompt_seconds``) a random reference segment of another utterance of the same
    speaker (by its ``utt2spk`` name, also for a speaker the model has no id for: an unseen voice, the zero-shot
    case, must not be prompted with its own target). Indexed by (index, seed) keys from shared.batching samplers, or
    plain ints.

    A latent file whose channels are not the normaliser's (the codec's), or that holds NaN or infinite values
    (:func:`shared.latents.load_latent` refuses them), is an error naming it and its utterance. An utterance whose
    speaker is not in ``speakers`` (or without an ``utt2spk`` entry) gets index -1, the zero speaker vector: a warning,
    or with ``unknown_speakers="error"`` (a training set) an error. ``durations``: an external durations file
    (:func:`~stage2_flow.alignment.read_durations`), which must cover every utterance kept; its errors name it."""

    def __init__(
        self,
        data_dir: str | Path,
        latent_dir: str | Path,
        vocab,
        normalizer: LatentNormalizer,
        speakers: list[str],
        frame_rate: float,
        durations: str | Path | None = None,
        prompt_seconds: tuple[float, float] | None = None,
        max_frames: int | None = None,
        unknown_speakers: str = "warn",
    ) -> None:
        tokens = read_tokens(data_dir, vocab)
        scp = read_latent_scp(latent_dir)
        utt2spk = read_kv(Path(data_dir) / "utt2spk") if (Path(data_dir) / "utt2spk").is_file() else {}
        keys = sorted(set(tokens) & set(scp))
        missing = sorted(set(tokens) - set(scp))
        if missing:
            warn(f"{len(missing)} utterance(s) of {data_dir}/token have no latents in {latent_dir} (e.g. {missing[:3]})")
        utt2dur = read_durations(durations) if durations is not None else None
        spk_index = {s: i for i, s in enumerate(speakers)}
        self.normalizer = normalizer  # what the latents were normalised with (to de-normalise generated ones)
        self.utts, self.tokens, self.latents, self.spk, self.durations = [], [], [], [], []
        names = []  # each utterance's utt2spk speaker (None: no entry), what its prompts are grouped by
        skipped, lacking = [], []  # lacking: utterances the durations file has none for
        n_channels = len(normalizer.mean)
        for utt in keys:
            z = load_latent(scp[utt], f"utterance '{utt}'")  # refuses NaN or infinite values
            if z.shape[0] != n_channels:
                raise ValueError(f"{scp[utt]}: latents of shape {tuple(z.shape)}, not ({n_channels}, frames): the codec's "
                                 f"latents have {n_channels} channels (latent_stats.json)")
            z = normalizer.normalize(z)
            tok = torch.tensor(tokens[utt], dtype=torch.long)
            if len(tok) > z.shape[1] or (max_frames and z.shape[1] > max_frames):
                skipped.append(utt)
                continue
            dur = None
            if utt2dur is not None:
                if utt not in utt2dur:
                    lacking.append(utt)
                    continue
                dur = fit_durations(utt2dur[utt], len(tok), z.shape[1], utt, source=durations)
            self.utts.append(utt)
            self.tokens.append(tok)
            self.latents.append(z)
            self.spk.append(spk_index.get(utt2spk.get(utt, ""), -1))
            names.append(utt2spk.get(utt))
            self.durations.append(dur)
        if lacking:
            raise ValueError(f"{durations}: no durations for {len(lacking)} utterance(s) of {data_dir} (e.g. {lacking[:3]}): "
                             "give durations for every utterance with latents")
        if skipped:
            warn(f"skipped {len(skipped)} utterance(s) with more tokens than frames or over max_frames (e.g. {skipped[:3]})")
        unknown = [u for u, k in zip(self.utts, self.spk) if k < 0]
        if unknown:
            msg = (f"{len(unknown)} utterance(s) of {data_dir} have no speaker or one not among the model's {len(speakers)} "
                   f"(utt2spk, speakers.txt), e.g. {unknown[:3]}: they would get the zero speaker vector")
            if unknown_speakers == "error":
                raise ValueError(msg)
            warn(msg)
        if not self.utts:
            raise ValueError(f"no usable utterances in {data_dir} with latents {latent_dir}")
        self.frame_rate = frame_rate
        self.prompt_seconds = prompt_seconds
        # speech prompts are drawn from the whole set, also for a subset of its items (validation); grouped by speaker
        # name, not by the model's speaker index: that is -1 for every speaker the model has no id for (the zero-shot
        # case: a dev or test set of unseen voices), whose prompts must still come from its own other utterances
        self.prompt_utts, self.prompt_latents = self.utts, self.latents
        self.spk_names: list[str | None] = names
        self.prompts_of: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            if name is not None:
                self.prompts_of.setdefault(name, []).append(i)
        if prompt_seconds is not None:
            alone = [u for u, name in zip(self.utts, names) if len(self.prompts_of.get(name, [])) < 2]
            if alone:  # once per set, not per batch
                warn(f"{len(alone)} utterance(s) of {data_dir} have no other utterance of their speaker (or no utt2spk "
                     f"entry) to cut a speech prompt from: each one's prompt is cut from itself, the target it is a prompt "
                     f"for (e.g. {alone[:3]})")

    def __len__(self) -> int:
        return len(self.utts)

    def subset(self, keep: list[int]) -> "TTSDataset":
        """The items at the indices ``keep``, in that order (a validation subset); their prompts still come
        from every utterance of this set."""
        sub = copy.copy(self)
        for name in ("utts", "tokens", "latents", "spk", "spk_names", "durations"):
            setattr(sub, name, [getattr(self, name)[i] for i in keep])
        return sub

    def lengths(self) -> list[int]:
        return [z.shape[1] for z in self.latents]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        idx, seed = key if isinstance(key, tuple) else (key, key)
        item = {"utt": self.utts[idx], "tokens": self.tokens[idx], "latents": self.latents[idx], "spk": self.spk[idx]}
        if self.durations[idx] is not None:
            item["durations"] = self.durations[idx]
        if self.prompt_seconds is not None:
            item["prompt"] = self._prompt(idx, torch.Generator().manual_seed(seed))
        return item

    def _prompt(self, idx: int, g: torch.Generator) -> torch.Tensor:
        """A random 1-3 s (prompt_seconds) segment of another utterance of the same speaker (by name); of the utterance
        itself only where there is none (``__init__`` warned)."""
        same = self.prompts_of.get(self.spk_names[idx], []) if self.spk_names[idx] is not None else []
        others = [self.prompt_latents[j] for j in same if self.prompt_utts[j] != self.utts[idx]] or [self.latents[idx]]
        z = others[int(torch.randint(len(others), (1,), generator=g))]
        lo, hi = self.prompt_seconds
        sec = lo + (hi - lo) * float(torch.rand(1, generator=g))
        n = max(1, min(z.shape[1], int(sec * self.frame_rate)))
        start = int(torch.randint(z.shape[1] - n + 1, (1,), generator=g))
        return z[:, start : start + n]


def fit_durations(d: torch.Tensor, n_tok: int, n_frm: int, utt: str, tolerance: int = 3,
                  source: str | Path | None = None) -> torch.Tensor:
    """External durations must cover the latents; off-by-a-few (frame rounding) is absorbed by the last token.
    ``source``: the durations file, which the errors name."""
    where = f"{source}: " if source is not None else ""
    if len(d) != n_tok:
        raise ValueError(f"{where}utt '{utt}': {len(d)} durations for {n_tok} tokens: the durations must be of the data "
                         "dir's token file")
    diff = n_frm - int(d.sum())
    if abs(diff) > tolerance:
        raise ValueError(f"{where}utt '{utt}': durations sum to {int(d.sum())} frames but the latents have {n_frm}: the "
                         "durations must be counted in these latents' frames")
    d = d.clone()
    i = n_tok - 1
    while diff != 0 and i >= 0:  # absorb the rounding difference from the end
        step = max(diff, -int(d[i])) if diff < 0 else diff
        d[i] += step
        diff -= step
        i -= 1
    return d


def collate_tts(items: list[dict[str, Any]]) -> dict[str, Any]:
    tokens, tok_lens = pad_1d([it["tokens"] for it in items], value=0)
    latents, frm_lens = pad_2d([it["latents"] for it in items])
    batch = {
        "utts": [it["utt"] for it in items],
        "tokens": tokens.long(),
        "tok_lens": tok_lens.long(),
        "latents": latents,
        "frm_lens": frm_lens.long(),
        "spk": torch.tensor([it["spk"] for it in items], dtype=torch.long),
    }
    if all("durations" in it for it in items):
        batch["durations"] = pad_1d([it["durations"] for it in items], value=0)[0].long()
    if all("prompt" in it for it in items):
        batch["prompt"], batch["prompt_mask"] = pad_prompts([it["prompt"] for it in items])
    return batch


def pad_prompts(prompts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Speech prompts ``(D, P_i)`` -> ``prompt (B, D, P_max)`` and ``prompt_mask (B, 1, P_max)``."""
    prompt, p_lens = pad_2d(prompts)
    return prompt, (torch.arange(prompt.shape[-1])[None] < p_lens[:, None]).float()[:, None]


class ReflowPairs(Dataset):
    """Pairs written by ``stage2_flow.reflow generate``: ``pairs.scp`` -> .pt dicts of tensors: x0, x1,
    mu_frames (D, F), g (S,) or None, text_frames (E, F) (``frame_text_channels``), and (MAS durations)
    x1_data, the real latent.
    ``with_data``: every pair must hold x1_data (a fine-tune that mixes in real data). Pairs longer than ``max_frames``
    are skipped (``data.max_frames``, as :class:`TTSDataset` skips such utterances); a pair holding NaN or infinite
    values (a diverging ODE solve) is an error naming its file."""

    def __init__(self, pair_dir: str | Path, with_data: bool = False, max_frames: int | None = None) -> None:
        scp = Path(pair_dir) / "pairs.scp"
        if not scp.is_file():
            raise FileNotFoundError(f"{scp}: not a reflow pair dir (run `python -m stage2_flow.reflow generate`)")
        self.utts, self.items = [], []
        skipped = []
        for utt, p in read_kv(scp).items():
            path = Path(p) if Path(p).is_absolute() else Path(pair_dir) / p
            try:
                item = torch.load(path, map_location="cpu", weights_only=True)  # tensors and None only
            except pickle.UnpicklingError:
                raise ValueError(f"{path}: not a reflow pair (it holds objects other than tensors, which torch.load "
                                 "weights_only refuses): regenerate the pairs (python -m stage2_flow.reflow generate)") from None
            missing = [k for k in ("x0", "x1", "mu_frames") if k not in item] if isinstance(item, dict) else ["a dict"]
            if missing:
                raise ValueError(f"{path}: not a reflow pair (no {', '.join(missing)}): regenerate the pairs "
                                 "(python -m stage2_flow.reflow generate)")
            if with_data and "x1_data" not in item:
                raise ValueError(f"{path}: reflow pair without x1_data (the real latent), needed by loss.flow_data > 0; "
                                 "regenerate the pairs with MAS durations (not --predicted-durations)")
            if not with_data:
                item.pop("x1_data", None)
            bad = [k for k, v in item.items() if isinstance(v, torch.Tensor) and not torch.isfinite(v).all()]
            if bad:
                raise ValueError(f"{path}: the reflow pair of '{utt}' holds NaN or infinite values in {', '.join(bad)}: "
                                 "regenerate the pairs (python -m stage2_flow.reflow generate --overwrite), with another "
                                 "--solver or more --nfe if they come back so")
            if max_frames and item["x1"].shape[1] > max_frames:
                skipped.append(utt)
                continue
            self.utts.append(utt)
            self.items.append(item)
        if skipped:
            warn(f"skipped {len(skipped)} reflow pair(s) over max_frames {max_frames} (e.g. {skipped[:3]})")
        if not self.items:
            raise ValueError(f"no usable reflow pairs in {scp}" + (f": all over max_frames {max_frames}" if skipped else ""))

    def __len__(self) -> int:
        return len(self.items)

    def lengths(self) -> list[int]:
        return [it["x1"].shape[1] for it in self.items]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        idx = key[0] if isinstance(key, tuple) else key
        return {"utt": self.utts[idx], **self.items[idx]}


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, Any]:
    x1, frm_lens = pad_2d([it["x1"] for it in items])
    batch = {"utts": [it["utt"] for it in items], "latents": x1, "frm_lens": frm_lens.long(),
             "x0": pad_2d([it["x0"] for it in items])[0], "mu_frames": pad_2d([it["mu_frames"] for it in items])[0]}
    if items[0].get("g") is not None:
        batch["g"] = torch.stack([it["g"] for it in items])
    for key in ("x1_data", "text_frames"):
        if key in items[0]:
            batch[key] = pad_2d([it[key] for it in items])[0]
    return batch


def speaking_rate(tokens: list[torch.Tensor], frames: list[int], frame_rate: float, space_id: int | None = None) -> dict[str, float]:
    """Training-set speaking rate for the alignment-free length heuristic (tokens per frame/second)."""
    n_tok = sum(len(t) for t in tokens)
    n_frm = sum(frames)
    out = {"tokens_per_frame": n_tok / n_frm, "tokens_per_second": n_tok / n_frm * frame_rate, "frame_rate": frame_rate}
    if space_id is not None:
        words = sum(int((t == space_id).sum()) + 1 for t in tokens)
        out["words_per_second"] = words / n_frm * frame_rate
    return out

