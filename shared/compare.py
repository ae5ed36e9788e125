"""Paired comparison of two systems scored on the same utterances: is B measurably better than A?

    python -m shared.compare A/metrics_utt.tsv B/metrics_utt.tsv [--metrics mcd_dtw per_gen ...] \\
        [--resamples 10000] [--allow-subset] [--names base new] [--out cmp.json]

Reads the per-utterance tables that ``shared.evaluate`` writes next to each ``metrics.json`` and for each metric
reports the means, the mean paired difference ``B - A`` and its 95% bootstrap confidence interval (the utterances
where both tables have the metric resampled with replacement, fixed seed: the same draw for every metric both
tables have everywhere); the printed table names each system by ``--names``, or by its table's folder. Both
tables must hold the same utterances: a comparison on the ones they share is another test set, made only with ``--allow-subset`` (the counts are printed either way). A difference counts as
measured only when its interval excludes 0, has a width and comes from at least :data:`MIN_UTTS` utterances;
``verdict`` then says which system is better (the direction of each metric is the arrow
``shared.metrics.report.DISPLAY`` shows in RESULTS.md: lower for distortions and error rates, higher for PESQ,
STOI, F0 correlation), or only that they differ for a metric with no better direction.
A phone error rate is compared as the corpus-level one of ``metrics.json`` is made, pooled over the utterances
(errors / phones: a 5-phone sentence weighs a twentieth of a 100-phone one), from the phone counts
``shared.evaluate`` writes in each table (:data:`POOLED`), its interval from the same bootstrap (each drawn
utterance brings its counts in both tables); a table written before the counts has its utterances' rates only, and
the PER is then compared as the mean of those, which the result's ``statistic`` says (and a warning on stderr).
Every other metric is compared as the mean over utterances, weighting every utterance equally. Phone error rates
are comparable only when both tables were scored by the same phone recogniser against the same reference tokens:
when a PER column is compared, the ``metrics.json`` beside each table must say so (:func:`check_same_scoring`).
"""

from __future__ import annotations

import argparse
import csv
import math
import re
import sys
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import numpy as np

from shared.io import MODEL_FILE, PathLike, read_json, write_json
from shared.metrics.report import direction

DEFAULT_METRICS = ("mcd_dtw", "f0_rmse_cents", "vuv_error", "per_gen", "mel_distance", "pesq_wb", "stoi")
# a rate compared pooled over the utterances, {metric: (its per-utterance error count, reference length)}: the columns
# shared.evaluate writes beside it
POOLED = {"per_gen": ("phone_errors_gen", "ref_phones"), "per_ref": ("phone_errors_ref", "ref_phones")}
# what a paired_compare result's "statistic" says its means and difference are
MEAN, POOLED_RATE = "mean over utterances", "pooled: errors / phones"


