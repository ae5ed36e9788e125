"""Monotonic alignment search (MAS), the length regulator and duration helpers.

MAS (Glow-TTS) finds the monotonic, surjective token->frame alignment maximising the summed
log-likelihood ``log_p[b, i, j]`` of frame ``j`` under token ``i``: every token gets >= 1 frame,
frames are assigned in order, the path starts at (0, 0) and ends at (L-1, F-1).

Three implementations, all checked against each other and against :func:`brute_force_alignment`:

* :func:`mas_torch` -- per-frame dynamic programme vectorised over batch and tokens (any device);
* :func:`mas_numba` -- the same programme compiled with numba, one utterance at a time (CPU);
* :func:`brute_force_alignment` -- enumerates every monotonic path (tests only, tiny inputs).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import torch

try:  # numba ships with librosa; fall back to the torch path when it is missing
    import numba

    @numba.njit(cache=True, nogil=True)
    def _mas_numba_one(log_p: np.ndarray, path: np.ndarray, n_tok: int, n_frm: int) -> None:
        neg = -1e30
        q = np.full((n_tok, n_frm), neg, dtype=np.float64)
        for j in range(n_frm):
            lo = max(0, n_tok - (n_frm - j))  # must still be able to reach the last token
            hi = min(n_tok - 1, j)
            for i in range(lo, hi + 1):
                if j == 0:
                    prev = 0.0 if i == 0 else neg
                else:
                    stay = q[i, j - 1]
                    move = q[i - 1, j - 1] if i > 0 else neg
                    prev = stay if stay >= move else move
                q[i, j] = prev + log_p[i, j]
        i = n_tok - 1
        for j in range(n_frm - 1, -1, -1):
            path[i, j] = 1
            if i > 0 and j > 0 and (i == j or q[i - 1, j - 1] > q[i, j - 1]):
                i -= 1

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False


def _check(log_p: torch.Tensor, tok_lens: torch.Tensor, frm_lens: torch.Tensor) -> None:
    if log_p.dim() != 3:
        raise ValueError(f"log_p must be (B, L, F), got {tuple(log_p.shape)}")
    bad = (tok_lens > frm_lens).nonzero().flatten().tolist()
    if bad:
        raise ValueError(
            f"MAS needs at least one frame per token; batch items {bad} have more tokens than frames "
            f"(tokens {tok_lens[bad].tolist()}, frames {frm_lens[bad].tolist()})"
        )


@torch.no_grad()
def mas_torch(log_p: torch.Tensor, tok_lens: torch.Tensor, frm_lens: torch.Tensor) -> torch.Tensor:
    """Vectorised MAS. log_p: (B, L, F); lengths: (B,). Returns a 0/1 path (B, L, F) (float)."""
    _check(log_p, tok_lens, frm_lens)
    b, n_tok, n_frm = log_p.shape
    dev = log_p.device
    neg = torch.tensor(-1e30, dtype=torch.float64, device=dev)
    lp = log_p.double()
    tok = torch.arange(n_tok, device=dev)[None, :]
    tmask = tok < tok_lens[:, None]  # (B, L)
    lp = torch.where(tmask[:, :, None], lp, neg)
    q = torch.where(tok == 0, lp[:, :, 0], neg.expand(b, n_tok))
    move_better = torch.zeros(b, n_tok, n_frm, dtype=torch.bool, device=dev)
    for j in range(1, n_frm):
        shifted = torch.cat([neg.expand(b, 1), q[:, :-1]], dim=1)
        move_better[:, :, j] = shifted > q
        q = torch.maximum(q, shifted) + lp[:, :, j]
        q = torch.where(tok <= j, q, neg)
    # backtrack from (tok_len-1, frm_len-1), vectorised over the batch
    path = torch.zeros(b, n_tok, n_frm, dtype=log_p.dtype, device=dev)
    idx = (tok_lens - 1).clone()
    ar = torch.arange(b, device=dev)
    for j in range(n_frm - 1, -1, -1):
        active = j < frm_lens
        path[ar[active], idx[active], j] = 1.0
        step = active & (idx > 0) & ((idx == j) | move_better[ar, idx, j])
        idx = idx - step.long()
    return path


def mas_numba(log_p: torch.Tensor, tok_lens: torch.Tensor, frm_lens: torch.Tensor) -> torch.Tensor:
    """MAS compiled with numba (CPU, one item at a time). Same contract as :func:`mas_torch`."""
    if not HAVE_NUMBA:
        return mas_torch(log_p, tok_lens, frm_lens)
    _check(log_p, tok_lens, frm_lens)
    lp = log_p.detach().double().cpu().numpy()
    out = np.zeros(lp.shape, dtype=np.int32)
    for k in range(lp.shape[0]):
        n_t, n_f = int(tok_lens[k]), int(frm_lens[k])
        sub = np.zeros((n_t, n_f), dtype=np.int32)
        _mas_numba_one(np.ascontiguousarray(lp[k, :n_t, :n_f]), sub, n_t, n_f)
        out[k, :n_t, :n_f] = sub
    return torch.from_numpy(out).to(device=log_p.device, dtype=log_p.dtype)


def monotonic_alignment_search(
    log_p: torch.Tensor, tok_lens: torch.Tensor, frm_lens: torch.Tensor, impl: str = "auto"
) -> torch.Tensor:
    """Dispatch: ``numba`` on CPU when available, else the vectorised torch version."""
    if impl == "auto":
        impl = "numba" if (HAVE_NUMBA and log_p.device.type == "cpu") else "torch"
    if impl == "numba":
        return mas_numba(log_p, tok_lens, frm_lens)
    if impl == "torch":
        return mas_torch(log_p, tok_lens, frm_lens)
    raise ValueError(f"unknown MAS implementation {impl!r} (auto, numba, torch)")


def brute_force_alignment(log_p: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Best monotonic path by enumerating every duration split. log_p: (L, F). Tests only."""
    n_tok, n_frm = log_p.shape
    best, best_d = -math.inf, None
    for cuts in itertools.combinations(range(1, n_frm), n_tok - 1):
        bounds = (0, *cuts, n_frm)
        score = sum(float(log_p[i, bounds[i] : bounds[i + 1]].sum()) for i in range(n_tok))
        if score > best:
            best, best_d = score, [bounds[i + 1] - bounds[i] for i in range(n_tok)]
    return durations_to_path(torch.tensor([best_d]), n_frm)[0], best


