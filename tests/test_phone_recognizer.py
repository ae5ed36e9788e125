"""Phone recogniser: token filtering, greedy CTC decoding, a few training steps on toy audio, resume,
and scoring to per.json."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from shared.phone_recognizer.data import (
    ROBUSTNESS_CHECKS, change_speed, degrade, is_punctuation, low_pass, phone_filter,
)
from shared.phone_recognizer.model import PhoneRecognizer, RecognizerConfig, greedy_ctc_decode
from shared.phone_recognizer.score import LoadedRecognizer, score_dir
from shared.io import read_kv, write_kv
from shared.phone_recognizer.toy import make_toy_data_dir
from shared.config import merge
from shared.phone_recognizer.train import DEFAULT_CONFIG, train

TINY = {"model": {"conv_channels": 16, "hidden": 16, "num_layers": 1},
        "train": {"max_steps": 4, "batch_frames": 2000, "log_every": 2, "ckpt_every": 2, "warmup_steps": 2}}


def test_hypotheses_are_filtered_as_the_references_are(monkeypatch):
    """A recogniser trained before attached stress was stripped has classes such as 'ˈoʊ': its hypotheses must meet
    the references ('oʊ') in the same filtered form."""
    from types import SimpleNamespace

    import shared.phone_recognizer.score as score

    rec = object.__new__(LoadedRecognizer)
    rec.model = SimpleNamespace(features=lambda w, n: (w, n))
    rec.vocab, rec.keep = None, phone_filter()
    monkeypatch.setattr(score, "_decode", lambda model, feats, frames, vocab: [["h", "ˈoʊ", "ˌ", ","]])
    assert rec.transcribe([torch.zeros(160)]) == [["h", "oʊ"]]


def test_phone_filter():
    keep = phone_filter()
    toks = ["h", "ə", "l", "ˈ", "oʊ", ",", "▁", "w", "ˌ", "ɜː", "!", "…", "<unk>"]
    assert keep(toks) == ["h", "ə", "l", "oʊ", "w", "ɜː"]
    assert phone_filter(drop_stress=False)(["ˈ", "a"]) == ["ˈ", "a"]
    # stress attached to its vowel (the frontend's stress: attached) is taken out too: it was a phone class of its own
    assert keep(["h", "ə", "l", "ˈoʊ", "ˌɜː"]) == ["h", "ə", "l", "oʊ", "ɜː"]
    assert phone_filter(drop_stress=False)(["ˈoʊ"]) == ["ˈoʊ"]
    assert is_punctuation("?!") and not is_punctuation("ʔ") and not is_punctuation("ː")


def test_greedy_ctc_decode():
    blank = 0
    frames = [0, 3, 3, 0, 3, 4, 4, 0, 0, 5]  # -> 3 3 4 5 (blank separates the repeated 3)
    logp = torch.full((1, len(frames), 6), -10.0)
    logp[0, torch.arange(len(frames)), torch.tensor(frames)] = 0.0
    assert greedy_ctc_decode(logp, torch.tensor([len(frames)]), blank) == [[3, 3, 4, 5]]
    assert greedy_ctc_decode(logp, torch.tensor([3]), blank) == [[3]]


def test_model_shapes():
    m = PhoneRecognizer(RecognizerConfig(num_classes=9, blank_id=2, conv_channels=8, hidden=8, num_layers=1))
    wav = torch.randn(2, 16000)
    feats, frames = m.features(wav, torch.tensor([16000, 8000]))
    assert feats.shape == (2, 80, 101) and frames.tolist() == [101, 51]
    assert feats[1, :, 51:].abs().max() == 0.0  # padding is zero after normalisation
    logp, out_len = m(feats, frames)  # default subsampling 4: 101 -> 51 -> 26 frames
    assert logp.shape == (2, 26, 9) and out_len.tolist() == [26, 13]
    assert torch.allclose(logp.exp().sum(-1), torch.ones(2, 26), atol=1e-5)
    m2 = PhoneRecognizer(RecognizerConfig(num_classes=9, blank_id=2, subsampling=2, conv_channels=8, hidden=8))
    assert m2(feats, frames)[0].shape == (2, 51, 9)


def _peak_hz(x: torch.Tensor, sr: int) -> float:
    return float(torch.fft.rfft(x.double()).abs().argmax()) * sr / x.numel()


def test_speed_and_low_pass():
    sr = 16000
    sine = torch.sin(2 * torch.pi * 200.0 * torch.arange(sr) / sr)
    faster = change_speed(sine, sr, 1.1)  # resampled to 14500 Hz (16000 / 1.1 to 100 Hz): 200 -> 220.7 Hz
    assert faster.numel() == 14500 and abs(_peak_hz(faster, sr) - 200 * 16000 / 14500) < 1.5
    assert abs(_peak_hz(change_speed(sine, sr, 0.97), sr) - 194.0) < 2.0
    tones = sine + torch.sin(2 * torch.pi * 7500.0 * torch.arange(sr) / sr)
    spec = torch.fft.rfft(low_pass(tones, sr, 6000.0)).abs()
    assert spec[7500] < 0.2 * spec[200]  # 4th order: 7.5 kHz down by ~8 dB at 1.25 x the cutoff
    assert set(ROBUSTNESS_CHECKS) == {"speed 0.97", "speed 1.03", "low-pass 6 kHz"}


def test_degrade_options():
    sr, wav = 16000, torch.randn(8000) * 0.1
    # the defaults keep the length and add noise to every copy
    for s in range(4):
        plain = degrade(wav, sr, np.random.default_rng(s)).double()
        gain = (plain @ wav.double()) / (wav.double() @ wav.double())
        assert plain.numel() == 8000 and (plain - gain * wav.double()).abs().max() > 1e-4
    lengths = {degrade(wav, sr, np.random.default_rng(s), speed=(0.9, 1.1)).numel() for s in range(6)}
    assert len(lengths) > 1 and all(7272 - 2 <= n <= 8889 + 2 for n in lengths)
    # without noise, a copy is the input scaled, or scaled and band-limited: nothing added
    for s in range(8):
        out = degrade(wav, sr, np.random.default_rng(s), p_noise=0.0).double()
        gain = (out @ wav.double()) / (wav.double() @ wav.double())
        spec = torch.fft.rfft(out)
        assert torch.allclose(out, gain * wav.double(), atol=1e-5) or spec[-500:].abs().max() < 1e-6


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("asr")
    make_toy_data_dir(root / "train", 12, seed=1)
    make_toy_data_dir(root / "dev", 4, seed=2, prefix="dev")
    return root


def test_train_resume_and_score(toy, capsys):
    exp = toy / "exp"
    cfg = merge(DEFAULT_CONFIG, TINY)
    summary = train(cfg, str(toy / "train"), str(toy / "train" / "token"), str(exp), str(toy / "dev"))
    dev = json.loads((exp / "dev_per.json").read_text())
    assert summary["steps"] == 4 and summary["dev_per"] == pytest.approx(dev["errors"] / dev["ref_len"])
    assert dev["errors"] == dev["sub"] + dev["ins"] + dev["del"] and dev["ref_len"] > 0
    assert set(summary["dev_per_perturbed"]) == set(ROBUSTNESS_CHECKS)  # the judge's robustness on its dev set
    assert set(json.loads((exp / "dev_per.json").read_text())["perturbed"]) == set(ROBUSTNESS_CHECKS)
    for name in ("config.yaml", "tokens.txt", "model.pt", "train_log.csv", "dev_per.json", "checkpoints/last.pt"):
        assert (exp / name).exists(), name
    assert (exp / "tokens.txt").read_text().splitlines()[2] == "<blank> 2"
    # a finished experiment is a no-op; an unfinished one resumes from the checkpoint, also on another machine
    # (device, threads, time budget and logging are not the model's settings)
    mtime = (exp / "model.pt").stat().st_mtime_ns
    capsys.readouterr()
    assert train(cfg, str(toy / "train"), str(toy / "train" / "token"), str(exp))["steps"] == 4
    assert "nothing to do" in capsys.readouterr().out and (exp / "model.pt").stat().st_mtime_ns == mtime
    (exp / "train_summary.json").unlink()
    elsewhere = merge(cfg, {"train": {"num_threads": 1, "max_time_s": 60.0, "log_every": 1, "device": "auto"}})
    assert train(elsewhere, str(toy / "train"), str(toy / "train" / "token"), str(exp))["steps"] == 4
    assert "resumed from" in capsys.readouterr().out

    res = score_dir(exp, toy / "dev", toy / "dev" / "token", out=toy / "per.json")
    saved = json.loads((toy / "per.json").read_text())
    assert saved["num_utts"] == 4 and saved["per"] == pytest.approx(res["per"])
    assert res["per"] == pytest.approx(res["errors"] / res["ref_len"]) and res["ref_len"] == sum(
        len(line.split()) - 1 for line in (toy / "dev" / "token").read_text().splitlines())
    assert saved["errors"] == saved["sub"] + saved["ins"] + saved["del"]
    assert len((toy / "per_utt.tsv").read_text().splitlines()) == 5
    assert saved["unknown_ref_phones"] == {}
    # reference phones the recogniser cannot output (another frontend's tokens) were errors without a word
    refs = read_kv(toy / "dev" / "token")
    first = sorted(refs)[0]
    other = toy / "other_token"
    write_kv(other, {**refs, first: refs[first] + " ʘ ʘ"})
    capsys.readouterr()
    assert score_dir(exp, toy / "dev", other)["unknown_ref_phones"] == {"ʘ": 2}
    assert f"{other}: 2 reference phone(s) of {toy / 'dev'} are not among the recogniser's" in capsys.readouterr().err
    rec = LoadedRecognizer(exp)
    assert len(rec.transcribe([torch.zeros(8000)])) == 1
    with pytest.raises(ValueError, match="no reference tokens"):
        score_dir(exp, toy / "dev", toy / "train" / "token")
    empty = toy / "empty"  # scored as PER 0 over 0 utterances before
    empty.mkdir()
    (empty / "wav.scp").write_text("")
    with pytest.raises(ValueError, match=f"no utterances in {empty}"):
        score_dir(exp, empty, toy / "dev" / "token", out=toy / "empty.json")
    assert not (toy / "empty.json").exists()


def test_a_dir_rerun_or_resumed_under_another_config_is_refused(toy, tmp_path):
    """It printed "nothing to do" and returned the old judge for train.seed=7 or model.hidden=64, and resumed the old
    checkpoint under a new config: the dir now keeps the settings its model depends on and names what differs."""
    cfg = merge(DEFAULT_CONFIG, TINY)
    args = (str(toy / "train"), str(toy / "train" / "token"), str(tmp_path / "exp"))
    first = train(cfg, *args)
    assert first["config"]["model.hidden"] == 16 and "train.num_threads" not in first["config"]
    for other, named in (({"train": {"seed": 7}}, "train.seed: 0 there, 7 now"),
                         ({"model": {"hidden": 64}}, "model.hidden: 16 there, 64 now")):
        with pytest.raises(ValueError, match=f"was trained with another config \\({named}\\).*new --exp-dir.*--overwrite"):
            train(merge(cfg, other), *args)
    (tmp_path / "exp" / "train_summary.json").unlink()  # as if killed after its last checkpoint
    with pytest.raises(ValueError, match="holds a checkpoint of another config \\(train.max_steps: 4 there, 6 now\\)"):
        train(merge(cfg, {"train": {"max_steps": 6}}), *args)
    assert train(merge(cfg, {"train": {"max_steps": 6}}), *args, overwrite=True)["steps"] == 6


def test_a_non_finite_loss_stops_the_training_and_exports_nothing(toy, tmp_path, monkeypatch, capsys):
    """Nothing checked the loss: one NaN sample in a float wav made every weight NaN, and model.pt was exported with
    exit status 0 (a rerun then said "nothing to do" over the NaN judge). Such audio is an AudioError naming the file
    now (tests/test_audio.py); a non-finite loss or gradient stops the training before the update."""
    from shared.phone_recognizer import train as T

    forward = PhoneRecognizer.forward

    def nan_from_step_two(self, x, x_len):
        logp, out_len = forward(self, x, x_len)
        return (logp * float("nan") if T_steps["n"] >= 2 else logp), out_len
    T_steps = {"n": 0}
    step = T._Loop.step

    def counted(self, *a, **kw):
        T_steps["n"] += 1
        return step(self, *a, **kw)
    monkeypatch.setattr(PhoneRecognizer, "forward", nan_from_step_two)
    monkeypatch.setattr(T._Loop, "step", counted)
    exp = tmp_path / "exp"
    args = ["--data-dir", str(toy / "train"), "--exp-dir", str(exp), *(f"{k}={v}" for k, v in
            {"model.conv_channels": 16, "model.hidden": 16, "model.num_layers": 1, "train.max_steps": 4,
             "train.batch_frames": 2000, "train.ckpt_every": 1, "train.warmup_steps": 2}.items())]
    assert T.main(args) == 1
    assert "error: step 2: CTC loss nan" in capsys.readouterr().err
    assert not (exp / "model.pt").exists() and not (exp / "train_summary.json").exists()


def test_an_empty_training_set_is_an_error_naming_the_dir_and_the_filters(toy, tmp_path):
    """No utterance left (no token has phones, or none fits in max_hours): the training loop looked for a first
    batch forever."""
    data = tmp_path / "train"
    shutil.copytree(toy / "train", data)
    lines = (data / "token").read_text().splitlines()
    (data / "token").write_text("".join(line.split()[0] + " , ▁ .\n" for line in lines))  # no phones at all
    cfg = merge(DEFAULT_CONFIG, TINY)
    with pytest.raises(ValueError, match=f"no training utterances in {data}: 0 of its 12 have phones .*tokens.drop_stress"):
        train(cfg, str(data), str(data / "token"), str(tmp_path / "exp"))
    with pytest.raises(ValueError, match=r"12 of its 12 have phones .*none of which fits in train.max_hours=1e-05"):
        train(merge(cfg, {"train": {"max_hours": 1e-5}}), str(toy / "train"), str(toy / "train" / "token"),
              str(tmp_path / "exp_hours"))


def test_the_lr_decay_ends_by_the_time_budget_on_a_slow_machine(toy, tmp_path, monkeypatch):
    """Decayed over steps only, a judge the time cap stopped early kept training at nearly its peak LR."""
    import shared.phone_recognizer.train as T

    class SlowClock:  # one second per reading: a step takes a second
        now = 0.0

        def time(self):
            self.now += 1.0
            return self.now

    monkeypatch.setattr(T, "time", SlowClock())
    cfg = merge(DEFAULT_CONFIG, merge(TINY, {"train": {"max_steps": 1000, "max_time_s": 12.0}}))
    summary = train(cfg, str(toy / "train"), str(toy / "train" / "token"), str(tmp_path / "exp"))
    assert summary["steps"] < 20  # stopped by the time budget
    lr = torch.load(tmp_path / "exp" / "checkpoints" / "last.pt", weights_only=False)["optimizer"]["param_groups"][0]["lr"]
    assert lr < 0.15 * cfg["train"]["lr"]  # (over steps alone: 0.99 of it)


def test_utterances_ctc_cannot_align_are_counted_and_reported(toy, tmp_path, capsys):
    """zero_infinity makes their loss 0 without a word: now each log line's interval reports how many."""
    data = tmp_path / "train"
    shutil.copytree(toy / "train", data)
    lines = (data / "token").read_text().splitlines()
    (data / "token").write_text("".join(f"{u} {' '.join(t.split() * 6)}\n" for u, t in (x.split(" ", 1) for x in lines)))
    cfg = merge(DEFAULT_CONFIG, merge(TINY, {"train": {"max_steps": 2, "log_every": 1}}))
    summary = train(cfg, str(data), str(data / "token"), str(tmp_path / "exp"))
    assert summary["ctc_unalignable"] > 0
    assert "CTC cannot align them" in capsys.readouterr().out
    assert train(merge(cfg, {"train": {"seed": 1}}), str(toy / "train"), str(toy / "train" / "token"),
                 str(tmp_path / "fine"))["ctc_unalignable"] == 0
    assert "CTC cannot align" not in capsys.readouterr().out