def read_utt_table(path: PathLike, metrics: Iterable[str] | None = None) -> dict[str, dict[str, float]]:
    """``utt<TAB>metric...`` (``shared.evaluate``'s ``*_utt.tsv``) -> {utt: {metric: value}} (nan kept).

    A cell that is not a number (``whisper_language``'s ``en``) is left out of its row, unless its column is one of
    ``metrics`` (default :data:`DEFAULT_METRICS`, what :func:`paired_compare` compares by default): then a
    ValueError names the file, line and utterance."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no per-utterance table (shared.evaluate writes <out stem>_utt.tsv)")
    wanted = set(DEFAULT_METRICS if metrics is None else metrics)
    rows: dict[str, dict[str, float]] = {}
    with path.open(newline="") as f:
        for lineno, row in enumerate(csv.DictReader(f, delimiter="\t"), start=2):
            utt = row.pop("utt", None)
            if not utt:
                raise ValueError(f"{path}:{lineno}: row without an utterance id")
            if utt in rows:  # the later row replaced the earlier one: an utterance scored twice, or two tables joined
                raise ValueError(f"{path}:{lineno}: utterance {utt} again")
            rows[utt] = {}
            for k, v in row.items():
                if k is None or v in (None, ""):
                    continue
                try:
                    rows[utt][k] = float(v)
                except ValueError:
                    if k in wanted:
                        raise ValueError(f"{path}:{lineno} ({utt}): metric {k!r} is not a number: {v!r}") from None
    return rows


def metrics_json_of(table: PathLike) -> Path:
    """The ``metrics.json`` that ``shared.evaluate`` wrote beside ``<stem>_utt.tsv``: ``<stem>.json``."""
    table = Path(table)
    stem = table.name[: -len("_utt.tsv")] if table.name.endswith("_utt.tsv") else table.stem
    return table.with_name(stem + ".json")


def _scoring(metrics_json: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """What a table's phone error rates depend on, the recogniser's weights and the reference tokens, and whether
    that is exact: their SHA-256 (which ``shared.evaluate`` records), else, in an older ``metrics.json``, their
    paths with size and mtime."""
    pr = metrics_json.get("phone_recognizer") or {}
    if "model_sha256" in pr:
        return {"phone recogniser": pr["model_sha256"], "reference tokens": pr.get("ref_token_file_sha256")}, True
    inputs = metrics_json.get("inputs") or {}
    model, tokens = str(Path(pr.get("exp_dir", "")) / MODEL_FILE), pr.get("ref_token_file")
    return {"phone recogniser": [model, inputs.get(model)], "reference tokens": [tokens, inputs.get(tokens)]}, False


def check_same_scoring(table_a: PathLike, table_b: PathLike, metrics: Iterable[str]) -> None:
    """Refuse (ValueError) to compare PER columns scored by different phone recognisers or against different
    reference tokens, as the ``metrics.json`` beside each table records them; warn where that cannot be told for
    sure. Nothing is checked when no compared metric is a PER (the others do not depend on the recogniser)."""
    per = sorted(m for m in metrics if m.startswith("per_"))
    if not per:
        return
    paths = [metrics_json_of(t) for t in (table_a, table_b)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"[compare] WARNING: {', '.join(missing)} not found: cannot check that {', '.join(per)} were scored "
              "by the same phone recogniser and reference tokens", file=sys.stderr)
        return
    (a, exact_a), (b, exact_b) = (_scoring(read_json(p)) for p in paths)
    differ = [k for k in a if a[k] != b[k]]
    if not differ:
        return
    what = "; ".join(f"{k}: {a[k]} ({paths[0]}) against {b[k]} ({paths[1]})" for k in differ)
    advice = "score both systems with the same --phone-recognizer and --ref-token-file"
    if exact_a and exact_b:
        raise ValueError(f"{', '.join(per)}: the two tables were scored differently ({what}); phone error rates are "
                         f"comparable only under the same recogniser and reference tokens: {advice}, or compare "
                         "other --metrics")
    print(f"[compare] WARNING: {', '.join(per)} may have been scored differently ({what}; an older metrics.json "
          f"records paths, sizes and times, not digests): {advice}", file=sys.stderr)


# fewer paired utterances than this give no verdict: the bootstrap's interval of a mean is too narrow for few of them
# (for normal differences, a nominal 95% one held the true mean 76% of the time with 3 utterances, 84% with 5, 91%
# with 10), and two utterances that differ alike give a zero-width one
MIN_UTTS = 10


def utterance_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, int]:
    """``{"a": ..., "b": ..., "common": ...}``: how many utterances each table holds and how many both do."""
    return {"a": len(a), "b": len(b), "common": len(set(a) & set(b))}


def common_utterances(a: dict[str, Any], b: dict[str, Any], allow_subset: bool = False) -> list[str]:
    """The utterances both tables hold, sorted. A ValueError where one holds an utterance the other lacks (a
    comparison on the rest is of another test set than either table's), unless ``allow_subset``; and where they
    share none."""
    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError("the two tables share no utterance")
    if len(common) < max(len(a), len(b)) and not allow_subset:
        only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
        raise ValueError(f"the tables hold different utterances (A {len(a)}, B {len(b)}, {len(common)} in common; "
                         f"only in A: {_first(only_a)}; only in B: {_first(only_b)}): score both systems on the same "
                         f"test set, or compare the {len(common)} they share with --allow-subset (allow_subset=True)")
    return common


def _first(utts: list[str], k: int = 5) -> str:
    return ", ".join(utts[:k]) + (", ..." if len(utts) > k else "") if utts else "none"


def paired_compare(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], metrics: list[str] | None = None,
                   resamples: int = 10000, seed: int = 0, level: float = 0.95,
                   allow_subset: bool = False) -> dict[str, dict[str, Any]]:
    """Per metric: n, mean_a, mean_b, diff (B - A), ci (bootstrap, ``level``), verdict (:func:`verdict`) and
    statistic: :data:`MEAN` (``mean_*`` the means over utterances), or for a PER whose phone counts both tables hold
    (:data:`POOLED`) :data:`POOLED_RATE` (``mean_*`` each table's errors over the phones, ``diff`` their difference);
    a PER without them in either table is compared by its mean, its statistic saying why. The tables must hold the
    same utterances, or with ``allow_subset`` the ones they share (:func:`common_utterances`). Utterances where
    either value is nan are left out of that metric: its bootstrap resamples only the ``n`` utterances that have it
    (with the same seed for every metric, so metrics every utterance has share one draw)."""
    utts = common_utterances(a, b, allow_subset)
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if m in a[utts[0]] and m in b[utts[0]]]
    out: dict[str, dict[str, Any]] = {}
    for m in metrics:
        # per utterance A's and B's values and a weight: the metric's values and 1 (their means), or a PER's error
        # counts and reference phones (errors / phones); each statistic, and each bootstrap draw's, a ratio of sums
        (va, vb), weight, statistic = _paired_values(a, b, utts, m)
        ok = np.isfinite(va) & np.isfinite(vb) & np.isfinite(weight)
        if not ok.any():
            raise ValueError(f"metric {m!r}: no utterance has it in both tables")
        va, vb, weight = va[ok], vb[ok], weight[ok]
        if not weight.sum() > 0:  # only a pooled rate's weights (reference phones) can be all 0
            raise ValueError(f"metric {m!r}: the references of the {va.size} utterance(s) compared have no phones")
        lo, hi = _interval(_draw_ratios(*_resampled_sums([vb - va, weight], resamples, seed)), level)
        mean_a, mean_b = (float(v.sum() / weight.sum()) for v in (va, vb))
        diff = float((vb - va).sum() / weight.sum())
        out[m] = {"n": int(va.size), "mean_a": mean_a, "mean_b": mean_b, "diff": diff, "ci": [lo, hi], "level": level,
                  "verdict": verdict(m, diff, [lo, hi], va.size), "statistic": statistic}
    return out


def _paired_values(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], utts: list[str],
                   metric: str) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, str]:
    """``((A's, B's values), weights, statistic)`` of ``metric`` over ``utts`` for :func:`paired_compare`: the values
    and weights 1 (:data:`MEAN`), or for a PER whose counts both tables hold its error counts and the reference
    lengths (:data:`POOLED_RATE`; a ValueError where the tables count different reference lengths)."""
    column = lambda t, k: np.array([t[u].get(k, math.nan) for u in utts])  # noqa: E731
    if metric not in POOLED:
        return (column(a, metric), column(b, metric)), np.ones(len(utts)), MEAN
    errors, length = POOLED[metric]
    lacking = [name for name, t in (("A's", a), ("B's", b)) if any(k not in t[u] for u in utts for k in POOLED[metric])]
    if lacking:
        why = f"no phone counts in {' and '.join(lacking)} {'tables' if len(lacking) > 1 else 'table'}"
        print(f"[compare] WARNING: {metric}: {why} (scored before shared.evaluate wrote them): comparing the mean of "
              "the utterances' rates, not the pooled rate (errors / phones); score again for that", file=sys.stderr)
        return (column(a, metric), column(b, metric)), np.ones(len(utts)), f"{MEAN}: {why}"
    length_a, length_b = column(a, length), column(b, length)
    differ = [u for u, x, y in zip(utts, length_a, length_b) if x != y]
    if differ:
        raise ValueError(f"{metric}: the tables have different reference phone counts ({length}) for {len(differ)} "
                         f"utterance(s): {_first(differ)}; they were scored against different reference tokens")
    return (column(a, errors), column(b, errors)), length_a, POOLED_RATE


def verdict(metric: str, diff: float, ci: list[float], n: int) -> str:
    """From fewer than :data:`MIN_UTTS` utterances ``no verdict (n < ...)``, whatever the interval (a bootstrap of a
    few values says as little about no difference as about one); else ``no measurable difference`` where the
    interval holds 0; else, from an interval of some width, ``B better`` or ``A better`` (``metric``'s direction),
    or ``different`` for a metric with no better direction; else ``no verdict (zero-width CI)``."""
    lo, hi = ci
    if n < MIN_UTTS:
        return f"no verdict (n < {MIN_UTTS})"
    if lo <= 0 <= hi:
        return "no measurable difference"
    if math.isclose(lo, hi, rel_tol=1e-9):  # every utterance differs alike (to rounding): no spread to go on
        return "no verdict (zero-width CI)"
    if direction(metric) == 0:
        return "different"
    return "B better" if diff * direction(metric) > 0 else "A better"


# below this many counts on either side of a ratio the bootstrap's interval is far off, and ratio_ci is exact there
# instead: with 1 real error and 5 synthesised ones it gave [1.5, inf] against the exact [0.56, 236], with no real
# error [inf, inf]; with no synthesised error and 10 real ones [0, 0] against [0, 0.45], with 1 [0, 0.33] against
# [0.002, 0.70]
EXACT_BELOW = 5


class RatioCI(NamedTuple):
    ratio: float
    ci: list[float]
    method: str  # "bootstrap", "exact" or, with no counts at all, "undefined" (see ratio_ci)


def exact_ratio_ci(num: int, den: int, level: float = 0.95) -> list[float]:
    """Exact interval for the ratio of two Poisson counts over the same exposure (the same phones): given their
    total, ``num`` is binomial with ``p = ratio / (1 + ratio)``; the Clopper-Pearson interval of ``p`` mapped to
    ``p / (1 - p)``. Upper end infinite when ``den`` is 0, lower end 0 when ``num`` is."""
    from scipy.stats import beta

    if num + den <= 0:
        raise ValueError("exact_ratio_ci: no counts, the ratio is undefined")
    alpha = (1 - level) / 2
    p_lo = float(beta.ppf(alpha, num, den + 1)) if num > 0 else 0.0
    p_hi = float(beta.ppf(1 - alpha, num + 1, den)) if den > 0 else 1.0
    return [p_lo / (1 - p_lo), p_hi / (1 - p_hi) if p_hi < 1 else math.inf]


def too_few_to_bootstrap(num_total: float, den_total: float) -> bool:
    """Whether a ratio of these counts needs the exact interval: either under :data:`EXACT_BELOW`."""
    return min(num_total, den_total) < EXACT_BELOW


def ratio_ci(num: np.ndarray, den: np.ndarray, resamples: int = 10000, seed: int = 0,
             level: float = 0.95) -> RatioCI:
    """``sum(num) / sum(den)`` over utterances (e.g. the phone errors in synthesised and in real audio of the
    same sentences), its interval at ``level`` and which method gave it. With both sums at least
    :data:`EXACT_BELOW`: ``bootstrap``, utterances resampled with replacement (paired: an utterance brings both
    its counts), draws whose denominator sums to 0 counting as infinite (the interval stays conservative).
    With either below that (:func:`too_few_to_bootstrap`) the bootstrap has too few counts to go on: ``exact``,
    :func:`exact_ratio_ci` of the two sums (upper end infinite when ``sum(den)`` is 0, lower end 0 when ``sum(num)``
    is). With no counts at all (both sums 0, e.g. no errors in the synthesised nor the real audio) the ratio is
    undefined: NaN, and so is the interval, not the infinity of ``x / 0``."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if num.shape != den.shape or num.ndim != 1 or not num.size:
        raise ValueError(f"ratio_ci needs two equal-length 1-d arrays, got {num.shape} and {den.shape}")
    if num.sum() == 0 and den.sum() == 0:  # every draw is 0 / 0 too
        return RatioCI(math.nan, [math.nan, math.nan], "undefined")
    if too_few_to_bootstrap(num.sum(), den.sum()):
        ratio = float(num.sum() / den.sum()) if den.sum() > 0 else math.inf
        return RatioCI(ratio, exact_ratio_ci(int(round(num.sum())), int(round(den.sum())), level), "exact")
    boot = _draw_ratios(*_resampled_sums([num, den], resamples, seed))
    return RatioCI(float(num.sum() / den.sum()), _interval(boot, level), "bootstrap")


def _resampled_sums(columns: list[np.ndarray], resamples: int, seed: int, chunk: int = 500) -> list[np.ndarray]:
    """Each of ``columns``' (per-utterance values) sums over ``resamples`` bootstrap draws of the utterances, with
    replacement, the same draws for every column; drawn a chunk at a time, so memory is ``chunk x utterances``, not
    ``resamples x utterances`` (15 GB for a 100k-utterance corpus), with the draws of one ``(resamples, n)`` array."""
    rng = np.random.default_rng(seed)
    n = columns[0].size
    sums = [np.empty(resamples) for _ in columns]
    for start in range(0, resamples, chunk):
        k = min(chunk, resamples - start)
        draws = rng.integers(0, n, size=(k, n))
        for total, column in zip(sums, columns):
            total[start:start + k] = column[draws].sum(1)
    return sums


def _draw_ratios(num_sums: np.ndarray, den_sums: np.ndarray) -> np.ndarray:
    """Each bootstrap draw's ratio; infinite where its denominator sums to 0 (the interval stays conservative)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den_sums > 0, num_sums / den_sums, math.inf)


def _interval(boot: np.ndarray, level: float) -> list[float]:
    """The central ``level`` interval of the draws ``boot``."""
    # interpolating between two infinite draws would be inf - inf (nan, and numpy's RuntimeWarning): where there
    # are any, the interval's ends are order statistics themselves
    interpolation = "linear" if np.isfinite(boot).all() else "inverted_cdf"
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], method=interpolation)
    return [float(lo), float(hi)]


def ratio_ci_over_judges(num: np.ndarray, den: np.ndarray, resamples: int = 10000, seed: int = 0,
                         level: float = 0.95) -> list[float]:
    """The interval of the pooled ratio ``num.sum() / den.sum()`` of ``(judges, utterances)`` counts (each judge's
    phone errors in the generated and in the real audio of the same sentences) when the judges, too, are a sample:
    a two-way bootstrap that draws judges and utterances with replacement (each draw's ratio the sum over the drawn
    judges and utterances), so it widens with the spread between judges as well as between sentences. (With one
    judge it is a bootstrap over utterances like :func:`ratio_ci`'s, from other draws.) Draws whose denominator sums
    to 0 count as infinite. Where :func:`ratio_ci` takes the exact interval of these sums (:func:`too_few_to_bootstrap`)
    this one would be degenerate too (``[0, 0]`` with no generated errors): a ValueError. Memory: a chunk of draws
    at a time, not ``resamples x utterances`` at once."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if num.shape != den.shape or num.ndim != 2 or not num.size:
        raise ValueError(f"ratio_ci_over_judges needs two equal (judges, utterances) arrays, got {num.shape} and {den.shape}")
    if too_few_to_bootstrap(num.sum(), den.sum()):
        raise ValueError(f"ratio_ci_over_judges: {num.sum():g} / {den.sum():g} counts, under {EXACT_BELOW} on one "
                         "side, are too few to bootstrap: take ratio_ci's exact interval of the sums instead")
    rng = np.random.default_rng(seed)
    n_judges, n_utts = num.shape
    boot = np.empty(resamples)
    for start in range(0, resamples, 500):
        k = min(500, resamples - start)
        judges = rng.integers(0, n_judges, size=(k, n_judges))
        utts = rng.integers(0, n_utts, size=(k, n_utts))
        # per draw: the drawn judges' counts summed (with multiplicity) per utterance, then over the drawn utterances
        weight = np.zeros((k, n_judges))
        np.add.at(weight, (np.arange(k)[:, None], judges), 1.0)
        rows = np.arange(k)[:, None]
        boot[start:start + k] = _draw_ratios((weight @ num)[rows, utts].sum(1), (weight @ den)[rows, utts].sum(1))
    return _interval(boot, level)


def _times(v: float | None) -> str:
    return "∞" if v is None or v == math.inf else f"{v:.2f}x"


def format_interval(ci: list[float | None]) -> str:
    """``[1.79x, 3.45x]``; ``∞`` for an infinite end (in JSON, null)."""
    return f"[{_times(ci[0])}, {_times(ci[1])}]"


def format_ratio(ratio: float | None, ci: list[float | None], method: str = "bootstrap") -> str:
    """A :func:`ratio_ci` result as RESULTS.md, the CLIs and the screening print it: ``2.44x [1.79x, 3.45x]``, with
    `` (exact)`` for the exact interval; ``∞`` for an infinite value (no real-audio errors; in JSON, null);
    ``undefined`` where neither side has errors."""
    if method == "undefined":
        return "undefined"
    return f"{_times(ratio)} {format_interval(ci)}" + (" (exact)" if method == "exact" else "")


def name_sides(text: str, name_a: str, name_b: str) -> str:
    """A result's verdict or statistic with its systems' names for "A" and "B" ("A better", "A's table")."""
    return re.sub(r"\b([AB])(?='s\b| better\b)", lambda m: name_a if m.group(1) == "A" else name_b, text)


def format_table(result: dict[str, dict[str, Any]], name_a: str = "A", name_b: str = "B") -> str:
    """A :func:`paired_compare` result as Markdown. A metric compared otherwise than by its mean over utterances
    says how beside its name: ``per_gen (pooled: errors / phones)``, as ``metrics.json``'s ``corpus`` and RESULTS.md
    pool it, or ``per_gen (mean over utterances: no phone counts in <name_a>'s table)``."""
    lines = [f"| metric | n | {name_a} mean | {name_b} mean | {name_b} - {name_a} [95% CI] | verdict |",
             "|---|---|---|---|---|---|"]
    for m, r in result.items():
        verdict = name_sides(r["verdict"], name_a, name_b)
        statistic = name_sides(r.get("statistic", MEAN), name_a, name_b)  # a result from before statistics: means
        label = m if statistic == MEAN else f"{m} ({statistic})"
        lines.append(f"| {label} | {r['n']} | {r['mean_a']:.4g} | {r['mean_b']:.4g} | {r['diff']:+.4g} "
                     f"[{r['ci'][0]:+.3g}, {r['ci'][1]:+.3g}] | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("table_a", help="per-utterance table of system A (the baseline)")
    p.add_argument("table_b", help="per-utterance table of system B")
    p.add_argument("--metrics", nargs="+", default=None)
    p.add_argument("--resamples", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-subset", action="store_true",
                   help="compare the utterances both tables hold where they hold different ones (default: an error)")
    p.add_argument("--names", nargs=2, metavar=("NAME_A", "NAME_B"), default=None,
                   help="the systems' names in the table (default: each table's folder)")
    p.add_argument("--out", default=None, help="write the result as JSON here")
    args = p.parse_args(argv)
    try:
        a, b = read_utt_table(args.table_a, args.metrics), read_utt_table(args.table_b, args.metrics)
        res = paired_compare(a, b, args.metrics, args.resamples, args.seed, allow_subset=args.allow_subset)
        check_same_scoring(args.table_a, args.table_b, res)
    except ValueError as e:
        print(f"[compare] error: {e}", file=sys.stderr)
        return 1
    counts = utterance_counts(a, b)
    print(f"utterances: A {counts['a']}, B {counts['b']}, in common {counts['common']}\n")
    names = args.names or [str(Path(t).parent) for t in (args.table_a, args.table_b)]
    print(format_table(res, *names), end="")
    if args.out:
        write_json(args.out, {"a": str(args.table_a), "b": str(args.table_b), "utterances": counts, "metrics": res})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
