"""Every YAML config a recipe ships builds its model (the GPU-sized ones are never trained here, so this
is what keeps them in step with the code)."""

import subprocess
from pathlib import Path

import pytest

from shared.config import load_config
from stage1_vae.model import build_codec
from stage1_vae.train import finetune_config
from stage2_flow.model import FlowTTS, count_parameters

EGS = Path(__file__).resolve().parent.parent / "egs"
STAGE1 = sorted(EGS.glob("*/tts1/conf/stage1*.yaml"))
DECODER = sorted(EGS.glob("*/tts1/conf/decoder_gta*.yaml"))  # stage 7: what differs from the codec's saved config
STAGE2 = sorted(p for p in EGS.glob("*/tts1/conf/stage2*.yaml"))
ASR = sorted(EGS.glob("*/tts1/conf/asr*.yaml"))


def _id(p: Path) -> str:
    return f"{p.parts[-4]}/{p.name}"


@pytest.mark.parametrize("path", STAGE1, ids=_id)
def test_stage1_config_builds(path):
    cfg = load_config(path)
    codec = build_codec(cfg["model"])
    assert codec.latent_dim > 0 and codec.sample_rate == cfg["model"]["sample_rate"]
    assert set(cfg["trainer"]) >= {"max_steps"}


def _decoder_finetune_config(path: Path, overrides: list[str] | None = None) -> dict:
    """``path`` (a decoder_gta config) over the config of the codec its recipe trains (the smoke one's for smoke)."""
    codec_conf = path.parent / ("stage1_smoke.yaml" if "smoke" in path.name else "stage1.yaml")
    return finetune_config(path, load_config(codec_conf), overrides)


@pytest.mark.parametrize("path", DECODER, ids=_id)
def test_decoder_finetune_config_builds_over_its_codec(path):
    assert "model" not in load_config(path)  # the codec's model, whichever stage-one config trained it
    cfg = _decoder_finetune_config(path)
    assert build_codec(cfg["model"]).latent_dim > 0
    assert set(cfg["trainer"]) >= {"max_steps"} and set(cfg["loss_weights"]) >= {"mel/l1", "stft/mr"}


@pytest.mark.parametrize("path", STAGE2, ids=_id)
def test_stage2_config_builds(path):
    """Its model builds (a reflow config's is its base model's: the recipe's stage2 config, trained with --init-from),
    and its loss and train keys are all read by stage two: a misspelt one in a reflow config would fail at stage 7,
    twenty minutes into the default recipe."""
    from stage2_flow.experiment import check_training_config

    cfg = load_config(path)
    check_training_config(cfg)
    if not cfg.get("model"):  # a fine-tuning config that inherits the model from --init-from
        assert "train" in cfg and "trainer" in cfg
        base = path.parent / ("stage2_smoke.yaml" if "smoke" in path.name else "stage2.yaml")
        cfg = {**cfg, "model": load_config(base)["model"]}
    model = FlowTTS({**cfg["model"], "latent_dim": 32, "n_vocab": 80, "n_speakers": 4})
    assert count_parameters(model) > 0


@pytest.mark.parametrize("path", ASR, ids=_id)
def test_phone_recognizer_config_builds(path):
    from shared.config import merge
    from shared.device import resolve_device
    from shared.phone_recognizer.model import PhoneRecognizer, RecognizerConfig
    from shared.phone_recognizer.train import DEFAULT_CONFIG

    cfg = merge(DEFAULT_CONFIG, load_config(path))
    assert set(cfg) == set(DEFAULT_CONFIG) and set(cfg["train"]) == set(DEFAULT_CONFIG["train"])  # no stray keys
    model = PhoneRecognizer(RecognizerConfig(num_classes=60, blank_id=2, sample_rate=cfg["sample_rate"], **cfg["model"]))
    assert count_parameters(model) > 0 and resolve_device(cfg["train"]["device"]).type in ("cpu", "cuda")


def test_all_recipes_have_their_configs():
    for recipe in ("espeak_mini", "ljspeech", "libritts", "vctk"):
        for name in ("stage1.yaml", "stage2.yaml", "stage2_reflow.yaml", "decoder_gta.yaml", "asr.yaml"):
            assert (EGS / recipe / "tts1" / "conf" / name).is_file(), (recipe, name)