def test_max_hours_trains_on_a_fixed_random_subset(toy):
    from shared.datadir import DataDir, compute_utt2dur
    from shared.phone_recognizer.data import subset_hours

    data = DataDir.load(toy / "train")
    dur = compute_utt2dur(data)
    hours = sum(sorted(dur.values())[:5]) / 3600  # room for 5 of the 12 utterances
    picked = subset_hours(toy / "train", data.utts, hours, seed=0)
    left = hours * 3600 - sum(dur[u] for u in picked)
    assert 0 < len(picked) < len(data.utts) and left >= -1e-9
    assert all(dur[u] > left for u in data.utts if u not in picked)  # nothing else would have fitted
    assert picked == sorted(picked) and picked == subset_hours(toy / "train", data.utts, hours, seed=0)
    assert subset_hours(toy / "train", data.utts, hours, seed=1) != picked
    cfg = merge(DEFAULT_CONFIG, merge(TINY, {"train": {"max_hours": hours, "max_steps": 2, "device": "auto"}}))
    summary = train(cfg, str(toy / "train"), str(toy / "train" / "token"), str(toy / "exp_hours"))
    assert summary["num_train_utts"] == len(picked) and summary["steps"] == 2


def test_judges_pool_several_recognisers_per_utterance(toy, tmp_path, capsys):
    from shared.phone_recognizer import judges as J

    cfg = merge(DEFAULT_CONFIG, {**TINY, "train": {**TINY["train"], "max_steps": 2}})
    exps = [tmp_path / f"asr{seed}" for seed in (0, 1)]
    for seed, exp in zip((0, 1), exps):
        train(merge(cfg, {"train": {"seed": seed}}), str(toy / "train"), str(toy / "train" / "token"), str(exp))
    # "generated" audio: three dev utterances, each with another utterance's audio
    real = {k: v for k, v in (line.split(" ", 1) for line in (toy / "dev" / "wav.scp").read_text().splitlines())}
    utts = sorted(real)[:3]
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "wav.scp").write_text("".join(f"{u} {real[utts[(i + 1) % 3]]}\n" for i, u in enumerate(utts)))
    out = tmp_path / "judges.json"
    assert J.main(["--judges", *map(str, exps), "--ref-dir", str(toy / "dev"), "--gen-dir", str(gen),
                   "--ref-token-file", str(toy / "dev" / "token"), "--out", str(out)]) == 0
    res = json.loads(out.read_text())["systems"][str(gen)]
    assert res["num_utts"] == 3
    sums = {"errors": 0, "real_errors": 0}
    for exp in exps:  # each judge's row is what score_dir counts on the same utterances
        row = res["per_judge"][str(exp)]
        assert row["errors"] == score_dir(exp, gen, toy / "dev" / "token")["errors"]
        assert row["real_errors"] == score_dir(exp, toy / "dev", toy / "dev" / "token", utts=utts)["errors"]
        sums = {k: sums[k] + row[k] for k in sums}
    pooled = res["pooled"]
    assert {k: pooled[k] for k in sums} == sums and pooled["ratio"] == pytest.approx(sums["errors"] / sums["real_errors"])
    # the pooled row also has the interval over judges and sentences (where the bootstrap applies); a judge's own not
    assert ("ci_judges" in pooled) == (pooled["ci_method"] == "bootstrap")
    assert not any("ci_judges" in row for row in res["per_judge"].values())
    printed = capsys.readouterr().out
    assert "pooled over 2 judges (3 utterances)" in printed
    assert ("over judges and sentences" in printed) == ("ci_judges" in pooled)
    # generated audio of an utterance the real dir lacks is an error naming it; a judge given twice too
    (gen / "wav.scp").write_text(f"nosuchutt {real[utts[0]]}\n")
    with pytest.raises(ValueError, match="nosuchutt"):
        J.score_judges(exps, toy / "dev", [gen], toy / "dev" / "token")
    (gen / "wav.scp").write_text("")
    with pytest.raises(ValueError, match=f"no utterances in {gen}"):
        J.score_judges(exps, toy / "dev", [gen], toy / "dev" / "token")
    with pytest.raises(SystemExit):
        J.main(["--judges", str(exps[0]), str(exps[0]), "--ref-dir", str(toy / "dev"), "--gen-dir", str(gen),
                "--ref-token-file", str(toy / "dev" / "token")])
    assert f"--judges {exps[0]} and {exps[0]} hold the same weights" in capsys.readouterr().err
    copy = tmp_path / "copy_of_judge0"  # another dir, the same model: refused too, naming both
    shutil.copytree(exps[0], copy)
    with pytest.raises(SystemExit):
        J.main(["--judges", str(exps[0]), str(exps[1]), str(copy), "--ref-dir", str(toy / "dev"), "--gen-dir", str(gen),
                "--ref-token-file", str(toy / "dev" / "token")])
    err = capsys.readouterr().err
    assert str(exps[0]) in err and str(copy) in err and "same weights" in err
    (gen / "wav.scp").write_text(f"{utts[0]} {real[utts[1]]}\n")
    with pytest.raises(SystemExit):  # the same generated dir twice (spelt two ways) is refused, naming it
        J.main(["--judges", *map(str, exps), "--ref-dir", str(toy / "dev"), "--gen-dir", str(gen),
                "--gen-dir", str(gen) + "/", "--ref-token-file", str(toy / "dev" / "token")])
    err = capsys.readouterr().err
    assert f"--gen-dir {gen} and {gen}/ are the same dir" in err


