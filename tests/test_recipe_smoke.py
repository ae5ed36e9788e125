"""The whole default recipe, every stage, on a tiny corpus with tiny models (``run.sh --smoke true``).

This is the end-to-end tier: it proves the chain corpus -> data dirs -> tokens -> stage one -> latents ->
resynthesis -> stage two -> reflow -> synthesis -> evaluation -> packing holds together. Quality is not
judged here (a few training steps); the numbers come from the full recipe (README, egs/espeak_mini/tts1/RESULTS.md).
The recipes' own logic (options, finished-stage markers, each system's paths) is also tested in seconds with
``python`` stubbed, and the packing of stage 10 on its own.
"""

import json
import shutil
import subprocess
import sys

import pytest
import torch
from recipe_utils import copy_egs, recipe_env, run_recipe, stub_python_env

from shared.audio import load_audio
from shared.config import load_config
from shared.datadir import DataDir, validate_data_dir
from shared.io import file_sha256
from shared.text import Frontend
from stage2_flow.synthesize import Synthesizer


@pytest.mark.slow
def test_smoke_recipe_runs_every_stage(tmp_path):
    recipe = copy_egs(tmp_path) / "espeak_mini" / "tts1"
    # a codec whose model is not its config's (as another --stage1-conf would give): stage 7 fine-tunes its decoder
    # without being told the model again (conf/decoder_gta_smoke.yaml holds training settings only)
    r = run_recipe(recipe, "--smoke", "true", "--budget-scale", "1.5", "--stage1-args", "model.decoder.num_layers=2",
                   timeout=900)
    log = r.stdout[-6000:] + r.stderr[-3000:]
    assert r.returncode == 0, log
    # --budget-scale reached the four trainings of the system (smoke configs: 6, 20, 8, 4 steps), not the judge's
    exp = recipe / "exp"
    steps = {d: load_config(exp / d / "config.yaml")["trainer"]["max_steps"]
             for d in ("stage1/vae", "stage2/flow", "stage2/flow_reflow", "stage2/flow_reflow/decoder")}
    assert steps == {"stage1/vae": 9, "stage2/flow": 30, "stage2/flow_reflow": 12, "stage2/flow_reflow/decoder": 6}
    assert load_config(exp / "asr" / "config.yaml")["train"]["max_steps"] == 20
    for split in ("train", "dev", "test"):
        assert validate_data_dir(recipe / "data" / split) == []
        assert (recipe / "data" / split / "token").is_file()
    # the British voice's tokens are its own accent's phones (utt2lang), and stage two knows its language
    train = DataDir.load(recipe / "data" / "train")
    assert {train.utt2lang[u] for u in train.utts if u.startswith("engbxrpm1")} == {"en-gb-x-rp"}
    frontend = Frontend.from_config(recipe / "exp" / "stage2" / "flow_reflow" / "frontend.yaml")
    assert frontend.config.speaker_languages["engbxrpm1"] == "en-gb-x-rp"
    s1, s2 = recipe / "exp" / "stage1" / "vae", recipe / "exp" / "stage2" / "flow_reflow"
    assert (s1 / "latent_stats.json").is_file()
    assert (recipe / "dump" / "vae" / "train" / "latents.scp").is_file()
    assert json.loads((s1 / "eval" / "test" / "metrics.json").read_text())["metrics"]["pesq_wb"]["n"] == 5
    # stage 7's decoder fine-tuning: GTA latents of the training set (1 noise draw), a decoder that synthesis uses
    gta = recipe / "dump" / "vae" / "train_gta_flow_reflow"
    assert len((gta / "latents.scp").read_text().splitlines()) == len(DataDir.load(recipe / "data" / "train"))
    assert (s2 / "decoder" / "model.pt").is_file()
    assert load_config(s2 / "decoder" / "config.yaml")["model"] == load_config(s1 / "config.yaml")["model"]
    assert load_config(s1 / "config.yaml")["model"]["decoder"]["num_layers"] == 2
    # ...fine-tuned on this very model.pt's output (stage2_flow.model.codec_dir refuses a decoder of an older one)
    assert load_config(s2 / "decoder" / "config.yaml")["data"]["source_model_sha256"] == file_sha256(s2 / "model.pt")
    assert "codec of exp/stage2/flow_reflow/decoder\n" in next((recipe / "exp" / "logs").glob("stage8.*")).read_text()
    synth = DataDir.load(s2 / "synth" / "test")
    assert len(synth) == 5
    metrics = json.loads((s2 / "eval" / "test" / "metrics.json").read_text())
    assert metrics["metrics"]["mcd_dtw"]["n"] == 5 and "per_gen" in metrics["corpus"]
    # stage 9 adds the codec's PER to stage 5's scores without recomputing them
    assert "reused from exp/stage1/vae/eval/test/metrics_signal.json" in next((recipe / "exp" / "logs").glob("stage9.*")).read_text()
    codec = json.loads((s1 / "eval" / "test" / "metrics.json").read_text())
    assert codec["metrics"]["pesq_wb"]["n"] == 5 and "per_gen" in codec["corpus"]
    results = (recipe / "exp" / "RESULTS.md").read_text()
    assert "MCD" in results and "PESQ" in results
    assert len(list((exp / ".done" / "smoke").iterdir())) == 11  # a smoke run's markers, not the full recipe's
    assert (exp / "nfe_sweep" / "flow_reflow" / "summary.json").is_file() and "| flow_reflow NFE 1 |" in results
    assert "Training budgets scaled (`--budget-scale`" in results and "vae x1.5" in results and "decoder x1.5" in results
    assert "## Per speaker on test" in results and "| engbxrpm1 | 1 |" in results
    # a diagnostic of the recipe's local/ on the trained codec
    env = recipe_env()
    width = subprocess.run([sys.executable, "local/posterior_width.py", "exp/stage1/vae", "data/dev", "--num-utts", "2"],
                           cwd=recipe, env=env, capture_output=True, text=True, timeout=120)
    assert width.returncode == 0 and "5 learned channels, 2 utterances" in width.stdout, width.stdout + width.stderr
    assert "median" in width.stdout
    # the final models scored on a larger held-out set (local/score_screen.sh), here 4 more sentences
    # ...with a second judge (stage 9's recogniser trained with another seed stands in for another run's), pooled
    judge2 = tmp_path / "judge2"
    trained2 = subprocess.run([sys.executable, "-m", "shared.phone_recognizer.train", "--config", "conf/asr_smoke.yaml",
                               "--data-dir", "data/train", "--token-file", "data/train/token", "--dev-dir", "data/dev",
                               "--exp-dir", str(judge2), "train.seed=1"],
                              cwd=recipe, env=env, capture_output=True, text=True, timeout=300)
    assert trained2.returncode == 0, trained2.stdout[-3000:] + trained2.stderr[-3000:]
    screen = subprocess.run(["bash", "local/score_screen.sh", "--num-sentences", "4", "--extra-judges", str(judge2)],
                            cwd=recipe, env=env, capture_output=True, text=True, timeout=300)
    assert screen.returncode == 0, screen.stdout[-3000:] + screen.stderr[-3000:]
    assert screen.stdout.count("[screen] ") == 2, screen.stdout[-3000:]
    assert screen.stdout.count("pooled over 2 judges") == 2, screen.stdout[-3000:]
    pooled = json.loads((s2 / "eval" / "screen" / "judges.json").read_text())["systems"]["exp/stage2/flow_reflow/synth/screen"]
    per_judge = pooled["per_judge"]
    assert pooled["pooled"]["errors"] == per_judge["exp/asr"]["errors"] + per_judge[str(judge2)]["errors"]
    n_screen = len(DataDir.load(recipe / "data" / "screen"))
    assert n_screen > 0 and json.loads((s2 / "eval" / "screen" / "metrics.json").read_text())["num_utts"] == n_screen
    assert json.loads((s1 / "eval" / "screen" / "metrics.json").read_text())["metrics"]["pesq_wb"]["n"] == n_screen
    again = run_recipe(recipe, "--smoke", "true", "--stage", "3", timeout=300)
    assert again.returncode == 0 and again.stdout.count("done already") == 8, again.stdout[-3000:]
    times = (recipe / "exp" / "stage_times.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in times] == [str(n) for n in range(11)]
    # stage 8 in two parallel jobs (data dir split, two syntheses, combined): the same audio as the one job's
    one = {u: load_audio(path, 16000) for u, path in synth.wav_scp.items()}
    nj = run_recipe(recipe, "--smoke", "true", "--stage", "8", "--stop-stage", "8", "--synth-nj", "2", "--overwrite", "true",
                    timeout=300)
    assert nj.returncode == 0, nj.stdout[-3000:] + nj.stderr[-3000:]
    two = DataDir.load(s2 / "synth" / "test")
    assert two.utts == synth.utts and all("/split2/" in path for path in two.wav_scp.values())
    for u, a in one.items():
        b = load_audio(two.wav_scp[u], 16000)
        assert a.shape == b.shape and 10 * torch.log10(a.pow(2).sum() / (a - b).pow(2).sum().clamp(min=1e-12)) > 50, u
    packed = next((recipe / "exp" / "packed").iterdir())
    assert (packed / "MODEL_CARD.md").is_file() and (packed / "stage2" / "config.yaml").is_file()
    assert (packed / "stage2" / "decoder" / "model.pt").is_file()
    card = (packed / "MODEL_CARD.md").read_text()
    assert "`stage1/config.yaml`" in card and "`stage2/decoder/config.yaml`" in card
    assert "nfe=4, solver='euler', temperature=0.2)" in card  # the recipe's settings
    moved = tmp_path / "elsewhere" / packed.name  # a packed model works wherever it is copied
    shutil.copytree(packed, moved)
    shutil.rmtree(recipe / "exp" / "stage1")
    shutil.rmtree(recipe / "exp" / "stage2")
    wav = Synthesizer.from_exp_dir(moved / "stage2").synthesize(["Hello world."])[0]
    assert wav.ndim == 1 and wav.numel() > 1000


@pytest.mark.slow
def test_recipe_can_tokenise_every_voice_in_one_language(tmp_path):
    """``--utt2lang false``: the British voice's transcripts in en-us phones, as before utt2lang (stages 0-2)."""
    recipe = copy_egs(tmp_path) / "espeak_mini" / "tts1"
    r = run_recipe(recipe, "--smoke", "true", "--utt2lang", "false", "--stop-stage", "2", timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    train = DataDir.load(recipe / "data" / "train")
    tokens = (recipe / "data" / "train" / "token").read_text(encoding="utf-8").splitlines()
    british = [line.split()[1:] for line in tokens if line.startswith("engbxrpm1")]
    assert british and set(train.utt2lang.values()) == {"en-us", "en-gb-x-rp"}
    assert not {"ɒ", "əʊ", "eə"} & {t for toks in british for t in toks}  # RP-only phones
    assert Frontend.from_config(recipe / "exp" / "frontend.yaml").config.speaker_languages == {}


@pytest.mark.slow
def test_ljspeech_recipe_runs_every_stage_with_its_own_configs(tmp_path):
    """The LJSpeech recipe, stages 0-10, with its GPU-sized configs (22.05 kHz, DDP strategy, its recogniser) on a
    fake corpus in LJSpeech's layout, on the CPU (`--ngpu 0`): two steps per training, float32 (a CPU without
    native bf16 would emulate the configs' bf16-mixed very slowly), only the last checkpoint kept (2.6 GB, removed at the end)."""
    from test_corpora import _tone

    corpus = tmp_path / "LJSpeech-1.1"
    lines = []
    for i in range(1, 11):
        _tone(corpus / "wavs" / f"LJ001-{i:04d}.wav", seconds=2.5)  # long enough for a sentence's phones
        lines.append(f"LJ001-{i:04d}|Raw text {i}.|The quick brown fox number {i} jumps.")
    (corpus / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    recipe = copy_egs(tmp_path) / "ljspeech" / "tts1"
    few = "trainer.max_steps=2 trainer.val_check_interval=2 trainer.checkpoint_every_n_steps=2 +trainer.keep_checkpoints=0"
    few += " trainer.precision=32-true train.num_workers=0"
    r = run_recipe(recipe, "--corpus-dir", str(corpus), "--local-data-opts", "--num-dev 2 --num-test 3", "--ngpu", "0",
                   "--stage1-args", f"{few} train.total_steps=2 train.batch_size=2 validation.num_utts=1",
                   "--stage2-args", f"{few} validation.num_utts=1",
                   "--reflow-gen-args", "--nfe 2 --solver euler --max-utts 4", "--reflow-args", f"{few} validation.num_utts=1",
                   "--decoder-args", f"{few} train.total_steps=2 train.batch_size=2",
                   "--asr-args", "train.max_steps=2 train.num_threads=2",
                   "--nfe-sweep", "1 2", "--nfe-sweep-args", "--max-utts 2", timeout=900)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    times = (recipe / "exp" / "stage_times.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in times] == [str(n) for n in range(11)]
    assert load_config(recipe / "exp" / "stage1" / "vae" / "config.yaml")["model"]["sample_rate"] == 22050
    assert len(DataDir.load(recipe / "exp" / "stage2" / "flow_reflow" / "synth" / "test")) == 3
    assert "PESQ" in (recipe / "exp" / "RESULTS.md").read_text()
    assert (next((recipe / "exp" / "packed").iterdir()) / "MODEL_CARD.md").is_file()
    shutil.rmtree(recipe / "exp")  # 2.6 GB of GPU-sized checkpoints; pytest keeps the last runs' tmp dirs


def _stubbed(tmp_path, recipe):
    """``run(*args) -> (result, the python commands it ran)``: the recipe with every python command a stub."""
    env, log = stub_python_env(tmp_path), tmp_path / "python.log"

    def run(*args):
        log.unlink(missing_ok=True)
        r = run_recipe(recipe, *args, env=env, timeout=120)
        return r, log.read_text() if log.is_file() else ""
    return run


def test_stage_markers_name_the_settings_they_were_done_with(tmp_path):
    """A finished stage is skipped only when rerun with the settings it was done with. A smoke run's markers used to
    be taken for the full recipe's (`./run.sh` after `--smoke true` skipped every stage, keeping the tiny corpus and
    models), and `--reflow false` skipped stages 7-10 though exp/stage2/flow had no synthesis or evaluation."""
    recipe = copy_egs(tmp_path) / "espeak_mini" / "tts1"
    run = _stubbed(tmp_path, recipe)
    r, calls = run("--smoke", "true")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "--num-sentences 40 " in calls and "conf/stage1_smoke.yaml" in calls
    # the full recipe writes the same paths: it refuses the smoke run's tree unless told to replace it
    r, calls = run()
    assert r.returncode == 1 and "--smoke true" in r.stderr and "--overwrite true" in r.stderr and calls == ""
    r, calls = run("--overwrite", "true")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "--num-sentences 2400 " in calls and "conf/stage1.yaml" in calls and "conf/stage2_reflow.yaml" in calls
    assert not list((recipe / "exp" / ".done" / "smoke").iterdir())
    # the default system: its sweep, RESULTS.md where the README says, the times of its own stages
    assert "--out-dir exp/nfe_sweep/flow_reflow " in calls and "--stage-tags vae flow flow_reflow" in calls
    assert "--out exp/RESULTS.md" in calls and "--out-dir exp/packed/espeak_mini_flow_reflow" in calls
    r, calls = run()
    assert r.returncode == 0 and r.stdout.count("done already") == 11 and calls == ""
    # the system without reflow: stages 7-10 again, for exp/stage2/flow, beside the default system's outputs
    r, calls = run("--reflow", "false")
    assert r.returncode == 0 and r.stdout.count("done already") == 7, r.stdout[-3000:] + r.stderr[-3000:]
    assert "--exp-dir exp/stage2/flow --data-dir data/test --out-dir exp/stage2/flow/synth/test" in calls
    assert "--out-dir exp/nfe_sweep/flow " in calls and "--out exp/RESULTS_flow.md" in calls
    assert "--out-dir exp/packed/espeak_mini_flow\n" in calls and "reflow" not in calls
    r, calls = run("--reflow", "false", "--stage", "8")
    assert r.returncode == 0 and r.stdout.count("done already") == 3 and calls == ""


def test_bad_options_are_clear_errors(tmp_path):
    """A non-integer stage used to make every stage's test fail ("integer expression expected"), run nothing and exit 0;
    --fs was listed but changed nothing (the sample rate is the stage-one config's)."""
    recipe = copy_egs(tmp_path) / "espeak_mini" / "tts1"
    run = _stubbed(tmp_path, recipe)
    for opt, value in (("--stage", "3a"), ("--stop-stage", "x"), ("--synth-nj", "2.5")):
        r, calls = run(opt, value)
        assert r.returncode == 1 and f"{opt} takes an integer, got '{value}'" in r.stderr and calls == "", r.stderr
        assert "integer expression expected" not in r.stdout + r.stderr
    r, _ = run("--fs", "22050")
    assert r.returncode == 1 and "unknown option --fs" in r.stderr
    assert "--fs " not in run("--help")[0].stdout
    # the real-corpus recipes have no smoke configs or smoke corpus: --smoke true is refused before any stage runs
    for corpus in ("ljspeech", "libritts", "vctk"):
        r, calls = _stubbed(tmp_path, recipe.parent.parent / corpus / "tts1")("--smoke", "true")
        assert r.returncode == 1 and "--smoke true: conf/stage1_smoke.yaml not found" in r.stderr and calls == "", r.stderr


def test_score_screen_says_what_is_missing(tmp_path):
    """local/score_screen.sh before stage 8 has run: it used to exit 2 silently (`ls` of no split*/ under pipefail)."""
    recipe = copy_egs(tmp_path) / "espeak_mini" / "tts1"
    for f in ("exp/stage1/vae/model.pt", "exp/stage2/flow_reflow/model.pt", "exp/asr/model.pt", "exp/tokens.txt"):
        (recipe / f).parent.mkdir(parents=True, exist_ok=True)
        (recipe / f).touch()
    env = stub_python_env(tmp_path)

    def screen():
        return subprocess.run(["bash", "local/score_screen.sh"], cwd=recipe, env=env, capture_output=True, text=True,
                              timeout=60)
    r = screen()
    assert r.returncode == 1, r.stderr
    assert "exp/stage2/flow_reflow/synth/test/synth.json is missing: run run.sh through stage 9 first" in r.stderr
    # stage 8 in parallel jobs: the first job's settings
    split = recipe / "exp" / "stage2" / "flow_reflow" / "synth" / "test" / "split2" / "1" / "synth.json"
    split.parent.mkdir(parents=True)
    split.write_text("{}")
    r = screen()
    assert r.returncode == 0, r.stderr
    assert "- exp/stage2/flow_reflow/synth/test/split2/1/synth.json\n" in (tmp_path / "python.log").read_text()


def test_pack_leaves_out_only_what_the_model_can_do_without(tmp_path, monkeypatch, capsys):
    """Files of MAX_FILE_MB or more are not packed: a large model.pt used to be left out silently, as was any other."""
    from shared import pack as packing

    s1, s2 = tmp_path / "stage1", tmp_path / "stage2"
    for d in (s1, s2):
        d.mkdir()
        (d / "config.yaml").write_text("model: {}\n")
        (d / "model.pt").write_bytes(bytes(100))
    (s2 / "extra.bin").write_bytes(bytes(4096))
    monkeypatch.setattr(packing, "MAX_FILE_MB", 0.002)  # 2097 bytes
    out = packing.pack(s1, s2, tmp_path / "packed")
    assert (out / "stage2" / "model.pt").is_file() and not (out / "stage2" / "extra.bin").exists()
    assert f"not packed (0.002 MB or more each): {s2 / 'extra.bin'}" in capsys.readouterr().err
    (s2 / "model.pt").write_bytes(bytes(4096))
    with pytest.raises(ValueError, match="model.pt of 0.002 MB or more would be left out"):
        packing.pack(s1, s2, tmp_path / "packed2")
    assert not (tmp_path / "packed2").exists() and not (tmp_path / "packed2.tmp").exists()


def test_results_of_a_system_count_its_own_stages(tmp_path):
    """Stage 9 of a second system (here --reflow false) used to total every system's stage times, and read the one
    NFE sweep all systems wrote."""
    from shared.io import write_json
    from shared.results import main as results_main

    exp = tmp_path / "exp"
    stages = [(0, "corpus"), (3, "stage1_train.vae"), (3, "stage1_train.rvq"), (6, "stage2_train.flow"),
              (8, "synth.flow_reflow"), (8, "synth.flow")]
    (exp / "stage_times.tsv").parent.mkdir(parents=True)
    (exp / "stage_times.tsv").write_text("".join(f"{n}\t{name}\t60\n" for n, name in stages))
    write_json(exp / "nfe_sweep" / "flow" / "summary.json", {"flow": {"1": {"rtf": 0.01}}})
    out = exp / "RESULTS_flow.md"
    assert results_main(["--exp-root", str(exp), "--nfe-sweep-dir", str(exp / "nfe_sweep" / "flow"),
                         "--stage-tags", "vae", "flow", "flow", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| 8 synth.flow |" in text and "| **total** | **4m00s** |" in text and "| flow NFE 1 |" in text
    assert "reflow" not in text and "rvq" not in text
    # the default system: its stage two is tagged flow too, but synth.flow (stage 8) is the other system's
    out = exp / "RESULTS.md"
    assert results_main(["--exp-root", str(exp), "--stage-tags", "vae", "flow", "flow_reflow", "--out", str(out)]) == 0
    text = out.read_text()
    assert "| 8 synth.flow_reflow |" in text and "| 8 synth.flow |" not in text and "| **total** | **4m00s** |" in text


def test_a_zero_shot_models_card_synthesises_with_a_prompt(tmp_path):
    """Its model card's example gives the reference audio a zero-shot model without speaker ids needs (the synthesiser
    refuses to run it without one)."""
    from shared.config import save_config
    from shared.pack import model_card

    for name, speaker in (("zero_shot", {"use_id": False, "use_prompt": True}), ("ids", {"use_id": True, "use_prompt": False})):
        (tmp_path / name / "s1").mkdir(parents=True)
        save_config({"model": {"speaker": speaker}}, tmp_path / name / "s2" / "config.yaml")
        card = model_card(tmp_path / name / "out", tmp_path / name / "s1", tmp_path / name / "s2", None, None, {"nfe": 4})
        assert ("prompt=prompt, nfe=4" in card and "--prompt-wav reference.wav --nfe 4" in card) == (name == "zero_shot"), card