def gaussian_log_p(mu: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log N(x_j; mu_i, I) for every token/frame pair. mu: (B, D, L), x: (B, D, F) -> (B, L, F)."""
    d = mu.shape[1]
    mu_sq = (mu**2).sum(1)[:, :, None]  # (B, L, 1)
    x_sq = (x**2).sum(1)[:, None, :]  # (B, 1, F)
    cross = torch.einsum("bdl,bdf->blf", mu, x)
    return -0.5 * (mu_sq + x_sq - 2 * cross) - 0.5 * d * math.log(2 * math.pi)


def durations_to_path(durations: torch.Tensor, n_frames: int | None = None) -> torch.Tensor:
    """Integer durations (B, L) -> 0/1 alignment (B, L, F); frames past sum(d) are all zero."""
    durations = durations.long()
    ends = durations.cumsum(-1)  # (B, L)
    starts = ends - durations
    n_frames = int(ends[:, -1].max()) if n_frames is None else n_frames
    j = torch.arange(n_frames, device=durations.device)[None, None, :]
    return ((j >= starts[:, :, None]) & (j < ends[:, :, None])).float()


def length_regulate(h: torch.Tensor, durations: torch.Tensor, n_frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Expand token features to frame rate. h: (B, C, L), durations: (B, L) ints (0 on padding).

    Returns (frames (B, C, F), frame lengths (B,)).
    """
    path = durations_to_path(durations, n_frames).to(h.dtype)
    return torch.bmm(h, path), durations.long().sum(-1)


def round_durations(w: torch.Tensor, tok_mask: torch.Tensor, min_dur: int = 1) -> torch.Tensor:
    """Real-valued durations (B, L) -> ints whose running sum tracks the real running sum.

    Rounding the cumulative sum (not each token) keeps the total length unbiased; each real
    token still gets ``min_dur`` frames.
    """
    w = w * tok_mask
    ends = torch.round(torch.cumsum(w, -1)).long()
    d = torch.diff(ends, prepend=torch.zeros_like(ends[:, :1]))
    d = torch.clamp(d, min=min_dur) * tok_mask.long()
    return d


def read_durations(path: str | Path) -> dict[str, torch.Tensor]:
    """Read ``<utt> d1 d2 ...`` (frames per token). Errors name file:line."""
    out: dict[str, torch.Tensor] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            utt, vals = parts[0], parts[1:]
            try:
                d = [int(v) for v in vals]
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: utt '{utt}': non-integer duration ({e})") from None
            if not d or min(d) < 0:
                raise ValueError(f"{path}:{lineno}: utt '{utt}': durations must be non-empty and >= 0")
            if utt in out:
                raise ValueError(f"{path}:{lineno}: duplicate utt '{utt}'")
            out[utt] = torch.tensor(d, dtype=torch.long)
    return out

