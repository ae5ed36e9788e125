"""Paired comparison of two systems scored on the same utterances: is B measurably better than A?

    python -m shared.compare A/metrics_utt.tsv B/metrics_utt.tsv [--metrics mcd_dtw per_gen ...] \\
        [--resamples 10000] [--out cmp.json]

Reads the per-utterance tables that ``shared.evaluate`` writes next to each ``metrics.json``, keeps the
utterances both have, and for each metric reports the means, the mean paired difference ``B - A`` and its
95% bootstrap confidence interval (utterances resampled with replacement, the same draw for every metric,
fixed seed). A difference counts as measured only when its interval excludes 0; ``verdict`` then says which
system is better (the direction of each metric is the arrow ``shared.metrics.report.DISPLAY`` shows in
RESULTS.md: lower for distortions and error rates, higher for PESQ, STOI, F0 correlation), or only that
they differ for a metric with no better direction.
Per-utterance means weight every utterance equally (a corpus-level PER weights by phone count instead).
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from shared.io import PathLike, write_json
from shared.metrics.report import direction

DEFAULT_METRICS = ("mcd_dtw", "f0_rmse_cents", "vuv_error", "per_gen", "mel_distance", "pesq_wb", "stoi")


def read_utt_table(path: PathLike) -> dict[str, dict[str, float]]:
    """``utt<TAB>metric...`` (``shared.evaluate``'s ``*_utt.tsv``) -> {utt: {metric: value}} (nan kept)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no per-utterance table (shared.evaluate writes <out stem>_utt.tsv)")
    rows: dict[str, dict[str, float]] = {}
    with path.open(newline="") as f:
        for lineno, row in enumerate(csv.DictReader(f, delimiter="\t"), start=2):
            utt = row.pop("utt", None)
            if not utt:
                raise ValueError(f"{path}:{lineno}: row without an utterance id")
            try:
                rows[utt] = {k: float(v) for k, v in row.items() if k is not None and v not in (None, "")}
            except ValueError as e:
                raise ValueError(f"{path}:{lineno} ({utt}): {e}") from None
    return rows


def paired_compare(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], metrics: list[str] | None = None,
                   resamples: int = 10000, seed: int = 0, level: float = 0.95) -> dict[str, dict[str, Any]]:
    """Per metric: n, mean_a, mean_b, diff (B - A), ci (bootstrap, ``level``), verdict (``A better``,
    ``B better``, ``different`` (no better direction) or ``no measurable difference``). Utterances where either value is nan are left out of
    that metric."""
    utts = sorted(set(a) & set(b))
    if not utts:
        raise ValueError("the two tables share no utterance")
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if m in a[utts[0]] and m in b[utts[0]]]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(utts), size=(resamples, len(utts)))
    out: dict[str, dict[str, Any]] = {}
    for m in metrics:
        va = np.array([a[u].get(m, math.nan) for u in utts])
        vb = np.array([b[u].get(m, math.nan) for u in utts])
        ok = np.isfinite(va) & np.isfinite(vb)
        if not ok.any():
            raise ValueError(f"metric {m!r}: no utterance has it in both tables")
        d = np.where(ok, vb - va, 0.0)
        # resample utterances; nan pairs count neither in the numerator nor in the denominator
        boot = (d[draws] * ok[draws]).sum(1) / np.maximum(ok[draws].sum(1), 1)
        lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
        diff = float(d[ok].mean())
        if (lo > 0 or hi < 0) and direction(m) == 0:
            verdict = "different"
        elif lo > 0 or hi < 0:
            verdict = "B better" if diff * direction(m) > 0 else "A better"
        else:
            verdict = "no measurable difference"
        out[m] = {"n": int(ok.sum()), "mean_a": float(va[ok].mean()), "mean_b": float(vb[ok].mean()), "diff": diff,
                  "ci": [float(lo), float(hi)], "level": level, "verdict": verdict}
    return out


def ratio_ci(num: np.ndarray, den: np.ndarray, resamples: int = 10000, seed: int = 0,
             level: float = 0.95) -> tuple[float, list[float]]:
    """``sum(num) / sum(den)`` over utterances (e.g. the phone errors in synthesised and in real audio of the
    same sentences) and its bootstrap interval at ``level``, utterances resampled with replacement (paired:
    an utterance brings both its counts). Draws whose denominator sums to 0 count as infinite (the interval
    stays conservative). With no counts at all (both sums 0, e.g. no errors in the synthesised nor the real
    audio) the ratio is undefined: NaN, and so is the interval, not the infinity of ``x / 0``."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if num.shape != den.shape or num.ndim != 1 or not num.size:
        raise ValueError(f"ratio_ci needs two equal-length 1-d arrays, got {num.shape} and {den.shape}")
    if num.sum() == 0 and den.sum() == 0:  # every draw is 0 / 0 too
        return math.nan, [math.nan, math.nan]
    draws = np.random.default_rng(seed).integers(0, num.size, size=(resamples, num.size))
    num_sums, den_sums = num[draws].sum(1), den[draws].sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.where(den_sums > 0, num_sums / den_sums, math.inf)
        ratio = float(num.sum() / den.sum()) if den.sum() > 0 else math.inf
    # interpolating between two infinite draws would be inf - inf (nan, and numpy's RuntimeWarning): where there
    # are any, the interval's ends are order statistics themselves
    method = "linear" if np.isfinite(boot).all() else "inverted_cdf"
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], method=method)
    return ratio, [float(lo), float(hi)]


def format_table(result: dict[str, dict[str, Any]], name_a: str = "A", name_b: str = "B") -> str:
    lines = [f"| metric | n | {name_a} | {name_b} | {name_b} - {name_a} [95% CI] | verdict |", "|---|---|---|---|---|---|"]
    for m, r in result.items():
        verdict = r["verdict"].replace("A better", f"{name_a} better").replace("B better", f"{name_b} better")
        lines.append(f"| {m} | {r['n']} | {r['mean_a']:.4g} | {r['mean_b']:.4g} | {r['diff']:+.4g} "
                     f"[{r['ci'][0]:+.3g}, {r['ci'][1]:+.3g}] | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("table_a", help="per-utterance table of system A (the baseline)")
    p.add_argument("table_b", help="per-utterance table of system B")
    p.add_argument("--metrics", nargs="+", default=None)
    p.add_argument("--resamples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    res = paired_compare(read_utt_table(args.table_a), read_utt_table(args.table_b), args.metrics, args.resamples, args.seed)
    print(format_table(res, str(Path(args.table_a).parent), str(Path(args.table_b).parent)), end="")
    if args.out:
        write_json(args.out, {"a": str(args.table_a), "b": str(args.table_b), "metrics": res})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
