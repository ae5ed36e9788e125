"""shared.evaluate end to end on toy data dirs, the RESULTS.md writer and the plot helpers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from shared.evaluate import EvaluationError, evaluate, main, match_utts, speaker_breakdown
from shared.io import read_kv, write_kv
from shared.metrics.optional import load_optional_metrics
from shared.metrics.report import aggregate, results_markdown, summary_row, write_results_md
from shared.phone_recognizer.toy import make_toy_data_dir, toy_utterance
from shared.plots import plot_alignment, plot_mel_comparison, plot_quality_vs_nfe, plot_training_curves

PNG = b"\x89PNG"


def save_utmos(path: Path, score: float) -> str:
    """A TorchScript "MOS model" answering ``score`` for any wav (shared.metrics.optional's utmos interface)."""
    import torch

    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.score = torch.nn.Parameter(torch.tensor(score))

        def forward(self, wav):
            return self.score.expand(wav.shape[0])

    torch.jit.script(Fixed()).save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    tokens = make_toy_data_dir(root / "ref", 3, seed=3)
    gen = root / "gen"
    (gen / "wav").mkdir(parents=True)
    scp = {}
    for k, (utt, phones) in enumerate(sorted(tokens.items())):
        wav = toy_utterance(phones, [0.12] * len(phones), f0=110.0 if k % 2 == 0 else 180.0, seed=99)
        sf.write(str(gen / "wav" / f"{utt}.wav"), wav, 16000)
        scp[utt] = str(gen / "wav" / f"{utt}.wav")
    write_kv(gen / "wav.scp", scp)
    return root


def test_match_utts_lists_problems():
    assert match_utts({"a": "x", "b": "y"}, {"b": "y", "a": "x"}) == ["a", "b"]
    with pytest.raises(EvaluationError, match="not generated: b"):
        match_utts({"a": "x", "b": "y"}, {"a": "x"})
    assert match_utts({"a": "x", "b": "y"}, {"a": "x"}, allow_subset=True) == ["a"]
    with pytest.raises(EvaluationError, match="no reference: c"):
        match_utts({"a": "x"}, {"a": "x", "c": "z"})


def test_evaluate_identical_codec_mode(dirs, tmp_path):
    out = tmp_path / "metrics.json"
    res = evaluate(dirs / "ref", dirs / "ref", out, mode="codec", nj=1)
    m = res["metrics"]
    assert m["mcd_dtw"]["mean"] == 0.0 and m["duration_ratio"]["mean"] == 1.0
    assert m["pesq_wb"]["mean"] == pytest.approx(4.644, abs=0.01) and m["mel_distance"]["mean"] == 0.0
    assert res["phone_recognizer"] == {"skipped": "no --phone-recognizer given"}
    assert all("skipped" in v for v in res["optional_metrics"].values())
    assert set(res["optional_metrics"]) == {"whisper_wer", "spk_sim", "utmos"}
    # the toy references have two speakers (utt2spk): each gets its own means
    spk = res["speakers"]
    assert sorted(spk) == ["toyspk0", "toyspk1"] and sum(s["num_utts"] for s in spk.values()) == 3
    assert all(s["metrics"]["mcd_dtw"] == 0.0 and "phone_errors_gen" not in s for s in spk.values())


def test_a_silent_output_is_scored_as_a_failure_and_named(dirs, tmp_path, capsys):
    """A digitally silent output left PESQ-WB's mean (NaN) and scored SI-SDR 0 dB, above every real output."""
    import shutil

    from shared.metrics.signal import PESQ_WB_MIN

    gen = tmp_path / "gen"
    shutil.copytree(dirs / "ref", gen)
    scp = read_kv(gen / "wav.scp")
    silent = sorted(scp)[0]
    sf.write(str(tmp_path / "silent.wav"), np.zeros(16000, dtype=np.float32), 16000)
    write_kv(gen / "wav.scp", {**scp, silent: str(tmp_path / "silent.wav")})
    res = evaluate(dirs / "ref", gen, tmp_path / "metrics.json", mode="codec", nj=1)
    assert f"utterance {silent}: the generated audio {tmp_path / 'silent.wav'} is digitally silent" in capsys.readouterr().err
    pesq = res["metrics"]["pesq_wb"]
    assert pesq["n"] == 3 and pesq["min"] == pytest.approx(PESQ_WB_MIN)
    assert res["metrics"]["si_sdr"]["n_nan"] == 1


def test_audio_too_short_for_stoi_or_not_finite(dirs, tmp_path):
    """pystoi failed (an AxisError) on audio of one frame or less, which stopped a whole codec evaluation; a NaN sample
    made loud audio "digitally silent" and then failed in librosa, naming no file."""
    import shutil

    from shared.metrics.signal import is_silent, stoi

    rng = np.random.default_rng(0)
    for rate, n in ((16000, 409), (22050, 564), (10000, 256)):  # one 256-sample frame at 10 kHz, or less
        x = rng.standard_normal(n)
        assert np.isnan(stoi(x, x, rate)), (rate, n)  # as for under 30 frames, not an error
    loud = rng.standard_normal(1000)
    loud[10] = np.nan
    assert not is_silent(loud) and is_silent(np.zeros(5)) and is_silent(np.zeros(0))
    gen = tmp_path / "gen"
    shutil.copytree(dirs / "ref", gen)
    scp = read_kv(gen / "wav.scp")
    utt = sorted(scp)[0]
    sf.write(str(tmp_path / "nan.wav"), loud.astype(np.float32), 16000, subtype="FLOAT")
    write_kv(gen / "wav.scp", {**scp, utt: str(tmp_path / "nan.wav")})
    with pytest.raises(EvaluationError, match=f"utterance {utt} .*AudioError: {tmp_path / 'nan.wav'}: 1 of 1000 samples "
                                              "are NaN or infinite"):
        evaluate(dirs / "ref", gen, tmp_path / "metrics.json", mode="codec", nj=1)


def test_phone_scoring_that_cannot_work_is_refused_before_the_signal_metrics(dirs, tmp_path, monkeypatch):
    """A reference token file lacking an utterance, or a recogniser without weights, was found after the signal metrics
    had run, and was a traceback (a ValueError, a FileNotFoundError) from the command line."""
    import shutil

    import shared.evaluate as E

    ref = tmp_path / "ref"
    shutil.copytree(dirs / "ref", ref)
    tokens = read_kv(ref / "token")
    lost = sorted(tokens)[0]
    write_kv(ref / "token", {u: t for u, t in tokens.items() if u != lost})
    asr = tmp_path / "asr"
    asr.mkdir()
    monkeypatch.setattr(E, "run_utt_metrics", lambda *a: pytest.fail("signal metrics before the phone scoring's checks"))
    with pytest.raises(EvaluationError, match=f"--phone-recognizer {asr}: no model.pt"):
        evaluate(ref, dirs / "gen", tmp_path / "m.json", phone_recognizer=asr, nj=1)
    (asr / "model.pt").write_bytes(b"weights")
    with pytest.raises(EvaluationError, match=f"{ref / 'token'}: no reference tokens for 1 utterance\\(s\\) to score: {lost}"):
        evaluate(ref, dirs / "gen", tmp_path / "m.json", phone_recognizer=asr, nj=1)
    assert main(["--ref-dir", str(ref), "--gen-dir", str(dirs / "gen"), "--out", str(tmp_path / "m.json"),
                 "--phone-recognizer", str(asr)]) == 1


def test_speaker_breakdown_sums_each_voices_errors():
    utts = ["a-1", "a-2", "b-1"]
    by_utt = {"a-1": {"mcd_dtw": 1.0}, "a-2": {"mcd_dtw": 3.0}, "b-1": {"mcd_dtw": 5.0}}
    utt2spk = {"a-1": "a", "a-2": "a", "b-1": "b"}
    phones = {"gen": {"a-1": (2, 10), "a-2": (1, 20), "b-1": (0, 30)}, "ref": {"a-1": (0, 10), "a-2": (1, 20), "b-1": (3, 30)}}
    out = speaker_breakdown(utts, by_utt, utt2spk, phones)
    assert out["a"] == {"num_utts": 2, "metrics": {"mcd_dtw": 2.0}, "ref_phones": 30, "phone_errors_gen": 3,
                        "per_gen": 0.1, "phone_errors_ref": 1, "per_ref": pytest.approx(1 / 30)}
    assert out["b"]["phone_errors_gen"] == 0 and out["b"]["per_ref"] == 0.1
    assert speaker_breakdown(utts, by_utt, utt2spk)["b"] == {"num_utts": 1, "metrics": {"mcd_dtw": 5.0}}
    with pytest.raises(EvaluationError, match="no speaker for 1 utterance.*b-1"):
        speaker_breakdown(utts, by_utt, {"a-1": "a", "a-2": "a"})


def test_evaluate_tts_mode_cli_plots_and_rerun(dirs, tmp_path, capsys):
    out = tmp_path / "eval" / "metrics.json"
    args = ["--ref-dir", str(dirs / "ref"), "--gen-dir", str(dirs / "gen"), "--out", str(out), "--nj", "1",
            "--plots-dir", str(tmp_path / "plots"), "--num-plots", "1"]
    assert main(args) == 0
    res = json.loads(out.read_text())
    assert res["num_utts"] == 3 and res["metrics"]["mcd_dtw"]["mean"] > 0.5
    assert res["metrics"]["duration_ratio"]["mean"] > 1.0 and "pesq_wb" not in res["metrics"]
    rows = (tmp_path / "eval" / "metrics_utt.tsv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].split("\t")[:2] == ["utt", "ref_seconds"]
    pngs = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert len(pngs) == 2 and all((tmp_path / "plots" / p).read_bytes()[:4] == PNG for p in pngs)
    capsys.readouterr()
    assert main(args) == 0 and "up to date" in capsys.readouterr().out
    (tmp_path / "eval" / "metrics_utt.tsv").unlink()  # was "up to date" without it, which compare and RESULTS.md read
    assert main(args) == 0 and "metrics_utt.tsv is missing: scoring again" in capsys.readouterr().out
    assert (tmp_path / "eval" / "metrics_utt.tsv").read_text().splitlines() == rows
    assert main(args[:2] + ["--gen-dir", str(dirs / "ref" / "missing")] + args[4:6]) == 1


def test_rescoring_the_same_audio_reuses_the_signal_metrics(dirs, tmp_path, monkeypatch):
    import os

    import shared.evaluate as ev

    out = tmp_path / "metrics.json"
    first = evaluate(dirs / "ref", dirs / "gen", out, mode="codec", nj=1)
    assert (tmp_path / "metrics_signal.json").is_file()

    def must_not_run(jobs, nj):
        raise AssertionError("signal metrics recomputed")

    monkeypatch.setattr(ev, "run_utt_metrics", must_not_run)
    # other settings (here an optional model, in the recipe the phone recogniser): a new summary, same numbers
    again = evaluate(dirs / "ref", dirs / "gen", out, mode="codec", nj=1,
                     optional_models={"utmos": save_utmos(tmp_path / "utmos.pt", 3.5)})
    assert again["metrics"].pop("utmos")["mean"] == pytest.approx(3.5) and again["metrics"] == first["metrics"]
    # new audio (the generated wav.scp rewritten), another mode or --overwrite: computed afresh
    scp = dirs / "gen" / "wav.scp"
    stamp = scp.stat().st_mtime_ns  # (to the nanosecond: a float of seconds would not restore it)
    os.utime(scp, ns=(stamp + 5 * 10**9, stamp + 5 * 10**9))
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate(dirs / "ref", dirs / "gen", out, mode="codec", nj=1)
    os.utime(scp, ns=(stamp, stamp))
    evaluate(dirs / "ref", dirs / "gen", out, mode="codec", nj=1)  # the same audio again: reused
    wav = Path(next(iter(read_kv(scp).values())))  # one generated file rewritten, its index untouched
    wav_stamp = wav.stat().st_mtime_ns
    os.utime(wav, ns=(wav_stamp + 5 * 10**9, wav_stamp + 5 * 10**9))
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate(dirs / "ref", dirs / "gen", out, mode="codec", nj=1)
    os.utime(wav, ns=(wav_stamp, wav_stamp))
    for kw in ({"mode": "tts"}, {"mode": "codec", "overwrite": True}):
        with pytest.raises(AssertionError, match="recomputed"):
            evaluate(dirs / "ref", dirs / "gen", out, nj=1, **kw)
    # rows scored under another mel-cepstrum convention (before 2026-12-07 the c_m were half SPTK's) are not reused
    monkeypatch.undo()
    evaluate(dirs / "ref", dirs / "gen", out, mode="codec", nj=1)
    monkeypatch.setattr(ev, "run_utt_metrics", must_not_run)
    monkeypatch.setattr("shared.metrics.spectral.MCEP_CONVENTION", "symmetric")
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate(dirs / "ref", dirs / "gen", out, mode="codec", nj=1)
    # ...nor those of other analysis settings or older scoring code (pYIN's voicing at 0.2 semitones until
    # 2026-12-07), by the rows and by the summary alike: "up to date" kept the old numbers
    from dataclasses import replace

    from shared.metrics.spectral import DEFAULT_ANALYSIS

    for patch in (("shared.evaluate.SCORING_VERSION", ev.SCORING_VERSION + 1),
                  ("shared.metrics.spectral.DEFAULT_ANALYSIS", replace(DEFAULT_ANALYSIS, f0_resolution=0.2))):
        monkeypatch.undo()
        evaluate(dirs / "ref", dirs / "gen", out, mode="codec", nj=1)
        monkeypatch.setattr(ev, "run_utt_metrics", must_not_run)
        monkeypatch.setattr(*patch)
        with pytest.raises(AssertionError, match="recomputed"):
            evaluate(dirs / "ref", dirs / "gen", out, mode="codec", nj=1)


def test_reference_analysis_cache_gives_the_same_metrics(dirs, tmp_path):
    plain = evaluate(dirs / "ref", dirs / "gen", tmp_path / "a" / "metrics.json", nj=1)["metrics"]
    cache = tmp_path / "ref_analysis"
    first = evaluate(dirs / "ref", dirs / "gen", tmp_path / "b" / "metrics.json", nj=1, ref_cache=cache)["metrics"]
    assert sorted(p.stem for p in cache.glob("*.pkl")) == sorted(read_kv(dirs / "ref" / "wav.scp"))
    stamps = {p: p.stat().st_mtime_ns for p in cache.glob("*.pkl")}
    again = evaluate(dirs / "ref", dirs / "gen", tmp_path / "c" / "metrics.json", nj=1, ref_cache=cache)["metrics"]
    assert {p: p.stat().st_mtime_ns for p in cache.glob("*.pkl")} == stamps  # read, not recomputed
    for m in (first, again):
        for k in ("mcd_dtw", "f0_rmse_cents", "vuv_error", "duration_ratio"):
            assert m[k]["mean"] == pytest.approx(plain[k]["mean"], rel=1e-9, nan_ok=True), k
    # one stored before a scoring change (SCORING_VERSION) is made afresh: it was paired with the new code's generated side
    import shared.evaluate as E
    old_version, E.SCORING_VERSION = E.SCORING_VERSION, E.SCORING_VERSION + 1
    try:
        evaluate(dirs / "ref", dirs / "gen", tmp_path / "f" / "metrics.json", nj=1, ref_cache=cache)
    finally:
        E.SCORING_VERSION = old_version
    assert all(p.stat().st_mtime_ns != stamps[p] for p in cache.glob("*.pkl"))
    stamps = {p: p.stat().st_mtime_ns for p in cache.glob("*.pkl")}
    # an analysis stored under another mel-cepstrum convention is made afresh
    import shared.metrics.spectral as spectral
    old_convention, spectral.MCEP_CONVENTION = spectral.MCEP_CONVENTION, "symmetric"
    try:
        evaluate(dirs / "ref", dirs / "gen", tmp_path / "d" / "metrics.json", nj=1, ref_cache=cache)
    finally:
        spectral.MCEP_CONVENTION = old_convention
    assert all(p.stat().st_mtime_ns != stamps[p] for p in cache.glob("*.pkl"))
    # another reference under the same utterance id is analysed afresh (the stored key is the old audio's hash)
    utt, path = sorted(read_kv(dirs / "ref" / "wav.scp").items())[0]
    wav, _ = sf.read(path)
    from shared.evaluate import cached_ref_analysis
    from shared.metrics.spectral import analyse
    a = cached_ref_analysis(utt, wav[::-1].astype(np.float32), True, str(cache))
    assert np.array_equal(a.mcep, analyse(wav[::-1].astype(np.float32)).mcep)
    # the command line's --ref-cache (the recipe's stages 5 and 9 share exp/ref_analysis: the codec's and the TTS's
    # references are the same audio)
    cli_cache = tmp_path / "cli_cache"
    assert main(["--ref-dir", str(dirs / "ref"), "--gen-dir", str(dirs / "gen"), "--out", str(tmp_path / "e" / "m.json"),
                 "--nj", "1", "--ref-cache", str(cli_cache)]) == 0
    assert sorted(p.stem for p in cli_cache.glob("*.pkl")) == sorted(read_kv(dirs / "ref" / "wav.scp"))


def test_optional_metrics_say_why_they_are_skipped(monkeypatch, tmp_path):
    for name in ("FLOWTTS_WHISPER_MODEL", "FLOWTTS_SPK_MODEL", "FLOWTTS_UTMOS_MODEL"):
        monkeypatch.delenv(name, raising=False)
    available, skipped = load_optional_metrics({"whisper_wer": None})
    assert not available and set(skipped) == {"whisper_wer", "spk_sim", "utmos"}
    assert "--whisper-model or $FLOWTTS_WHISPER_MODEL" in skipped["whisper_wer"]["skipped"]
    assert "--utmos-model or $FLOWTTS_UTMOS_MODEL" in skipped["utmos"]["skipped"]


def test_a_model_asked_for_that_does_not_load_is_an_error(dirs, monkeypatch, tmp_path, capsys):
    """A given path that did not load was only a "skipped" inside metrics.json, exit 0: now an error naming the
    path, where it came from and why; a model given no path is still skipped, and stderr says so."""
    from shared.metrics.optional import OptionalModelError

    for name in ("FLOWTTS_WHISPER_MODEL", "FLOWTTS_SPK_MODEL", "FLOWTTS_UTMOS_MODEL"):
        monkeypatch.delenv(name, raising=False)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a TorchScript file")
    monkeypatch.setenv("FLOWTTS_UTMOS_MODEL", str(broken))
    with pytest.raises(OptionalModelError, match=f"utmos: {broken} \\(from \\$FLOWTTS_UTMOS_MODEL\\) failed to load: "):
        load_optional_metrics({})
    with pytest.raises(OptionalModelError, match=f"utmos: {tmp_path / 'no.pt'} \\(from --utmos-model\\) not found"):
        load_optional_metrics({"utmos": str(tmp_path / "no.pt")})
    if importlib.util.find_spec("whisper") is None:
        with pytest.raises(OptionalModelError, match="python package 'whisper', which is not installed"):
            load_optional_metrics({"whisper_wer": str(broken)})
    args = ["--ref-dir", str(dirs / "ref"), "--gen-dir", str(dirs / "gen"), "--out", str(tmp_path / "m.json"), "--nj",
            "1", "--no-f0"]
    capsys.readouterr()
    assert main(args) == 1 and not (tmp_path / "m.json").exists()
    assert f"error: utmos: {broken} (from $FLOWTTS_UTMOS_MODEL) failed to load" in capsys.readouterr().err
    monkeypatch.delenv("FLOWTTS_UTMOS_MODEL")
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "[evaluate] model-based metrics skipped: " in err and "utmos: no weights given (--utmos-model or $FLOWTTS_UTMOS_MODEL)" in err


def test_a_rerun_sees_every_input_that_changes_the_results(dirs, tmp_path, monkeypatch, capsys):
    """The up-to-date check missed a model the environment enables, new weights at the same path, another utt2spk
    or text (Whisper's references), and made no plots asked for by the rerun."""
    monkeypatch.delenv("FLOWTTS_UTMOS_MODEL", raising=False)
    ref = tmp_path / "ref"
    ref.mkdir()
    for name in ("wav.scp", "utt2spk", "text"):
        write_kv(ref / name, read_kv(dirs / "ref" / name))
    out, args = tmp_path / "eval" / "metrics.json", dict(nj=1, with_f0=False)

    def rerun(**kw):
        capsys.readouterr()
        res = evaluate(ref, dirs / "gen", out, **args, **kw)
        return res, "up to date" in capsys.readouterr().out

    assert "skipped" in rerun()[0]["optional_metrics"]["utmos"]
    monkeypatch.setenv("FLOWTTS_UTMOS_MODEL", save_utmos(tmp_path / "utmos.pt", 3.0))
    res, same = rerun()
    assert not same and res["metrics"]["utmos"]["mean"] == pytest.approx(3.0)
    assert res["settings"]["optional_models"]["utmos"] == str(tmp_path / "utmos.pt")
    save_utmos(tmp_path / "utmos.pt", 4.0)  # new weights, same path
    res, same = rerun()
    assert not same and res["metrics"]["utmos"]["mean"] == pytest.approx(4.0)
    write_kv(ref / "utt2spk", dict.fromkeys(read_kv(ref / "utt2spk"), "one_voice"))
    res, same = rerun()
    assert not same and list(res["speakers"]) == ["one_voice"]
    assert rerun()[1]
    write_kv(ref / "text", {u: "another text" for u in read_kv(ref / "text")})
    assert not rerun()[1]
    res, same = rerun(plots_dir=tmp_path / "plots", num_plots=1)  # up to date, and the plots asked for are made
    assert same and sorted(p.suffix for p in (tmp_path / "plots").iterdir()) == [".png", ".png"]


def test_audio_through_a_pipe_is_scored_afresh_and_dates_are_to_the_nanosecond(dirs, tmp_path, monkeypatch, capsys):
    """A wav.scp pipe has no file to date: it counted as unchanged forever; now a wav.scp with one is always
    scored again. Token and utt2lang files were dated to the second."""
    import os

    import shared.evaluate as ev
    from shared.evaluate import fingerprint

    ref = tmp_path / "ref"
    ref.mkdir()
    scp = read_kv(dirs / "ref" / "wav.scp")
    first = sorted(scp)[0]
    write_kv(ref / "wav.scp", {**scp, first: f"cat {scp[first]} |"})
    out = tmp_path / "metrics.json"
    plain = evaluate(dirs / "ref", dirs / "gen", tmp_path / "plain.json", nj=1, with_f0=False)
    piped = evaluate(ref, dirs / "gen", out, nj=1, with_f0=False)
    assert piped["metrics"]["mcd_dtw"] == plain["metrics"]["mcd_dtw"]

    def must_not_run(jobs, nj):
        raise AssertionError("signal metrics recomputed")

    monkeypatch.setattr(ev, "run_utt_metrics", must_not_run)
    capsys.readouterr()
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate(ref, dirs / "gen", out, nj=1, with_f0=False)
    out_text = capsys.readouterr().out
    assert "read audio through commands" in out_text and "up to date" not in out_text
    stamped = tmp_path / "utt2lang"
    stamped.write_text("u en-us\n")
    second = 1_700_000_000 * 10**9
    os.utime(stamped, ns=(second, second))
    before = fingerprint([stamped])
    os.utime(stamped, ns=(second, second + 1000))  # the same second
    assert fingerprint([stamped]) != before


def test_speaker_similarity_embeds_each_recording_whole(monkeypatch):
    """Both recordings were cut to the shorter one's length before the embedding."""
    import sys
    import types

    import torch

    import shared.metrics.optional as opt

    seen = []

    class FakeEncoder:
        @classmethod
        def from_hparams(cls, source, savedir, run_opts):
            return cls()

        def encode_batch(self, wavs):  # (B, T) -> (B, 1, D)
            seen.append(tuple(wavs.shape))
            return torch.stack([wavs.mean(-1), wavs.std(-1)], -1)[:, None]

    speaker = types.ModuleType("speechbrain.inference.speaker")
    speaker.EncoderClassifier = FakeEncoder
    for name in ("speechbrain", "speechbrain.inference"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "speechbrain.inference.speaker", speaker)
    rng = np.random.default_rng(0)
    ref, gen = rng.standard_normal(1600).astype(np.float32), rng.standard_normal(4800).astype(np.float32)
    sim = opt._speaker("ecapa_dir")(ref, gen, "", "en")["spk_sim"]
    emb = [np.array([x.mean(), x.std(ddof=1)]) for x in (ref, gen)]  # the fake's embeddings (torch's std: unbiased)
    assert sorted(seen) == [(1, 1600), (1, 4800)]
    assert sim == pytest.approx(emb[0] @ emb[1] / np.linalg.norm(emb[0]) / np.linalg.norm(emb[1]), rel=1e-4)


def test_a_failing_file_in_the_model_metrics_is_named_with_its_utterance(dirs, tmp_path):
    """The optional metrics loaded the audio outside the utterance's error context: the error named no utterance."""
    from shared.evaluate import optional_scores

    ref = read_kv(dirs / "ref" / "wav.scp")
    bad = tmp_path / "not_audio.wav"
    bad.write_text("this is not a wav file\n")
    utts = sorted(ref)
    gen = {**ref, utts[1]: str(bad)}
    by_utt = {u: {} for u in utts}
    fn = lambda r, g, text, language: {"utmos": 1.0}  # noqa: E731
    with pytest.raises(EvaluationError, match=f"utterance {utts[1]} \\(reference {ref[utts[1]]}, generated {bad}\\)"):
        optional_scores({"utmos": fn}, dirs / "ref", utts, ref, gen, by_utt, None, {})


def test_whisper_wer_of_the_corpus_is_its_errors_over_its_words(dirs, tmp_path, monkeypatch, capsys):
    """The corpus WER was the mean of the utterances' rates, a two-word utterance weighing as much as a ten-word one."""
    import shared.metrics.optional as opt

    texts = read_kv(dirs / "ref" / "text")
    counts = dict(zip(sorted(texts.values()), [(1, 2), (0, 10), (0, 8)]))  # (errors, words) by reference text

    def fake_whisper(ref, gen, text, language):
        errors, words = counts[text]
        return {"whisper_wer": errors / words, "whisper_errors": errors, "whisper_words": words}

    monkeypatch.setattr(opt, "load_optional_metrics", lambda models: ({"whisper_wer": fake_whisper}, {}))
    out = tmp_path / "metrics.json"
    assert main(["--ref-dir", str(dirs / "ref"), "--gen-dir", str(dirs / "gen"), "--out", str(out), "--nj", "1",
                 "--no-f0"]) == 0
    res = json.loads(out.read_text())
    assert res["metrics"]["whisper_wer"]["mean"] == pytest.approx(0.5 / 3)
    assert res["corpus"]["whisper_wer"] == pytest.approx(1 / 20)
    assert res["optional_metrics"]["whisper_wer"]["errors"] == 1 and res["optional_metrics"]["whisper_wer"]["words"] == 20
    assert summary_row(res)["whisper_wer"] == "5.0%"  # the RESULTS.md cell is the corpus value
    assert "'whisper_wer': 0.05" in capsys.readouterr().out


def test_report(tmp_path):
    agg = aggregate([{"utt": "a", "mcd_dtw": 4.0, "f0": float("nan")}, {"utt": "b", "mcd_dtw": 6.0, "f0": 1.0}])
    assert agg["mcd_dtw"]["mean"] == 5.0 and agg["mcd_dtw"]["std"] == 1.0 and agg["f0"]["n_nan"] == 1
    row = summary_row({"metrics": agg, "corpus": {"per_gen": 0.123}})
    assert row["mcd_dtw"] == "5.00 ± 1.00" and row["per_gen"] == "12.3%"
    with_ratio = summary_row({"metrics": agg, "corpus": {"per_gen": 0.01, "per_ratio": 4.3636}, "per_ratio_ci": [2.9, 6.55],
                              "phone_errors_gen": 48, "phone_errors_ref": 11})
    assert with_ratio["per_ratio"] == "4.36x [2.90x, 6.55x]" and with_ratio["phone_errors"] == "48 / 11"
    text = write_results_md(tmp_path / "RESULTS.md", {"test set": {"rf nfe=4": row, "reflow nfe=1": {"mcd_dtw": 7.0}}},
                            stage_times={"stage1": 75.0, "stage2": 3700.0}, config_paths=["conf/stage1.yaml"])
    assert (tmp_path / "RESULTS.md").read_text() == text
    assert "| rf nfe=4 | 5.00 ± 1.00 |" in text and "MCD-DTW (dB)" in text and "1h02m55s" in text
    assert "`conf/stage1.yaml`" in results_markdown({}, config_paths={"stage1": "conf/stage1.yaml"})
    # the durations and the voiced share have fixed decimals, mean and spread alike (they were '2.6 ± 0.741')
    secs = summary_row({"metrics": aggregate([{"gen_seconds": 2.5991, "voiced_both_frac": 0.7}, {"gen_seconds": 3.0, "voiced_both_frac": 0.8}])})
    assert secs["gen_seconds"] == "2.80 ± 0.20" and secs["voiced_both_frac"] == "0.750 ± 0.050"


def test_plots(tmp_path):
    rng = np.random.default_rng(0)
    paths = [
        plot_mel_comparison(rng.standard_normal((80, 50)), rng.standard_normal((80, 70)), tmp_path / "mel.png", "u1"),
        plot_alignment(rng.random((10, 40)), tmp_path / "attn.png"),
        plot_alignment(np.array([[0, 0], [1, 1], [1, 2], [2, 3]]), tmp_path / "path.png", shape=(3, 4)),
        plot_quality_vs_nfe({"rectified flow": {1: 9.0, 2: 7.5, 8: 6.1}, "+ reflow": {1: 6.8, 2: 6.4, 8: 6.2}},
                            tmp_path / "nfe.png"),
    ]
    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,step,train/loss,val/mel\n0,0,1.0,\n0,1,0.8,\n0,1,,0.5\n1,2,0.6,\n")
    paths.append(plot_training_curves(csv, tmp_path / "curves.png"))
    assert all(p.read_bytes()[:4] == PNG for p in paths)
    assert not list(tmp_path.glob(".*.tmp"))


def test_results_md_from_exp_tree(tmp_path, capsys):
    from shared.io import write_json
    from shared.results import main as results_main

    exp = tmp_path / "exp"
    metrics = {"metrics": aggregate([{"mcd_dtw": 5.0, "per_gen": 0.1}, {"mcd_dtw": 7.0, "per_gen": 0.2}]),
               "corpus": {"per_gen": 0.15, "per_ref": 0.02, "per_ratio": 7.5}, "per_ratio_ci": [3.0, 20.0]}
    speakers = {"enus": {"num_utts": 2, "metrics": {"mcd_dtw": 6.0, "f0_rmse_cents": 70.0}, "ref_phones": 60,
                         "phone_errors_gen": 9, "per_gen": 0.15, "phone_errors_ref": 1, "per_ref": 0.017}}
    write_json(exp / "stage2" / "flow" / "eval" / "test" / "metrics.json", {**metrics, "speakers": speakers})
    write_json(exp / "stage1" / "vae" / "eval" / "test" / "metrics.json", {"metrics": aggregate([{"pesq_wb": 3.5}]),
        "speakers": {"enus": {**speakers["enus"], "metrics": {"pesq_wb": 3.5, "mcd_dtw": 1.25}, "phone_errors_gen": 4}}})
    write_json(exp / "nfe_sweep" / "summary.json",
               {"flow": {"1": {"mcd_dtw": 9.0, "rtf": 0.01}, "4": {"mcd_dtw": 6.0, "rtf": 0.03}},
                "flow_reflow": {"1": {"mcd_dtw": 6.5, "rtf": 0.01}}})
    cell = {"n": 20, "mean_a": 9.0, "mean_b": 6.5, "diff": -2.5, "ci": [-3.0, -2.0], "level": 0.95, "verdict": "B better"}
    write_json(exp / "nfe_sweep" / "paired.json", [{"base": "flow", "other": "flow_reflow", "nfe": "1", "metrics": {
        "mcd_dtw": cell, "per_gen": {**cell, "diff": 0.01, "ci": [-0.01, 0.03], "verdict": "no measurable difference"}}}])
    write_json(exp / "asr" / "train_summary.json", {"dev_per": 0.025, "steps": 550, "train_seconds": 150.0,
                                                    "num_train_utts": 720, "dev_per_perturbed": {"speed 0.97": 0.031}})
    (exp / "stage_times.tsv").write_text("3\tstage1_train\t600\n10\tpack\t5\n3\tstage1_train\t620\n")
    write_json(exp / "stage2" / "flow" / "decoder" / "train_summary.json", {"steps": 2364, "seconds_this_run": 240.1})
    (exp / "stage2" / "flow" / "decoder" / "model.pt").write_bytes(b"weights")  # a trained one: what decodes the TTS
    out = exp / "RESULTS.md"
    assert results_main(["--exp-root", str(exp), "--stage1-exp-dir", str(exp / "stage1" / "vae"), "--stage2-exp-dir",
                         str(exp / "stage2" / "flow"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| flow | 6.00 ± 1.00 | 15.0% | 2.0% | 7.50x [3.00x, 20.00x] |" in text
    assert "dev PER 2.50% after 550 steps" in text and "speed 0.97 3.10%" in text
    # the end of a run prints the headline numbers
    assert "[results] test: vae: PESQ-WB 3.50 | flow: MCD-DTW (dB) 6.00, PER synth 15.0%, PER real 2.0%, PER synth / real 7.50x [3.00x, 20.00x]" \
        in capsys.readouterr().out
    assert "| speaker | utts | phones | phone errors real / codec / TTS | codec PESQ-WB ↑ | codec MCD-DTW (dB) ↓ |" in text
    assert "| enus | 2 | 60 | 1 / 4 / 9 | 3.50 | 1.25 | 6.00 | 70.0 |" in text
    assert "| vae | 3.50 |" in text and "dev PER 2.50%" in text
    assert "decoded by " + str(exp / "stage2" / "flow" / "decoder") + ": stage one's decoder fine-tuned" in text
    assert "(2364 steps / 240 s)" in text
    assert "| flow_reflow NFE 1 | 6.50 |" in text and "](nfe_sweep/quality_vs_nfe.png)" in text
    assert "## Paired difference flow_reflow - flow" in text
    assert "| NFE 1 | -2.5 [-3, -2] (+) | +0.01 [-0.01, +0.03] |" in text
    assert "| 3 stage1_train | 10m20s |" in text and text.index("3 stage1_train") < text.index("10 pack")
    assert (exp / "nfe_sweep" / "quality_vs_nfe.png").read_bytes()[:4] == PNG


def test_nfe_sweep_subset_covers_every_speaker():
    from shared.datadir import spread_subset

    utts = [f"spk{s}-u{i}" for s in range(5) for i in range(8)]  # Kaldi order: grouped by speaker
    sub = spread_subset(utts, 20)
    assert len(sub) == len(set(sub)) == 20 and sub == sorted(sub)
    assert {u.split("-")[0] for u in sub} == {f"spk{s}" for s in range(5)}
    assert spread_subset(utts, None) == utts and spread_subset(utts, 100) == utts


def test_path_gap_is_relative_distance_to_the_reference_samples():
    import torch

    from stage2_flow.nfe_sweep import path_gap

    ref = {"a": torch.ones(2, 3), "b": 2 * torch.ones(2, 4)}
    assert path_gap(ref, ref) == 0.0
    off = {"a": 1.5 * ref["a"], "b": 1.5 * ref["b"]}
    assert abs(path_gap(off, ref) - 0.5) < 1e-6


def test_a_failing_utterance_is_named_with_both_files(dirs, tmp_path):
    from shared.evaluate import run_utt_metrics

    ref = read_kv(dirs / "ref" / "wav.scp")
    bad = tmp_path / "not_audio.wav"
    bad.write_text("this is not a wav file\n")
    utts = sorted(ref)
    jobs = [(u, ref[u], ref[u], "tts", False, None) for u in utts] + [("uttBAD", ref[utts[0]], str(bad), "tts", False, None)]
    for nj in (1, 2):  # in this process and in the process pool
        with pytest.raises(EvaluationError, match=f"utterance uttBAD \\(reference {ref[utts[0]]}, generated {bad}\\)"):
            run_utt_metrics(jobs, nj)


def test_whisper_wer_without_a_reference_text_is_an_error(dirs, tmp_path, monkeypatch):
    import shared.metrics.optional as opt

    def fake_whisper(ref, gen, text, language):
        from shared.metrics.text import edit_distance

        c = edit_distance(opt.normalize_words(text), ["hello"])
        return {"whisper_wer": c.rate, "whisper_errors": c.errors, "whisper_words": c.ref_len}

    monkeypatch.setattr(opt, "load_optional_metrics", lambda models: ({"whisper_wer": fake_whisper}, {}))
    ref = tmp_path / "ref"
    ref.mkdir()
    scp = read_kv(dirs / "ref" / "wav.scp")
    write_kv(ref / "wav.scp", scp)
    args = dict(mode="tts", nj=1, with_f0=False)
    with pytest.raises(EvaluationError, match=f"{ref / 'text'} not found"):
        evaluate(ref, dirs / "gen", tmp_path / "a.json", **args)
    text = read_kv(dirs / "ref" / "text")
    first = sorted(text)[0]
    write_kv(ref / "text", {u: t for u, t in text.items() if u != first})
    with pytest.raises(EvaluationError, match=f"no text for 1 utterance.*{first}"):
        evaluate(ref, dirs / "gen", tmp_path / "b.json", **args)
    write_kv(ref / "text", text)
    res = evaluate(ref, dirs / "gen", tmp_path / "c.json", **args)
    assert np.isfinite(res["metrics"]["whisper_wer"]["mean"])


def test_whisper_wer_counts_numbers_as_words_on_both_sides():
    """Reference texts spell numbers out (the corpora's normalised text) and Whisper writes digits: both are
    normalised as the TTS frontend does, so only what differs when spoken is an error."""
    from shared.metrics.optional import wer_words
    from shared.metrics.text import edit_distance

    ref = "In the nineteen thirties, twenty apples cost two dollars and fifty cents."
    assert edit_distance(wer_words(ref), wer_words("In the 1930s 20 apples cost $2.50")).errors == 0
    assert edit_distance(wer_words(ref), wer_words("In the 1940s 20 apples cost $2.50")).errors == 1


def test_whisper_language_is_the_espeak_languages_iso_code():
    from shared.metrics.optional import whisper_language

    assert [whisper_language(x) for x in ("en-us", "en-gb-x-rp", "fr-fr", "de", "EN_US", "cmn", "nb", "yue")] == [
        "en", "en", "fr", "de", "en", "zh", "no", "yue"]
    with pytest.raises(ValueError, match="Whisper knows no language 'xx' \\(of 'xx-yy'\\)"):
        whisper_language("xx-yy")


def test_wer_normalises_numbers_in_english_only():
    """The English number normaliser made a French "20" "twenty" on both sides: elsewhere only case and punctuation."""
    from shared.metrics.optional import wer_words

    assert wer_words("Il a 20 ans, dit-il.", "fr") == ["il", "a", "20", "ans", "dit", "il"]
    assert wer_words("He is 20, he said.", "en") == wer_words("He is 20, he said.") == ["he", "is", "twenty", "he", "said"]


class FakeWhisper:
    """A Whisper model's interface: ``transcribe`` answers in the language it is told, and remembers it."""

    def __init__(self, is_multilingual: bool = True):
        self.is_multilingual, self.languages = is_multilingual, []

    def transcribe(self, wav, language, fp16):
        self.languages.append(language)
        return {"text": {"en": " Hello world 2.", "fr": " Bonjour deux fois."}.get(language, " ?")}


def test_whisper_transcribes_each_utterance_in_its_language(dirs, tmp_path, monkeypatch):
    """It was told English whatever the data dir's utt2lang said; the language now comes from utt2lang, else
    --language, else English, and metrics.json says which."""
    import shared.metrics.optional as opt

    model = FakeWhisper()
    monkeypatch.setattr(opt, "load_optional_metrics", lambda models: ({"whisper_wer": opt.whisper_wer(model)}, {}))
    ref = tmp_path / "ref"
    ref.mkdir()
    write_kv(ref / "wav.scp", read_kv(dirs / "ref" / "wav.scp"))
    utts = sorted(read_kv(ref / "wav.scp"))
    write_kv(ref / "text", dict(zip(utts, ["Hello world two.", "Bonjour 2 fois!", "Hello world two."])))
    write_kv(ref / "utt2lang", dict(zip(utts, ["en-gb-x-rp", "fr-fr", "en-us"])))
    args = dict(mode="tts", nj=1, with_f0=False, language="de")
    res = evaluate(ref, dirs / "gen", tmp_path / "a.json", **args)
    assert model.languages == ["en", "fr", "en"]
    assert res["optional_metrics"]["whisper_wer"] == {"enabled": True, "languages": {"en": 2, "fr": 1},
                                                      "language_source": f"utt2lang ({ref / 'utt2lang'})",
                                                      "errors": 1, "words": 9}
    # the counts go into the table, for pooling; metrics.json's metrics average none of them
    assert "whisper_wer" in res["metrics"] and not {"whisper_errors", "whisper_words"} & set(res["metrics"])
    table = [row.split("\t") for row in (tmp_path / "a_utt.tsv").read_text().splitlines()]
    column = lambda name: [row[table[0].index(name)] for row in table[1:]]  # noqa: E731
    assert column("whisper_language") == ["en", "fr", "en"]
    # English numbers in words on both sides; French only lowercased and without punctuation: "2" is not "deux"
    assert column("whisper_errors") == ["0", "1", "0"] and column("whisper_words") == ["3", "3", "3"]
    # without utt2lang: --language for every utterance, else English
    (ref / "utt2lang").unlink()
    model.languages.clear()
    res = evaluate(ref, dirs / "gen", tmp_path / "b.json", **args)
    assert model.languages == ["de"] * 3 and res["optional_metrics"]["whisper_wer"]["language_source"] == "--language de"
    res = evaluate(ref, dirs / "gen", tmp_path / "c.json", **{**args, "language": None})
    assert model.languages[3:] == ["en"] * 3
    assert res["optional_metrics"]["whisper_wer"]["languages"] == {"en": 3}
    assert "English" in res["optional_metrics"]["whisper_wer"]["language_source"]
    # a language Whisper does not know, or an utterance utt2lang leaves out, is an error before any transcription
    model.languages.clear()
    write_kv(ref / "utt2lang", dict(zip(utts, ["en-us", "xx-yy", "en-us"])))
    with pytest.raises(EvaluationError, match=f"Whisper knows no language 'xx'.*1 utterance.*{utts[1]}"):
        evaluate(ref, dirs / "gen", tmp_path / "d.json", **args)
    write_kv(ref / "utt2lang", dict(zip(utts[:2], ["en-us", "fr-fr"])))
    with pytest.raises(EvaluationError, match=f"no language for 1 utterance.*{utts[2]}"):
        evaluate(ref, dirs / "gen", tmp_path / "e.json", **args)
    assert model.languages == []
    # an English-only model cannot transcribe French: an error naming the utterance, not English words silently
    model.is_multilingual = False
    write_kv(ref / "utt2lang", dict(zip(utts, ["en-us", "fr-fr", "en-us"])))
    with pytest.raises(EvaluationError, match=f"utterance {utts[1]} .*English-only Whisper model cannot transcribe"):
        evaluate(ref, dirs / "gen", tmp_path / "f.json", **args)


def test_a_subset_result_is_not_reused_without_allow_subset(dirs, tmp_path):
    """The up-to-date check ignored --allow-subset: a rerun without it returned the subset's result."""
    gen = tmp_path / "gen"
    gen.mkdir()
    scp = read_kv(dirs / "gen" / "wav.scp")
    first = sorted(scp)[0]
    write_kv(gen / "wav.scp", {first: scp[first]})
    out = tmp_path / "metrics.json"
    assert evaluate(dirs / "ref", gen, out, nj=1, with_f0=False, allow_subset=True)["num_utts"] == 1
    with pytest.raises(EvaluationError, match="reference utterance\\(s\\) were not generated"):
        evaluate(dirs / "ref", gen, out, nj=1, with_f0=False)


def fake_phone_scoring(monkeypatch, dirs: Path, tmp_path: Path, gen_errors: dict[int, int], ref_len=30) -> Path:
    """A stand-in phone recogniser's exp dir, with ``shared.phone_recognizer.score`` answering ``gen_errors[i]``
    phone errors in the generated audio of the i-th utterance (default none), none in the real audio, ``ref_len(i)``
    reference phones (or that many in every one)."""
    import shared.phone_recognizer.score as S

    phones = ref_len if callable(ref_len) else lambda i: ref_len

    def fake_score_dir(exp_dir, data_dir, ref_token_file, recognizer=None, utts=None):
        gen = Path(data_dir) == dirs / "gen"
        rows = {u: {"per": e / phones(i), "errors": e, "ref_len": phones(i)}
                for i, u in enumerate(utts) for e in [gen_errors.get(i, 0) if gen else 0]}
        errors = sum(r["errors"] for r in rows.values())
        return {"per": errors / sum(r["ref_len"] for r in rows.values()), "errors": errors, "utts": rows}

    monkeypatch.setattr(S, "LoadedRecognizer", lambda exp_dir: None)
    monkeypatch.setattr(S, "score_dir", fake_score_dir)
    asr = tmp_path / "asr"
    asr.mkdir()
    (asr / "model.pt").write_bytes(b"weights")
    return asr


def test_metrics_json_is_strict_json_and_says_how_the_ratio_interval_was_made(dirs, tmp_path, monkeypatch, capsys):
    """3 phone errors in the generated audio, none in the real: the ratio and the interval's upper end are
    infinite, which json wrote as Infinity (not JSON); now null, and the interval is the exact one."""
    asr = fake_phone_scoring(monkeypatch, dirs, tmp_path, {0: 3})
    out = tmp_path / "metrics.json"
    args = ["--ref-dir", str(dirs / "ref"), "--gen-dir", str(dirs / "gen"), "--out", str(out), "--nj", "1", "--no-f0",
            "--phone-recognizer", str(asr)]
    assert main(args) == 0

    def not_json(name):
        raise ValueError(f"{name} in metrics.json")

    res = json.loads(out.read_text(), parse_constant=not_json)
    assert res["corpus"]["per_ratio"] is None and res["per_ratio_ci_method"] == "exact"
    lo, hi = res["per_ratio_ci"]
    assert lo == pytest.approx(0.4126, abs=1e-3) and hi is None
    assert "PER synth / real ∞ [0.41x, ∞] (exact) (3 / 0 phone errors)" in capsys.readouterr().out
    assert len(res["phone_recognizer"]["model_sha256"]) == 64  # for shared.compare's same-judge check
    assert summary_row(res)["per_ratio"] == "∞ [0.41x, ∞] (exact)"  # the RESULTS.md row reads the nulls
    assert main(args) == 0 and "up to date" in capsys.readouterr().out


def test_the_utterance_table_holds_each_utterances_phone_counts(dirs, tmp_path, monkeypatch, capsys):
    """metrics_utt.tsv had each utterance's PER only: a PER pooled over utterances (errors over phones, as
    shared.compare and the NFE sweep now compare them) could not be made from it. The counts are in the table, not
    among metrics.json's means; a table from before them is rescored (its signal metrics reused)."""
    import shared.evaluate as ev
    from shared.compare import read_utt_table

    asr = fake_phone_scoring(monkeypatch, dirs, tmp_path, {0: 3, 2: 1}, ref_len=lambda i: 20 + 10 * i)
    out = tmp_path / "metrics.json"
    res = evaluate(dirs / "ref", dirs / "gen", out, nj=1, with_f0=False, phone_recognizer=asr)
    table = tmp_path / "metrics_utt.tsv"
    rows = read_utt_table(table)
    assert [(r["phone_errors_gen"], r["phone_errors_ref"], r["ref_phones"]) for _, r in sorted(rows.items())] == [
        (3, 0, 20), (0, 0, 30), (1, 0, 40)]
    assert [r["per_gen"] for _, r in sorted(rows.items())] == [pytest.approx(3 / 20), 0.0, pytest.approx(1 / 40)]
    assert not {"phone_errors_gen", "phone_errors_ref", "ref_phones"} & set(res["metrics"])
    assert all("ref_phones" not in s["metrics"] for s in res["speakers"].values())
    # a table written before the counts were: the evaluation is not up to date, and only the PER is scored again
    header, *body = table.read_text().splitlines()
    keep = [i for i, c in enumerate(header.split("\t")) if c not in ("phone_errors_gen", "phone_errors_ref", "ref_phones")]
    table.write_text("".join("\t".join(line.split("\t")[i] for i in keep) + "\n" for line in [header, *body]))

    def must_not_run(jobs, nj):
        raise AssertionError("signal metrics recomputed")

    monkeypatch.setattr(ev, "run_utt_metrics", must_not_run)
    capsys.readouterr()
    evaluate(dirs / "ref", dirs / "gen", out, nj=1, with_f0=False, phone_recognizer=asr)
    assert "has no phone counts" in capsys.readouterr().out
    assert read_utt_table(table) == rows
    evaluate(dirs / "ref", dirs / "gen", out, nj=1, with_f0=False, phone_recognizer=asr)
    assert "up to date" in capsys.readouterr().out


def test_synthesis_record_is_the_job_that_made_the_audio(tmp_path):
    """The synth.json of the job whose wavs wav.scp names, wherever the recipe dir was: a recipe under a dir named
    like the test set ('/home/me/test/...') must not be read as a job's path."""
    from shared.io import write_kv
    from shared.results import synthesis_record

    synth = tmp_path / "synth" / "test"
    synth.mkdir(parents=True)
    made = "/home/me/test/egs/espeak_mini/tts1/exp/stage2/flow/synth/test"
    write_kv(synth / "wav.scp", {"u1": f"{made}/wav/u1.wav"})
    assert synthesis_record(synth) == synth / "synth.json"
    write_kv(synth / "wav.scp", {"u1": f"{made}/split2/1/wav/u1.wav"})  # run.sh --synth-nj 2
    assert synthesis_record(synth) == synth / "split2" / "1" / "synth.json"