def _recipe_settings(recipe: str, script: str, **settings) -> str:
    """The output of ``script`` run after egs/<recipe>/tts1/run.sh has set everything (run with no stage to run), with
    ``settings`` as its options."""
    opts = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in settings.items())
    out = subprocess.run(["bash", "-c", f"set -- {opts}; stage=99; stop_stage=-1; . ./run.sh; {script}"],
                         cwd=EGS / recipe / "tts1", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _recipe_trainer_args(ngpu: int, num_nodes: int = 1) -> tuple[list[str], list[str]]:
    """The trainer overrides egs/TEMPLATE/tts1/tts.sh passes for ``--ngpu`` / ``--num-nodes`` to stage one's trainings
    (stage 3, stage 7's decoder fine-tuning) and to stage two's (stage 6, stage 7's reflow)."""
    out = _recipe_settings("espeak_mini", 'printf "%s\\n" "${s1_trainer_args[@]}" --; printf "%s\\n" "${s2_trainer_args[@]}"',
                           ngpu=ngpu, num_nodes=num_nodes)
    s1, s2 = out.split("--\n")
    return s1.split(), s2.split()


@pytest.mark.parametrize("ngpu,num_nodes", [(0, 1), (1, 1), (4, 1), (2, 2)])
def test_recipe_placement_options_apply_to_every_training_config(ngpu, num_nodes):
    """`--ngpu N --num-nodes M` must work with every recipe's configs (stage two's had no num_nodes / strategy key,
    and a plain override of a missing key is an error: `run.sh --ngpu 1` failed at stage 6 until 2026-12-06).
    Stage one trains with ddp_find_unused_parameters_true on several GPUs or nodes (its discriminator is idle before
    train.disc_start_step; plain DDP fails on the parameters unused in a step): until 2026-12-07 tts.sh gave every
    training plain ddp, replacing the GPU recipes' stage-one configs' own strategy."""
    s1_overrides, s2_overrides = _recipe_trainer_args(ngpu, num_nodes)
    stage1 = [(p, load_config(p, s1_overrides)) for p in STAGE1]
    stage1 += [(p, _decoder_finetune_config(p, s1_overrides)) for p in DECODER]
    stage2 = [(p, load_config(p, s2_overrides)) for p in STAGE2]
    multi = ngpu > 1 or num_nodes > 1
    for path, cfg in stage1 + stage2:
        trainer = cfg["trainer"]
        assert trainer["accelerator"] == ("gpu" if ngpu else "cpu"), path
        if ngpu:
            assert (trainer["devices"], trainer["num_nodes"]) == (ngpu, num_nodes), path
    for path, cfg in stage1:
        if multi:
            assert cfg["trainer"]["strategy"] == "ddp_find_unused_parameters_true", path
        elif ngpu and path.parts[-4] != "espeak_mini":  # a GPU recipe's codec: its config's own
            assert cfg["trainer"]["strategy"] == "ddp_find_unused_parameters_true", path
    for path, cfg in stage2:  # plain DDP (every module takes part in each step); one device: the config's (none)
        assert cfg["trainer"].get("strategy") in (("ddp",) if multi else (None, "auto")), path


# whether a recipe's default test set is spoken by its training speakers (LibriTTS: test-clean's are others)
TEST_SPEAKERS_SEEN = {"espeak_mini": True, "ljspeech": True, "vctk": True, "libritts": False}


@pytest.mark.parametrize("recipe", sorted(TEST_SPEAKERS_SEEN))
def test_default_stage_two_gives_the_test_speakers_a_voice(recipe):
    """A model conditioned on speaker ids alone has no voice for a speaker it was not trained on: LibriTTS's default
    system was one until 2026-12-07, and its test set (test-clean) has none of the training speakers."""
    conf, tag = _recipe_settings(recipe, 'echo "$stage2_conf $sys_tag $results_md"').split()[:2]
    speaker = load_config(EGS / recipe / "tts1" / conf)["model"]["speaker"]
    assert speaker["use_prompt"] or (speaker["use_id"] and TEST_SPEAKERS_SEEN[recipe]), (recipe, conf)
    if recipe == "libritts":
        assert (conf, tag) == ("conf/stage2_prompt.yaml", "flow_prompt_reflow")


@pytest.mark.parametrize("settings,expected", [
    ({}, "flow flow_reflow flow_reflow exp/RESULTS.md"),
    ({"stage2_conf": "conf/stage2_alignfree.yaml"}, "flow_alignfree flow_alignfree_reflow flow_alignfree_reflow "
     "exp/RESULTS_flow_alignfree_reflow.md"),
    ({"stage1_tag": "fsq", "stage2_conf": "conf/stage2_alignfree.yaml", "reflow": "false"},
     "flow_fsq_alignfree flow_fsq_alignfree flow_fsq_alignfree exp/RESULTS_flow_fsq_alignfree.md"),
    ({"stage1_tag": "rvq"}, "flow_rvq flow_rvq_reflow flow_rvq_reflow exp/RESULTS_flow_rvq_reflow.md"),
    ({"stage1_conf": "conf/stage1_rvq.yaml"}, "flow_rvq flow_rvq_reflow flow_rvq_reflow exp/RESULTS_flow_rvq_reflow.md"),
    ({"stage1_conf": "conf/stage1_rvq.yaml", "stage1_tag": "vq"}, "flow_vq flow_vq_reflow flow_vq_reflow exp/RESULTS_flow_vq_reflow.md"),
    ({"stage2_tag": "mine"}, "mine mine_reflow mine_reflow exp/RESULTS_mine_reflow.md"),
    ({"decoder_finetune": "false"}, "flow flow_reflow flow_reflow_s1decoder exp/RESULTS_flow_reflow_s1decoder.md"),
])
def test_each_codec_and_stage_two_config_is_a_system_of_its_own(settings, expected):
    """The stage-two tag's default names the stage-two config (flow_<name> for conf/stage2_<name>.yaml): until
    2026-12-07 it named the codec only, so `--stage2-conf conf/stage2_prompt.yaml` after a default run found stages
    6-10 done (and with --overwrite replaced the id model). The codec's tag names its config likewise (it was vae
    whatever --stage1-conf said): rvq for conf/stage1_rvq.yaml."""
    out = _recipe_settings("espeak_mini", 'echo "$stage2_tag $final_tag $sys_tag $results_md"', **settings)
    assert out.split() == expected.split()


@pytest.mark.parametrize("conf,tag", [("conf/stage1.yaml", "vae"), ("conf/stage1_rvq.yaml", "rvq"),
                                      ("conf/stage1_mel.yaml", "mel"), ("conf/mycodec.yaml", "mycodec")])
def test_the_codec_tag_names_its_config(conf, tag):
    out = _recipe_settings("espeak_mini", 'echo "$stage1_tag $s1_exp"', stage1_conf=conf)
    assert out.split() == [tag, f"exp/stage1/{tag}"]
    if conf == "conf/stage1.yaml":  # a smoke run's codec (conf/stage1_smoke.yaml) is the default one's: not smoke
        assert _recipe_settings("espeak_mini", 'echo "$stage1_tag $stage1_conf"', smoke="true").split() == [
            "vae", "conf/stage1_smoke.yaml"]


@pytest.mark.parametrize("recipe", ["ljspeech", "libritts", "vctk"])
def test_gpu_reflow_configs_are_sized_like_their_stage_two(recipe):
    """The GPU recipes' reflow configs carried the CPU recipe's batches (2400 frames, utterances of 1500 frames at
    most) and a validation and checkpoint every 200 and 100 steps, for 50000 steps on a GPU."""
    conf = EGS / recipe / "tts1" / "conf"
    base, reflow = load_config(conf / "stage2.yaml"), load_config(conf / "stage2_reflow.yaml")
    assert {k: reflow["data"][k] for k in ("batch_frames", "max_batch", "max_frames")} == \
        {k: base["data"][k] for k in ("batch_frames", "max_batch", "max_frames")}
    for key in ("val_check_interval", "checkpoint_every_n_steps"):
        assert reflow["trainer"][key] == base["trainer"][key], key
