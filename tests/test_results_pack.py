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


def _exp(path, config="model: {}\n", **files):
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(config)
    for name, text in files.items():
        (path / name.replace("__", ".")).write_text(text)
    return path


def test_results_name_each_stages_config_by_its_role_and_count_a_decoder_only_where_one_was_trained(tmp_path):
    """Configs were keyed by their dir's name (two stages tagged alike: one config lost, and its --budget-scale
    note), and a decoder/ without model.pt (one that never finished) was reported as the one decoding the TTS."""
    from shared.results import collect

    budget = "train: {budget_scale: 2}\n"
    s1 = _exp(tmp_path / "exp" / "stage1" / "base", budget)
    s2 = _exp(tmp_path / "exp" / "stage2" / "base", budget)
    _exp(s2 / "decoder")  # its config and checkpoints, no model.pt
    c = collect(tmp_path / "exp", s1, s2, "test", tmp_path / "exp" / "RESULTS.md")
    assert c["config_paths"] == {"stage one (base)": str(s1 / "config.yaml"), "stage two (base)": str(s2 / "config.yaml")}
    assert "stage one (base) x2, stage two (base) x2" in c["notes"]
    assert f"decoded by stage one's own decoder ({s1})" in c["notes"]


def test_results_say_how_much_of_a_resumed_decoder_fine_tuning_its_time_covers(tmp_path):
    from shared.results import collect

    s1, s2 = _exp(tmp_path / "exp" / "stage1" / "vae"), _exp(tmp_path / "exp" / "stage2" / "flow")
    _exp(s2 / "decoder", model__pt="weights",
         train_summary__json='{"steps": 1116, "steps_this_run": 316, "seconds_this_run": 51.0}')
    notes = collect(tmp_path / "exp", s1, s2, "test", tmp_path / "exp" / "RESULTS.md")["notes"]
    assert "(1116 steps, the last 316 of them in a resumed run of 51 s)" in notes
    (s2 / "decoder" / "train_summary.json").write_text('{"steps": 1116, "steps_this_run": 1116, "seconds_this_run": 180.3}')
    assert "(1116 steps / 180 s)" in collect(tmp_path / "exp", s1, s2, "test", tmp_path / "exp" / "RESULTS.md")["notes"]


def test_results_say_how_many_utterances_the_nfe_sweep_scored(tmp_path):
    import json

    from shared.results import collect

    sweep = tmp_path / "exp" / "nfe_sweep"
    sweep.mkdir(parents=True)
    cell = {"mcd_dtw": 3.1, "rtf": 0.01, "utterances": 20}
    (sweep / "summary.json").write_text(json.dumps({"flow": {"1": cell, "2": cell}}))
    tables = collect(tmp_path / "exp", None, None, "test", tmp_path / "exp" / "RESULTS.md")["tables"]
    assert "Quality and speed against NFE (20 utterances of test)" in tables
    # a mean over fewer of them (an utterance with no frame voiced in both has no log-F0 RMSE) says over how many:
    # two cells' means over different utterances were set side by side as if comparable
    fewer = {**cell, "f0_rmse_cents": 99.83, "scored": {"f0_rmse_cents": 19}}
    (sweep / "summary.json").write_text(json.dumps({"flow": {"1": fewer, "2": {**cell, "f0_rmse_cents": 94.7}}}))
    rows = collect(tmp_path / "exp", None, None, "test", tmp_path / "exp" / "RESULTS.md")["tables"][
        "Quality and speed against NFE (20 utterances of test)"]
    assert rows["flow NFE 1"]["f0_rmse_cents"] == "99.8 (19)" and rows["flow NFE 2"]["f0_rmse_cents"] == 94.7


