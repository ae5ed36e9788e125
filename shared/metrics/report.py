"""Corpus-level aggregation of per-utterance metrics, and the RESULTS.md writer.

    python -m shared.metrics.report --out exp/RESULTS.md --metrics rf_nfe8=exp/stage2/x/eval/test/metrics.json \
        --metrics reflow_nfe2=exp/stage2/x_reflow/eval/test/metrics.json \
        [--stage-times times.json] [--config conf/stage1.yaml ...] [--title "espeak_mini"]

A table of any metrics files, by hand. The recipes' own ``exp/RESULTS.md`` (with their ``stage_times.tsv``) is
:mod:`shared.results`'.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any, Iterable, Mapping

import numpy as np

from shared.io import PathLike, atomic_write, read_json

# metric -> (header, format); metrics not listed are shown with 3 significant decimals
DISPLAY = {
    "mcd_dtw": ("MCD-DTW (dB) ↓", "{:.2f}"),
    "f0_rmse_cents": ("log-F0 RMSE (cents) ↓", "{:.1f}"),
    "f0_corr": ("F0 corr ↑", "{:.3f}"),
    "vuv_error": ("V/UV err ↓", "{:.3f}"),
    "duration_ratio": ("dur ratio", "{:.3f}"),
    "pesq_wb": ("PESQ-WB ↑", "{:.2f}"),
    "stoi": ("STOI ↑", "{:.3f}"),
    "si_sdr": ("SI-SDR (dB) ↑", "{:.1f}"),
    "mel_distance": ("mel dist ↓", "{:.3f}"),
    "per_gen": ("PER synth ↓", "{:.1%}"),
    "per_ref": ("PER real", "{:.1%}"),
    "per_ratio": ("PER synth / real [95% CI] ↓", "{:.2f}x"),
    "phone_errors": ("phone errors synth / real", "{}"),
    "path_gap": ("gap to max NFE ↓", "{:.3f}"),
    "rtf": ("RTF ↓", "{:.4f}"),
    "whisper_wer": ("Whisper WER ↓", "{:.1%}"),
    "spk_sim": ("speaker sim ↑", "{:.3f}"),
    "utmos": ("UTMOS ↑", "{:.2f}"),
    # not scores: what they are measured over (2.6 ± 0.741 came of the fallback's 3 significant digits)
    "ref_seconds": ("real audio (s)", "{:.2f}"),
    "gen_seconds": ("synth audio (s)", "{:.2f}"),
    "voiced_both_frac": ("voiced in both", "{:.3f}"),
}


def direction(metric: str) -> int:
    """+1 if higher is better, -1 if lower is better, 0 if neither (read off the ``DISPLAY`` header's arrow)."""
    header = DISPLAY.get(metric, ("",))[0]
    return 1 if header.endswith("↑") else -1 if header.endswith("↓") else 0


# per-utterance counts that a corpus rate pools (errors / words), kept in the per-utterance table for that: not
# metrics, so never averaged (the mean of an utterance's error count is no statistic anyone reads)
COUNTS = frozenset({"whisper_errors", "whisper_words", "phone_errors_gen", "phone_errors_ref", "ref_phones"})


def aggregate(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """``{metric: {mean, std, median, min, max, n, n_nan}}`` over numeric per-utterance values, :data:`COUNTS`
    left out."""
    columns: dict[str, list[float]] = {}
    for row in rows:
        for k, v in row.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in COUNTS:
                columns.setdefault(k, []).append(float(v))
    out = {}
    for k, vals in columns.items():
        a = np.asarray(vals, dtype=np.float64)
        ok = a[np.isfinite(a)]
        stats = {"n": int(ok.size), "n_nan": int(a.size - ok.size)}
        if ok.size:
            stats.update(mean=float(ok.mean()), std=float(ok.std()), median=float(np.median(ok)),
                         min=float(ok.min()), max=float(ok.max()))
        out[k] = stats
    return out


def format_metric(metric: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, str):
        return value
    return DISPLAY.get(metric, (metric, "{:.3g}"))[1].format(value)


def summary_row(metrics_json: Mapping[str, Any]) -> dict[str, str]:
    """One table row ``{metric: "mean ± std"}`` from a :mod:`shared.evaluate` ``metrics.json``."""
    row = {}
    for k, s in metrics_json.get("metrics", {}).items():
        if "mean" in s:
            mean = format_metric(k, s["mean"])
            row[k] = f"{mean} ± {format_metric(k, s['std'])}" if s.get("n", 0) > 1 else mean
    for k, v in metrics_json.get("corpus", {}).items():
        row[k] = format_metric(k, v)
    ci = metrics_json.get("per_ratio_ci")
    if ci and "per_ratio" in row:
        from shared.compare import format_ratio

        row["per_ratio"] = format_ratio(metrics_json["corpus"]["per_ratio"], ci, metrics_json.get("per_ratio_ci_method", "bootstrap"))
    if "phone_errors_gen" in metrics_json:
        row["phone_errors"] = f"{metrics_json['phone_errors_gen']} / {metrics_json['phone_errors_ref']}"
    return row


def markdown_table(rows: Mapping[str, Mapping[str, Any]], columns: list[str] | None = None, key_header: str = "") -> str:
    """``{row name: {column: value}}`` -> a GitHub markdown table (missing cells "–")."""
    if columns is None:
        columns = list(dict.fromkeys(c for r in rows.values() for c in r))
        columns.sort(key=lambda c: list(DISPLAY).index(c) if c in DISPLAY else len(DISPLAY))
    head = [key_header] + [DISPLAY.get(c, (c,))[0] for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * len(columns)) + "|"]
    for name, r in rows.items():
        lines.append("| " + " | ".join([str(name)] + [format_metric(c, r.get(c)) for c in columns]) + " |")
    return "\n".join(lines)


def results_markdown(tables: Mapping[str, Mapping[str, Mapping[str, Any]]], stage_times: Mapping[str, float] | None = None,
                     config_paths: Mapping[str, str] | Iterable[str] | None = None, title: str = "Results",
                     notes: str | None = None, figures: Mapping[str, str] | None = None,
                     key_headers: Mapping[str, str] | None = None) -> str:
    """RESULTS.md text: one markdown table per entry of ``tables`` (``{table: {row: {metric: value}}}``,
    values numbers or preformatted strings; the row names' column is headed "system" unless ``key_headers``
    names it), figures (``{caption: relative png path}``), then stage wall-clock times and the configs used."""
    parts = [f"# {title}", "", f"_Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}._", ""]
    if notes:
        parts += [notes.strip(), ""]
    for name, rows in tables.items():
        parts += [f"## {name}", "", markdown_table(rows, key_header=(key_headers or {}).get(name, "system")), ""]
    for caption, fig in (figures or {}).items():
        parts += [f"![{caption}]({fig})", "", f"_{caption}_", ""]
    if stage_times:
        parts += ["## Stage times", "", "| stage | wall clock |", "|---|---:|"]
        total = 0.0
        for stage, sec in stage_times.items():
            total += float(sec)
            parts.append(f"| {stage} | {_duration(float(sec))} |")
        parts += [f"| **total** | **{_duration(total)}** |", ""]
    if config_paths:
        items = config_paths.items() if isinstance(config_paths, Mapping) else ((None, p) for p in config_paths)
        parts += ["## Configuration", ""] + [f"- {k + ': ' if k else ''}`{p}`" for k, p in items] + [""]
    return "\n".join(parts)


def _duration(sec: float) -> str:
    m, s = divmod(int(round(sec)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else (f"{m}m{s:02d}s" if m else f"{sec:.1f}s")


def write_results_md(path: PathLike, tables: Mapping[str, Mapping[str, Mapping[str, Any]]], **kwargs: Any) -> str:
    """Write :func:`results_markdown` atomically to ``path``; returns the text."""
    text = results_markdown(tables, **kwargs)
    with atomic_write(path) as f:
        f.write(text)
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="RESULTS.md to write")
    p.add_argument("--metrics", action="append", default=[], metavar="NAME=METRICS_JSON",
                   help="a row of the evaluation table (repeatable)")
    p.add_argument("--table-name", default="Evaluation")
    p.add_argument("--stage-times", default=None, help="a JSON file {stage: seconds} (a recipe's stage_times.tsv: python -m shared.results)")
    p.add_argument("--config", action="append", default=[], help="config file used (repeatable)")
    p.add_argument("--title", default="Results")
    a = p.parse_args(argv)
    rows = {}
    for item in a.metrics:
        if "=" not in item:
            p.error(f"--metrics {item!r}: expected NAME=PATH")
        name, path = item.split("=", 1)
        rows[name] = summary_row(read_json(path))
    times = read_json(a.stage_times) if a.stage_times else None
    write_results_md(a.out, {a.table_name: rows}, stage_times=times, config_paths=a.config, title=a.title)
    print(f"[metrics.report] wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