def test_ratio_row_sums_judges_before_dividing():
    from shared.phone_recognizer.judges import ratio_row

    gen = [{"a": 2, "b": 0}, {"a": 4, "b": 2}]
    real = [{"a": 1, "b": 1}, {"a": 0, "b": 0}]
    row = ratio_row(gen, real, ["a", "b"])
    assert (row["errors"], row["real_errors"], row["ratio"]) == (8, 2, 4.0)  # not the mean of 1x and inf
    lo, hi = row["ci"]
    assert row["ci_method"] == "exact"  # 2 real errors: too few to bootstrap
    # Clopper-Pearson for 8 of the 10 errors being the generated audio's (scipy's binomial test, not the beta
    # quantiles shared.compare uses), p / (1 - p) at its ends
    from scipy.stats import binomtest
    p_ci = binomtest(8, 10).proportion_ci(confidence_level=0.95, method="exact")
    assert (lo, hi) == pytest.approx((p_ci.low / (1 - p_ci.low), p_ci.high / (1 - p_ci.high)), rel=1e-6)
    from shared.phone_recognizer.judges import _fmt

    assert _fmt(row).endswith("(exact)")


def _weights(exp):
    return torch.load(exp / "model.pt", weights_only=False)["state_dict"]


def _killed_after_checkpoint(monkeypatch, step: int, *train_args) -> None:
    """``train(*train_args)`` killed (KeyboardInterrupt) right after it saved its checkpoint at ``step``."""
    import shared.phone_recognizer.train as T

    save = T._Loop.save

    def save_then_stop(self):
        save(self)
        if self.state["step"] == step:
            raise KeyboardInterrupt

    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(T._Loop, "save", save_then_stop)
        train(*train_args)