def test_a_package_is_refused_where_its_codec_is_not_the_models(tmp_path):
    """The pack pointed the model at whatever --stage1-exp-dir it was given (the package then decoded with another
    codec), packed a decoder fine-tuned on an earlier model's output (which does not load), and skipped a --results
    file that was not there while saying it packed one."""
    from shared.pack import pack

    s1, other = _exp(tmp_path / "stage1" / "vae", model__pt="s1"), _exp(tmp_path / "stage1" / "other", model__pt="s1b")
    s2 = _exp(tmp_path / "stage2" / "flow", model__pt="s2", stage1__json='{"exp_dir": "../../stage1/vae"}')
    with pytest.raises(ValueError, match=r"was trained on the latents of .*stage1/vae, not of .*stage1/other"):
        pack(other, s2, tmp_path / "packed")
    with pytest.raises(FileNotFoundError, match="NOPE.md: no such results file"):
        pack(s1, s2, tmp_path / "packed", results=tmp_path / "NOPE.md")
    with pytest.raises(FileNotFoundError, match="NOPE.json: no such corpus report"):
        pack(s1, s2, tmp_path / "packed", corpus_report=tmp_path / "NOPE.json")
    assert not (tmp_path / "packed").exists()
    out = pack(s1, s2, tmp_path / "packed")
    assert (out / "stage2" / "model.pt").read_text() == "s2" and (out / "stage1" / "model.pt").read_text() == "s1"
    # its results name the recipe's exp/ paths, which the package does not have: it says so, under the title
    (tmp_path / "RESULTS.md").write_text("# Results: x\n\n- decoder: `exp/stage2/flow/decoder/config.yaml`\n")
    out = pack(s1, s2, tmp_path / "packed", results=tmp_path / "RESULTS.md")
    packed = (out / "RESULTS.md").read_text()
    assert packed.startswith("# Results: x\n\n_Paths in these results are those of the recipe") and "exp/stage2/flow" in packed
    assert "here stage one is `stage1/`" in (out / "MODEL_CARD.md").read_text().split("\n## Results\n", 1)[1]
    _exp(s2 / "decoder", "data: {source_model_sha256: " + "0" * 64 + "}\n", model__pt="dec")
    with pytest.raises(RuntimeError, match="fine-tuned on the output of an earlier"):
        pack(s1, s2, tmp_path / "packed2")
    assert pack(s1, s2, tmp_path / "packed2", decoder=False).is_dir()  # the system decoded by stage one's own


def test_a_package_replaces_only_a_package_and_its_card_holds_the_base_model_and_nests_the_results(tmp_path):
    """--out-dir exp/packed (the folder of packages) was deleted whole; the card of a reflow fine-tune showed only its
    400 fine-tuning steps, not the base model's training; the results' '## ...' sections stood beside the card's own."""
    from shared.pack import pack

    recipe = tmp_path / "recipe"
    s1 = _exp(recipe / "exp" / "stage1" / "vae", model__pt="s1")
    base = _exp(recipe / "exp" / "stage2" / "flow", model__pt="b", train_summary__json='{"steps": 1101}')
    s2 = _exp(recipe / "exp" / "stage2" / "flow_reflow", "model: {}\ndata: {init_from: exp/stage2/flow}\n",
              model__pt="s2", stage1__json='{"exp_dir": "../../stage1/vae"}', train_summary__json='{"steps": 400}')
    (recipe / "exp" / "packed" / "other_system").mkdir(parents=True)
    (recipe / "exp" / "packed" / "other_system" / "MODEL_CARD.md").write_text("keep")
    for out, says in ((recipe / "exp" / "packed", "exists and is not a package"), (recipe / "exp", "holds .*stage1/vae")):
        with pytest.raises(ValueError, match=f"--out-dir {out} {says}"):
            pack(s1, s2, out)
    assert (recipe / "exp" / "packed" / "other_system" / "MODEL_CARD.md").read_text() == "keep"
    (tmp_path / "RESULTS.md").write_text("# Results: x\n\n## TTS\n\n```yaml\n# a comment\n```\n")
    out = pack(s1, s2, recipe / "exp" / "packed" / "mine", results=tmp_path / "RESULTS.md")
    assert pack(s1, s2, out, results=tmp_path / "RESULTS.md") == out  # a package is replaced by its new version
    card = (out / "MODEL_CARD.md").read_text()
    assert "\n### Results: x\n" in card and "\n#### TTS\n" in card and "\n# a comment\n" in card
    assert "## Stage two's base model (the model flow_reflow was fine-tuned from: " in card and '"steps": 1101' in card


def test_a_long_corpus_report_is_shortened_in_the_card_not_cut_mid_json(tmp_path):
    import json

    from shared.pack import _brief_json

    report = {"total_hours": 585.0, "speakers": {f"spk{i:04d}": {"utts": i, "minutes": 1.5 * i} for i in range(2456)}}
    text = _brief_json(report, "corpus_report.json")
    assert len(text) < 4000 and json.loads(text) == {"total_hours": 585.0,
                                                     "speakers": "(2456 entries: see corpus_report.json)"}
    assert json.loads(_brief_json({"total_hours": 1.0}, "r.json")) == {"total_hours": 1.0}
