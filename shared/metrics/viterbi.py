"""pYIN's Viterbi decoding without its dense cost: the same path as ``librosa.sequence.viterbi``, faster.

``librosa.pyin`` decodes an HMM of ``2 x n_bins`` states (a voiced and an unvoiced state per pitch bin; 734 at the
evaluation's 0.1-semitone bins from 60 to 500 Hz) with ``librosa.sequence.viterbi``, which takes the maximum over
every predecessor of every state, ``O(frames x states^2)``: most of pYIN's time. Its transition matrix is banded (a
pitch moves at most a few semitones a frame; :func:`librosa.sequence.transition_local`, crossed with the voicing
switch), so each state has ~80 predecessors whose transition is not zero. :func:`sparse_viterbi` takes the maximum over
those, and over all of them only where a zero transition (librosa adds ``tiny`` before the log, so it is ``log(tiny)``,
not ``-inf``) could reach the best: the argmax, ties to the lowest index included, is librosa's, so the path is the
same (``tests/test_metrics.py`` checks it on speech-like signals and on an HMM where a zero transition wins).

:func:`faster_pyin_viterbi` puts it in place of ``librosa.sequence.viterbi`` for the span of a ``librosa.pyin`` call.
``benchmarks/bench_pitch.py`` times both.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import librosa
import numba
import numpy as np


@numba.njit(cache=True)
def _sparse_viterbi(log_prob: np.ndarray, log_trans: np.ndarray, pred_ptr: np.ndarray, pred_idx: np.ndarray,
                    log_p_init: np.ndarray, log_zero: float) -> np.ndarray:  # pragma: no cover (compiled)
    """States ``(T,)`` of the best path: ``log_prob (T, S)``, ``log_trans (S, S)`` (``log_zero`` where the transition is
    0), state ``j``'s nonzero predecessors ``pred_idx[pred_ptr[j]:pred_ptr[j + 1]]`` in ascending order."""
    n_steps, n_states = log_prob.shape
    value = np.empty((n_steps, n_states))
    ptr = np.zeros((n_steps, n_states), dtype=np.uint16)
    value[0] = log_prob[0] + log_p_init
    for t in range(1, n_steps):
        prev = value[t - 1]
        bound = prev.max() + log_zero  # the most any zero transition can give
        for j in range(n_states):
            best, arg = -np.inf, 0
            for q in range(pred_ptr[j], pred_ptr[j + 1]):
                k = pred_idx[q]
                v = prev[k] + log_trans[k, j]
                if v > best:
                    best, arg = v, k
            if not best > bound:  # a zero transition might reach or tie it: every predecessor, as librosa does
                best, arg = -np.inf, 0
                for k in range(n_states):
                    v = prev[k] + log_trans[k, j]
                    if v > best:
                        best, arg = v, k
            ptr[t, j] = arg
            value[t, j] = log_prob[t, j] + best
    state = np.zeros(n_steps, dtype=np.uint16)
    state[-1] = np.argmax(value[-1])
    for t in range(n_steps - 2, -1, -1):
        state[t] = ptr[t + 1, state[t + 1]]
    return state


def sparse_viterbi(prob: np.ndarray, transition: np.ndarray, *, p_init: np.ndarray | None = None) -> np.ndarray:
    """``librosa.sequence.viterbi(prob, transition, p_init=p_init)``'s states (``prob (..., S, T)``), from the nonzero
    transitions (its input checks left to librosa's callers: pYIN builds valid ones)."""
    n_states = prob.shape[-2]
    epsilon = librosa.util.tiny(prob)
    log_trans = np.log(transition + epsilon)
    log_p_init = np.log((np.full(n_states, 1.0 / n_states) if p_init is None else p_init) + epsilon)
    cols, rows = np.nonzero(transition.T > 0)  # per state j (ascending), its predecessors k (ascending)
    pred_ptr = np.searchsorted(cols, np.arange(n_states + 1)).astype(np.int64)
    pred_idx = rows.astype(np.int64)
    log_prob = np.log(prob + epsilon)
    flat = log_prob.reshape(-1, n_states, log_prob.shape[-1])
    states = np.stack([_sparse_viterbi(np.ascontiguousarray(lp.T), log_trans, pred_ptr, pred_idx, log_p_init,
                                       float(np.log(epsilon))) for lp in flat])
    return states.reshape(prob.shape[:-2] + (prob.shape[-1],))


@contextlib.contextmanager
def faster_pyin_viterbi() -> Iterator[None]:
    """Within it, ``librosa.pyin`` decodes with :func:`sparse_viterbi` (the same path; pYIN ~5x faster at 0.1-semitone
    bins); a call with ``return_logp`` goes to librosa's own."""
    sequence = librosa.sequence
    original = sequence.viterbi

    def viterbi(prob, transition, *, p_init=None, return_logp=False):
        if return_logp:
            return original(prob, transition, p_init=p_init, return_logp=True)
        return sparse_viterbi(prob, transition, p_init=p_init)

    sequence.viterbi = viterbi
    try:
        yield
    finally:
        sequence.viterbi = original