def test_resume_with_augmentation_equals_an_uninterrupted_run(toy, tmp_path, monkeypatch):
    cfg = merge(DEFAULT_CONFIG, merge(TINY, {"train": {"max_steps": 6}}))  # time warp and SpecAugment on
    assert cfg["train"]["time_warp"][1] > cfg["train"]["time_warp"][0] and cfg["train"]["spec_augment"]["time_masks"]
    args = (str(toy / "train"), str(toy / "train" / "token"))
    train(cfg, *args, str(tmp_path / "whole"))
    whole = _weights(tmp_path / "whole")
    _killed_after_checkpoint(monkeypatch, 4, cfg, *args, str(tmp_path / "resumed"))
    assert train(cfg, *args, str(tmp_path / "resumed"))["steps"] == 6
    resumed = _weights(tmp_path / "resumed")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_a_finished_recogniser_trained_on_other_transcripts_is_trained_again(toy, tmp_path, capsys):
    """The recipe keeps exp/asr over --overwrite (every system is judged by it); one trained on another training set
    (held-out speakers moved out of it, other tokens) would judge with what it learnt there, so it is retrained."""
    import shutil

    cfg = merge(DEFAULT_CONFIG, TINY)
    data = tmp_path / "train"
    shutil.copytree(toy / "train", data)
    args = (str(data), str(data / "token"), str(tmp_path / "exp"))
    first = train(cfg, *args)
    assert train(cfg, *args) == first and "nothing to do" in capsys.readouterr().out
    lines = (data / "token").read_text().splitlines()
    utt, *tokens = lines[-1].split()
    (data / "token").write_text("\n".join(lines[:-1] + [" ".join([utt, *tokens[::-1]])]) + "\n")  # another transcript
    again = train(cfg, *args)
    assert "trained on other transcripts" in capsys.readouterr().out
    assert again["token_file_sha256"] != first["token_file_sha256"] and again["steps"] == first["steps"]


