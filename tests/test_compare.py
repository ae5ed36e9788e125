"""shared.compare: paired bootstrap comparison of two per-utterance tables."""

import math
import warnings

import numpy as np
import pytest

from shared.compare import main, paired_compare, ratio_ci, read_utt_table


def _write(path, rows):
    cols = list(rows[next(iter(rows))])
    path.write_text("utt\t" + "\t".join(cols) + "\n" + "".join(
        u + "\t" + "\t".join("nan" if math.isnan(v) else f"{v:.6g}" for v in r.values()) + "\n" for u, r in rows.items()))
    return path


def _tables(shift_mcd, shift_pesq, n=40, seed=0):
    rng = np.random.default_rng(seed)
    a, b = {}, {}
    for i in range(n):
        base_mcd, base_pesq = 2 + rng.normal(0, 0.3), 3 + rng.normal(0, 0.3)  # utterance difficulty, shared
        a[f"u{i:02d}"] = {"mcd_dtw": base_mcd + rng.normal(0, 0.05), "pesq_wb": base_pesq + rng.normal(0, 0.05)}
        b[f"u{i:02d}"] = {"mcd_dtw": base_mcd + shift_mcd + rng.normal(0, 0.05), "pesq_wb": base_pesq + shift_pesq + rng.normal(0, 0.05)}
    return a, b


def test_a_shift_far_below_the_utterance_spread_is_measured_because_the_test_is_paired():
    a, b = _tables(shift_mcd=-0.1, shift_pesq=+0.1)  # 0.1 shift, 0.3 spread between utterances
    res = paired_compare(a, b, resamples=2000)
    assert res["mcd_dtw"]["verdict"] == "B better" and res["mcd_dtw"]["ci"][1] < 0
    assert res["pesq_wb"]["verdict"] == "B better" and res["pesq_wb"]["ci"][0] > 0  # higher is better for PESQ
    assert res["mcd_dtw"]["diff"] == pytest.approx(-0.1, abs=0.03)
    worse = paired_compare(b, a, resamples=2000)
    assert worse["mcd_dtw"]["verdict"] == "A better" and worse["pesq_wb"]["verdict"] == "A better"


def test_no_shift_gives_no_verdict_and_the_interval_covers_zero():
    a, b = _tables(0.0, 0.0, seed=1)
    res = paired_compare(a, b, resamples=2000)
    for r in res.values():
        assert r["verdict"] == "no measurable difference" and r["ci"][0] < 0 < r["ci"][1]


def test_tables_roundtrip_nan_and_only_shared_utterances(tmp_path):
    a, b = _tables(-0.5, 0.0, n=10)
    a["u03"]["mcd_dtw"] = math.nan
    del b["u09"]
    ta, tb = _write(tmp_path / "a.tsv", a), _write(tmp_path / "b.tsv", b)
    res = paired_compare(read_utt_table(ta), read_utt_table(tb), ["mcd_dtw"], resamples=500)
    assert res["mcd_dtw"]["n"] == 8  # u09 missing from B, u03 nan in A
    assert main([str(ta), str(tb), "--metrics", "mcd_dtw", "--resamples", "200", "--out", str(tmp_path / "c.json")]) == 0
    assert (tmp_path / "c.json").is_file()


def test_bad_tables_name_the_file_and_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        read_utt_table(tmp_path / "missing.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("utt\tmcd_dtw\nx\t1.0\ny\tabc\n")
    with pytest.raises(ValueError, match=r"bad.tsv:3 \(y\)"):
        read_utt_table(bad)
    with pytest.raises(ValueError, match="share no utterance"):
        paired_compare({"a": {"m": 1.0}}, {"b": {"m": 1.0}}, ["m"])


def test_a_metric_with_no_better_direction_is_only_called_different():
    a = {f"u{i}": {"duration_ratio": 1.0 + 0.01 * (i % 3)} for i in range(30)}
    b = {u: {"duration_ratio": r["duration_ratio"] + 0.2} for u, r in a.items()}
    assert paired_compare(a, b, ["duration_ratio"], resamples=500)["duration_ratio"]["verdict"] == "different"


def test_ratio_of_error_counts_has_an_interval_that_shrinks_with_more_utterances():
    """The recipe's PER target is a ratio of two error counts; its interval must cover the true ratio and
    narrow as the number of sentences grows (here 2x, Poisson errors per sentence)."""
    rng = np.random.default_rng(3)
    widths = []
    for n in (150, 1500):
        real = rng.poisson(0.5, n)
        synth = rng.poisson(1.0, n)
        ratio, (lo, hi) = ratio_ci(synth, real, resamples=4000)
        assert lo < ratio < hi and lo < 2.0 < hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning from inf - inf
        assert ratio_ci(np.array([1, 2]), np.array([0, 0])) == (math.inf, [math.inf, math.inf])
        ratio, (lo, hi) = ratio_ci(np.array([3, 1, 0]), np.array([1, 0, 0]))  # some draws have no real errors
        assert ratio == 4.0 and 0.0 <= lo <= hi == math.inf
        ratio, (lo, hi) = ratio_ci(np.array([0, 0]), np.array([0, 0]))  # 0 / 0: undefined, not infinite
        assert math.isnan(ratio) and math.isnan(lo) and math.isnan(hi)
    with pytest.raises(ValueError, match="equal-length"):
        ratio_ci(np.array([1, 2]), np.array([1]))
