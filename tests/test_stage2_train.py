"""Few-step training on a tiny synthetic corpus: smoke run, exact resume, reflow pairs + fine-tuning,
synthesis (CLI and API), likelihood CLI, external durations. About a minute on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from stage2_flow import likelihood, reflow, synthesize, train
from stage2_flow.data import check_latent_codec
from stage2_flow.fake import make_fake_corpus

CONF = Path(__file__).resolve().parents[1] / "egs" / "espeak_mini" / "tts1" / "conf" / "stage2_smoke.yaml"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("s2")
    make_fake_corpus(root, n_train=24, n_dev=4, n_test=3)
    return root


def train_args(root: Path, exp: str, *over: str, dev: bool = True) -> list[str]:
    args = ["--config", str(CONF), "--stage1-exp-dir", str(root / "exp/stage1/fake"), "--latents", str(root / "dump/fake/train"),
            "--data-dir", str(root / "data/train"), "--tokens", str(root / "exp/tokens.txt"), "--exp-dir", str(root / exp)]
    if dev:
        args += ["--dev-latents", str(root / "dump/fake/dev"), "--dev-dir", str(root / "data/dev")]
    return args + ["trainer.max_steps=6", "trainer.val_check_interval=6", "trainer.checkpoint_every_n_steps=3", *over]


@pytest.fixture(scope="module")
def tone_test(corpus, tmp_path_factory) -> Path:
    """The test set with audio: a tone per utterance, 110 Hz for spk0, 220 Hz for spk1, 0.7-0.9 s long (references not
    cut to a 1-s longest training prompt, and of different lengths: padded to each other in a batch)."""
    import soundfile as sf
    from conftest import harmonic_tone

    from shared.datadir import DataDir

    root = tmp_path_factory.mktemp("tone_test")
    test = DataDir.load(corpus / "data/test", validate=False)  # its wav.scp names no files
    for i, u in enumerate(test.utts):
        test.wav_scp[u] = str(root / f"{u}.wav")
        sf.write(test.wav_scp[u], harmonic_tone(0.7 + 0.1 * i, f0=110.0 if test.utt2spk[u] == "spk0" else 220.0), 16000)
    test.save(root / "data")
    return root / "data"


@pytest.fixture(scope="module")
def trained(corpus):
    assert train.main(train_args(corpus, "exp/stage2/smoke")) == 0
    return corpus / "exp/stage2/smoke"


def test_smoke_training_writes_a_self_describing_exp_dir(trained, capsys):
    for name in ("model.pt", "config.yaml", "tokens.txt", "frontend.yaml", "latent_stats.json", "stage1.json", "speakers.txt",
                 "speaking_rate.json", "params.json", "train_summary.json", "checkpoints/last.ckpt", "logs/metrics.csv"):
        assert (trained / name).is_file(), name
    assert list((trained / "images").glob("*.png"))
    assert (trained / "speakers.txt").read_text().split() == ["spk0", "spk1"]
    # a finished run is a no-op: nothing trained, nothing exported again
    mtime = (trained / "model.pt").stat().st_mtime_ns
    assert train.main(train_args(trained.parents[2], "exp/stage2/smoke")) == 0
    assert "training already finished" in capsys.readouterr().out and (trained / "model.pt").stat().st_mtime_ns == mtime


def test_overwrite_retrains_from_step_zero(trained, capsys):
    """--overwrite trains again: it once kept the finished run's checkpoint (0 steps) and, if interrupted, left its
    model.pt and summary for the next rerun to take as finished."""
    import json
    import shutil

    root = trained.parents[2]
    shutil.copytree(trained, root / "exp/stage2/again")
    assert train.main(["--overwrite", *train_args(root, "exp/stage2/again", "trainer.max_steps=2")]) == 0
    assert "removed model.pt, train_summary.json, checkpoints, logs/metrics.csv, speaking_rate.json" in capsys.readouterr().out
    assert json.loads((root / "exp/stage2/again/train_summary.json").read_text())["steps_this_run"] == 2
    assert (root / "exp/stage2/again/speaking_rate.json").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit):  # it would delete the model it is to start from
        train.main(["--overwrite", "--config", str(CONF), "--init-from", str(root / "exp/stage2/again"),
                    "--latents", str(root / "dump/fake/train"), "--data-dir", str(root / "data/train"),
                    "--exp-dir", str(root / "exp/stage2/again")])
    assert "--overwrite would delete the model --init-from" in capsys.readouterr().err
    assert (root / "exp/stage2/again/model.pt").is_file()


def test_a_time_capped_run_is_finished_until_its_budget_grows(tmp_path):
    """Every recipe training stops at its wall-clock cap: a rerun with the same cap is done (not another max_time of
    training); a larger cap, or more steps than an uncapped run made, continues it."""
    from shared.io import write_json

    cfg = {"trainer": {"max_steps": 1000, "max_time": "00:00:05:30"}}
    assert not train.finished(tmp_path, cfg)  # nothing exported
    (tmp_path / "model.pt").write_bytes(b"")
    assert train.finished(tmp_path, cfg)  # exported, no summary: an older run's, taken as done
    write_json(tmp_path / "train_summary.json", {"steps": 873, "stopped_by_time": True, "max_time": "00:00:05:30"})
    assert train.finished(tmp_path, cfg)
    assert not train.finished(tmp_path, {"trainer": {"max_steps": 1000, "max_time": "00:00:11:00"}})
    write_json(tmp_path / "train_summary.json", {"steps": 6, "stopped_by_time": False, "max_time": None})
    assert train.finished(tmp_path, {"trainer": {"max_steps": 6}}) and not train.finished(tmp_path, {"trainer": {"max_steps": 8}})
    # a time-only run (max_steps -1; its summary once said stopped_by_time false): a larger cap continues it too
    for stopped in (True, False):
        write_json(tmp_path / "train_summary.json", {"steps": 100, "stopped_by_time": stopped, "max_time": "00:00:05:00"})
        assert train.finished(tmp_path, {"trainer": {"max_steps": -1, "max_time": "00:00:05:00"}})
        assert not train.finished(tmp_path, {"trainer": {"max_steps": -1, "max_time": "00:00:10:00"}})
    write_json(tmp_path / "train_summary.json", {"steps": 873, "stopped_by_time": True, "max_time": "00:00:05:30"})
    assert train.finished(tmp_path, {"trainer": {"max_steps": 1000, "max_time": {"minutes": 4}}})  # a shorter cap: done


def test_a_time_only_run_says_its_time_stopped_it_and_continues_with_more(corpus, capsys):
    """``stopped_by_time`` was ``global_step < max_steps``, always false without a step cap (max_steps -1), so a
    time-only run was finished for good: a larger trainer.max_time never continued it."""
    import json

    def run(max_time: str) -> dict:
        args = train_args(corpus, "exp/stage2/time_only", "trainer.max_steps=-1", f"+trainer.max_time={max_time}",
                          "train.lr_total_steps=50", dev=False)
        assert train.main(args) == 0
        return json.loads((corpus / "exp/stage2/time_only/train_summary.json").read_text())

    first = run("00:00:00:01")
    assert first["stopped_by_time"] and first["steps"] > 0
    # the state model.pt was exported from, not the last periodic save before it (checkpoint_every_n_steps 3)
    last = torch.load(corpus / "exp/stage2/time_only/checkpoints/last.ckpt", weights_only=False)
    assert last["global_step"] == first["steps"]
    capsys.readouterr()
    assert run("00:00:00:01") == first and "training already finished" in capsys.readouterr().out
    more = run("00:00:00:02")
    assert "resuming from" in capsys.readouterr().out
    assert more["stopped_by_time"] and more["steps"] > first["steps"]
    assert more["steps_this_run"] == more["steps"] - first["steps"]  # no step of the first run trained again


def test_a_finished_run_is_continued_from_its_last_step(corpus, capsys):
    """last.ckpt of a run of 5 steps checkpointing every 3 was step 3's: continued to 6 steps, it trained steps 3 and 4
    again. The run's last step is now saved too (shared.training.StepCheckpoint)."""
    import json

    args = train_args(corpus, "exp/stage2/last_step", "trainer.checkpoint_every_n_steps=3", dev=False)
    assert train.main(args + ["trainer.max_steps=5"]) == 0
    assert torch.load(corpus / "exp/stage2/last_step/checkpoints/last.ckpt", weights_only=False)["global_step"] == 5
    assert train.main(args + ["trainer.max_steps=6"]) == 0
    assert json.loads((corpus / "exp/stage2/last_step/train_summary.json").read_text())["steps_this_run"] == 1


def test_a_finished_run_is_refused_another_config_or_inputs(trained, tmp_path, capsys):
    """A finished run rerun with another config or re-encoded stage-one latents said "training already finished" and
    kept the model of the old ones: it is refused as an unfinished run is, naming what changed, its dir as it was."""
    import json
    import shutil

    root = trained.parents[2]
    exp = root / "exp/stage2/finished_changed"
    shutil.copytree(trained, exp)
    model, stats = (exp / "model.pt").read_bytes(), (exp / "latent_stats.json").read_bytes()
    args = train_args(root, "exp/stage2/finished_changed")
    with pytest.raises(SystemExit, match=r"1 key\(s\): train.lr: 0.003 -> 0.5"):
        train.main(args + ["train.lr=0.5"])
    stage1 = tmp_path / "stage1"  # stage one encoded again: other latent statistics
    shutil.copytree(root / "exp/stage1/fake", stage1)
    s = json.loads((stage1 / "latent_stats.json").read_text())
    (stage1 / "latent_stats.json").write_text(json.dumps({**s, "mean": [m + 1.0 for m in s["mean"]]}))
    args[args.index("--stage1-exp-dir") + 1] = str(stage1)
    with pytest.raises(SystemExit, match="holds weights trained with another latent_stats.json"):
        train.main(args)
    assert (exp / "model.pt").read_bytes() == model and (exp / "latent_stats.json").read_bytes() == stats
    assert "training already finished" not in capsys.readouterr().out
    # the same mean and std in another file (re-encoded at another path, or with the provenance later versions add)
    # are the same normalisation: still finished
    (stage1 / "latent_stats.json").write_text(json.dumps({**s, "dump": str(tmp_path / "elsewhere")}, indent=1))
    assert train.main(args) == 0 and (exp / "model.pt").read_bytes() == model
    assert "training already finished" in capsys.readouterr().out


def test_continuing_a_finished_run_warns_of_the_jump_in_lr(corpus, capsys):
    """Raising trainer.max_steps of a run whose cosine reached its floor (x0.05) lengthens the cosine: the LR jumps
    back up with no warm-up. Not changed, but said, with the setting that keeps the floor (and then no warning)."""
    args = train_args(corpus, "exp/stage2/lr_jump", "train.warmup_steps=1", dev=False)
    assert train.main(args + ["trainer.max_steps=3"]) == 0
    capsys.readouterr()
    assert train.main(args + ["trainer.max_steps=5"]) == 0
    err = capsys.readouterr().err
    assert "warning: resuming at step 3 at 0.53 x train.lr where the checkpoint's run left off at 0.05 x" in err
    assert "set train.lr_total_steps=3" in err
    assert train.main(args + ["trainer.max_steps=7", "train.lr_total_steps=5"]) == 0
    assert "warning: resuming" not in capsys.readouterr().err


def test_resume_is_exact(corpus, capsys):
    import json

    over = ("train.lr_total_steps=4", "model.text_encoder.dropout=0.2", "trainer.checkpoint_every_n_steps=2")
    straight = train_args(corpus, "exp/stage2/straight", *over, dev=False)
    assert train.main(straight + ["trainer.max_steps=4"]) == 0
    split = train_args(corpus, "exp/stage2/split", *over, dev=False)
    assert train.main(split + ["trainer.max_steps=2"]) == 0
    capsys.readouterr()
    assert train.main(split + ["trainer.max_steps=4"]) == 0  # resumes from checkpoints/last.ckpt
    # resumed, not started again (training is deterministic: a restart would end with the same weights)
    assert f"resuming from {corpus / 'exp/stage2/split/checkpoints/last.ckpt'}" in capsys.readouterr().out
    assert json.loads((corpus / "exp/stage2/split/train_summary.json").read_text())["steps_this_run"] == 2
    a = torch.load(corpus / "exp/stage2/straight/checkpoints/last.ckpt", weights_only=False)
    b = torch.load(corpus / "exp/stage2/split/checkpoints/last.ckpt", weights_only=False)
    assert a["global_step"] == b["global_step"] == 4
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k


