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
from pathlib import Path

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
    # titled by the corpus and system (was "Results: tts1"), the TTS scores by the sampling of the synthesis scored
    assert results.startswith("# Results: espeak_mini, system flow_reflow\n")
    assert "## TTS (stage two) on test (NFE 4, euler solver, temperature 0.2)" in results
    assert len(list((exp / ".done" / "smoke").iterdir())) == 12  # a smoke run's markers, not the full recipe's
    assert (exp / "nfe_sweep" / "flow_reflow" / "summary.json").is_file() and "| flow_reflow NFE 1 |" in results
    assert "Training budgets scaled (`--budget-scale`" in results and "stage one (vae) x1.5" in results and "decoder x1.5" in results
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
    # the references' analyses, shared by stage 5's, stage 9's and the screening's evaluations
    assert {p.stem for p in (recipe / "exp" / "ref_analysis").glob("*.pkl")} >= set(DataDir.load(recipe / "data" / "screen").utts)
    # the set is kept for the next call: another size asked of it was ignored, the old set scored
    bigger = subprocess.run(["bash", "local/score_screen.sh", "--num-sentences", "6"], cwd=recipe, env=env,
                            capture_output=True, text=True, timeout=60)
    assert bigger.returncode == 1 and "--num-sentences 6: data/screen exists already" in bigger.stderr, bigger.stderr
    # a rerun skips what was done with its settings; with others, it refuses, naming them (it skipped the stage)
    again = run_recipe(recipe, "--smoke", "true", "--stage", "3", "--budget-scale", "1.5", "--stage1-args",
                       "model.decoder.num_layers=2", timeout=300)
    assert again.returncode == 0 and again.stdout.count("done already") == 9, again.stdout[-3000:]
    other = run_recipe(recipe, "--smoke", "true", "--stage", "3", "--budget-scale", "1.5", timeout=300)
    assert other.returncode == 1 and "stage 3 (stage1_train.vae) was done with other settings" in other.stderr, other.stderr
    assert "stage1_args: 'model.decoder.num_layers=2' then, now ''" in other.stderr and "--stage1-tag NAME" in other.stderr
    times = (recipe / "exp" / "stage_times.tsv").read_text().splitlines()
    assert [line.split("\t")[:2] for line in times][6:9] == [
        ["6", "stage2_train.flow"], ["7", "reflow.flow_reflow"], ["7", "decoder.flow_reflow"]]
    assert [line.split("\t")[0] for line in times] == [str(n) for n in (*range(8), *range(7, 11))]
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
    # RESULTS.md's figure, linked relative to it, is in the package (its link was broken there)
    assert "](nfe_sweep/flow_reflow/quality_vs_nfe.png)" in (packed / "RESULTS.md").read_text()
    assert (packed / "nfe_sweep" / "flow_reflow" / "quality_vs_nfe.png").is_file()
    assert (packed / "stage2" / "decoder" / "model.pt").is_file()
    card = (packed / "MODEL_CARD.md").read_text()
    assert "`stage1/config.yaml`" in card and "`stage2/decoder/config.yaml`" in card
    assert "nfe=4, solver='euler', temperature=0.2)" in card  # the recipe's settings, as the synthesis recorded them
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
    assert [line.split("\t")[0] for line in times] == [str(n) for n in (*range(8), *range(7, 11))]  # reflow, decoder
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
    assert "-m shared.phone_recognizer.train --overwrite --config conf/asr.yaml" in calls  # exp/asr was the smoke run's
    # the default system: its sweep, RESULTS.md where the README says, the times of its own stages
    assert "--out-dir exp/nfe_sweep/flow_reflow " in calls and "--stage-tags vae flow flow_reflow" in calls
    assert "--out exp/RESULTS.md" in calls and "--out-dir exp/packed/espeak_mini_flow_reflow" in calls
    r, calls = run()
    assert r.returncode == 0 and r.stdout.count("done already") == 12 and calls == ""
    # the system without reflow: stages 7-10 again, for exp/stage2/flow, beside the default system's outputs
    r, calls = run("--reflow", "false")
    assert r.returncode == 0 and r.stdout.count("done already") == 7, r.stdout[-3000:] + r.stderr[-3000:]
    assert "--exp-dir exp/stage2/flow --data-dir data/test --out-dir exp/stage2/flow/synth/test" in calls
    assert "--out-dir exp/nfe_sweep/flow " in calls and "--out exp/RESULTS_flow.md" in calls
    assert "--out-dir exp/packed/espeak_mini_flow\n" in calls and "reflow" not in calls
    r, calls = run("--reflow", "false", "--stage", "8")
    assert r.returncode == 0 and r.stdout.count("done already") == 3 and calls == ""


