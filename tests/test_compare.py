"""shared.compare: paired bootstrap comparison of two per-utterance tables."""

import json
import math
import warnings

import numpy as np
import pytest

from shared.compare import (MIN_UTTS, exact_ratio_ci, main, paired_compare, ratio_ci, ratio_ci_over_judges,
                            read_utt_table)


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
    res = paired_compare(read_utt_table(ta), read_utt_table(tb), ["mcd_dtw"], resamples=500, allow_subset=True)
    assert res["mcd_dtw"]["n"] == 8  # u09 missing from B, u03 nan in A
    out = tmp_path / "c.json"
    args = [str(ta), str(tb), "--metrics", "mcd_dtw", "--resamples", "200", "--allow-subset", "--out", str(out)]
    assert main(args) == 0
    assert json.loads(out.read_text())["utterances"] == {"a": 10, "b": 9, "common": 9}


def test_tables_of_different_utterances_are_refused_unless_a_subset_is_allowed(tmp_path, capsys):
    """Only the shared utterances were compared, silently: two tables sharing 2 of 40 gave a verdict."""
    a, b = _tables(-0.5, 0.0, n=40)
    b = {u: b[u] for u in ("u00", "u01")} | {"x1": b["u02"]}
    with pytest.raises(ValueError, match=r"different utterances \(A 40, B 3, 2 in common; only in A: u02, u03, u04, "
                                         r"u05, u06, \.\.\.; only in B: x1\).*--allow-subset"):
        paired_compare(a, b, ["mcd_dtw"])
    ta, tb = _write(tmp_path / "a.tsv", a), _write(tmp_path / "b.tsv", b)
    assert main([str(ta), str(tb), "--metrics", "mcd_dtw", "--resamples", "200"]) == 1
    assert "different utterances (A 40, B 3, 2 in common" in capsys.readouterr().err
    assert main([str(ta), str(tb), "--metrics", "mcd_dtw", "--resamples", "200", "--allow-subset"]) == 0
    out = capsys.readouterr().out
    assert "utterances: A 40, B 3, in common 2" in out
    assert "| mcd_dtw | 2 |" in out and f"no verdict (n < {MIN_UTTS})" in out  # 0.5 better, but from 2 utterances


def test_no_verdict_from_few_utterances_or_a_zero_width_interval():
    a = {f"u{i:02d}": {"mcd_dtw": 2.0 + 0.1 * i} for i in range(MIN_UTTS)}
    b = {u: {"mcd_dtw": r["mcd_dtw"] - 0.5} for u, r in a.items()}  # every utterance 0.5 dB better, exactly
    res = paired_compare(a, b, ["mcd_dtw"], resamples=500)["mcd_dtw"]
    assert res["ci"] == [pytest.approx(-0.5), pytest.approx(-0.5)] and res["verdict"] == "no verdict (zero-width CI)"
    b["u00"]["mcd_dtw"] -= 0.1  # some spread: the interval has a width and excludes 0
    assert paired_compare(a, b, ["mcd_dtw"], resamples=500)["mcd_dtw"]["verdict"] == "B better"
    few = {u: a[u] for u in sorted(a)[:MIN_UTTS - 1]}
    res = paired_compare(few, {u: b[u] for u in few}, ["mcd_dtw"], resamples=500)["mcd_dtw"]
    assert res["ci"][1] < 0 and res["verdict"] == f"no verdict (n < {MIN_UTTS})"
    assert paired_compare(a, a, ["mcd_dtw"], resamples=100)["mcd_dtw"]["verdict"] == "no measurable difference"
    # nor is "no measurable difference" said from a few utterances: their interval holds 0 as easily as not
    assert paired_compare(few, few, ["mcd_dtw"], resamples=100)["mcd_dtw"]["verdict"] == f"no verdict (n < {MIN_UTTS})"