def test_a_resumed_run_logs_each_step_once(toy, tmp_path, monkeypatch):
    """Killed after logging step 3 but before the step-4 checkpoint, the run resumes from step 2: its log keeps
    one row per step, with the losses of an uninterrupted run."""
    import shared.phone_recognizer.train as T

    cfg = merge(DEFAULT_CONFIG, merge(TINY, {"train": {"max_steps": 6, "log_every": 1, "ckpt_every": 2}}))
    args = (str(toy / "train"), str(toy / "train" / "token"))
    train(cfg, *args, str(tmp_path / "whole"))
    step = T._Loop.step

    def killed_in_step_4(self, *a):
        if self.state["step"] == 3:
            raise KeyboardInterrupt
        return step(self, *a)

    monkeypatch.setattr(T._Loop, "step", killed_in_step_4)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, *args, str(tmp_path / "resumed"))
    monkeypatch.setattr(T._Loop, "step", step)
    train(cfg, *args, str(tmp_path / "resumed"))

    def rows(exp):  # step and loss columns
        return [r.split(",")[::2][:2] for r in (exp / "train_log.csv").read_text().splitlines()]

    assert [r[0] for r in rows(tmp_path / "resumed")] == ["step", "1", "2", "3", "4", "5", "6"]
    assert rows(tmp_path / "resumed") == rows(tmp_path / "whole")


