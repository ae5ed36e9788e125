"""Dynamic time warping with a row-vectorised numpy recurrence (no numba needed).

The recurrence is the symmetric one with steps (1, 0), (0, 1), (1, 1), all of weight 1::

    D[i, j] = C[i, j] + min(D[i-1, j-1], D[i-1, j], D[i, j-1])

Within a row the horizontal term makes it a running minimum: with ``S = cumsum(C[i])`` and
``a[j] = C[i, j] + min(D[i-1, j-1], D[i-1, j])``, ``D[i] = S + minimum.accumulate(a - S)``. So a
``(N, M)`` alignment costs ``N`` numpy operations on length-``M`` rows: a few milliseconds for a
1,000 x 1,000 matrix.
"""

from __future__ import annotations

import numpy as np


def pairwise_euclidean(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows: ``x (N, D)``, ``y (M, D)`` -> ``(N, M)``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2.0 * x @ y.T
    return np.sqrt(np.maximum(d2, 0.0))


def dtw_cost_matrix(cost: np.ndarray) -> np.ndarray:
    """Accumulated cost ``D (N, M)`` of a local cost matrix ``cost (N, M)`` (steps right, down, diagonal)."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or 0 in cost.shape:
        raise ValueError(f"dtw: cost matrix must be 2-D and non-empty, got shape {cost.shape}")
    n, m = cost.shape
    acc = np.empty((n, m), dtype=np.float64)
    acc[0] = np.cumsum(cost[0])
    inf = np.array([np.inf])
    for i in range(1, n):
        prev = acc[i - 1]
        diag = np.concatenate([inf, prev[:-1]])
        a = cost[i] + np.minimum(diag, prev)
        s = np.cumsum(cost[i])
        acc[i] = s + np.minimum.accumulate(a - s)
    return acc


def dtw_backtrack(acc: np.ndarray) -> np.ndarray:
    """Optimal path through an accumulated cost matrix, from (0, 0) to (N-1, M-1): ``(L, 2)`` int64.

    Ties prefer the diagonal step, then the vertical one.
    """
    i, j = acc.shape[0] - 1, acc.shape[1] - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            d, u, l = acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]
            if d <= u and d <= l:
                i, j = i - 1, j - 1
            elif u <= l:
                i -= 1
            else:
                j -= 1
        path.append((i, j))
    return np.asarray(path[::-1], dtype=np.int64)


def dtw(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Align two feature sequences ``x (N, D)`` and ``y (M, D)`` under Euclidean frame distance.

    Returns:
        path: ``(L, 2)`` index pairs ``(i into x, j into y)``, monotonic, covering both ends.
        total: accumulated distance along the path.
    """
    acc = dtw_cost_matrix(pairwise_euclidean(x, y))
    return dtw_backtrack(acc), float(acc[-1, -1])