def _stage_calls(calls: str, verb: str) -> list[str]:
    return [line for line in calls.splitlines() if f"-m {verb} " in line]


def test_decoder_finetune_false_is_a_system_of_its_own(tmp_path):
    """`--decoder-finetune false` decodes with stage one's decoder, named (synthesis and the NFE sweep took the final
    model's decoder/ whenever there was one, so after a default run the setting changed nothing, and a decoder/ left
    stale by `--stage 7 --overwrite true --decoder-finetune false` made stage 8 fail); its markers of stages 7-10 are
    its own (they were the default system's: a run without the setting after one with it skipped the fine-tuning)."""
    recipe = copy_egs(tmp_path) / "espeak_mini" / "tts1"
    run = _stubbed(tmp_path, recipe)
    done, s2 = recipe / "exp" / ".done", recipe / "exp" / "stage2" / "flow_reflow"
    r, calls = run("--decoder-finetune", "false")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert _stage_calls(calls, "stage2_flow.reflow") and not _stage_calls(calls, "stage2_flow.gta")
    assert not _stage_calls(calls, "stage1_vae.train")[1:]  # stage 3 only: no decoder fine-tuning
    assert "--stage1-exp-dir exp/stage1/vae " in _stage_calls(calls, "stage2_flow.synthesize")[0]
    assert "--codec-exp-dir exp/stage1/vae " in _stage_calls(calls, "stage2_flow.nfe_sweep")[0] and "codec_dir" not in calls
    assert "--stage-tags vae flow flow_reflow_s1decoder " in calls and "--out exp/RESULTS_flow_reflow_s1decoder.md" in calls
    assert "--out-dir exp/nfe_sweep/flow_reflow_s1decoder " in calls
    assert "--out-dir exp/packed/espeak_mini_flow_reflow_s1decoder\n" in calls
    # the reflow training made the final model, which both systems decode: its marker and time are the model's
    assert sorted(m.name for m in done.glob("stage[789].*")) == [
        "stage7.reflow.flow_reflow", "stage8.synth.flow_reflow_s1decoder", "stage9.eval.flow_reflow_s1decoder"]
    # the default system afterwards: it finds the reflow done (stage 7 of it used to redo it, timed as its own), then
    # fine-tunes the decoder, and synthesis decodes with the final model's own
    (s2 / "synth" / "test").mkdir(parents=True)
    (s2 / "synth" / "test" / "wav.scp").touch()  # the other system's synthesis: the same dir, so it goes
    r, calls = run()
    assert r.returncode == 0 and r.stdout.count("done already") == 8, r.stdout[-3000:] + r.stderr[-3000:]
    assert "stage 7 (reflow.flow_reflow): done already" in r.stdout and not _stage_calls(calls, "stage2_flow.reflow")
    times = [line.split("\t")[:2] for line in (recipe / "exp" / "stage_times.tsv").read_text().splitlines()]
    assert [t for t in times if t[0] == "7"] == [["7", "reflow.flow_reflow"], ["7", "decoder.flow_reflow"]]
    assert _stage_calls(calls, "stage2_flow.gta") and "--exp-dir exp/stage2/flow_reflow/decoder" in calls
    assert "--stage1-exp-dir" not in _stage_calls(calls, "stage2_flow.synthesize")[0] and "codec_dir('exp/stage2/flow_reflow')" in calls
    assert "--out exp/RESULTS.md" in calls and "--out-dir exp/packed/espeak_mini_flow_reflow\n" in calls
    assert not (s2 / "synth" / "test").exists() and "removing flow_reflow_s1decoder's synthesis of test" in r.stdout
    assert not list(done.glob("stage*.*_s1decoder"))
    # stage 8 of the other system replaced this one's synthesis: stage 9 alone would score the other's audio
    r, calls = run("--decoder-finetune", "false", "--stage", "9")
    assert r.returncode == 1 and "holds the synthesis of flow_reflow (decoded by the other decoder)" in r.stdout, r.stdout
    assert "(--stage 8)" in r.stdout and not _stage_calls(calls, "shared.evaluate")
    # ...and a decoder/ that stage 7 of the default system left (stale for another model.pt) is not used
    for f in ("model.pt", "config.yaml", "decoder/model.pt"):
        (s2 / f).parent.mkdir(parents=True, exist_ok=True)
        (s2 / f).touch()
    (s2 / "eval" / "test").mkdir(parents=True)
    r, calls = run("--decoder-finetune", "false", "--stage", "7", "--overwrite", "true")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "--stage1-exp-dir exp/stage1/vae " in _stage_calls(calls, "stage2_flow.synthesize")[0]
    # shared.results and shared.pack take a stage-two dir's decoder/ where there is one: told to leave it out
    assert all("--stage2-exp-dir exp/stage2/flow_reflow --no-decoder " in c
               for c in _stage_calls(calls, "shared.results") + _stage_calls(calls, "shared.pack"))
    # the final model was retrained: the default system's decoder (fine-tuned on the old model's output) is no longer
    # done, so its next run fine-tunes again instead of stopping at a stale decoder/ in stage 8
    assert [m.name for m in done.glob("stage[789]*.flow_reflow")] == ["stage7.reflow.flow_reflow"]