def test_bad_tables_name_the_file_and_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        read_utt_table(tmp_path / "missing.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("utt\tmcd_dtw\nx\t1.0\ny\tabc\n")
    with pytest.raises(ValueError, match=r"bad.tsv:3 \(y\): metric 'mcd_dtw' is not a number: 'abc'"):
        read_utt_table(bad)
    bad.write_text("utt\tmcd_dtw\nx\t1.0\ny\t2.0\nx\t3.0\n")  # the later row replaced the earlier one, unsaid
    with pytest.raises(ValueError, match=r"bad.tsv:4: utterance x again"):
        read_utt_table(bad)
    with pytest.raises(ValueError, match="share no utterance"):
        paired_compare({"a": {"m": 1.0}}, {"b": {"m": 1.0}}, ["m"])


def test_a_metric_with_no_better_direction_is_only_called_different():
    a = {f"u{i}": {"duration_ratio": 1.0 + 0.01 * (i % 3)} for i in range(30)}
    b = {u: {"duration_ratio": r["duration_ratio"] + 0.2 + 0.01 * (i % 2)} for i, (u, r) in enumerate(a.items())}
    assert paired_compare(a, b, ["duration_ratio"], resamples=500)["duration_ratio"]["verdict"] == "different"


def test_ratio_of_error_counts_has_an_interval_that_shrinks_with_more_utterances():
    """The recipe's PER target is a ratio of two error counts; its interval must cover the true ratio and
    narrow as the number of sentences grows (here 2x, Poisson errors per sentence)."""
    rng = np.random.default_rng(3)
    widths = []
    for n in (150, 1500):
        real = rng.poisson(0.5, n)
        synth = rng.poisson(1.0, n)
        ratio, (lo, hi), method = ratio_ci(synth, real, resamples=4000)
        assert lo < ratio < hi and lo < 2.0 < hi and method == "bootstrap"
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning from inf - inf
        # 5 real errors, all in one of 3 utterances: still the bootstrap, some of whose draws have none
        ratio, (lo, hi), method = ratio_ci(np.array([3, 2, 0]), np.array([5, 0, 0]))
        assert (ratio, method) == (1.0, "bootstrap") and 0.0 <= lo <= hi == math.inf
        ratio, (lo, hi), method = ratio_ci(np.array([0, 0]), np.array([0, 0]))  # 0 / 0: undefined, not infinite
        assert math.isnan(ratio) and math.isnan(lo) and math.isnan(hi) and method == "undefined"
    with pytest.raises(ValueError, match="equal-length"):
        ratio_ci(np.array([1, 2]), np.array([1]))


def test_with_few_real_errors_the_ratio_interval_is_exact():
    """Under 5 real-audio errors the bootstrap's interval was far off: [inf, inf] with none, [1.5, inf] for 5
    synthesised errors against 1. The exact (conditional binomial, Clopper-Pearson) interval instead."""
    synth = np.zeros(150)
    synth[:5] = 1
    ratio, (lo, hi), method = ratio_ci(synth, np.r_[1.0, np.zeros(149)])
    assert (ratio, method) == (5.0, "exact")
    assert lo == pytest.approx(0.5595, abs=1e-4) and hi == pytest.approx(236.49, abs=0.01)
    ratio, (lo, hi), method = ratio_ci(synth, np.zeros(150))  # no real errors: unbounded above, not [inf, inf]
    assert ratio == math.inf and lo == pytest.approx(0.9164, abs=1e-4) and hi == math.inf and method == "exact"
    assert ratio_ci(np.zeros(150), np.r_[np.ones(3), np.zeros(147)]) == (0.0, [0.0, pytest.approx(2.42, abs=0.01)], "exact")
    # where the bootstrap takes over (5 real errors), both agree on where the ratio lies
    real = np.r_[np.ones(5), np.zeros(145)]
    boot = ratio_ci(np.r_[np.ones(10), np.zeros(140)], real).ci
    exact = exact_ratio_ci(10, 5)
    assert boot[0] < 2.0 < boot[1] and exact[0] < 2.0 < exact[1]
    # coverage of the true ratio 2 with about 2 real errors expected: at least the nominal 95%
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(200):
        r, g = rng.poisson(2 / 150, 150), rng.poisson(4 / 150, 150)
        _, (lo, hi), _ = ratio_ci(g, r) if r.sum() + g.sum() else (0, (0, math.inf), "")
        hits += lo <= 2.0 <= hi
    assert hits >= 0.94 * 200


def test_with_few_synthesised_errors_the_ratio_interval_is_exact_too():
    """Only the real audio's count chose the exact interval: with 10 real errors and no synthesised one the bootstrap
    gave [0, 0] (against the exact [0, 0.45]); with 1, [0, 0.33] (against [0.002, 0.70])."""
    real = np.r_[np.ones(10), np.zeros(140)]
    assert ratio_ci(np.zeros(150), real) == (0.0, [0.0, pytest.approx(0.4461, abs=1e-4)], "exact")
    ratio, (lo, hi), method = ratio_ci(np.r_[0.0, 1.0, np.zeros(148)], real)
    assert (ratio, method) == (0.1, "exact")
    assert lo == pytest.approx(0.002304, abs=1e-6) and hi == pytest.approx(0.7029, abs=1e-4)
    # the interval over judges too: where ratio_ci is exact it is refused, not [0, 0]
    with pytest.raises(ValueError, match="too few to bootstrap: take ratio_ci's exact interval"):
        ratio_ci_over_judges(np.zeros((2, 150)), np.stack([real, real]))
    many = np.r_[np.ones(5), np.zeros(145)]
    lo, hi = ratio_ci_over_judges(np.stack([many, many]), np.stack([real, real]), resamples=500)
    assert lo < 0.5 < hi


def test_a_text_column_is_skipped_unless_it_is_compared(tmp_path):
    """shared.evaluate's table holds whisper_language (en, fr) beside the numbers: read_utt_table refused it."""
    table = tmp_path / "metrics_utt.tsv"
    table.write_text("utt\tmcd_dtw\twhisper_wer\twhisper_language\nu1\t2.5\t0.1\ten\nu2\t3.0\tnan\tfr\n")
    rows = read_utt_table(table)
    assert rows["u1"] == {"mcd_dtw": 2.5, "whisper_wer": 0.1} and math.isnan(rows["u2"]["whisper_wer"])
    with pytest.raises(ValueError, match=r"metrics_utt.tsv:2 \(u1\): metric 'whisper_language' is not a number"):
        read_utt_table(table, ["mcd_dtw", "whisper_language"])
    assert main([str(table), str(table), "--metrics", "whisper_language", "--resamples", "10"]) == 1


def test_a_metric_few_utterances_have_is_resampled_among_those_only():
    """Draws that held none of its utterances counted as a difference of 0, widening the interval to 0."""
    a, b = _tables(-0.1, 0.0, n=20)
    for i, u in enumerate(sorted(a)):  # "m": only in two utterances, 1 higher in B in both
        a[u]["m"], b[u]["m"] = (0.0, 1.0) if i < 2 else (math.nan, math.nan)
    res = paired_compare(a, b, ["m", "mcd_dtw"], resamples=4000)
    assert res["m"]["n"] == 2 and res["m"]["ci"] == [1.0, 1.0] and res["m"]["verdict"] == f"no verdict (n < {MIN_UTTS})"
    # a metric every utterance has is drawn as it would be alone
    assert res["mcd_dtw"] == paired_compare(a, b, ["mcd_dtw"], resamples=4000)["mcd_dtw"]


def _scored(tmp_path, name, model_sha, tokens_sha="t" * 64):
    rows = {f"u{i}": {"mcd_dtw": 2.0 + 0.1 * i, "per_gen": 0.01 * i} for i in range(10)}
    (tmp_path / name).mkdir()
    table = _write(tmp_path / name / "metrics_utt.tsv", rows)
    (tmp_path / name / "metrics.json").write_text(json.dumps({"phone_recognizer": {
        "exp_dir": "exp/asr", "ref_token_file": "data/test/token", "model_sha256": model_sha,
        "ref_token_file_sha256": tokens_sha}}))
    return str(table)


def test_pers_scored_by_different_recognisers_are_not_compared(tmp_path, capsys):
    a, same = _scored(tmp_path, "a", "1" * 64), _scored(tmp_path, "same", "1" * 64)
    other_judge, other_tokens = _scored(tmp_path, "judge", "2" * 64), _scored(tmp_path, "tokens", "1" * 64, "u" * 64)
    assert main([a, same, "--resamples", "100"]) == 0
    for b, what in ((other_judge, "phone recogniser"), (other_tokens, "reference tokens")):
        assert main([a, b, "--resamples", "100"]) == 1
        err = capsys.readouterr().err
        assert f"per_gen: the two tables were scored differently ({what}" in err and "--phone-recognizer" in err
        assert main([a, b, "--metrics", "mcd_dtw", "--resamples", "100"]) == 0  # no PER: the judge does not matter
    # an older metrics.json has no digests: a warning, not a refusal; none at all: a warning too
    (tmp_path / "judge" / "metrics.json").write_text(json.dumps({"phone_recognizer": {"exp_dir": "exp/asr2"}}))
    assert main([a, other_judge, "--resamples", "100"]) == 0 and "WARNING" in capsys.readouterr().err
    (tmp_path / "judge" / "metrics.json").unlink()
    assert main([a, other_judge, "--resamples", "100"]) == 0
    assert "cannot check" in capsys.readouterr().err


def test_ratio_ci_over_judges_widens_with_the_judges_spread():
    rng = np.random.default_rng(0)
    real = rng.poisson(1.0, size=(1, 400)).repeat(2, axis=0)  # two judges that read the real audio alike
    agree = rng.poisson(2.0, size=(1, 400)).repeat(2, axis=0)
    disagree = np.stack([rng.poisson(1.0, 400), rng.poisson(3.0, 400)])  # 1x by one judge, 3x by the other
    width = lambda ci: ci[1] - ci[0]  # noqa: E731
    # judges that agree: about the utterances-only interval
    one_way = ratio_ci(agree.sum(0), real.sum(0)).ci
    assert width(ratio_ci_over_judges(agree, real)) == pytest.approx(width(one_way), rel=0.25)
    # judges that disagree: the utterances-only interval of the pooled ratio (~2x) is narrow and misses both
    # judges' own ratios; the two-way one reaches towards both
    one_way = ratio_ci(disagree.sum(0), real.sum(0)).ci
    two_way = ratio_ci_over_judges(disagree, real)
    assert one_way[0] > 1.5 and one_way[1] < 2.5
    assert two_way[0] < 1.3 and two_way[1] > 2.7
    with pytest.raises(ValueError, match="judges, utterances"):
        ratio_ci_over_judges(agree.sum(0), real.sum(0))


def _counted_tables(drop_counts_in=()):
    """Ten long sentences (100 phones) where B makes 3 errors fewer than A, ten short ones (5 phones) where it makes 1
    more: pooled over the phones B is better, but the mean of the utterances' rates says it is worse."""
    a, b = {}, {}
    for i in range(20):
        phones, errors = (100, 10 + i % 3) if i < 10 else (5, i % 2)
        other = errors - 3 if i < 10 else errors + 1
        for table, e in ((a, errors), (b, other)):
            table[f"u{i:02d}"] = {"mcd_dtw": 2.0, "per_gen": e / phones, "phone_errors_gen": e, "ref_phones": phones}
    for name in drop_counts_in:  # a table shared.evaluate wrote before it wrote the counts
        for row in {"A": a, "B": b}[name].values():
            del row["phone_errors_gen"], row["ref_phones"]
    return a, b


def test_a_per_difference_is_pooled_over_the_phones_where_the_tables_count_them(tmp_path, capsys):
    """A PER difference was of the utterances' mean rates, a 5-phone sentence weighing as much as a 100-phone one:
    now errors over phones, from the tables' counts, with its interval from the same paired bootstrap."""
    from shared.compare import format_table

    a, b = _counted_tables()
    ta, tb = _write(tmp_path / "a.tsv", a), _write(tmp_path / "b.tsv", b)
    res = paired_compare(read_utt_table(ta), read_utt_table(tb), ["per_gen", "mcd_dtw"], resamples=2000)["per_gen"]
    errors_a, errors_b, phones = (sum(r[k] for r in t.values()) for t, k in ((a, "phone_errors_gen"),
                                                                         (b, "phone_errors_gen"), (a, "ref_phones")))
    assert res["statistic"] == "pooled: errors / phones" and res["n"] == 20
    assert res["mean_a"] == pytest.approx(errors_a / phones) and res["mean_b"] == pytest.approx(errors_b / phones)
    assert res["diff"] == pytest.approx((errors_b - errors_a) / phones) and res["diff"] < 0
    assert res["ci"][0] < res["diff"] < res["ci"][1] < 0 and res["verdict"] == "B better"
    assert "| per_gen (pooled: errors / phones) | 20 |" in format_table({"per_gen": res})
    assert "WARNING" not in capsys.readouterr().err
    # as the CLI prints and writes it
    out = tmp_path / "c.json"
    assert main([str(ta), str(tb), "--metrics", "per_gen", "--resamples", "500", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["metrics"]["per_gen"]["statistic"] == "pooled: errors / phones"


def test_a_table_without_phone_counts_falls_back_to_the_mean_of_rates_and_says_so(tmp_path, capsys):
    from shared.compare import format_table

    a, b = _counted_tables(drop_counts_in=("A",))
    ta, tb = _write(tmp_path / "a.tsv", a), _write(tmp_path / "b.tsv", b)
    res = paired_compare(read_utt_table(ta), read_utt_table(tb), ["per_gen"], resamples=2000)["per_gen"]
    assert res["statistic"] == "mean over utterances: no phone counts in A's table"
    assert res["diff"] == pytest.approx(np.mean([r["per_gen"] for r in b.values()]) - np.mean([r["per_gen"] for r in a.values()]))
    assert res["diff"] > 0 and res["verdict"] == "A better"  # what the mean of rates says here
    assert "per_gen: no phone counts in A's table" in capsys.readouterr().err
    assert "| per_gen (mean over utterances: no phone counts in A's table) |" in format_table({"per_gen": res})
    table = format_table({"per_gen": res}, "base", "B-side")  # the systems' names, also in the statistic
    assert "| per_gen (mean over utterances: no phone counts in base's table) |" in table and "| base better |" in table
    assert main([str(ta), str(tb), "--metrics", "per_gen", "--resamples", "100", "--names", "old", "new"]) == 0
    assert "no phone counts in old's table) |" in capsys.readouterr().out
    both = paired_compare(*_counted_tables(drop_counts_in=("A", "B")), ["per_gen", "mcd_dtw"], resamples=100)
    assert both["per_gen"]["statistic"] == "mean over utterances: no phone counts in A's and B's tables"
    assert both["mcd_dtw"]["statistic"] == "mean over utterances"  # not a count-based metric: no fallback to tell


def test_a_pooled_per_difference_needs_the_same_reference_phones():
    a, b = _counted_tables()
    b["u03"]["ref_phones"] = 99
    with pytest.raises(ValueError, match=r"per_gen: .*different reference phone counts.*1 utterance.*u03"):
        paired_compare(a, b, ["per_gen"], resamples=100)


def test_a_pooled_per_over_references_without_phones_is_an_error():
    """Errors over no phones: a ValueError, not a NaN difference with an [inf, inf] interval."""
    a, b = _counted_tables()
    for t in (a, b):
        for row in t.values():
            row["ref_phones"] = 0
    with pytest.raises(ValueError, match=r"per_gen.*have no phones"):
        paired_compare(a, b, ["per_gen"], resamples=100)


def test_bootstrap_draws_a_chunk_at_a_time_the_draws_of_one_array():
    """The bootstrap drew a (resamples, utterances) array at once: 611 MB at 4000 utterances, ~15 GB at 100k. Drawn a
    chunk at a time, its draws are those of the one array, so every interval reported before is unchanged."""
    from shared.compare import _resampled_sums

    for n in (1, 7, 379, 1001):
        rng = np.random.default_rng(3)
        a, b = rng.poisson(0.3, n).astype(float), rng.poisson(0.2, n).astype(float)
        draws = np.random.default_rng(0).integers(0, n, size=(2100, n))
        sums = _resampled_sums([a, b], 2100, 0, chunk=500)
        assert np.array_equal(sums[0], a[draws].sum(1)) and np.array_equal(sums[1], b[draws].sum(1)), n
