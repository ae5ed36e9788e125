"""What RESULTS.md and the model card show: the NFE sweep's PER is the pooled one of the TTS table, so is its paired
PER difference (one of means over utterances, from tables without phone counts, says so), and the card's usage holds
wherever the package is copied."""

import pytest

from shared.metrics.report import aggregate, markdown_table
from shared.pack import model_card
from shared.results import paired_tables, sweep_table
from stage2_flow.nfe_sweep import _flat


def test_the_nfe_sweeps_per_is_pooled_over_the_corpus_as_in_the_tts_table():
    """The sweep showed the mean of per-utterance PERs (here 20%) under the TTS table's "PER synth" header, which is
    errors / phones over the corpus (12%: the long sentence has the fewer errors per phone)."""
    res = {"metrics": aggregate([{"mcd_dtw": 5.0, "per_gen": 0.1, "per_ref": 0.0, "seconds": 1.0},
                                 {"mcd_dtw": 7.0, "per_gen": 0.3, "per_ref": 0.1, "seconds": 2.0}]),
           "corpus": {"per_gen": 0.12, "per_ref": 0.04, "per_ratio": 3.0}}
    assert _flat(res) == {"mcd_dtw": 6.0, "per_gen": 0.12, "per_ref": 0.04}
    table = markdown_table(sweep_table({"flow": {"4": _flat(res)}}))
    assert "| flow NFE 4 | 6.00 | 12.0% |" in table and "PER synth ↓" in table
    with pytest.raises(KeyError, match="per_gen"):  # a PER without its pooled value is not shown as a mean instead
        _flat({"metrics": res["metrics"], "corpus": {}})


def test_a_paired_per_difference_is_labelled_as_of_means_over_utterances():
    cell = {"n": 20, "mean_a": 0.1, "mean_b": 0.08, "diff": -0.02, "ci": [-0.03, -0.01], "level": 0.95,
            "verdict": "B better"}
    tables = paired_tables([{"base": "flow", "other": "flow_reflow", "nfe": "2",
                             "metrics": {"mcd_dtw": {**cell, "diff": -0.5, "ci": [-0.6, -0.4]}, "per_gen": cell}}])
    (row,) = next(iter(tables.values())).values()
    assert row == {"mcd_dtw": "-0.5 [-0.6, -0.4] (+)", "PER synth ↓ (mean over utterances)": "-0.02 [-0.03, -0.01] (+)"}
    no_verdict = {**cell, "verdict": "no verdict (n < 10)"}  # shared.compare's verdict, not only the interval, marks
    (row,) = next(iter(paired_tables([{"base": "a", "other": "b", "nfe": "1", "metrics": {"mcd_dtw": no_verdict}}])
                       .values())).values()
    assert row == {"mcd_dtw": "-0.02 [-0.03, -0.01]"}


def test_the_nfe_sweeps_paired_per_difference_is_pooled_and_its_column_says_which_it_is(tmp_path):
    """The sweep's paired PER difference was of per-utterance means; now errors over phones (shared.compare) where the
    cells' tables count them, and RESULTS.md's column says which of the two each row is."""
    from stage2_flow.nfe_sweep import compare_cells

    def table(path, errors):
        path.parent.mkdir(parents=True)
        path.write_text("utt\tmcd_dtw\tper_gen\tphone_errors_gen\tref_phones\n" + "".join(
            f"u{i:02d}\t2.0\t{e / n:.6g}\t{e}\t{n}\n" for i, (e, n) in enumerate(errors)))

    phones = [100] * 10 + [5] * 10
    table(tmp_path / "flow" / "nfe2" / "metrics_utt.tsv", [(12, 100)] * 10 + [(0, 5)] * 10)
    table(tmp_path / "flow_reflow" / "nfe2" / "metrics_utt.tsv", [(9 + i % 2, 100) for i in range(10)] + [(1, 5)] * 10)
    (cell,) = compare_cells(tmp_path, ["flow", "flow_reflow"], ["2"])
    per = cell["metrics"]["per_gen"]
    assert per["statistic"] == "pooled: errors / phones"
    assert per["diff"] == pytest.approx((95 + 10 - 120) / sum(phones))  # the mean of rates: +0.0875
    (row,) = next(iter(paired_tables([cell]).values())).values()
    assert list(row) == ["mcd_dtw", "PER synth ↓ (pooled: errors / phones)"]
    fallback = {**per, "statistic": "mean over utterances: no phone counts in A's table"}
    (row,) = next(iter(paired_tables([{**cell, "metrics": {"per_gen": fallback}}]).values())).values()
    assert list(row) == ["PER synth ↓ (mean over utterances: no phone counts in flow's table)"]  # named as the tables' title


def test_the_model_cards_usage_does_not_name_where_the_package_was_built(tmp_path):
    out = tmp_path / "build" / "espeak_mini_flow_reflow"
    card = model_card(out, tmp_path / "s1", tmp_path / "s2", None, None, {"nfe": 4})
    use = card.split("## Use")[1].split("\n## ")[0]
    assert str(tmp_path) not in use
    assert 'Synthesizer.from_exp_dir("stage2")' in use and "--exp-dir stage2 --nfe 4" in use
    assert "relative to its directory" in use