def test_the_default_system_never_decodes_with_stage_ones_decoder_silently(tmp_path):
    """Synthesis takes a stage-two dir's decoder/ where there is one, else stage one's: stage 8 of the system with the
    fine-tuned decoder stops where stage 7 has not made it (it would have scored stage one's decoder as this one)."""
    recipe = copy_egs(tmp_path) / "espeak_mini" / "tts1"
    run = _stubbed(tmp_path, recipe)
    assert run()[0].returncode == 0
    (recipe / "exp" / "stage2" / "flow_reflow" / "decoder" / "model.pt").unlink()
    r, calls = run("--stage", "8", "--stop-stage", "8", "--overwrite", "true")
    assert r.returncode == 1 and "decoder/model.pt is missing" in r.stdout + r.stderr
    assert not _stage_calls(calls, "stage2_flow.synthesize")


def test_overwrite_keeps_the_phone_recogniser(tmp_path):
    """exp/asr judges every system's RESULTS; its training is time-capped, so another would score differently: until
    2026-12-07 any `--overwrite true` run through stage 9 retrained it."""
    recipe = copy_egs(tmp_path) / "espeak_mini" / "tts1"
    run = _stubbed(tmp_path, recipe)
    assert run()[0].returncode == 0
    (recipe / "exp" / "asr").mkdir(parents=True)
    (recipe / "exp" / "asr" / "model.pt").touch()
    r, calls = run("--stage", "9", "--stop-stage", "9", "--overwrite", "true")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    asr = _stage_calls(calls, "shared.phone_recognizer.train")
    assert len(asr) == 1 and "--overwrite" not in asr[0] and "--overwrite" in _stage_calls(calls, "shared.evaluate")[0]
    assert "keeping the phone recogniser exp/asr" in r.stdout and "--retrain-asr true, or remove exp/asr" in r.stdout
    r, calls = run("--stage", "9", "--stop-stage", "9", "--overwrite", "true", "--retrain-asr", "true")
    assert r.returncode == 0 and "--overwrite" in _stage_calls(calls, "shared.phone_recognizer.train")[0]


