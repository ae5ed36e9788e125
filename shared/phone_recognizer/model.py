"""CTC phone recogniser: log-mel ``(B, 80, T)`` -> conv front end (stride 2) -> BiGRU -> per-frame logits.

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
    conv_channels: int = 192
    hidden: int = 160
    num_layers: int = 2
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class PhoneRecognizer(nn.Module):
    """Waveform or features in, CTC log-probabilities out (output frame rate = ``2 * hop_length``)."""

    subsampling = 2

    def __init__(self, cfg: RecognizerConfig):
        super().__init__()
        self.cfg = cfg
        self.mel = MelSpectrogram(cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, n_mels=cfg.n_mels)
        c = cfg.conv_channels
        self.front = nn.Sequential(
            nn.Conv1d(cfg.n_mels, c, 5, padding=2), nn.BatchNorm1d(c), nn.GELU(),
            nn.Conv1d(c, c, 5, stride=2, padding=2), nn.BatchNorm1d(c), nn.GELU(),
            nn.Conv1d(c, c, 3, padding=1), nn.BatchNorm1d(c), nn.GELU(),
        )
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
        return (frames - 1) // self.subsampling + 1

    def forward(self, feats: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``feats (B, n_mels, F)``, ``frames (B,)`` -> log-probs ``(B, F', num_classes)``, lengths ``(B,)``."""
        x = self.front(feats).transpose(1, 2)  # (B, F', C)
        out_len = self.output_lengths(frames).clamp(max=x.shape[1])
        packed = nn.utils.rnn.pack_padded_sequence(x, out_len.cpu(), batch_first=True, enforce_sorted=False)
        y, _ = self.rnn(packed)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
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
