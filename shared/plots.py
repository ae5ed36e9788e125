"""PNG figures for experiment dirs (matplotlib, Agg backend; every file written atomically).

- :func:`plot_mel_comparison`: reference and synthesised (log-)mel spectrograms side by side.
- :func:`plot_alignment`: an alignment matrix (attention, MAS durations) or a DTW path.
- :func:`plot_training_curves`: curves from a Lightning ``CSVLogger`` ``metrics.csv``.
- :func:`plot_quality_vs_nfe`: a metric against the number of function evaluations, one line per
  system (e.g. rectified flow with and without reflow).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from shared.io import PathLike, atomic_write  # noqa: E402


def save_figure(fig: "plt.Figure", path: PathLike, dpi: int = 110) -> Path:
    """Render ``fig`` to PNG in memory, write it atomically to ``path`` and close the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    with atomic_write(path, "wb") as f:
        f.write(buf.getvalue())
    return Path(path)


def plot_mel_comparison(ref: np.ndarray, gen: np.ndarray, path: PathLike, title: str = "",
                        labels: tuple[str, str] = ("reference", "synthesised")) -> Path:
    """``ref (n_mels, F1)`` and ``gen (n_mels, F2)`` on one colour scale, widths proportional to length."""
    ref, gen = np.asarray(ref), np.asarray(gen)
    vmin, vmax = float(min(ref.min(), gen.min())), float(max(ref.max(), gen.max()))
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.5), sharey=True,
                             gridspec_kw={"width_ratios": [max(ref.shape[1], 1), max(gen.shape[1], 1)]})
    for ax, m, lab in zip(axes, (ref, gen), labels):
        im = ax.imshow(m, origin="lower", aspect="auto", interpolation="nearest", vmin=vmin, vmax=vmax, cmap="magma")
        ax.set_title(f"{lab} ({m.shape[1]} frames)")
        ax.set_xlabel("frame")
    axes[0].set_ylabel("mel bin")
    fig.colorbar(im, ax=list(axes), fraction=0.02, pad=0.01)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_alignment(alignment: np.ndarray, path: PathLike, shape: tuple[int, int] | None = None, title: str = "",
                   xlabel: str = "frame", ylabel: str = "token") -> Path:
    """An alignment matrix ``(N, M)`` as an image, or a path ``(L, 2)`` of index pairs with ``shape=(N, M)``."""
    a = np.asarray(alignment)
    if shape is not None:  # a path: rasterise it
        img = np.zeros(shape, dtype=np.float32)
        img[a[:, 0], a[:, 1]] = 1.0
        a = img
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(a, origin="lower", aspect="auto", interpolation="nearest", cmap="gray_r" if shape else "viridis")
    if shape is None:
        fig.colorbar(im, ax=ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def read_lightning_csv(path: PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{column: (steps, values)}`` from a Lightning ``metrics.csv`` (blank cells skipped)."""
    series: dict[str, tuple[list[float], list[float]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f)):
            step = row.get("step") or row.get("epoch") or i
            for k, v in row.items():
                if k in ("step", "epoch") or v in ("", None):
                    continue
                try:
                    series.setdefault(k, ([], []))
                    series[k][1].append(float(v))
                    series[k][0].append(float(step))
                except ValueError:
                    series[k][0].pop() if len(series[k][0]) > len(series[k][1]) else None
    return {k: (np.asarray(s), np.asarray(v)) for k, (s, v) in series.items() if v}


def plot_training_curves(metrics_csv: PathLike, path: PathLike, keys: Sequence[str] | None = None,
                         title: str = "", smooth: int = 1) -> Path:
    """One panel per metric (``keys`` or every column) against step; ``smooth`` = moving-average width."""
    series = read_lightning_csv(metrics_csv)
    keys = [k for k in (keys or sorted(series)) if k in series]
    if not keys:
        raise ValueError(f"{metrics_csv}: no metric columns to plot")
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3 * rows), squeeze=False)
    for ax, k in zip(axes.flat, keys):
        steps, vals = series[k]
        if smooth > 1 and vals.size > smooth:
            vals = np.convolve(vals, np.ones(smooth) / smooth, mode="valid")
            steps = steps[smooth - 1 :]
        ax.plot(steps, vals, lw=1)
        ax.set_title(k, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_quality_vs_nfe(curves: Mapping[str, Mapping[int, float]], path: PathLike, metric: str = "MCD-DTW (dB)",
                        title: str = "", errors: Mapping[str, Mapping[int, float]] | None = None) -> Path:
    """``{system: {nfe: value}}`` (e.g. ``{"rectified flow": {...}, "+ reflow": {...}}``) on a log2 NFE axis."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, pts in curves.items():
        nfe = sorted(pts)
        vals = [pts[n] for n in nfe]
        err = [errors[name][n] for n in nfe] if errors and name in errors else None
        ax.errorbar(nfe, vals, yerr=err, marker="o", capsize=3, label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("NFE (ODE steps)")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    if title:
        ax.set_title(title)
    return save_figure(fig, path)
