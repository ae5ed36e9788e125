"""The GPU paths: training on ``accelerator: gpu`` in bf16, and every inference verb with ``--device cuda``
giving what the CPU gives (the same start noise from CPU generators; outputs equal up to float rounding and
TF32 convolutions). Skipped where no CUDA GPU is visible, so CI (CPU only) skips them; they are run on a
lent GPU machine (README, Configuration). The CPU-side checks of the same code live in the other test files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import write_data_dir
from recipe_utils import copy_egs, run_recipe
from shared.io import read_json, read_kv
from shared.latents import read_latent_scp

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible")]

CONF = Path(__file__).resolve().parents[1] / "egs/espeak_mini/tts1/conf"


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm().clamp(min=1e-12))


def on_gpu(result):
    """``result`` (a verb's exit status or return value, computed as the argument) after asserting that the GPU held
    memory while it ran: a ``--device cuda`` that fell back to the CPU would pass every "GPU equals CPU" check here.
    Call as ``on_gpu(fresh_peak() or verb(...))``."""
    assert torch.cuda.max_memory_allocated() > _held_before[0], "nothing new was allocated on the GPU: it ran on the CPU"
    return result


_held_before = [0]


def fresh_peak() -> None:
    """Start counting the GPU memory a verb allocates (above what earlier tests left held)."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    _held_before[0] = torch.cuda.memory_allocated()


@pytest.fixture(scope="module")
def s2(tmp_path_factory):
    """A fake stage-two corpus and a model trained on the GPU in bf16-mixed (validation included)."""
    from stage2_flow import train
    from stage2_flow.fake import make_fake_corpus

    root = tmp_path_factory.mktemp("s2cuda")
    make_fake_corpus(root, n_train=24, n_dev=4, n_test=3)
    args = ["--config", str(CONF / "stage2_smoke.yaml"), "--stage1-exp-dir", str(root / "exp/stage1/fake"),
            "--latents", str(root / "dump/fake/train"), "--data-dir", str(root / "data/train"), "--tokens", str(root / "exp/tokens.txt"),
            "--dev-latents", str(root / "dump/fake/dev"), "--dev-dir", str(root / "data/dev"), "--exp-dir", str(root / "exp/flow"),
            "trainer.max_steps=6", "trainer.val_check_interval=6", "trainer.accelerator=gpu", "+trainer.precision=bf16-mixed",
            "trainer.gradient_clip_val=1.0"]
    assert on_gpu(fresh_peak() or train.main(args)) == 0
    return root


def test_stage_two_trains_on_the_gpu(s2):
    ckpt = torch.load(s2 / "exp/flow/checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 6
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())


def test_reflow_pairs_on_the_gpu_match_the_cpu(s2, tmp_path):
    from stage2_flow import reflow

    common = ["--exp-dir", str(s2 / "exp/flow"), "--data-dir", str(s2 / "data/train"), "--latents", str(s2 / "dump/fake/train"),
              "--nfe", "4", "--max-utts", "6", "--temperature", "0.5"]
    assert reflow.main(["generate", *common, "--out-dir", str(tmp_path / "cpu"), "--device", "cpu"]) == 0
    assert on_gpu(fresh_peak() or reflow.main(["generate", *common, "--out-dir", str(tmp_path / "cuda"), "--device", "cuda"])) == 0
    keys = sorted(read_kv(tmp_path / "cpu" / "pairs.scp"))
    assert keys == sorted(read_kv(tmp_path / "cuda" / "pairs.scp")) and len(keys) == 6
    for k in keys:
        a, b = (torch.load(tmp_path / d / "pairs" / f"{k}.pt", weights_only=False) for d in ("cpu", "cuda"))
        assert a["x1"].device.type == b["x1"].device.type == "cpu"  # saved on the CPU, whatever ran them
        assert rel_err(b["x0"], a["x0"]) < 1e-3, k  # the same noise: CPU generator, moved
        assert rel_err(b["x1"], a["x1"]) < 1e-2, k


def test_synthesis_gta_and_likelihood_on_the_gpu_match_the_cpu(s2, tmp_path):
    from stage2_flow import gta, likelihood, synthesize

    exp = s2 / "exp/flow"
    lat = {}
    for dev in ("cpu", "cuda"):
        check = on_gpu if dev == "cuda" else (lambda result: result)
        out = tmp_path / f"synth_{dev}"
        assert check(fresh_peak() or synthesize.main(["--exp-dir", str(exp), "--data-dir", str(s2 / "data/test"), "--out-dir",
                                                      str(out), "--nfe", "4", "--temperature", "0.5", "--save-latents",
                                                      "--device", dev])) == 0
        lat[dev] = {u: torch.load(p) for u, p in read_latent_scp(out).items()}
        assert check(fresh_peak() or gta.main(["--exp-dir", str(exp), "--data-dir", str(s2 / "data/dev"), "--latents",
                                               str(s2 / "dump/fake/dev"), "--out-dir", str(tmp_path / f"gta_{dev}"),
                                               "--device", dev])) == 0
        assert check(fresh_peak() or likelihood.main(["--exp-dir", str(exp), "--latents", str(s2 / "dump/fake/dev"), "--data-dir",
                                                      str(s2 / "data/dev"), "--nfe", "4", "--probes", "2", "--device", dev,
                                                      "--out", str(tmp_path / f"ll_{dev}.json")])) == 0
    assert sorted(lat["cpu"]) == sorted(lat["cuda"]) and len(lat["cpu"]) == 3
    for u in lat["cpu"]:
        assert lat["cuda"][u].shape == lat["cpu"][u].shape and rel_err(lat["cuda"][u], lat["cpu"][u]) < 1e-2, u
    for u, p in read_latent_scp(tmp_path / "gta_cpu").items():
        assert rel_err(torch.load(read_latent_scp(tmp_path / "gta_cuda")[u]), torch.load(p)) < 1e-2, u
    a, b = read_json(tmp_path / "ll_cpu.json"), read_json(tmp_path / "ll_cuda.json")
    assert b["utts"] == a["utts"] == 4 and b["bpd"] == pytest.approx(a["bpd"], rel=1e-2, abs=1e-3)


def test_stage_one_trains_encodes_and_decodes_on_the_gpu(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    write_data_dir(tmp_path / "train", {f"spk{i % 2}_tr{i}": (f"spk{i % 2}", f"tone {i}", 1.0) for i in range(6)})
    write_data_dir(tmp_path / "dev", {f"spk{i}_dv{i}": (f"spk{i}", f"tone {i}", 1.0) for i in range(2)})

    def run(module: str, *args: str) -> str:
        p = subprocess.run([sys.executable, "-m", module, *args], cwd=root, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, f"{module}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        return p.stdout + p.stderr

    exp = tmp_path / "vae"
    # bf16-mixed with the discriminator on from step 0 and clipping of G and D: the GPU's precision "auto" picks
    log = run("stage1_vae.train", "--config", str(CONF / "stage1_smoke.yaml"), "--data-dir", str(tmp_path / "train"),
        "--dev-dir", str(tmp_path / "dev"), "--exp-dir", str(exp), "trainer.accelerator=gpu", "trainer.precision=bf16-mixed",
        "trainer.max_steps=4", "train.disc_start_step=0", "train.grad_clip=0.5")
    assert read_json(exp / "train_summary.json")["steps"] == 4 and "GPU available: True (cuda), used: True" in log
    for dev in ("cpu", "cuda"):
        run("stage1_vae.encode", "--exp-dir", str(exp), "--data-dir", str(tmp_path / "dev"), "--out-dir", str(tmp_path / f"z_{dev}"),
            "--device", dev)
        run("stage1_vae.decode", "--exp-dir", str(exp), "--latents-dir", str(tmp_path / f"z_{dev}"), "--out-dir",
            str(tmp_path / f"wav_{dev}"), "--device", dev)
    for u, p in read_latent_scp(tmp_path / "z_cpu").items():
        assert rel_err(torch.load(read_latent_scp(tmp_path / "z_cuda")[u]), torch.load(p)) < 1e-2, u
    from shared.audio import load_audio

    for u, p in read_kv(tmp_path / "wav_cpu" / "wav.scp").items():
        assert rel_err(load_audio(read_kv(tmp_path / "wav_cuda" / "wav.scp")[u], 16000), load_audio(p, 16000)) < 5e-2, u


def test_phone_recognizer_trains_on_the_gpu(tmp_path):
    from shared.config import merge
    from shared.phone_recognizer.toy import make_toy_data_dir
    from shared.phone_recognizer.train import DEFAULT_CONFIG, train

    make_toy_data_dir(tmp_path / "train", 12, seed=1)
    make_toy_data_dir(tmp_path / "dev", 4, seed=2, prefix="dev")
    cfg = merge(DEFAULT_CONFIG, {"model": {"conv_channels": 16, "hidden": 16, "num_layers": 1},
                                 "train": {"max_steps": 4, "batch_frames": 2000, "log_every": 2, "ckpt_every": 2,
                                           "warmup_steps": 2, "device": "cuda"}})
    summary = on_gpu(fresh_peak() or train(cfg, str(tmp_path / "train"), str(tmp_path / "train" / "token"), str(tmp_path / "exp"),
                                           str(tmp_path / "dev")))
    assert summary["steps"] == 4 and summary["dev_per"] >= 0


def test_smoke_recipe_with_one_gpu(tmp_path):
    """``run.sh --smoke true --ngpu 1``: Lightning on the GPU for the three trainings, --device cuda for the rest."""
    recipe = copy_egs(tmp_path) / "espeak_mini" / "tts1"
    r = run_recipe(recipe, "--smoke", "true", "--ngpu", "1", timeout=900)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    logs = recipe / "exp" / "logs"
    assert "GPU available: True (cuda), used: True" in next(logs.glob("stage3.*")).read_text()
    assert "synthesising on cuda," in next(logs.glob("stage8.*")).read_text()
    assert len(read_kv(recipe / "exp" / "stage2" / "flow_reflow" / "synth" / "test" / "wav.scp")) == 5
    assert "PESQ" in (recipe / "exp" / "RESULTS.md").read_text()