def test_a_run_resumed_at_its_limit_trains_no_further(toy, tmp_path):
    cfg = merge(DEFAULT_CONFIG, merge(TINY, {"train": {"max_steps": 2}}))
    args = (str(toy / "train"), str(toy / "train" / "token"), str(tmp_path / "exp"))
    assert train(cfg, *args)["steps"] == 2
    before = _weights(tmp_path / "exp")
    (tmp_path / "exp" / "train_summary.json").unlink()  # rerun: resumes from the checkpoint at step 2
    assert train(cfg, *args)["steps"] == 2
    assert all(torch.equal(before[k], v) for k, v in _weights(tmp_path / "exp").items())
    # past max_time_s: no step either (the check comes before each step, not after)
    assert train(merge(cfg, {"train": {"max_time_s": 0.0}}), *args[:2], str(tmp_path / "timed"))["steps"] == 0


def test_dev_per_after_training_is_what_score_dir_reads(toy, tmp_path):
    from shared.phone_recognizer.score import decode_features
    from shared.phone_recognizer.train import compute_features
    from shared.phone_recognizer.data import load_wavs, read_wav_scp

    exp = tmp_path / "exp"
    train(merge(DEFAULT_CONFIG, TINY), str(toy / "train"), str(toy / "train" / "token"), str(exp), str(toy / "dev"))
    rec = LoadedRecognizer(exp)
    utts = sorted(read_wav_scp(toy / "dev"))
    wavs = load_wavs(toy / "dev", utts, rec.sample_rate)
    # with a long utterance beside them, batched decoding would pad the others by seconds
    for batch in ([torch.cat(wavs)] + wavs, [torch.cat(wavs)] + [w[: w.numel() // 2] for w in wavs]):
        assert decode_features(rec.model, compute_features(rec.model, batch), rec.vocab) == rec.transcribe(batch)
    dev = json.loads((exp / "dev_per.json").read_text())
    scored = score_dir(exp, toy / "dev", toy / "dev" / "token")
    assert (dev["errors"], dev["ref_len"]) == (scored["errors"], scored["ref_len"])


def test_a_data_dir_with_segments_is_read_by_utterance(toy, tmp_path):
    import soundfile as sf

    from shared.phone_recognizer.data import load_wavs, utterance_ids

    utts = sorted(read_kv(toy / "dev" / "wav.scp"))
    wavs = load_wavs(toy / "dev", utts, 16000)
    seg = tmp_path / "seg"
    seg.mkdir()
    sf.write(str(seg / "rec.wav"), torch.cat(wavs).numpy(), 16000)  # one recording holding every utterance
    write_kv(seg / "wav.scp", {"rec": str(seg / "rec.wav")})
    starts = np.cumsum([0] + [w.numel() for w in wavs]) / 16000
    write_kv(seg / "segments", {u: f"rec {starts[i]:.4f} {starts[i + 1]:.4f}" for i, u in enumerate(utts)})
    for name in ("utt2spk", "text", "token"):
        shutil.copy(toy / "dev" / name, seg / name)
    assert utterance_ids(seg) == utts and utterance_ids(toy / "dev") == utts
    cfg = merge(DEFAULT_CONFIG, merge(TINY, {"train": {"max_steps": 2}}))
    summary = train(cfg, str(seg), str(seg / "token"), str(tmp_path / "exp"))
    assert summary["num_train_utts"] == len(utts)
    res = score_dir(tmp_path / "exp", seg, seg / "token")
    assert res["num_utts"] == len(utts) and sorted(res["utts"]) == utts


def test_a_checkpoint_is_resumed_only_on_the_data_it_was_trained_on(toy, tmp_path, monkeypatch, capsys):
    """last.pt kept only the config: killed and rerun with another --token-file or --data-dir, the run resumed the old
    weights, optimiser and tokens.txt, went on training them on the new data (a new phone: UnknownTokenError) and
    summarised the judge as trained on the new data alone. The checkpoint now keeps what it trains on."""
    import shared.phone_recognizer.train as T
    from shared.io import file_sha256

    cfg = merge(DEFAULT_CONFIG, TINY)
    exp = tmp_path / "exp"
    other = tmp_path / "other"  # another data dir (the same utterances) and its transcripts, one with a new phone
    shutil.copytree(toy / "train", other)
    lines = (other / "token").read_text().splitlines()
    (other / "token").write_text("\n".join(lines[:-1] + [lines[-1] + " ʒ"]) + "\n")
    _killed_after_checkpoint(monkeypatch, 2, cfg, str(toy / "train"), str(toy / "train" / "token"), str(exp))
    with pytest.raises(ValueError, match=r"holds a checkpoint trained on other data \(token_file_sha256: \w+ there, "
                                         r"\w+ now\): resume it with the --data-dir and --token-file.*--overwrite"):
        train(cfg, str(toy / "train"), str(other / "token"), str(exp))
    with pytest.raises(ValueError, match=re.escape(f"other data (data_dir: {toy / 'train'} there, {other} now)")):
        train(cfg, str(other), str(toy / "train" / "token"), str(exp))
    # a checkpoint from before it kept its data is resumed, unchecked, with a warning
    ckpt = torch.load(exp / "checkpoints" / "last.pt", weights_only=False)
    del ckpt["inputs"]
    torch.save(ckpt, exp / "checkpoints" / "last.pt")
    capsys.readouterr()
    assert train(cfg, str(toy / "train"), str(toy / "train" / "token"), str(exp))["steps"] == 4
    out, err = capsys.readouterr()
    assert "resumed from" in out and "does not say which data dir and token file" in err
    # started over on the other data: its own phones, and its own hash in the summary
    summary = train(cfg, str(other), str(other / "token"), str(exp), overwrite=True)
    assert summary["steps"] == 4 and summary["token_file_sha256"] == file_sha256(other / "token")
    assert "ʒ" in (exp / "tokens.txt").read_text()

    # killed before its first checkpoint: tokens.txt is written, no weights are: rerun on the other data, it starts
    # from that data's phones (before, the old tokens.txt: UnknownTokenError on the new phone)
    with monkeypatch.context() as m, pytest.raises(KeyboardInterrupt):
        m.setattr(T._Loop, "save", lambda self: (_ for _ in ()).throw(KeyboardInterrupt()))
        train(cfg, str(toy / "train"), str(toy / "train" / "token"), str(tmp_path / "early"))
    assert not (tmp_path / "early" / "checkpoints" / "last.pt").exists()
    assert train(cfg, str(other), str(other / "token"), str(tmp_path / "early"))["steps"] == 4
    assert "ʒ" in (tmp_path / "early" / "tokens.txt").read_text()


def test_score_dir_holds_one_waveform_at_a_time(toy, tmp_path, monkeypatch):
    """A bulk corpus is decoded streamed: each waveform is read only after the one before it was decoded."""
    import shared.phone_recognizer.score as score

    cfg = merge(DEFAULT_CONFIG, merge(TINY, {"train": {"max_steps": 1}}))
    train(cfg, str(toy / "train"), str(toy / "train" / "token"), str(tmp_path / "exp"))
    decoded, read_ahead = [], []
    real_iter, real_decode = score.iter_wavs, score._decode

    def counting_iter(*args, **kwargs):
        for i, w in enumerate(real_iter(*args, **kwargs)):
            read_ahead.append(i - len(decoded))  # waveforms read but not yet decoded, this one included
            yield w

    monkeypatch.setattr(score, "iter_wavs", counting_iter)
    monkeypatch.setattr(score, "_decode", lambda *a: decoded.append(1) or real_decode(*a))
    res = score_dir(tmp_path / "exp", toy / "dev", toy / "dev" / "token")
    assert res["num_utts"] == len(read_ahead) > 1 and set(read_ahead) == {0}


def test_a_misspelt_key_in_the_recognisers_config_file_is_refused(tmp_path, capsys):
    """Its config file was merged into the defaults unchecked: ``train.max_step`` or a section ``modle:`` trained with
    the defaults, without a word (the stages' configs and every command-line override are checked)."""
    from pathlib import Path

    from shared.config import check_keys_against, load_config
    from shared.phone_recognizer.train import DEFAULT_CONFIG, main

    for text, key in (("train: {max_step: 2}\n", "train.max_step"), ("modle: {hidden: 8}\n", "modle"),
                      ("train: {spec_augment: {freq_mask: 1}}\n", "train.spec_augment.freq_mask")):
        (tmp_path / "asr.yaml").write_text(text)
        with pytest.raises(SystemExit):
            main(["--data-dir", str(tmp_path), "--exp-dir", str(tmp_path / "exp"), "--config", str(tmp_path / "asr.yaml")])
        assert f"unknown key '{key}'" in capsys.readouterr().err
        assert not (tmp_path / "exp").exists()
    for shipped in sorted(Path(__file__).parents[1].glob("egs/*/tts1/conf/asr*.yaml")):  # every recipe's passes
        check_keys_against(load_config(shipped), DEFAULT_CONFIG, str(shipped))