def test_libritts_defaults_to_a_zero_shot_system(tmp_path):
    """LibriTTS's test speakers (test-clean) are none of its training ones: its default stage two takes a speech
    prompt. The id model (--stage2-conf conf/stage2.yaml) is a system of its own beside it (both were tagged flow:
    `--stage2-conf conf/stage2_prompt.yaml` after a default run found stages 6-10 done)."""
    recipe = copy_egs(tmp_path) / "libritts" / "tts1"
    run = _stubbed(tmp_path, recipe)
    r, calls = run("--corpus-dir", str(tmp_path / "LibriTTS"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    train6 = _stage_calls(calls, "stage2_flow.train")[0]
    assert "--config conf/stage2_prompt.yaml " in train6 and "--exp-dir exp/stage2/flow_prompt " in train6
    assert "--exp-dir exp/stage2/flow_prompt_reflow --data-dir data/test " in calls and "--out exp/RESULTS.md" in calls
    assert "--max-utts 20000 --pick spread" in _stage_calls(calls, "stage2_flow.reflow")[0]  # not the CPU recipe's 360 shortest
    r, calls = run("--corpus-dir", str(tmp_path / "LibriTTS"), "--stage2-conf", "conf/stage2.yaml")
    assert r.returncode == 0 and r.stdout.count("done already") == 6, r.stdout[-3000:] + r.stderr[-3000:]
    assert "--config conf/stage2.yaml " in calls and "--exp-dir exp/stage2/flow_reflow --data-dir data/test " in calls
    assert "--out exp/RESULTS_flow_reflow.md" in calls


def test_vctk_held_out_speakers_command(tmp_path):
    """VCTK's default test set is its training speakers' (an id model voices them); its run.sh's command for held-out
    speakers trains the zero-shot model and scores data/test_unseen first."""
    recipe = copy_egs(tmp_path) / "vctk" / "tts1"
    run = _stubbed(tmp_path, recipe)
    r, calls = run("--corpus-dir", str(tmp_path / "VCTK"), "--stage2-conf", "conf/stage2_prompt.yaml",
                   "--local-data-opts", "--heldout-speakers p225,p226,p227,p228", "--test-sets", "test_unseen test")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "--heldout-speakers p225,p226,p227,p228" in calls and "--config conf/stage2_prompt.yaml " in calls
    synth = _stage_calls(calls, "stage2_flow.synthesize")
    assert [c.split("--data-dir ")[1].split()[0] for c in synth] == ["data/test_unseen", "data/test"]
    assert all("--exp-dir exp/stage2/flow_prompt_reflow " in c for c in synth)
    assert "--test-set test_unseen --out exp/RESULTS_flow_prompt_reflow.md" in calls
    speaker = load_config(recipe / "conf" / "stage2_prompt.yaml")["model"]["speaker"]
    assert speaker["use_prompt"] and not speaker["use_id"]


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
    help_text = run("--help")[0].stdout
    assert "--fs " not in help_text and "--retrain-asr " in help_text
    # the *_args values are split on spaces (one override per word): the help says so
    assert "are split on spaces into words" in help_text and "not train.betas=[0.9, 0.99]" in help_text
    # the real-corpus recipes have no smoke configs or smoke corpus: --smoke true is refused before any stage runs
    for corpus in ("ljspeech", "libritts", "vctk"):
        r, calls = _stubbed(tmp_path, recipe.parent.parent / corpus / "tts1")("--smoke", "true")
        assert r.returncode == 1 and "--smoke true: conf/stage1_smoke.yaml not found" in r.stderr and calls == "", r.stderr


def test_score_screen_says_what_is_missing(tmp_path):
    """local/score_screen.sh before stage 8 has run: it used to exit 2 silently (`ls` of no split*/ under pipefail).
    It reads stage 8's settings from the synthesis the test set's wav.scp names: after a `--synth-nj N` run, a job's
    (until 2026-12-07 it preferred the test set's own synth.json, an earlier run's then), and names the system as
    run.sh does (it paired `--stage1-tag fsq` with exp/stage2/flow_reflow, the vae codec's)."""
    recipe = copy_egs(tmp_path) / "espeak_mini" / "tts1"
    for f in ("exp/stage1/vae/model.pt", "exp/stage2/flow_reflow/model.pt", "exp/asr/model.pt", "exp/tokens.txt"):
        (recipe / f).parent.mkdir(parents=True, exist_ok=True)
        (recipe / f).touch()
    env = stub_python_env(tmp_path)
    real_python = sys.executable
    # the stub runs the script's reading of synth.json for real, and only logs every other python command
    (tmp_path / "stub_bin" / "python").write_text(
        f'#!/usr/bin/env bash\necho "$*" >> "{tmp_path / "python.log"}"\n'
        f'case "$1 $2" in "- "*/synth/test) exec "{real_python}" "$@" ;; esac\n')

    def screen(*args):
        (tmp_path / "python.log").unlink(missing_ok=True)
        r = subprocess.run(["bash", "local/score_screen.sh", *args], cwd=recipe, env=env, capture_output=True, text=True,
                           timeout=60)
        return r, (tmp_path / "python.log").read_text() if (tmp_path / "python.log").is_file() else ""
    r, _ = screen()
    assert r.returncode == 1, r.stderr
    assert "exp/stage2/flow_reflow/synth/test/wav.scp is missing: run run.sh through stage 9 first" in r.stderr
    sampling = {"nfe": 4, "solver": "euler", "temperature": 0.2, "cfg_scale": 0.0, "rate": 1.0, "seed": 0, "sway": None}
    test = recipe / "exp" / "stage2" / "flow_reflow" / "synth" / "test"
    test.mkdir(parents=True)
    (test / "synth.json").write_text(json.dumps({**sampling, "nfe": 32}))  # an earlier one-job run's
    # stage 8 in parallel jobs, of a recipe dir since moved (wav.scp's paths are absolute)
    split = test / "split2" / "2" / "synth.json"
    split.parent.mkdir(parents=True)
    split.write_text(json.dumps({**sampling, "paths": {"codec": "/old/place/exp/stage2/flow_reflow/decoder"}}))
    (test / "wav.scp").write_text("u1 /old/place/exp/stage2/flow_reflow/synth/test/split2/2/wav/u1.wav\n")
    r, calls = screen()
    assert r.returncode == 0, r.stderr
    assert "- exp/stage2/flow_reflow/synth/test exp/stage1/vae\n" in calls  # job 2's settings, read by shared.results
    synth = next(line for line in calls.splitlines() if "stage2_flow.synthesize" in line)
    assert "--out-dir exp/stage2/flow_reflow/synth/screen --nfe 4 --solver euler " in synth and "--stage1-exp-dir" not in synth
    # one job, decoded by stage one's decoder (run.sh --decoder-finetune false): the screening set is too
    (test / "synth.json").write_text(json.dumps({**sampling, "paths": {"codec": "/old/place/exp/stage1/vae"}}))
    (test / "wav.scp").write_text("u1 /old/place/exp/stage2/flow_reflow/synth/test/wav/u1.wav\n")
    r, calls = screen()
    assert r.returncode == 0, r.stderr
    synth = next(line for line in calls.splitlines() if "stage2_flow.synthesize" in line)
    assert "--nfe 4 " in synth and synth.endswith("--stage1-exp-dir exp/stage1/vae"), synth
    # another codec: its own system, as run.sh names it
    r, _ = screen("--stage1-tag", "fsq")
    assert r.returncode == 1 and "exp/stage1/fsq/model.pt is missing" in r.stderr, r.stderr
    (recipe / "exp" / "stage1" / "fsq").mkdir()
    (recipe / "exp" / "stage1" / "fsq" / "model.pt").touch()
    r, _ = screen("--stage1-tag", "fsq")
    assert r.returncode == 1 and "exp/stage2/flow_fsq_reflow/model.pt is missing" in r.stderr, r.stderr
    r, _ = screen("--stage1-conf", "conf/stage1_fsq.yaml")  # the codec's tag as run.sh names it
    assert r.returncode == 1 and "exp/stage2/flow_fsq_reflow/model.pt is missing" in r.stderr, r.stderr
    # the job that made the test set's audio recorded nothing: said, not synthesised with the defaults
    (test / "wav.scp").write_text("u1 /old/place/exp/stage2/flow_reflow/synth/test/split2/1/wav/u1.wav\n")
    r, calls = screen()
    assert r.returncode == 1 and "synth/test/split2/1/synth.json is missing" in r.stderr, r.stderr
    assert "stage2_flow.synthesize" not in calls


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


def test_pack_and_results_of_the_system_decoded_by_stage_ones_decoder(tmp_path):
    """``--no-decoder`` (``--decoder-finetune false``): the package leaves ``stage2/decoder/`` out, so it decodes with
    stage one's decoder, as the system was scored; the card and RESULTS say so."""
    from shared import pack as packing
    from shared.results import collect

    s1, s2 = tmp_path / "stage1", tmp_path / "stage2"
    for d in (s1, s2, s2 / "decoder"):
        d.mkdir(parents=True)
        (d / "config.yaml").write_text("model: {}\n")
        (d / "model.pt").write_bytes(bytes(100))
    with_it = packing.pack(s1, s2, tmp_path / "with")
    without = packing.pack(s1, s2, tmp_path / "without", decoder=False)
    assert (with_it / "stage2" / "decoder" / "model.pt").is_file() and not (without / "stage2" / "decoder").exists()
    assert "stage2/decoder/config.yaml" in (with_it / "MODEL_CARD.md").read_text()
    assert "decoder" not in (without / "MODEL_CARD.md").read_text()
    notes = collect(tmp_path, s1, s2, "test", tmp_path / "R.md", decoder=False)["notes"]
    assert f"decoded by stage one's own decoder ({s1})" in notes and "fine-tuned" not in notes


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



def test_results_of_the_s1decoder_system_count_the_reflow_training_it_decodes(tmp_path):
    """`--decoder-finetune false` after a default run reuses the final model that the default system's stage 7 trained
    (reflow); its RESULTS counted only its own stage 7 (seconds of finding it done), not that training. Stage 7's
    reflow row is the final model's, counted and marked shared by both of its systems; the decoder row is not."""
    from shared.results import main as results_main

    exp = tmp_path / "exp"
    stages = [(0, "corpus", 10), (3, "stage1_train.vae", 600), (6, "stage2_train.flow", 300),
              (7, "reflow.flow_reflow", 160), (7, "decoder.flow_reflow", 230), (8, "synth.flow_reflow", 20),
              (8, "synth.flow_reflow_s1decoder", 20), (9, "eval.flow_reflow_s1decoder", 50)]
    exp.mkdir()
    (exp / "stage_times.tsv").write_text("".join(f"{n}\t{name}\t{sec}\n" for n, name, sec in stages))

    def stage_rows(*tags: str) -> list[str]:
        out = exp / f"RESULTS_{tags[2]}.md"
        assert results_main(["--exp-root", str(exp), "--stage-tags", *tags, "--out", str(out)]) == 0
        text = out.read_text()
        return text[text.index("## Stage times"):].split("\n\n")[1].splitlines()[2:]

    assert stage_rows("vae", "flow", "flow_reflow_s1decoder") == [
        "| 0 corpus | 10.0s |", "| 3 stage1_train.vae | 10m00s |", "| 6 stage2_train.flow | 5m00s |",
        "| 7 reflow.flow_reflow (shared with flow_reflow) | 2m40s |", "| 8 synth.flow_reflow_s1decoder | 20.0s |",
        "| 9 eval.flow_reflow_s1decoder | 50.0s |", "| **total** | **19m00s** |"]
    default = stage_rows("vae", "flow", "flow_reflow")
    assert "| 7 reflow.flow_reflow (shared with flow_reflow_s1decoder) | 2m40s |" in default
    assert "| 7 decoder.flow_reflow | 3m50s |" in default and "| **total** | **22m00s** |" in default
    # the systems of a model without reflow have no reflow training to count
    assert not any("reflow" in row for row in stage_rows("vae", "flow", "flow_s1decoder"))
    # nor is it shared where the other system was never run
    (exp / "stage_times.tsv").write_text("".join(f"{n}\t{name}\t{sec}\n" for n, name, sec in stages[:6]))
    assert "| 7 reflow.flow_reflow | 2m40s |" in stage_rows("vae", "flow", "flow_reflow")

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


def test_stage_one_validates_a_data_dir_before_reading_its_audio(tmp_path):
    """Stage 1 computed utt2dur first: a bad data dir gave utt2dur's traceback instead of the validator's errors, which
    name each problem's file, line and utterance."""
    recipe = copy_egs(tmp_path) / "espeak_mini" / "tts1"
    r, calls = _stubbed(tmp_path, recipe)("--stage", "1", "--stop-stage", "1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    train = [c for c in _stage_calls(calls, "shared.datadir") if c.split()[3] == "data/train"]
    assert train == ["-m shared.datadir validate data/train", "-m shared.datadir utt2dur data/train",
                     "-m shared.datadir validate data/train --check-audio"]
    # for real, on a data dir with a missing wav and a text line for no utterance
    for x in ("train", "dev", "test"):
        bad = DataDir(wav_scp={"u1": str(tmp_path / "nowhere.wav")}, text={"u1": "hi"}, utt2spk={"u1": "s"})
        bad.save(recipe / "data" / x)
    (recipe / "data" / "train" / "text").write_text("u1 hi\nu2 there\n")
    r = run_recipe(recipe, "--stage", "1", "--stop-stage", "1", "--overwrite", "true", timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, r.stdout[-3000:] + r.stderr[-3000:]
    assert "audio file not found" in r.stdout and "u2" in r.stdout, r.stdout[-3000:]


def test_results_and_package_state_the_sampling_of_the_scored_synthesis(tmp_path, monkeypatch):
    """The model card's "settings the results were measured with" were stage 10's options, whatever the synthesis
    that was scored had used; RESULTS.md's TTS table did not say them, and its figure's link was broken in the
    package. A `--synth-nj 2` synthesis records its settings in its jobs' synth.json (the set's own is an earlier run's)."""
    from shared import pack as packing
    from shared.io import write_json
    from shared.results import main as results_main

    exp = tmp_path / "exp"
    s1, s2 = exp / "stage1" / "vae", exp / "stage2" / "flow_reflow"
    for d in (s1, s2):
        d.mkdir(parents=True)
        (d / "config.yaml").write_text("model: {}\n")
        (d / "model.pt").write_bytes(bytes(100))
    sampling = {"nfe": 4, "solver": "euler", "temperature": 0.2, "cfg_scale": 0.0, "rate": 1.0, "seed": 0, "sway": None}
    test = s2 / "synth" / "test"
    write_json(test / "synth.json", {**sampling, "nfe": 32})  # an earlier one-job run's
    write_json(test / "split2" / "1" / "synth.json", {**sampling, "nfe": 8, "cfg_scale": 1.5})
    (test / "wav.scp").write_text("u1 /moved/from/exp/stage2/flow_reflow/synth/test/split2/1/wav/u1.wav\n")
    write_json(s2 / "eval" / "test" / "metrics.json", {"metrics": {}, "corpus": {}})
    write_json(exp / "nfe_sweep" / "flow_reflow" / "summary.json", {"flow_reflow": {"1": {"mcd_dtw": 9.0}, "2": {"mcd_dtw": 7.0}}})
    out = exp / "RESULTS.md"
    assert results_main(["--exp-root", str(exp), "--stage1-exp-dir", str(s1), "--stage2-exp-dir", str(s2),
                         "--nfe-sweep-dir", str(exp / "nfe_sweep" / "flow_reflow"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "## TTS (stage two) on test (NFE 8, euler solver, temperature 0.2, cfg_scale 1.5)" in text
    assert "](nfe_sweep/flow_reflow/quality_vs_nfe.png)" in text
    assert packing.main(["--stage1-exp-dir", str(s1), "--stage2-exp-dir", str(s2), "--results", str(out),
                         "--synth-dir", str(test), "--out-dir", str(tmp_path / "packed")]) == 0
    card = (tmp_path / "packed" / "MODEL_CARD.md").read_text()
    assert "nfe=8, solver='euler', temperature=0.2, cfg_scale=1.5)" in card and "--nfe 8 --solver euler" in card
    assert "--cfg-scale 1.5 ..." in card
    assert (tmp_path / "packed" / "nfe_sweep" / "flow_reflow" / "quality_vs_nfe.png").is_file()
    # stage 10 names the synthesis its results scored, and RESULTS.md the corpus and system
    recipe = copy_egs(tmp_path) / "espeak_mini" / "tts1"
    r, calls = _stubbed(tmp_path, recipe)("--test-sets", "test")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    pack = _stage_calls(calls, "shared.pack")[0]
    assert "--synth-dir exp/stage2/flow_reflow/synth/test " in pack and "--nfe" not in pack
    assert all("--title Results: espeak_mini, system flow_reflow " in c for c in _stage_calls(calls, "shared.results"))
    # a title of its own by default too (it was the working dir's name: "Results: tts1")
    monkeypatch.chdir(recipe)
    assert results_main(["--exp-root", str(exp), "--stage-tags", "vae", "flow", "flow_reflow", "--out", str(out)]) == 0
    assert out.read_text().startswith("# Results: espeak_mini, system flow_reflow\n")  # as tts.sh names it


def test_screen_set_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    """local/screen_set.py wrote data/screen in place: a build interrupted before its token file left a dir that
    every later local/score_screen.sh stopped at ("data/screen exists; remove it first")."""
    import importlib.util

    script = copy_egs(tmp_path) / "espeak_mini" / "tts1" / "local" / "screen_set.py"
    spec = importlib.util.spec_from_file_location("screen_set", script)
    screen_set = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screen_set)
    for x in ("train", "dev", "test"):
        (tmp_path / "data" / x).mkdir(parents=True)
        (tmp_path / "data" / x / "text").write_text("a0 seen sentence\n")
    interrupt = {"tokenize": True}

    def fake_run(cmd, check):  # the corpus builder and the tokeniser, standing in
        opt = dict(zip(cmd[3::2], cmd[4::2]))
        if "shared.text.tokenize" in cmd:
            if interrupt["tokenize"]:
                raise KeyboardInterrupt
            Path(opt["--out"]).write_text("u1 a b\n")
            return
        wav = Path(opt["--wav-dir"]) / "u1.wav"
        wav.parent.mkdir(parents=True)
        wav.write_bytes(b"RIFF")
        new = DataDir(wav_scp={"u1": str(wav.resolve())}, text={"u1": "new one"}, utt2spk={"u1": "s"})
        new.save(Path(opt["--data-dir"]) / "test")
    monkeypatch.setattr(screen_set.subprocess, "run", fake_run)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        screen_set.main(["--num-sentences", "1"])
    assert not (tmp_path / "data" / "screen").exists()
    interrupt["tokenize"] = False
    assert screen_set.main(["--num-sentences", "1"]) == 0
    screen = DataDir.load(tmp_path / "data" / "screen")  # validated: wav.scp names its wavs where they now are
    assert screen.wav_scp == {"u1": str((tmp_path / "data" / "screen" / "wav" / "u1.wav").resolve())}
    assert (tmp_path / "data" / "screen" / "token").is_file() and not list((tmp_path / "data").glob(".screen*"))
    with pytest.raises(SystemExit, match="exists; remove it first"):
        screen_set.main(["--num-sentences", "1"])
