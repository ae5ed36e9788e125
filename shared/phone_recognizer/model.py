"""CTC phone recogniser: log-mel ``(B, 80, T)`` -> conv front end (stride 2 or 4) -> BiGRU -> per-frame logits.

A plain ``nn.Module``; training lives in :mod:`shared.phone_recognizer.train`. Input features are
normalised per utterance and channel (mean and variance over time), which makes the recogniser blind
to overall gain and channel colouring: synthesised and real audio are compared on content only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from shared.features import MelSpectrogram


@dataclass
class RecognizerConfig:
    num_classes: int
    blank_id: int
    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 80
    subsampling: int = 4  # 2 or 4 (output frame = subsampling * hop_length)
    conv_channels: int = 128
    hidden: int = 128
    num_layers: int = 2
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class PhoneRecognizer(nn.Module):
    """Waveform or features in, CTC log-probabilities out (one output frame per ``subsampling * hop_length``)."""

    def __init__(self, cfg: RecognizerConfig):
        super().__init__()
        self.cfg = cfg
        self.mel = MelSpectrogram(cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels)
        c = cfg.conv_channels
        if cfg.subsampling not in (2, 4):
            raise ValueError(f"subsampling must be 2 or 4, got {cfg.subsampling}")
        self.subsampling = cfg.subsampling
        layers: list[nn.Module] = [nn.Conv1d(cfg.n_mels, c, 5, stride=2, padding=2), nn.BatchNorm1d(c), nn.GELU()]
        if cfg.subsampling == 4:
            layers += [nn.Conv1d(c, c, 5, stride=2, padding=2), nn.BatchNorm1d(c), nn.GELU()]
        layers += [nn.Conv1d(c, c, 3, padding=1), nn.BatchNorm1d(c), nn.GELU()]
        self.front = nn.Sequential(*layers)
        self.rnn = nn.GRU(c, cfg.hidden, num_layers=cfg.num_layers, batch_first=True, bidirectional=True,
                          dropout=cfg.dropout if cfg.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * cfg.hidden, cfg.num_classes)

    @torch.no_grad()
    def features(self, wav: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``wav (B, T)``, sample ``lengths (B,)`` -> normalised log-mel ``(B, n_mels, F)``, frame lengths ``(B,)``."""
        mel = self.mel(wav)
        frames = lengths // self.cfg.hop_length + 1
        mask = (torch.arange(mel.shape[-1], device=mel.device)[None] < frames[:, None]).unsqueeze(1).float()
        n = mask.sum(-1, keepdim=True).clamp(min=1)
        mean = (mel * mask).sum(-1, keepdim=True) / n
        var = ((mel - mean) ** 2 * mask).sum(-1, keepdim=True) / n
        return (mel - mean) / (var.sqrt() + 1e-3) * mask, frames

    def output_lengths(self, frames: torch.Tensor) -> torch.Tensor:
        out = (frames - 1) // 2 + 1
        return (out - 1) // 2 + 1 if self.subsampling == 4 else out

    def forward(self, feats: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``feats (B, n_mels, F)``, ``frames (B,)`` -> log-probs ``(B, F', num_classes)``, lengths ``(B,)``."""
        x = self.front(feats).transpose(1, 2)  # (B, F', C)
        out_len = self.output_lengths(frames).clamp(max=x.shape[1])
        # Padded (not packed) GRU: packing is ~8x slower on CPU. The padding frames are zeros going into the
        # front end but not coming out of it (the convolutions' biases, BatchNorm's shift and GELU make them
        # activations like any other), so the backward direction reads them before the real frames: padded by a
        # quarter of its length, an utterance's log-probs move by several nats. Training accepts that (batches are
        # length-bucketed, so the padding is short); decoding runs one utterance at a time, without any.
        y, _ = self.rnn(x)
        return self.head(self.drop(y)).log_softmax(-1), out_len


def greedy_ctc_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank_id: int) -> list[list[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks. ``log_probs (B, F, V)`` -> id lists."""
    best = log_probs.argmax(-1).cpu()
    out = []
    for b in range(best.shape[0]):
        seq = best[b, : int(lengths[b])].tolist()
        ids, prev = [], None
        for s in seq:
            if s != prev and s != blank_id:
                ids.append(s)
            prev = s
        out.append(ids)
    return out
