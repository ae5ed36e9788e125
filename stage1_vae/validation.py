"""Validation on a fixed dev subset: mel distance, PESQ-WB, STOI (and SI-SDR), plus audio and
spectrogram samples written to ``<exp>/samples/step_XXXXXXXX/``."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from shared.audio import save_audio
from shared.batching import AudioUttDataset, collate_audio
from shared.datadir import DataDir, spread_subset
from shared.features import MelSpectrogram
from shared.metrics.signal import MultiResolutionMelDistance, codec_metrics


def dev_loader(dev_dir: str | Path, sample_rate: int, num_utts: int) -> DataLoader:
    """``num_utts`` utterances of ``dev_dir`` spread over its sorted ids (so over its speakers), one per batch, whole."""
    data = DataDir.load(dev_dir)
    data = data.subset(spread_subset(data.utts, num_utts))
    return DataLoader(AudioUttDataset(data, sample_rate), batch_size=1, shuffle=False, collate_fn=collate_audio)


def save_spectrogram_png(path: Path, ref: torch.Tensor, est: torch.Tensor, sample_rate: int) -> None:
    from shared.plots import plt, save_figure  # Agg

    mel = MelSpectrogram(sample_rate, 1024, 256, n_mels=80)
    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for ax, wav, title in zip(axes, (ref, est), ("reference", "reconstruction")):
        ax.imshow(mel(wav.float()[None])[0].numpy(), origin="lower", aspect="auto", vmin=-11.5, vmax=2.5)
        ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)


def owner_rank(batch_idx: int, num_samples: int, world_size: int) -> int:
    """The rank that validates dev utterance ``batch_idx`` under DDP: rank 0 the first ``num_samples`` (it
    writes their audio and spectrograms), the rest round-robin, so N processes share the dev work."""
    return 0 if batch_idx < num_samples else batch_idx % world_size


def gather_rows(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    """Every rank's rows, on every rank (a no-op without a process group)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()) or torch.distributed.get_world_size() == 1:
        return rows
    gathered: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, rows)
    return [row for part in gathered for row in part]


class Validator:
    """Accumulates per-utterance metrics during a validation epoch and logs their means as ``val/*``. Under
    DDP each rank validates its share of the dev utterances (:func:`owner_rank`) and the means are over all."""

    def __init__(self, sample_rate: int, exp_dir: str | Path | None, num_samples: int = 2, metrics: bool = True):
        self.sample_rate, self.num_samples, self.metrics = sample_rate, num_samples, metrics
        self.exp_dir = Path(exp_dir) if exp_dir is not None else None
        self.mel_distance = MultiResolutionMelDistance(sample_rate)
        self.rows: list[dict[str, float]] = []

    @torch.no_grad()
    @torch.autocast("cpu", enabled=False)  # scored as deployed: float32, also when training in mixed precision
    @torch.autocast("cuda", enabled=False)
    def step(self, module: Any, batch: dict[str, Any], batch_idx: int) -> None:
        if owner_rank(batch_idx, self.num_samples, module.trainer.world_size) != module.global_rank:
            return
        codec = module.inference_codec()
        wav = batch["wav"][:, : int(batch["wav_lengths"][0])]
        est = codec.decode(codec.encode(wav), encoded=True)[:, : wav.shape[-1]]
        ref_np, est_np = wav[0].cpu().numpy(), est[0].float().cpu().numpy()
        if self.metrics:
            self.rows.append(codec_metrics(ref_np, est_np, self.sample_rate, self.mel_distance))
        else:
            self.rows.append({"mel_distance": self.mel_distance(ref_np, est_np)})
        if self.exp_dir is not None and batch_idx < self.num_samples:
            utt = batch["utt"][0]
            if not np.isfinite(est_np).all():  # save_audio would refuse it, and end the training
                print(f"warning: validation step {module.global_step}: the resynthesis of {utt} holds NaN or infinite "
                      "samples (the EMA weights?): no audio sample written", file=sys.stderr, flush=True)
                return
            out = self.exp_dir / "samples" / f"step_{module.global_step:08d}"
            save_audio(out / f"{utt}_ref.wav", ref_np, self.sample_rate)
            save_audio(out / f"{utt}_rec.wav", est_np, self.sample_rate)
            save_spectrogram_png(out / f"{utt}.png", wav[0].cpu(), est[0].float().cpu(), self.sample_rate)

    def epoch_end(self, module: Any) -> dict[str, float]:
        rows, self.rows = gather_rows(self.rows), []  # (every rank takes part, also one with no rows)
        if not rows:
            return {}
        means = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
        if module.global_rank == 0:
            print(f"validation step {module.global_step} ({len(rows)} utts) " + " ".join(f"{k}={v:.4f}" for k, v in means.items()),
                  flush=True)
        module.log_dict({f"val/{k}": v for k, v in means.items() if not math.isnan(v)}, on_step=False, on_epoch=True)
        return means