def test_resume_refuses_another_config_and_keeps_the_saved_one(corpus):
    """A checkpoint is resumed only under the config it was trained with, apart from the budget, placement, logging and
    validation: another learning rate or model would go on training it as a run its config.yaml does not describe."""
    args = train_args(corpus, "exp/stage2/changed", "trainer.checkpoint_every_n_steps=2", dev=False)
    assert train.main(args + ["trainer.max_steps=2"]) == 0
    (corpus / "exp/stage2/changed/model.pt").unlink()  # as if killed after its step-2 checkpoint
    saved = (corpus / "exp/stage2/changed/config.yaml").read_text()
    with pytest.raises(SystemExit, match=r"2 key\(s\): model.text_encoder.dropout: .*; train.lr: 0.003 -> 0.01"):
        train.main(args + ["trainer.max_steps=4", "train.lr=0.01", "model.text_encoder.dropout=0.3"])
    assert (corpus / "exp/stage2/changed/config.yaml").read_text() == saved
    assert train.main(args + ["trainer.max_steps=3"]) == 0  # more steps: resumed


def test_resume_after_a_hard_kill_is_exact(corpus, capsys):
    """A run killed as step 3 begins (``os._exit``: no clean shutdown, as ``kill -9``) and rerun ends with exactly the
    weights of the run that was never interrupted, and its log holds every step once, as that run's does."""
    import csv
    import json
    import os
    import subprocess
    import sys

    over = ("train.lr_total_steps=5", "model.text_encoder.dropout=0.2", "trainer.checkpoint_every_n_steps=1", "trainer.max_steps=5",
            "trainer.log_every_n_steps=1")
    assert train.main(train_args(corpus, "exp/stage2/unbroken", *over, dev=False)) == 0
    cut = train_args(corpus, "exp/stage2/killed", *over, dev=False)
    for kill_at in ("3", "4"):  # killed twice: the second time as the resumed run's first step ends, before any flush
        env = {**os.environ, "FLOWTTS_KILL_AT_STEP": kill_at}
        p = subprocess.run([sys.executable, "-m", "stage2_flow.train", *cut], cwd=Path(__file__).resolve().parents[1],
                           env=env, capture_output=True, text=True, timeout=600)
        assert p.returncode == 3, p.stdout[-2000:] + p.stderr[-2000:]
    assert not (corpus / "exp/stage2/killed/model.pt").exists() and (corpus / "exp/stage2/killed/checkpoints/last.ckpt").is_file()
    capsys.readouterr()
    assert train.main(cut) == 0
    # resumed from step 4's checkpoint, not trained again from step 0 (which would end with the same weights)
    assert "resuming from" in capsys.readouterr().out
    assert json.loads((corpus / "exp/stage2/killed/train_summary.json").read_text())["steps_this_run"] == 1
    a = torch.load(corpus / "exp/stage2/unbroken/model.pt", weights_only=True)
    b = torch.load(corpus / "exp/stage2/killed/model.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def losses(name):  # Lightning's CSV writer alone would have deleted the log up to the checkpoint
        with open(corpus / f"exp/stage2/{name}/logs/metrics.csv", newline="") as f:
            return [(r["step"], r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]

    assert [s for s, _ in losses("killed")] == ["0", "1", "2", "3", "4"]
    assert losses("killed") == losses("unbroken")


def test_train_in_bf16_mixed_precision_with_clipping(corpus, monkeypatch):
    """`precision: auto` on a CPU with native bf16: autocast + fused AdamW + trainer.gradient_clip_val together. The
    losses are computed under bf16 autocast, and the gradients the optimiser steps with are clipped to 0.5."""
    from stage2_flow import experiment
    from stage2_flow.model import FlowTTS

    autocast, clipped = [], []
    model_losses, clip_grad_norm = FlowTTS.losses, experiment.clip_grad_norm

    def losses(self, *args, **kwargs):
        autocast.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
        return model_losses(self, *args, **kwargs)

    def clip(module, optimizer, max_norm):
        norm = clip_grad_norm(module, optimizer, max_norm)
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        clipped.append((max_norm, float(norm), float(torch.linalg.vector_norm(torch.stack([x.norm() for x in grads])))))
        return norm

    monkeypatch.setattr(FlowTTS, "losses", losses)
    monkeypatch.setattr(experiment, "clip_grad_norm", clip)
    exp = corpus / "exp/stage2/bf16"
    assert train.main(train_args(corpus, "exp/stage2/bf16", "+trainer.precision=bf16-mixed", "trainer.max_steps=2",
                                 "trainer.gradient_clip_val=0.5", dev=False)) == 0
    assert torch.load(exp / "checkpoints/last.ckpt", weights_only=False)["global_step"] == 2
    assert autocast == [True, True] and len(clipped) == 2
    for max_norm, before, after in clipped:  # the loss's gradient norm is above 0.5 at the start
        assert max_norm == 0.5 and before > 0.5 and after == pytest.approx(0.5, rel=1e-3)


# alignfree mode (conf/stage2_alignfree.yaml) in the stretch layout: it once built the prior mean's projection and the
# filler, which it never used, and plain DDP stopped at their missing gradients
ALIGNFREE = ("model.mode=alignfree", "+model.alignfree={layout: stretch, text_layers: 1, text_channels: 8}",
             "model.flow.prior=noise", "model.flow.mu_cond=false", "loss={flow: 1.0}")


@pytest.mark.parametrize("mode", ["aligned", "alignfree"])
def test_ddp_two_cpu_processes_gloo(corpus, mode):
    """Two processes (gloo), as `run.sh --ngpu 2` trains on two GPUs (`+trainer.strategy=ddp`): the samplers shard
    the batches by rank and every parameter gets a gradient (plain DDP, no find_unused_parameters). The LR decays over
    trainer.max_time, as in the recipe: the replicas end equal (else no export: shared.training.check_ranks_agree)."""
    import subprocess
    import sys

    exp = f"exp/stage2/ddp_{mode}"
    steps = 3 if mode == "aligned" else 2
    args = train_args(corpus, exp, "trainer.devices=2", "+trainer.strategy=ddp", f"trainer.max_steps={steps}",
                      f"trainer.val_check_interval={steps}", "+trainer.max_time=00:00:01:00", "+train.lr_horizon=budget",
                      "train.warmup_steps=1", "train.lr_total_steps=10000", *(ALIGNFREE if mode == "alignfree" else ()))
    root = Path(__file__).resolve().parents[1]
    p = subprocess.run([sys.executable, "-m", "stage2_flow.train", *args], cwd=root, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "Starting with 2 processes" in p.stdout + p.stderr
    assert torch.load(corpus / exp / "checkpoints/last.ckpt", weights_only=False)["global_step"] == steps
    assert (corpus / exp / "model.pt").is_file()


def test_a_two_process_run_resumes_exactly(corpus):
    """Stopped at step 2 and resumed to 4, two processes end with the weights of an uninterrupted 4-step run: every rank
    gets back its own RNG state (dropout draws from it), not rank 0's."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]

    def run(exp: str, steps: int) -> None:
        args = train_args(corpus, exp, "trainer.devices=2", "+trainer.strategy=ddp", f"trainer.max_steps={steps}",
                          "trainer.val_check_interval=4", "trainer.checkpoint_every_n_steps=2", "train.warmup_steps=1",
                          "train.lr_total_steps=100", "model.text_encoder.dropout=0.3", dev=False)
        p = subprocess.run([sys.executable, "-m", "stage2_flow.train", *args], cwd=root, capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]

    run("exp/stage2/ddp_whole", 4)
    run("exp/stage2/ddp_resumed", 2)
    run("exp/stage2/ddp_resumed", 4)  # a higher max_steps continues from last.ckpt
    whole, resumed = (torch.load(corpus / f"exp/stage2/{e}/model.pt", weights_only=True) for e in ("ddp_whole", "ddp_resumed"))
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_zero_shot_prompt_model_trains_and_its_prompt_changes_its_output(corpus, tone_test, tmp_path):
    """`model.speaker.use_prompt` (LibriTTS's conf/stage2_prompt.yaml): trained on 0.5-1 s prompts cut from other
    utterances of the speaker, it synthesises from a reference wav (--prompt-wav) and the reference matters; given a
    data dir with audio, each utterance speaks in the voice of another utterance of its speaker (zero-shot evaluation)."""
    import soundfile as sf
    from conftest import harmonic_tone

    from shared.datadir import DataDir
    from shared.io import read_kv

    exp = corpus / "exp/stage2/prompt"
    assert train.main(train_args(corpus, "exp/stage2/prompt", "model.speaker.use_id=false", "model.speaker.use_prompt=true",
                                 "+data.prompt_seconds=[0.5,1.0]")) == 0
    wavs = {}
    for f0 in (110.0, 220.0):
        prompt = tmp_path / f"prompt{int(f0)}.wav"
        sf.write(prompt, harmonic_tone(2.0, f0=f0), 16000)
        out = tmp_path / f"synth{int(f0)}"
        assert synthesize.main(["--exp-dir", str(exp), "--data-dir", str(corpus / "data/test"), "--out-dir", str(out),
                                "--nfe", "2", "--prompt-wav", str(prompt)]) == 0
        wavs[f0] = {u: sf.read(p)[0] for u, p in DataDir.load(out).wav_scp.items()}
    assert wavs[110.0].keys() == wavs[220.0].keys() and len(wavs[110.0]) == 3
    assert any(a.shape != b.shape or abs(a - b).max() > 1e-4 for a, b in zip(wavs[110.0].values(), wavs[220.0].values()))
    assert reflow.main(["generate", "--exp-dir", str(exp), "--data-dir", str(corpus / "data/train"), "--latents",
                        str(corpus / "dump/fake/train"), "--out-dir", str(tmp_path / "pairs"), "--nfe", "2", "--max-utts", "4"]) == 0

    test = DataDir.load(tone_test)
    out = tmp_path / "synth_zero_shot"
    assert synthesize.main(["--exp-dir", str(exp), "--data-dir", str(tone_test), "--out-dir", str(out), "--nfe", "2"]) == 0
    refs = read_kv(out / "utt2prompt")
    assert sorted(refs) == test.utts and all(test.utt2spk[r] == test.utt2spk[u] for u, r in refs.items())
    assert any(r != u for u, r in refs.items()) and DataDir.load(out).utt2spk == test.utt2spk
    u = next(u for u, r in refs.items() if r != u)  # the same audio as with its reference given for every utterance
    one = tmp_path / "synth_one"
    assert synthesize.main(["--exp-dir", str(exp), "--data-dir", str(tone_test), "--out-dir", str(one), "--nfe", "2",
                            "--prompt-wav", test.wav_scp[refs[u]]]) == 0
    assert torch.allclose(torch.from_numpy(sf.read(out / "wav" / f"{u}.wav")[0]), torch.from_numpy(sf.read(one / "wav" / f"{u}.wav")[0]), atol=1e-4)
    with pytest.raises(SystemExit, match="zero-shot"):  # no reference to take the voice from
        synthesize.main(["--exp-dir", str(exp), "--text-file", str(tmp_path / "nothing.txt"), "--out-dir", str(tmp_path / "x")])


def test_nfe_sweep_reuses_only_cells_of_the_same_settings(trained, tone_test, tmp_path, capsys):
    """A cell is reused for the same model and sampling settings only (not across solvers or seeds), an NFE that is no
    whole number of the solver's steps is refused, and an earlier sweep's paired comparison does not outlive it."""
    from shared.io import read_json, read_kv, write_json
    from stage2_flow import nfe_sweep

    out = tmp_path / "sweep"
    args = ["--exp-dirs", str(trained), "--data-dir", str(tone_test), "--out-dir", str(out), "--no-f0"]
    with pytest.raises(SystemExit):  # rk4 takes 4 evaluations a step: "NFE 1" would be 4
        nfe_sweep.main([*args, "--nfe", "1", "4", "--solver", "rk4"])
    assert "--solver rk4 takes 4 evaluations per step: every --nfe must be a multiple of 4" in capsys.readouterr().err
    assert nfe_sweep.main([*args, "--nfe", "2"]) == 0
    cell = out / trained.name / "nfe2"
    first = read_json(cell / "timing.json")
    assert first["solver"] == "euler" and first["seed"] == 0
    write_json(out / "paired.json", [{"base": "a", "other": "b"}])
    assert nfe_sweep.main([*args, "--nfe", "2"]) == 0
    assert read_json(cell / "timing.json") == first and not (out / "paired.json").exists()  # reused; no stale comparison
    assert nfe_sweep.main([*args, "--nfe", "2", "--solver", "midpoint"]) == 0
    assert read_json(cell / "timing.json")["solver"] == "midpoint"  # redone, not the Euler cell under a midpoint label
    # a cell timed with other threads (or device, or batch size) is timed again: its RTF was kept from the other setup;
    # and the first timed cell comes after an untimed warm-up call (its one-off costs made the first cell's RTF 9x)
    from stage2_flow.synthesize import Synthesizer

    calls, synthesize = [], Synthesizer.synthesize

    def spy(self, texts, *a, **kw):
        calls.append((len(texts), kw.get("nfe")))
        return synthesize(self, texts, *a, **kw)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(Synthesizer, "synthesize", spy)
        assert nfe_sweep.main([*args, "--nfe", "2", "--solver", "midpoint", "--num-threads", "1"]) == 0
    assert read_json(cell / "timing.json")["num_threads"] == 1
    assert calls == [(1, 1), (len(read_kv(tone_test / "wav.scp")), 2)]


def test_external_durations(corpus, tmp_path):
    from shared.io import read_kv

    tokens = read_kv(corpus / "data/train/token")
    frames = read_kv(corpus / "dump/fake/train/utt2frames")
    lines = []
    for u, t in tokens.items():  # uniform split of each utterance's frames
        n, f = len(t.split()), int(frames[u])
        d = [f // n] * n
        d[-1] += f - sum(d)
        lines.append(f"{u} {' '.join(map(str, d))}\n")
    (tmp_path / "durations").write_text("".join(lines))
    args = train_args(corpus, "exp/stage2/extdur", "trainer.max_steps=2", dev=False) + ["--durations", str(tmp_path / "durations")]
    assert train.main(args) == 0
    # the uniform durations, not MAS's, are what the model trains on
    import argparse

    from shared.config import load_config
    from stage2_flow.alignment import read_durations
    from stage2_flow.data import collate_tts
    from stage2_flow.model import load_trained

    exp = corpus / "exp/stage2/extdur"
    assert load_config(exp / "config.yaml")["data"]["durations"] == str(tmp_path / "durations")
    given = read_durations(str(tmp_path / "durations"))
    ds = train.build_datasets(argparse.Namespace(reflow_pairs=None, durations=str(tmp_path / "durations"), dev_dir=None,
                                                 dev_latents=None, data_dir=str(corpus / "data/train"),
                                                 latents=str(corpus / "dump/fake/train")), load_config(exp / "config.yaml"), exp)[0]
    model, _ = load_trained(exp)
    items = [ds[i] for i in range(4)]
    _, aux = model.losses(collate_tts(items))
    for i, it in enumerate(items):
        assert torch.equal(aux["durations"][i, : len(it["tokens"])], given[it["utt"]].long())


def test_errors_of_external_durations_name_the_file(trained, tmp_path):
    """They named the utterance only (a KeyError for one the file lacks), not the --durations file."""
    import argparse
    import re

    from shared.config import load_config
    from shared.io import read_kv

    root = trained.parents[2]
    tokens, frames = read_kv(root / "data/train/token"), read_kv(root / "dump/fake/train/utt2frames")
    first, *rest = sorted(tokens)
    n = len(tokens[first].split())
    durations = tmp_path / "durations"
    args = argparse.Namespace(reflow_pairs=None, durations=str(durations), dev_dir=None, dev_latents=None,
                              data_dir=str(root / "data/train"), latents=str(root / "dump/fake/train"))
    durations.write_text("".join(f"{u} {' '.join(['1'] * (len(tokens[u].split()) - 1))} {int(frames[u]) - len(tokens[u].split()) + 1}\n"
                                 for u in rest))
    with pytest.raises(ValueError, match=rf"{re.escape(str(durations))}: no durations for 1 utterance\(s\) of .*'{first}'"):
        train.build_datasets(args, load_config(trained / "config.yaml"), trained)
    with open(durations, "a") as f:
        f.write(f"{first} {' '.join(['1'] * (n + 1))}\n")
    with pytest.raises(ValueError, match=rf"{re.escape(str(durations))}: utt '{first}': {n + 1} durations for {n} tokens"):
        train.build_datasets(args, load_config(trained / "config.yaml"), trained)


def test_speech_prompts_without_prompt_seconds_are_reflows_default(trained):
    """Training read data.prompt_seconds with no default (a KeyError) where reflow took [1, 3]: both take PROMPT_SECONDS."""
    import argparse

    from shared.config import load_config
    from stage2_flow.data import PROMPT_SECONDS

    root = trained.parents[2]
    cfg = load_config(trained / "config.yaml")
    cfg["model"]["speaker"]["use_prompt"] = True
    del cfg["data"]["prompt_seconds"]
    args = argparse.Namespace(reflow_pairs=None, durations=None, dev_dir=None, dev_latents=None,
                              data_dir=str(root / "data/train"), latents=str(root / "dump/fake/train"))
    assert train.build_datasets(args, cfg, trained)[0].prompt_seconds == PROMPT_SECONDS == (1.0, 3.0)


def test_latents_with_nan_are_refused_naming_the_utterance_and_file(corpus, tmp_path):
    """One NaN frame in one training latent made the exported model.pt all NaN, with exit status 0."""
    import re
    import shutil

    from shared.latents import read_latent_scp

    shutil.copytree(corpus / "dump/fake/train", tmp_path / "train")
    utt, path = sorted(read_latent_scp(tmp_path / "train").items())[1]
    z = torch.load(path)
    z[0, 3] = float("nan")
    torch.save(z, path)
    args = train_args(corpus, "exp/stage2/nan_latent", dev=False)
    args[args.index("--latents") + 1] = str(tmp_path / "train")
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: the latents of utterance '{utt}' hold NaN or infinite "
                                         r"values in 1 frame\(s\) \(e\.g\. \[3\]\)"):
        train.main(args)
    assert not (corpus / "exp/stage2/nan_latent/model.pt").exists()


class NanGradient(torch.autograd.Function):
    """The identity, whose gradient is NaN: a finite loss whose backward pass overflows."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad * float("nan")


@pytest.mark.parametrize("what", ["loss", "gradient"])
def test_a_non_finite_step_stops_training_before_the_weights_take_it(corpus, monkeypatch, capsys, what):
    """A NaN loss (or a finite one with a NaN gradient) went into the weights, the EMA, every later checkpoint and the
    exported model.pt, with exit status 0: the run stops at that step with status 1, naming it and the batch's
    utterances, its last checkpoint (the step before) finite; a rerun resumes from it."""
    from stage2_flow.model import FlowTTS

    real, batches = FlowTTS.losses, []

    def poisoned(self, batch, generator=None, t=None):
        out, aux = real(self, batch, generator=generator, t=t)
        batches.append(batch["utts"])
        if len(batches) == 3:  # step 2 (no validation: every call is a training step's)
            out["flow/mse"] = out["flow/mse"] * float("nan") if what == "loss" else NanGradient.apply(out["flow/mse"])
        return out, aux

    monkeypatch.setattr(FlowTTS, "losses", poisoned)
    exp = corpus / f"exp/stage2/nan_{what}"
    args = train_args(corpus, f"exp/stage2/nan_{what}", "trainer.max_steps=4", "trainer.checkpoint_every_n_steps=1", dev=False)
    assert train.main(args) == 1
    err = capsys.readouterr().err
    said = {"loss": "is nan (flow/mse not finite); the dataset checked their inputs", "gradient": "is finite but its gradient norm is nan"}
    named = ", ".join(batches[2][:8]) + (f", ... ({len(batches[2])} in all)" if len(batches[2]) > 8 else "")
    assert f"error: step 2: the training loss of utterances {named} {said[what]}" in err, err
    assert "Stopped before the weights took it in" in err
    assert not (exp / "model.pt").exists()
    ckpt = torch.load(exp / "checkpoints/last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2 and all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    monkeypatch.undo()
    assert train.main(args) == 0 and "resuming from" in capsys.readouterr().out


def test_a_non_finite_ema_is_not_exported(corpus, monkeypatch, capsys):
    def nan_ema(ema, model, decay, step):
        for p in ema.parameters():
            p.data.fill_(float("nan"))

    monkeypatch.setattr("stage2_flow.experiment.ema_update", nan_ema)
    assert train.main(train_args(corpus, "exp/stage2/nan_ema", "trainer.max_steps=2", dev=False)) == 1
    assert "EMA weight tensors are not finite" in capsys.readouterr().err
    assert not (corpus / "exp/stage2/nan_ema/model.pt").exists()


def test_description_files_are_replaced_whole_not_rewritten_in_place(trained, tmp_path):
    """They were copied with shutil.copyfile, which truncates a file and writes it again in place: a kill part way left
    a cut-short tokens.txt or latent_stats.json. They are written beside and renamed (a new inode), as every file is."""
    import argparse
    import shutil

    root = trained.parents[2]
    for base in (None, trained):  # a run's own description, and a fine-tune's copy of its base's
        exp = tmp_path / f"exp_{base is None}"
        shutil.copytree(trained, exp)
        names = ("tokens.txt", "latent_stats.json", "frontend.yaml") + (("speakers.txt", "speaking_rate.json") if base else ())
        inodes = {n: (exp / n).stat().st_ino for n in names}
        train.describe_exp_dir(argparse.Namespace(init_from=base, stage1_exp_dir=str(root / "exp/stage1/fake"),
                                                  latents=str(root / "dump/fake/train"), data_dir=str(root / "data/train"),
                                                  tokens=str(root / "exp/tokens.txt"), frontend_config=None), exp)
        assert all((exp / n).stat().st_ino != inodes[n] for n in names)
        assert all((exp / n).read_bytes() == (trained / n).read_bytes() for n in names)


def test_reflow_pairs_keep_to_max_frames_and_hold_tensors_only(trained, tmp_path, capsys):
    """Reflow fine-tuning ignored data.max_frames, and unpickled whatever a pair file held (weights_only=False)."""
    import argparse
    from pathlib import PurePosixPath

    from shared.config import load_config
    from shared.io import write_kv
    from stage2_flow.data import ReflowPairs

    pairs = tmp_path / "pairs"
    (pairs / "pairs").mkdir(parents=True)

    def pair(frames: int, **over) -> dict:
        return {"x0": torch.zeros(8, frames), "x1": torch.zeros(8, frames), "mu_frames": torch.zeros(8, frames), "g": None, **over}

    torch.save(pair(5), pairs / "pairs/short.pt")
    torch.save(pair(50), pairs / "pairs/long.pt")
    write_kv(pairs / "pairs.scp", {"short": "pairs/short.pt", "long": "pairs/long.pt"})
    cfg = load_config(trained / "config.yaml")
    cfg["data"]["max_frames"] = 10
    data = train.build_datasets(argparse.Namespace(reflow_pairs=str(pairs), dev_dir=None, dev_latents=None), cfg, trained)[0]
    assert data.utts == ["short"] and "skipped 1 reflow pair(s) over max_frames 10 (e.g. ['long'])" in capsys.readouterr().err
    torch.save(pair(5, x1=torch.full((8, 5), float("nan"))), pairs / "pairs/short.pt")
    with pytest.raises(ValueError, match="short.pt: the reflow pair of 'short' holds NaN or infinite values in x1"):
        ReflowPairs(pairs)
    torch.save(pair(5, note=PurePosixPath("not a tensor")), pairs / "pairs/short.pt")
    with pytest.raises(ValueError, match=r"short.pt: not a reflow pair \(it holds objects other than tensors"):
        ReflowPairs(pairs)


def test_reflow_pairs_and_finetune(trained):
    root = trained.parents[2]
    pairs = root / "pairs"
    assert reflow.main(["generate", "--exp-dir", str(trained), "--data-dir", str(root / "data/train"), "--latents",
                        str(root / "dump/fake/train"), "--out-dir", str(pairs), "--nfe", "4", "--max-utts", "8"]) == 0
    item = torch.load(next((pairs / "pairs").glob("*.pt")), weights_only=False)
    assert item["x0"].shape == item["x1"].shape == item["mu_frames"].shape and item["g"].shape == (16,)
    assert len(list((pairs / "pairs").glob("*.pt"))) == 8
    # the pair is the model's own ODE solution from x0 (rk4, 4 evaluations), solved here alone, not in a padded batch
    from stage2_flow.model import load_trained

    model, _ = load_trained(trained)
    with torch.no_grad():
        x1, _ = model.flow.sample(item["mu_frames"][None], torch.ones(1, 1, item["x0"].shape[-1]), item["g"][None],
                                  item["text_frames"][None] if "text_frames" in item else None, 4, "rk4", 1.0, 0.0, None, None,
                                  x0=item["x0"][None])
    assert torch.allclose(x1[0], item["x1"], atol=1e-4), float((x1[0] - item["x1"]).abs().max())
    args = ["--config", str(CONF), "--init-from", str(trained), "--reflow-pairs", str(pairs), "--exp-dir", str(root / "exp/stage2/reflow"),
            "--dev-latents", str(root / "dump/fake/dev"), "--dev-dir", str(root / "data/dev"), "trainer.max_steps=3",
            "trainer.val_check_interval=3"]
    assert train.main(args) == 0
    base = torch.load(trained / "model.pt", weights_only=True)
    tuned = torch.load(root / "exp/stage2/reflow/model.pt", weights_only=True)
    assert torch.equal(base["text_encoder.emb.weight"], tuned["text_encoder.emb.weight"])  # text side frozen
    assert not torch.equal(base["flow.estimator.inp.weight"], tuned["flow.estimator.inp.weight"])


def test_reflow_finetune_mixing_in_real_latents(trained, tmp_path):
    """MAS pairs also hold the utterance's real (normalised) latent; ``loss.flow_data > 0`` adds the ordinary
    flow-matching loss on it, and refuses pairs without it, naming the file."""
    from stage2_flow.data import ReflowPairs

    root = trained.parents[2]
    pairs = tmp_path / "pairs"
    assert reflow.main(["generate", "--exp-dir", str(trained), "--data-dir", str(root / "data/train"), "--latents",
                        str(root / "dump/fake/train"), "--out-dir", str(pairs), "--nfe", "2", "--max-utts", "4"]) == 0
    data = ReflowPairs(pairs, with_data=True)
    for item in data.items:
        assert item["x1_data"].shape == item["x1"].shape and not torch.equal(item["x1_data"], item["x1"])
    assert all("x1_data" not in it for it in ReflowPairs(pairs).items)  # not kept when not asked for
    exp = tmp_path / "reflow_data"
    args = ["--config", str(CONF), "--init-from", str(trained), "--reflow-pairs", str(pairs), "--exp-dir", str(exp),
            "trainer.max_steps=2", "+loss.flow_data=0.5"]
    assert train.main(args) == 0
    assert "flow_data/mse" in (exp / "logs/metrics.csv").read_text().splitlines()[0]
    victim = next((pairs / "pairs").glob("*.pt"))
    item = torch.load(victim, weights_only=False)
    del item["x1_data"]
    torch.save(item, victim)
    with pytest.raises(ValueError, match=victim.name):
        ReflowPairs(pairs, with_data=True)


def test_synthesize_cli_and_api(trained, tmp_path):
    root = trained.parents[2]
    out = tmp_path / "synth"
    assert synthesize.main(["--exp-dir", str(trained), "--data-dir", str(root / "data/test"), "--out-dir", str(out), "--nfe", "2"]) == 0
    from shared.datadir import DataDir

    d = DataDir.load(out)
    assert len(d.utts) == 3 and all(Path(p).is_file() for p in d.wav_scp.values())
    s = synthesize.Synthesizer.from_exp_dir(trained)
    wavs = s.synthesize(["the cat", "a big red dog sat"], speaker="spk1", nfe=2, solver="heun", seed=3)
    again, lats = s.synthesize(["the cat", "a big red dog sat"], speaker="spk1", nfe=2, solver="heun", seed=3, return_latents=True)
    assert len(wavs) == 2 and wavs[0].dim() == 1 and wavs[1].numel() > wavs[0].numel()
    assert all(torch.equal(a, b) for a, b in zip(wavs, again))
    assert lats[0].shape[0] == 8 and lats[0].shape[1] * 256 >= wavs[0].numel()
    with pytest.raises(ValueError, match="no speech-prompt encoder"):  # not silently ignored
        s.synthesize(["the cat"], prompt=torch.zeros(16000))
    with pytest.raises(SystemExit, match="it knows spk0, spk1"):  # not silently the first voice
        synthesize.main(["--exp-dir", str(trained), "--data-dir", str(root / "data/test"), "--out-dir", str(tmp_path / "x"),
                         "--speaker", "spk9"])
    slow = s.synthesize(["a big red dog sat"], rate=0.5, nfe=1)[0]
    assert slow.numel() > wavs[1].numel()
    # raw text is phonemised in the speaker's training language (frontend.yaml: speaker_languages, written when
    # the training transcripts were tokenised from an utt2lang) unless a language is given
    s.frontend.config.speaker_languages = {"spk1": "en-gb-x-rp"}
    seen, tokenize = [], s.tokenize
    s.tokenize = lambda texts, utts=None, languages=None: seen.append(languages) or tokenize(texts, utts, languages)
    for spk, lang in (("spk1", None), ("spk0", None), ("spk1", "en-us")):
        s.synthesize(["the bath"], speaker=spk, nfe=1, language=lang)
    assert seen == [["en-gb-x-rp"], None, ["en-us"]]
    s.frontend.config.speaker_languages = {"spk0": "en-gb-x-rp"}  # no speaker given: the first, as for its id
    s.synthesize(["the bath"], nfe=1)
    assert seen[-1] == ["en-gb-x-rp"] and s.speaker_name(1) == "spk1" and s.speaker_name(7) is None


class SmoothCodec(torch.nn.Module):
    """A well-conditioned stand-in decoder for comparing outputs (the fake corpus's Griffin-Lim stand-in turns
    float rounding in the latents into different waveforms). Like a real decoder it looks at neighbouring
    frames and makes something of zeros, so frames past an utterance's end would change its last frame."""

    sample_rate, hop_length, latent_dim = 16000, 256, 8

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.avg_pool1d((torch.tanh(z) + 0.5).mean(1, keepdim=True), 3, 1, 1, count_include_pad=True)
        return 0.1 * h[:, 0].repeat_interleave(self.hop_length, -1)


def test_bulk_synthesis_does_not_depend_on_batching_resume_or_jobs(trained, tmp_path, monkeypatch, capsys):
    """A synthetic corpus made in one job equals one made in two jobs (split, synthesise, combine), up to float
    rounding; a deleted wav is remade the same; new settings never resume into old output."""
    import numpy as np

    from shared.audio import load_audio, save_audio
    from shared.datadir import DataDir, main as datadir_main
    from shared.io import read_json

    monkeypatch.setattr("stage2_flow.codec.load_codec", lambda *args, **kwargs: SmoothCodec())
    src = DataDir.load(trained.parents[2] / "data/train", validate=False)
    utts = src.utts[:6]
    save_audio(tmp_path / "silence.wav", np.zeros(1600, dtype=np.float32), 16000)  # the input's audio is not read
    data = DataDir(wav_scp={f"{src.utt2spk[u]}-{u}": str(tmp_path / "silence.wav") for u in utts},
                   text={f"{src.utt2spk[u]}-{u}": src.text[u] for u in utts},
                   utt2spk={f"{src.utt2spk[u]}-{u}": src.utt2spk[u] for u in utts},
                   token={f"{src.utt2spk[u]}-{u}": src.token[u] for u in utts})
    data.save(tmp_path / "in")
    run = ["--exp-dir", str(trained), "--nfe", "2", "--temperature", "0.7", "--seed", "3"]
    assert synthesize.main([*run, "--data-dir", str(tmp_path / "in"), "--out-dir", str(tmp_path / "one")]) == 0
    assert datadir_main(["split", str(tmp_path / "in"), "2"]) == 0
    for k in ("1", "2"):
        assert synthesize.main([*run, "--data-dir", str(tmp_path / "in/split2" / k), "--out-dir", str(tmp_path / "jobs" / k),
                                "--batch-size", "1"]) == 0
    assert datadir_main(["combine", str(tmp_path / "all"), str(tmp_path / "jobs/1"), str(tmp_path / "jobs/2")]) == 0
    one, two = DataDir.load(tmp_path / "one"), DataDir.load(tmp_path / "all")
    assert (one.text, one.utt2spk, one.token, one.utt2dur) == (two.text, two.utt2spk, two.token, two.utt2dur)
    assert one.token == data.token

    def wav(d, u):
        return load_audio(d.wav_scp[u], 16000).numpy()

    for u in one.utts:
        a, b = wav(one, u), wav(two, u)
        assert a.shape == b.shape and 10 * np.log10((a ** 2).sum() / max(((a - b) ** 2).sum(), 1e-12)) > 50, u
    # another --seed, other audio (every utterance: the seed is not lost in the id's hash)
    assert synthesize.main([*run[:-2], "--seed", "4", "--data-dir", str(tmp_path / "in"), "--out-dir", str(tmp_path / "four")]) == 0
    four = DataDir.load(tmp_path / "four")
    assert all(not np.array_equal(wav(one, u), wav(four, u)) for u in one.utts)
    first = Path(one.wav_scp[one.utts[0]])
    before = wav(one, one.utts[0])
    first.unlink()
    assert synthesize.main([*run, "--data-dir", str(tmp_path / "in"), "--out-dir", str(tmp_path / "one")]) == 0
    assert np.array_equal(wav(one, one.utts[0]), before)
    # a model copied elsewhere resumes (its SHA-256 is what counts); other settings do not
    moved = read_json(tmp_path / "one" / "synth.json")
    moved["paths"]["model"] = "/elsewhere/exp/stage2/smoke"
    synthesize.check_resume(tmp_path / "one", moved, overwrite=False)
    first.unlink()
    with pytest.raises(SystemExit, match=r"temperature: 0\.7 -> 0\.5"):
        synthesize.main([*run[:-4], "--temperature", "0.5", "--seed", "3", "--data-dir", str(tmp_path / "in"),
                         "--out-dir", str(tmp_path / "one")])
    assert not first.exists()
    # nor other texts: the wavs kept would be labelled with the new ones
    edited = DataDir.load(tmp_path / "in", validate=False)
    edited.token[edited.utts[1]] = edited.token[edited.utts[2]]
    edited.save(tmp_path / "edited")
    with pytest.raises(SystemExit, match="inputs_sha256"):
        synthesize.main([*run, "--data-dir", str(tmp_path / "edited"), "--out-dir", str(tmp_path / "one")])
    # a synth.json from before the inputs were recorded cannot tell: its wavs are kept, with a warning
    from shared.io import write_json

    record = read_json(tmp_path / "one/synth.json")
    del record["inputs_sha256"]
    write_json(tmp_path / "one/synth.json", record)
    capsys.readouterr()
    assert synthesize.main([*run, "--data-dir", str(tmp_path / "in"), "--out-dir", str(tmp_path / "one")]) == 0
    assert "does not record inputs_sha256" in capsys.readouterr().out


def test_synthesis_samples_at_the_models_validation_temperature_by_default(trained, tmp_path, capsys):
    """The recipes validate at the temperature they synthesise at (0.2); a user who gives none gets that one, not 1."""
    import shutil

    import yaml

    exp = trained.parent / "validated_at_0.3"  # beside it: its codec is found by a relative path
    shutil.copytree(trained, exp)
    cfg = yaml.safe_load((exp / "config.yaml").read_text())
    cfg["validation"]["temperature"] = 0.3
    (exp / "config.yaml").write_text(yaml.safe_dump(cfg))
    s = synthesize.Synthesizer.from_exp_dir(exp)
    assert s.temperature == 0.3
    kw = dict(speaker="spk1", nfe=2, seed=3)
    default, given, one = (s.synthesize(["the cat"], **kw)[0], s.synthesize(["the cat"], temperature=0.3, **kw)[0],
                           s.synthesize(["the cat"], temperature=1.0, **kw)[0])
    assert torch.equal(default, given) and not torch.equal(default, one)
    (tmp_path / "lines.txt").write_text("the cat sat\n")
    assert synthesize.main(["--exp-dir", str(exp), "--text-file", str(tmp_path / "lines.txt"), "--speaker", "spk1",
                            "--nfe", "1", "--out-dir", str(tmp_path / "out")]) == 0
    assert "temperature 0.3 (the model's validation.temperature)" in capsys.readouterr().out


def test_bulk_synthesis_saves_its_latents(trained, tmp_path, monkeypatch):
    """--save-latents: a latent dump beside the wavs that decodes to them; a lost latent is remade the same."""
    from shared.audio import load_audio
    from shared.io import read_json, read_kv
    from shared.latents import read_latent_scp

    monkeypatch.setattr("stage2_flow.codec.load_codec", lambda *args, **kwargs: SmoothCodec())
    out = tmp_path / "out"
    run = ["--exp-dir", str(trained), "--data-dir", str(trained.parents[2] / "data/test"), "--out-dir", str(out),
           "--nfe", "2", "--temperature", "0.7", "--save-latents"]
    assert synthesize.main(run) == 0
    scp, frames = read_latent_scp(out), read_kv(out / "utt2frames")
    assert set(scp) == set(read_kv(out / "wav.scp")) == set(frames) and len(scp) == 3
    assert read_json(out / "codec.json")["latent_dim"] == SmoothCodec.latent_dim
    saved = {u: torch.load(p, weights_only=True) for u, p in scp.items()}
    for u, z in saved.items():
        # its own latents alone: the batch's longest was saved as a view of the whole padded batch (3x its size)
        assert z.untyped_storage().nbytes() == z.numel() * 4, u
        wav = load_audio(out / "wav" / f"{u}.wav", 16000)
        assert z.shape == (8, int(frames[u])) and wav.numel() == z.shape[1] * SmoothCodec.hop_length
        assert (SmoothCodec().decode(z[None])[0] - wav).abs().max() < 1e-4  # 16-bit PCM rounding
    lost = sorted(scp)[0]
    scp[lost].unlink()
    assert synthesize.main(run) == 0
    again = {u: torch.load(p, weights_only=True) for u, p in read_latent_scp(out).items()}
    assert set(again) == set(saved) and all(torch.equal(again[u], saved[u]) for u in saved if u != lost)  # kept as they were
    assert torch.allclose(again[lost], saved[lost], atol=1e-4)  # remade alone, not in a batch of 3: float rounding
    # decoded by another codec (as the recipe's fine-tuned decoder/): the dump is still in stage one's latent space,
    # which its codec.json names, so stage two trains on it
    import shutil

    stage1 = trained.parents[1] / "stage1/fake"
    shutil.copytree(stage1, tmp_path / "decoder")
    assert synthesize.main([*run[:5], str(tmp_path / "other"), *run[6:], "--stage1-exp-dir", str(tmp_path / "decoder")]) == 0
    info = read_json(tmp_path / "other/codec.json")
    assert info["exp_dir"] == str(stage1.resolve()) and info["decoded_by"]["exp_dir"] == str((tmp_path / "decoder").resolve())
    check_latent_codec(tmp_path / "other", stage1, "--latents")


def test_latent_dumps_of_synthesis_jobs_combine_like_one_job(trained, tmp_path, monkeypatch):
    """shared.datadir combine joins the jobs' --save-latents dumps with their data dirs: the same latents as one
    job's, and stage two trains on them; parts of which only some hold a dump, or dumps of two codecs, are errors
    that write nothing."""
    from shared import datadir
    from shared.io import read_json, read_kv, write_json
    from shared.latents import read_latent_scp

    monkeypatch.setattr("stage2_flow.codec.load_codec", lambda *args, **kwargs: SmoothCodec())
    data = trained.parents[2] / "data/test"  # text only: its wavs are not there, so split it by the API
    for k, part in enumerate(datadir.DataDir.load(data, validate=False).split(2), 1):
        part.save(tmp_path / "split2" / str(k))
    common = ["--exp-dir", str(trained), "--nfe", "2", "--temperature", "0.7", "--save-latents"]
    assert synthesize.main(common + ["--data-dir", str(data), "--out-dir", str(tmp_path / "one")]) == 0
    jobs = [str(tmp_path / "jobs" / k) for k in ("1", "2")]
    for k, job in zip(("1", "2"), jobs):
        assert synthesize.main(common + ["--data-dir", str(tmp_path / "split2" / k), "--out-dir", job]) == 0
    assert datadir.main(["combine", str(tmp_path / "all"), *jobs]) == 0
    one, joined = read_latent_scp(tmp_path / "one"), read_latent_scp(tmp_path / "all")
    assert set(joined) == set(one) == set(read_kv(tmp_path / "all" / "wav.scp")) and len(one) == 3
    assert all(torch.allclose(torch.load(joined[u], weights_only=True), torch.load(one[u], weights_only=True), atol=1e-4)
               for u in one)  # each utterance's own seed: float rounding of other batch shapes only
    assert read_kv(tmp_path / "all" / "utt2frames") == read_kv(tmp_path / "one" / "utt2frames")
    assert read_json(tmp_path / "all" / "codec.json") == read_json(tmp_path / "one" / "codec.json")
    # the synthetic corpus trains stage two as a real one does: its data dir (token) and its latent dump
    root = trained.parents[2]
    assert train.main(["--config", str(CONF), "--stage1-exp-dir", str(root / "exp/stage1/fake"), "--latents",
                       str(tmp_path / "all"), "--data-dir", str(tmp_path / "all"), "--tokens", str(root / "exp/tokens.txt"),
                       "--exp-dir", str(tmp_path / "exp_synthetic"), "trainer.max_steps=2"]) == 0
    assert read_json(tmp_path / "exp_synthetic" / "train_summary.json")["steps"] == 2
    (Path(jobs[1]) / "latents.scp").rename(Path(jobs[1]) / "latents.scp.off")
    with pytest.raises(SystemExit, match="1 of the 2 data dirs hold a latent dump"):
        datadir.main(["combine", str(tmp_path / "mixed"), *jobs])
    assert not (tmp_path / "mixed").exists()
    (Path(jobs[1]) / "latents.scp.off").rename(Path(jobs[1]) / "latents.scp")
    write_json(Path(jobs[1]) / "codec.json", {**read_json(Path(jobs[1]) / "codec.json"), "exp_dir": "another/codec"})
    with pytest.raises(ValueError, match="codec.json differs"):
        datadir.main(["combine", str(tmp_path / "two_codecs"), *jobs])
    assert not (tmp_path / "two_codecs").exists()
    # the jobs redone without --save-latents: a combined dir's dump (of the jobs', or of a one-job run's latents/) was
    # kept beside the new wavs, finished-looking, its latents missing or the old run's
    for k, job in zip(("1", "2"), jobs):
        assert synthesize.main([*common[:-1], "--data-dir", str(tmp_path / "split2" / k), "--out-dir", job, "--overwrite"]) == 0
    for dst in ("all", "one"):
        assert datadir.main(["combine", str(tmp_path / dst), *jobs]) == 0
        assert not [f for f in ("latents.scp", "utt2frames", "codec.json", "latents") if (tmp_path / dst / f).exists()], dst
        assert len(read_kv(tmp_path / dst / "wav.scp")) == 3


def test_synthesize_a_multi_speaker_corpus_from_text(trained, tmp_path):
    from shared.datadir import DataDir, validate_data_dir

    lines = tmp_path / "lines.txt"
    lines.write_text("the cat sat\na big red dog\nhello there\n")
    speakers = (trained / "speakers.txt").read_text().split()
    assert len(speakers) >= 2
    out = tmp_path / "every"
    assert synthesize.main(["--exp-dir", str(trained), "--text-file", str(lines), "--out-dir", str(out), "--nfe", "1",
                            "--speakers", "all"]) == 0
    assert validate_data_dir(out) == []  # ids carry the speaker prefix, so the data dir is a valid Kaldi one
    every = DataDir.load(out)
    assert every.utts == sorted(f"{v}-utt{i:06d}" for v in speakers for i in range(3))
    assert all(every.utt2spk[u] == u.split("-")[0] for u in every.utts)
    out = tmp_path / "cycle"
    assert synthesize.main(["--exp-dir", str(trained), "--text-file", str(lines), "--out-dir", str(out), "--nfe", "1",
                            "--speakers", ",".join(speakers[:2]), "--assign", "cycle"]) == 0
    assert DataDir.load(out).utt2spk == {f"{speakers[0]}-utt000000": speakers[0], f"{speakers[1]}-utt000001": speakers[1],
                                         f"{speakers[0]}-utt000002": speakers[0]}
    with pytest.raises(SystemExit, match="unknown nobody"):
        synthesize.main(["--exp-dir", str(trained), "--text-file", str(lines), "--out-dir", str(tmp_path / "x"), "--speakers",
                         f"{speakers[0]},nobody"])


def test_likelihood_cli(trained, tmp_path):
    """The summary pools the utterances' nats over their dims; each utterance's bpd is its own, whatever its batch
    (its probes come from its own seed), and the exact divergence lands near the Hutchinson estimate."""
    import math

    from shared.io import read_json, read_kv

    root = trained.parents[2]
    args = ["--exp-dir", str(trained), "--latents", str(root / "dump/fake/dev"), "--data-dir", str(root / "data/dev"),
            "--nfe", "4"]
    assert likelihood.main([*args, "--probes", "2"]) == 0
    res = read_json(trained / "likelihood/dev.json")
    assert res["utts"] == 4 and math.isfinite(res["bpd"]) and res["bpd"] == pytest.approx(res["nats_per_dim"] / math.log(2))
    batched = {u: float(b) for u, b in read_kv(trained / "likelihood/dev.utt2bpd").items()}
    assert likelihood.main([*args, "--probes", "2", "--batch-size", "1", "--out", str(tmp_path / "alone.json")]) == 0
    alone = {u: float(b) for u, b in read_kv(tmp_path / "alone.utt2bpd").items()}
    assert alone.keys() == batched.keys() and all(alone[u] == pytest.approx(batched[u], abs=2e-5) for u in alone)
    assert likelihood.main([*args, "--divergence", "exact", "--out", str(tmp_path / "exact.json")]) == 0
    assert read_json(tmp_path / "exact.json")["bpd"] == pytest.approx(res["bpd"], abs=0.01)  # 4e-4 apart here
    # the summary records the evaluations made (rk4 takes 4 a step: 6 asked is one step), not those asked for
    assert likelihood.main([*args, "--solver", "rk4", "--nfe", "6", "--probes", "1", "--out", str(tmp_path / "rk4.json")]) == 0
    assert {k: read_json(tmp_path / "rk4.json")[k] for k in ("nfe", "nfe_requested")} == {"nfe": 4, "nfe_requested": 6}
    with pytest.raises(SystemExit):  # no probe at all wrote a NaN likelihood
        likelihood.main([*args, "--probes", "0", "--out", str(tmp_path / "none.json")])
    assert not (tmp_path / "none.json").exists()


def test_stage_one_link_is_relative_so_a_recipe_tree_moves_whole(trained, tmp_path):
    """stage1.json names the stage-one dir relative to the stage-two dir; the recipe tree copied elsewhere
    synthesises with the copy's stage one; an --init-from exp dir elsewhere gets a link of its own."""
    import argparse
    import shutil

    from shared.io import read_json
    from stage2_flow.model import stage1_dir

    root = trained.parents[2]
    assert read_json(trained / "stage1.json")["exp_dir"] == "../../stage1/fake"
    moved = tmp_path / "moved"
    shutil.copytree(root / "exp", moved / "exp", ignore=shutil.ignore_patterns("checkpoints"))
    exp = moved / "exp/stage2/smoke"
    assert stage1_dir(exp).resolve() == (moved / "exp/stage1/fake").resolve()
    wav = synthesize.Synthesizer.from_exp_dir(exp).synthesize(["the cat"], speaker="spk1", nfe=2, seed=3)[0]
    ref = synthesize.Synthesizer.from_exp_dir(trained).synthesize(["the cat"], speaker="spk1", nfe=2, seed=3)[0]
    assert torch.equal(wav, ref)
    deeper = tmp_path / "a" / "b" / "reflow"
    deeper.mkdir(parents=True)
    train.describe_exp_dir(argparse.Namespace(init_from=str(trained)), deeper)
    assert stage1_dir(deeper).resolve() == (root / "exp/stage1/fake").resolve()
    assert {k: v for k, v in read_json(deeper / "stage1.json").items() if k != "exp_dir"} == \
        {k: v for k, v in read_json(trained / "stage1.json").items() if k != "exp_dir"}


class Interrupt(Exception):
    """Stands for a kill part way through a run."""


def interrupt_after(monkeypatch, target: str, calls: int) -> None:
    """Make ``target`` (a function or method, by its dotted path) raise :class:`Interrupt` after ``calls`` calls."""
    import importlib

    module, _, attr = target.rpartition(".")
    owner_path, _, cls = module.rpartition(".") if module.split(".")[-1][:1].isupper() else (module, "", "")
    owner = getattr(importlib.import_module(owner_path), cls) if cls else importlib.import_module(module)
    real, count = getattr(owner, attr), [0]

    def wrapped(*args, **kwargs):
        count[0] += 1
        if count[0] > calls:
            raise Interrupt(target)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, attr, wrapped)


def test_an_interrupted_overwrite_is_not_resumed_into_the_old_wavs(trained, tmp_path, monkeypatch):
    """--overwrite wrote the new synth.json at once and left the old wavs (and latent dump) until each was redone: a
    run stopped part way and rerun with the new settings counted the old wavs as done, a corpus of two settings."""
    import numpy as np

    from shared.audio import load_audio
    from shared.io import read_json

    monkeypatch.setattr("stage2_flow.codec.load_codec", lambda *args, **kwargs: SmoothCodec())
    out = tmp_path / "out"
    run = ["--exp-dir", str(trained), "--data-dir", str(trained.parents[2] / "data/test"), "--nfe", "2", "--save-latents",
           "--batch-size", "1"]
    assert synthesize.main([*run, "--out-dir", str(out), "--temperature", "0.7"]) == 0
    assert len(list((out / "wav").glob("*.wav"))) == 3 and (out / "latents.scp").is_file()
    with monkeypatch.context() as m:
        interrupt_after(m, "stage2_flow.synthesize.Synthesizer.synthesize", 1)  # killed after its first batch
        with pytest.raises(Interrupt):
            synthesize.main([*run, "--out-dir", str(out), "--temperature", "0.5", "--overwrite"])
    assert read_json(out / "synth.json")["temperature"] == 0.5
    assert len(list((out / "wav").glob("*.wav"))) == 1  # the new one; the old ones went first
    assert not (out / "latents.scp").exists() and len(list((out / "latents").glob("*.pt"))) == 1
    assert synthesize.main([*run, "--out-dir", str(out), "--temperature", "0.5"]) == 0  # goes on
    assert synthesize.main([*run, "--out-dir", str(tmp_path / "fresh"), "--temperature", "0.5"]) == 0
    for wav in sorted((tmp_path / "fresh/wav").glob("*.wav")):
        a, b = load_audio(wav, 16000).numpy(), load_audio(out / "wav" / wav.name, 16000).numpy()
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-3, wav.name  # all of it the new settings' audio


@pytest.mark.parametrize("verb", ["reflow", "gta"])
def test_an_interrupted_overwrite_of_pairs_or_gta_latents_is_redone(trained, tmp_path, monkeypatch, capsys, verb):
    """Only the scp's existence was checked: an --overwrite stopped part way left the old scp and info json, and the
    next run said "exists" over a mix of old and new files."""
    from shared.io import read_json, read_kv
    from stage2_flow import gta

    root, out = trained.parents[2], tmp_path / verb
    main, scp, info = (reflow.main, "pairs.scp", "reflow_info.json") if verb == "reflow" else (gta.main, "latents.scp", "gta_info.json")
    run = ["--exp-dir", str(trained), "--data-dir", str(root / "data/train"), "--latents", str(root / "dump/fake/train"),
           "--out-dir", str(out), "--batch-size", "4"] + (["--max-utts", "8"] if verb == "reflow" else [])
    assert main([*run, "--nfe", "2"]) == 0
    n = len(read_kv(out / scp))
    with monkeypatch.context() as m:
        interrupt_after(m, f"stage2_flow.{verb}.generate_pairs", 1)
        with pytest.raises(Interrupt):
            main([*run, "--nfe", "4", "--overwrite"])
    assert not (out / scp).exists() and not (out / info).exists()
    capsys.readouterr()
    assert main([*run, "--nfe", "4"]) == 0
    assert "exists" not in capsys.readouterr().out
    assert read_json(out / info)["nfe"] == 4 and len(read_kv(out / scp)) == n
    # a finished dump is kept for the same settings, and one made with others is an error naming them, not kept
    assert main([*run, "--nfe", "4"]) == 0 and "made with these settings: nothing to do" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="made with other settings \\(nfe 4 -> 2\\): give --overwrite"):
        main([*run, "--nfe", "2"])


def test_pairs_and_gta_latents_do_not_depend_on_the_batch_size(trained, tmp_path):
    """One generator drew the batch's noise, so an utterance's x0 depended on its batch-mates and its place among them,
    and dump_settings, which does not record the batch size, called two different dumps the same. Each utterance now
    draws from its own seed (as synthesis does)."""
    from shared.io import read_kv
    from stage2_flow import gta

    root = trained.parents[2]
    for verb, main, scp in (("reflow", reflow.main, "pairs.scp"), ("gta", gta.main, "latents.scp")):
        dumps = []
        for bs in ("1", "5"):
            out = tmp_path / f"{verb}{bs}"
            assert main(["--exp-dir", str(trained), "--data-dir", str(root / "data/train"), "--latents",
                         str(root / "dump/fake/train"), "--out-dir", str(out), "--batch-size", bs, "--nfe", "2"]) == 0
            dumps.append({k: torch.load(out / v) for k, v in read_kv(out / scp).items()})
        alone, batched = dumps
        assert alone.keys() == batched.keys() and len(alone) > 5
        for key in alone:
            a, b = (d[key]["x1"] if verb == "reflow" else d[key] for d in (alone, batched))
            assert a.shape == b.shape and torch.allclose(a, b, atol=1e-4), (verb, key, (a - b).abs().max())


def test_guidance_a_model_cannot_take_is_refused_before_anything_is_written_or_removed(trained, tmp_path, monkeypatch,
                                                                                       capsys):
    """Guidance of a model with nothing to guide stopped synthesis with a traceback at its first batch, after it had
    made its out dir; reflow pairs and GTA latents with --overwrite removed the old dump first. Each refuses it now
    with FlowTTS.check_guidance's reason before it writes or removes anything (the check itself:
    test_stage2_model.py; this fixture's model can be guided, so the check is made to refuse)."""
    from shared.io import read_kv
    from stage2_flow import gta
    from stage2_flow.model import FlowTTS

    root = trained.parents[2]
    dumps = {}
    for verb, main, scp in (("reflow", reflow.main, "pairs.scp"), ("gta", gta.main, "latents.scp")):
        out = tmp_path / verb
        run = ["--exp-dir", str(trained), "--data-dir", str(root / "data/train"), "--latents", str(root / "dump/fake/train"),
               "--out-dir", str(out), "--batch-size", "4", "--nfe", "1"] + (["--max-utts", "4"] if verb == "reflow" else [])
        assert main(run) == 0
        dumps[verb] = (main, run, out / scp, read_kv(out / scp))

    def refuse(self, cfg_scale):
        if cfg_scale:
            raise ValueError(f"cfg_scale {cfg_scale:g}: nothing to guide here")
    monkeypatch.setattr(FlowTTS, "check_guidance", refuse)
    for main, run, scp, before in dumps.values():
        with pytest.raises(SystemExit, match="--cfg-scale: cfg_scale 2: nothing to guide here"):
            main([*run, "--cfg-scale", "2", "--overwrite"])
        assert read_kv(scp) == before and all((scp.parent / f).is_file() for f in before.values())
        # so is an NFE no solver can take, which was found in the first batch, after --overwrite had removed the dump
        with pytest.raises(SystemExit) as e:
            main([*run, "--nfe", "0", "--overwrite"])
        assert e.value.code == 2 and "--nfe: nfe 0: a fixed-step solver needs at least one" in capsys.readouterr().err
        assert read_kv(scp) == before and all((scp.parent / f).is_file() for f in before.values())
    out = tmp_path / "synth"
    with pytest.raises(SystemExit) as e:
        synthesize.main(["--exp-dir", str(trained), "--data-dir", str(root / "data/test"), "--out-dir", str(out),
                         "--cfg-scale", "2"])
    assert e.value.code == 2 and "--cfg-scale: cfg_scale 2: nothing to guide here" in capsys.readouterr().err
    assert not out.exists()


def test_synthesis_inputs_and_options_that_cannot_work_are_refused_by_name(trained, tmp_path, capsys):
    """A data dir whose token file lacks an utterance (a bare KeyError), --language with a data dir's tokens (ignored, yet
    recorded), an NFE below 1 (synthesised at one step, recorded as asked) and a batch size of 0 (range()'s error)."""
    import shutil

    from shared.io import read_kv, write_kv

    data = tmp_path / "data"
    shutil.copytree(trained.parents[2] / "data/test", data)
    run = ["--exp-dir", str(trained), "--data-dir", str(data), "--out-dir", str(tmp_path / "out")]
    tokens = read_kv(data / "token")
    lost = sorted(tokens)[1]
    write_kv(data / "token", {u: t for u, t in tokens.items() if u != lost})
    with pytest.raises(SystemExit, match=f"{data / 'token'} has no tokens for 1 utterance\\(s\\) of {data / 'text'}, e.g. {lost}"):
        synthesize.main(run)
    write_kv(data / "token", tokens)
    with pytest.raises(SystemExit, match="--language en-gb: .*token's tokens are synthesised as they are; give --retokenize"):
        synthesize.main([*run, "--language", "en-gb"])
    for bad, says in ((["--nfe", "0"], "--nfe / --rate / --sway: nfe 0: a fixed-step solver needs at least one"),
                      (["--batch-size", "0"], "argument --batch-size: 0: must be at least 1"),
                      (["--solver", "dopri5", "--sway", "-1"], "--sway: sway -1.0 warps a fixed-step solver's time grid; "
                                                                "dopri5 chooses its own steps")):
        with pytest.raises(SystemExit) as e:
            synthesize.main([*run, *bad])
        assert e.value.code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_synthetic_corpus_says_what_language_each_utterance_was_phonemised_in(trained, tmp_path):
    """Its utt2lang was the input's, also where --language phonemised the text in another."""
    import shutil

    from shared.io import read_kv, write_kv

    data = tmp_path / "data"
    shutil.copytree(trained.parents[2] / "data/test", data)
    write_kv(data / "utt2lang", {u: "en-gb" for u in read_kv(data / "text")})
    run = ["--exp-dir", str(trained), "--data-dir", str(data), "--nfe", "1", "--retokenize"]
    assert synthesize.main([*run, "--out-dir", str(tmp_path / "own")]) == 0
    assert set(read_kv(tmp_path / "own/utt2lang").values()) == {"en-gb"}  # the data dir's
    assert synthesize.main([*run, "--out-dir", str(tmp_path / "us"), "--language", "en-us"]) == 0
    assert set(read_kv(tmp_path / "us/utt2lang").values()) == {"en-us"}  # what it was phonemised in


def test_nfe_sweep_evaluates_again_what_an_interrupted_run_or_other_settings_left(trained, tone_test, tmp_path, monkeypatch):
    """timing.json was written before the evaluation, and a cell with it and any metrics.json was reused: a sweep
    stopped while scoring a redone cell kept the old cell's scores, and --no-f0 or another --phone-recognizer reused
    the scores made without them."""
    from shared import evaluate
    from shared.io import read_json
    from stage2_flow import nfe_sweep

    out = tmp_path / "sweep"
    args = ["--exp-dirs", str(trained), "--data-dir", str(tone_test), "--out-dir", str(out), "--nfe", "2", "--no-f0"]
    assert nfe_sweep.main(args) == 0
    cell = out / trained.name / "nfe2"

    def scored_audio_is_the_cells():  # metrics.json's inputs: the references' and the cell's audio as it is now
        inputs = read_json(cell / "metrics.json")["inputs"]
        return inputs[str(cell / "wav.scp")] == evaluate.fingerprint([cell / "wav.scp"])[str(cell / "wav.scp")]

    assert scored_audio_is_the_cells()
    with monkeypatch.context() as m:
        interrupt_after(m, "shared.evaluate.evaluate", 0)  # stopped while scoring the redone cell
        with pytest.raises(Interrupt):
            nfe_sweep.main([*args, "--seed", "1"])
    assert read_json(cell / "timing.json")["seed"] == 1 and not (cell / "metrics.json").exists()
    assert nfe_sweep.main([*args, "--seed", "1"]) == 0
    assert scored_audio_is_the_cells()
    assert read_json(out / "summary.json")[trained.name]["2"]["seed"] == 1
    timing = read_json(cell / "timing.json")
    assert nfe_sweep.main(args[:-1] + ["--seed", "1"]) == 0  # with F0 now: the same audio, scored again
    assert read_json(cell / "timing.json") == timing and read_json(cell / "metrics.json")["settings"]["with_f0"]
    assert "vuv_error" in read_json(out / "summary.json")[trained.name]["2"]  # an F0 metric


def test_speakers_the_model_was_not_trained_on(trained, tone_test, tmp_path, monkeypatch):
    """A data dir's speaker the model has no id for became the first training voice (synthesis) or the zero vector
    (NFE sweep), silently: now an error naming it and --speaker for a speaker-id model, and the prompt's voice, with
    no speaker id, for a model with a prompt encoder, in synthesis and the sweep alike."""
    from shared.datadir import DataDir
    from shared.io import read_kv
    from stage2_flow import nfe_sweep

    monkeypatch.setattr("stage2_flow.codec.load_codec", lambda *args, **kwargs: SmoothCodec())
    data = DataDir.load(tone_test)
    data.utt2spk = {u: "p225" if s == "spk1" else s for u, s in data.utt2spk.items()}
    data.save(tmp_path / "unseen")
    unseen = tmp_path / "unseen"
    with pytest.raises(SystemExit, match=r"not voices of this model: p225 .*--speaker NAME"):
        synthesize.main(["--exp-dir", str(trained), "--data-dir", str(unseen), "--out-dir", str(tmp_path / "x"), "--nfe", "1"])
    with pytest.raises(SystemExit, match=r"not voices of this model: p225 .*--speaker NAME"):
        nfe_sweep.main(["--exp-dirs", str(trained), "--data-dir", str(unseen), "--out-dir", str(tmp_path / "s"), "--nfe", "1", "--no-f0"])
    assert not (tmp_path / "x/wav").exists()
    assert synthesize.main(["--exp-dir", str(trained), "--data-dir", str(unseen), "--out-dir", str(tmp_path / "one_voice"), "--nfe", "1",
                            "--speaker", "spk0"]) == 0
    assert set(read_kv(tmp_path / "one_voice/utt2spk").values()) == {"spk0"}
    assert nfe_sweep.main(["--exp-dirs", str(trained), "--data-dir", str(unseen), "--out-dir", str(tmp_path / "s"), "--nfe", "1",
                           "--no-f0", "--speaker", "spk0"]) == 0
    # a model with speaker ids and a prompt encoder: the unseen speaker's voice is its prompt's, with no id
    monkeypatch.undo()  # the stand-in codec, which encodes the prompts
    root = trained.parents[2]
    exp = root / "exp/stage2/id_and_prompt"
    assert train.main(train_args(root, "exp/stage2/id_and_prompt", "model.speaker.use_prompt=true", "+data.prompt_seconds=[0.5,1.0]",
                                 "trainer.max_steps=2", dev=False)) == 0
    seen = []
    real = synthesize.Synthesizer.synthesize

    def spy(self, texts, speaker=None, prompt=None, **kw):
        seen.append((list(speaker), prompt is not None))
        return real(self, texts, speaker=speaker, prompt=prompt, **kw)

    monkeypatch.setattr(synthesize.Synthesizer, "synthesize", spy)
    with pytest.raises(SystemExit, match="--prompt-from-data or --prompt-wav"):
        synthesize.main(["--exp-dir", str(exp), "--data-dir", str(unseen), "--out-dir", str(tmp_path / "y"), "--nfe", "1"])
    for ref in (["--prompt-from-data"], ["--prompt-wav", data.wav_scp[data.utts[0]]]):
        out = tmp_path / f"prompted{len(ref)}"
        seen.clear()
        assert synthesize.main(["--exp-dir", str(exp), "--data-dir", str(unseen), "--out-dir", str(out), "--nfe", "1", *ref]) == 0
        spk = {u: s for u, s in read_kv(unseen / "utt2spk").items()}
        assert read_kv(out / "utt2spk") == spk
        assert all(prompted for _, prompted in seen)
        assert sorted(map(str, (x for batch, _ in seen for x in batch))) == sorted("-1" if s == "p225" else s for s in spk.values())


def test_channel_weights_of_a_pitch_channel_the_codec_lacks_are_dropped(corpus, capsys):
    """The default recipe's {0: 10.0} weights the codec's log-F0; the fake corpus's stand-in codec has no pitch
    channel (no config.yaml with model.pitch), so channel 0 is an ordinary one: dropped, noted, and the exp dir's
    config.yaml records what was used."""
    from shared.config import load_config

    exp = corpus / "exp/stage2/weights"
    assert train.main(train_args(corpus, "exp/stage2/weights", "+model.flow.channel_weights={0: 10.0, 3: 2.0}", "trainer.max_steps=1",
                                 dev=False)) == 0
    assert "model.flow.channel_weights {0: 10.0} dropped" in capsys.readouterr().out
    assert load_config(exp / "config.yaml")["model"]["flow"]["channel_weights"] == {3: 2.0}
    from stage2_flow.model import load_trained

    assert load_trained(exp)[0].flow.channel_weights == {3: 2.0}


def test_dopri5_synthesises_an_utterance_alone_as_in_a_batch(trained):
    """The promise of Synthesizer.synthesize (an item's audio does not depend on what it is batched with) held for the
    fixed-step solvers only: dopri5's batch-wide error norm moved a trained model's latents by up to 0.076."""
    s = synthesize.Synthesizer.from_exp_dir(trained)
    _, alone = s.synthesize(["the cat"], speaker="spk1", solver="dopri5", seed=[3], return_latents=True)
    _, both = s.synthesize(["the cat", "a big red dog sat on the mat far near the sea"], speaker="spk1", solver="dopri5",
                           seed=[3, 4], return_latents=True)
    assert alone[0].shape == both[0].shape and float((alone[0] - both[0]).abs().max()) < 1e-4


def test_synthesis_of_a_data_dir_names_its_unknown_symbols(trained, tmp_path, capsys, monkeypatch):
    """They become <unk> (training never saw it) and the audio is made, with a warning naming them, once."""
    from shared.datadir import DataDir

    monkeypatch.setattr("stage2_flow.codec.load_codec", lambda *args, **kwargs: SmoothCodec())
    data = DataDir.load(trained.parents[2] / "data/test", validate=False)
    first = data.utts[0]
    data.token[first] = "t h \u0283 e"
    data.save(tmp_path / "unknown")
    assert synthesize.main(["--exp-dir", str(trained), "--nfe", "1", "--data-dir", str(tmp_path / "unknown"), "--out-dir",
                            str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "1 utterance(s) hold 1 symbol(s) the model was not trained on, synthesised as <unk>" in err
    assert f"'\u0283' (in {first})" in err and len(list((tmp_path / "out/wav").glob("*.wav"))) == 3


def test_each_ddp_rank_draws_its_own_flow_times(tmp_path):
    """The per-step generator was seeded from (seed, step) alone: every rank drew the same flow times, CFG drops and
    windows. Rank 0 (a single process) draws as before; rank 1 neither what rank 0 draws nor what it draws a step later."""
    from types import SimpleNamespace

    from shared.config import load_config
    from stage2_flow.experiment import Stage2Experiment

    cfg = load_config(CONF)
    cfg["model"].update(latent_dim=8, n_vocab=20, n_speakers=2)
    g = torch.Generator().manual_seed(0)
    batch = {"utts": ["a", "b"], "tokens": torch.randint(1, 20, (2, 5), generator=g), "tok_lens": torch.tensor([5, 3]),
             "latents": torch.randn(2, 8, 12, generator=g), "frm_lens": torch.tensor([12, 8]), "spk": torch.tensor([0, 1])}

    def draws(rank: int, step: int) -> tuple[int, torch.Tensor]:
        """The seed of the step's generator and the flow times drawn from it."""
        module = Stage2Experiment(cfg, tmp_path)
        module._trainer = SimpleNamespace(global_rank=rank, global_step=step)
        module.log = lambda *args, **kwargs: None
        seeds, times, losses, sample_t = [], [], module.model.losses, module.model.flow.sample_t
        module.model.losses = lambda batch, generator: seeds.append(generator.initial_seed()) or losses(batch, generator=generator)
        module.model.flow.sample_t = lambda *args, **kwargs: times.append(sample_t(*args, **kwargs)) or times[-1]
        module.training_step(batch, 0)
        return seeds[0], times[0]

    assert draws(0, 5)[0] == cfg["train"]["seed"] * 1_000_003 + 5  # as before
    assert not torch.equal(draws(1, 5)[1], draws(0, 5)[1]) and not torch.equal(draws(1, 5)[1], draws(0, 6)[1])


def test_training_config_errors():
    """`loss: {dur: 0.1}` left the duration loss at weight 1, silently; with trainer.max_steps -1 (or none) and no
    train.lr_total_steps the LR fell to its floor right after warm-up."""
    from shared.config import ConfigError, load_config
    from stage2_flow.experiment import check_training_config

    cfg = load_config(CONF)
    assert check_training_config(cfg) == 20  # trainer.max_steps
    with pytest.raises(ConfigError, match="unknown key.* dur; the losses are flow, flow_data, prior, duration"):
        check_training_config({**cfg, "loss": {"flow": 1.0, "dur": 0.1}})
    # a misspelt train key left its setting at the default without a word; stage one's names are pointed to ours
    with pytest.raises(ConfigError, match=r"train: unknown key\(s\) lr_min_ratoi, warmup_stpes; the keys are seed"):
        check_training_config({**cfg, "train": {**cfg["train"], "lr_min_ratoi": 0.1, "warmup_stpes": 3}})
    with pytest.raises(ConfigError, match="grad_clip is stage one's; here it is trainer.gradient_clip_val"):
        check_training_config({**cfg, "train": {**cfg["train"], "grad_clip": 1.0}})
    # and a misspelt section, data or validation key
    with pytest.raises(ConfigError, match=r"stage two config: unknown section\(s\) validaton; the sections are model, "):
        check_training_config({**cfg, "validaton": {"nfe": 4}})
    with pytest.raises(ConfigError, match=r"validation: unknown key\(s\) temprature; the keys are num_utts, nfe"):
        check_training_config({**cfg, "validation": {**cfg["validation"], "temprature": 0.5}})
    with pytest.raises(ConfigError, match=r"data: unknown key\(s\) batch_frame; the keys are batch_frames"):
        check_training_config({**cfg, "data": {**cfg["data"], "batch_frame": 100}})
    # and a model key FlowTTS reads with a default (its sections' constructors refuse theirs)
    with pytest.raises(ConfigError, match=r"model: unknown key\(s\) phone_balnce; the keys are mode, latent_dim"):
        check_training_config({**cfg, "model": {**cfg["model"], "phone_balnce": 1.0}})
    with pytest.raises(ConfigError, match=r"model.speaker: unknown key\(s\) use_promt; the keys are dim, use_id"):
        check_training_config({**cfg, "model": {**cfg["model"], "speaker": {"use_promt": True}}})
    with pytest.raises(ConfigError, match=r"model.alignfree: unknown key\(s\) mask_fraction"):
        check_training_config({**cfg, "model": {"mode": "alignfree", "alignfree": {"mask_fraction": [0.5, 1.0]}}})
    # an empty section (YAML's null) failed later with "'NoneType' object has no attribute 'get'"
    with pytest.raises(ConfigError, match=r"stage two config: 'train' must be a section of keys, not None \(YAML reads"):
        check_training_config({**cfg, "train": None})
    with pytest.raises(ConfigError, match=r"'model.speaker' must be a section of keys, not None"):
        check_training_config({**cfg, "model": {**cfg["model"], "speaker": None}})
    for trainer in ({**cfg["trainer"], "max_steps": -1}, {k: v for k, v in cfg["trainer"].items() if k != "max_steps"},
                    {**cfg["trainer"], "max_steps": -1, "max_time": "00:00:05:00"}):  # a time budget, but lr_horizon steps
        with pytest.raises(ConfigError, match="train.lr_total_steps"):
            check_training_config({**cfg, "trainer": trainer})
    assert check_training_config({**cfg, "trainer": {**cfg["trainer"], "max_steps": -1}, "train": {**cfg["train"], "lr_total_steps": 50}}) == 50
    budget = check_training_config({**cfg, "trainer": {**cfg["trainer"], "max_steps": -1, "max_time": "00:00:05:00"},
                                    "train": {**cfg["train"], "lr_horizon": "budget"}})
    assert budget > 10**12  # the decay ends with the time budget, never with a step count


def test_command_line_errors(corpus, trained, capsys):
    """--init-from alone (a TypeError once); --dev-dir without --dev-latents or the reverse (validation silently off);
    model.* overrides with --init-from (silently dropped for the base model's section)."""
    cases = [(["--config", str(CONF), "--init-from", str(trained), "--exp-dir", str(corpus / "exp/stage2/never")],
              "give --latents and --data-dir"),
             (["--dev-dir", str(corpus / "data/dev"), *train_args(corpus, "exp/stage2/never", dev=False)], "both --dev-dir and --dev-latents"),
             (["--dev-latents", str(corpus / "dump/fake/dev"), *train_args(corpus, "exp/stage2/never", dev=False)], "both --dev-dir"),
             (["--init-from", str(trained), *train_args(corpus, "exp/stage2/never"), "model.flow.cfg_drop=0.0"],
              "model.flow.cfg_drop=0.0 cannot change it")]
    for args, message in cases:
        with pytest.raises(SystemExit):
            train.main(args)
        assert message in capsys.readouterr().err
    assert not (corpus / "exp/stage2/never").exists()


def test_latents_of_another_codec_are_refused(corpus, tmp_path):
    """A dump whose codec.json names another codec than --stage1-exp-dir (stage one retrained, not encoded again)."""
    import shutil

    from shared.io import read_json, write_json

    for option, dump in (("--latents", "train"), ("--dev-latents", "dev")):
        other = tmp_path / dump
        shutil.copytree(corpus / "dump/fake" / dump, other)
        write_json(other / "codec.json", {"exp_dir": str(tmp_path / "vae_old"), "model_sha256": "0" * 64, "sample_rate": 16000,
                                          "hop_length": 256, "latent_dim": 8})
        args = train_args(corpus, f"exp/stage2/codec_{dump}")
        args[args.index(option) + 1] = str(other)
        with pytest.raises(SystemExit, match=f"{option} {other}: encoded by the codec of {tmp_path / 'vae_old'} .*not by the "
                                             f"stage-one codec {(corpus / 'exp/stage1/fake').resolve()}"):
            train.main(args)
        write_json(other / "codec.json", {**read_json(other / "codec.json"), "exp_dir": str(corpus / "exp/stage1/fake"),
                                          "model_sha256": None})  # the stand-in codec (no weights): named by its dir
        check_latent_codec(other, corpus / "exp/stage1/fake", option)


def test_latent_stats_of_another_codec_are_refused(corpus, tmp_path, capsys):
    """latent_stats.json said neither which dump nor which codec it was computed on, so statistics of another codec's
    latents (stage one retrained and only the dump encoded again, or of the other kind: --continuous) normalised these
    unremarked. They record both now (shared.latents.LatentStats); statistics whose codec is not the dump's are refused,
    and older ones without a codec warn, once."""
    import json
    import re
    import shutil

    from shared.io import write_json
    from shared.latents import LatentStats, codec_info, read_latent_scp
    from stage2_flow.codec import load_codec

    stage1, dump = tmp_path / "stage1", tmp_path / "train"
    shutil.copytree(corpus / "exp/stage1/fake", stage1)
    shutil.copytree(corpus / "dump/fake/train", dump)
    info = codec_info(load_codec(stage1), stage1)
    write_json(dump / "codec.json", info)
    stats = LatentStats()
    for path in read_latent_scp(dump).values():
        stats.add(torch.load(path))
    args = train_args(corpus, "exp/stage2/stats_codec", "trainer.max_steps=1", "trainer.val_check_interval=1")
    args[args.index("--stage1-exp-dir") + 1], args[args.index("--latents") + 1] = str(stage1), str(dump)
    write_json(stage1 / "latent_stats.json", stats.result(dump, {**info, "continuous": True}))
    with pytest.raises(SystemExit, match=r"latent_stats.json: latent statistics of the codec of .*continuous True.*, "
                                         rf"computed on {re.escape(str(dump.resolve()))}, but --latents {re.escape(str(dump))} "
                                         r"holds .*continuous False"):
        train.main(args)
    assert not (corpus / "exp/stage2/stats_codec/model.pt").exists()
    write_json(stage1 / "latent_stats.json", stats.result(dump, info))
    capsys.readouterr()
    assert train.main(args) == 0
    (dump / "codec.json").unlink()  # another tool's dump: checked against the stage-one codec, as its own latents
    write_json(stage1 / "latent_stats.json", stats.result(dump, {**info, "continuous": True}))
    with pytest.raises(SystemExit, match=r"continuous True.*, but --latents .* \(no codec.json\) is to be of the stage-one "
                                         r"codec .*continuous False"):
        train.main(["--overwrite", *args])
    write_json(stage1 / "latent_stats.json", stats.result(dump, info))
    assert train.main(["--overwrite", *args]) == 0
    write_json(dump / "codec.json", info)
    assert "latent_stats.json" not in capsys.readouterr().err
    old = json.loads((corpus / "exp/stage1/fake/latent_stats.json").read_text())  # make_fake_corpus's: no codec
    assert "codec" not in old
    write_json(stage1 / "latent_stats.json", old)
    assert train.main(["--overwrite", *args]) == 0  # checked against --latents and --dev-latents: one warning
    assert capsys.readouterr().err.count("records no codec") == 1


def test_a_checkpoint_is_not_resumed_on_other_tokens(trained, tmp_path):
    """A resumed run continues the checkpoint's weights: on another token list (or latent statistics, or speakers)
    its ids would mean other things, so it is refused and the dir's own description is kept."""
    import shutil

    root = trained.parents[2]
    exp = root / "exp/stage2/resume_other_tokens"
    shutil.copytree(trained, exp)
    own = (exp / "tokens.txt").read_text()
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(own + "zz\n")
    args = train_args(root, "exp/stage2/resume_other_tokens", "trainer.max_steps=8")
    args[args.index("--tokens") + 1] = str(tokens)
    with pytest.raises(SystemExit, match="holds weights trained with another tokens.txt"):
        train.main(args)
    assert (exp / "tokens.txt").read_text() == own


def test_training_utterances_of_unknown_speakers_are_an_error(corpus, tmp_path):
    import shutil

    from shared.io import read_kv, write_kv

    shutil.copytree(corpus / "data/train", tmp_path / "train")
    utt2spk = read_kv(tmp_path / "train/utt2spk")
    lost = sorted(utt2spk)[:2]
    write_kv(tmp_path / "train/utt2spk", {u: s for u, s in utt2spk.items() if u not in lost})
    args = train_args(corpus, "exp/stage2/nospk", dev=False)
    args[args.index("--data-dir") + 1] = str(tmp_path / "train")
    with pytest.raises(ValueError, match=rf"2 utterance\(s\) of .* e\.g\. \['{lost[0]}', '{lost[1]}'\]"):
        train.main(args)


def test_reflow_pairs_of_another_model_are_refused(trained, tmp_path):
    """Reflow pairs were never checked against --init-from: pairs of an earlier (or another) model trained silently."""
    from shared.io import file_sha256, read_json, write_json, write_kv

    pairs = tmp_path / "pairs"
    write_kv(pairs / "pairs.scp", {"u": "pairs/u.pt"})
    args = ["--config", str(CONF), "--init-from", str(trained), "--reflow-pairs", str(pairs), "--exp-dir", str(tmp_path / "exp")]
    with pytest.raises(SystemExit, match=f"--reflow-pairs {pairs}: no model_sha256 .*: regenerate them"):
        train.main(args)
    write_json(pairs / "reflow_info.json", {"exp_dir": "/elsewhere/flow", "model_sha256": "0" * 64, "nfe": 4})
    with pytest.raises(SystemExit, match=f"made by another model \\(sha256 0{{64}}, /elsewhere/flow\\) than --init-from "
                                         f"{trained / 'model.pt'} \\(sha256 {file_sha256(trained / 'model.pt')}\\)"):
        train.main(args)
    assert not (tmp_path / "exp").exists()
    write_json(pairs / "reflow_info.json", {**read_json(pairs / "reflow_info.json"), "model_sha256": file_sha256(trained / "model.pt")})
    (pairs / "pairs").mkdir()
    torch.save({"x1": torch.zeros(8, 5), "mu_frames": torch.zeros(8, 5)}, pairs / "pairs/u.pt")
    with pytest.raises(ValueError, match=f"{pairs / 'pairs/u.pt'}: not a reflow pair \\(no x0\\)"):  # past the check, not a KeyError
        train.main(args)
