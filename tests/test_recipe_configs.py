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
    cfg = load_config(path)
    if "model" not in cfg:  # a fine-tuning config that inherits the model from --init-from
        assert "train" in cfg or "trainer" in cfg
        return
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


def _recipe_trainer_args(ngpu: int, num_nodes: int = 1) -> list[str]:
    """The trainer overrides egs/TEMPLATE/tts1/tts.sh passes to the three trainings for ``--ngpu`` / ``--num-nodes``."""
    script = (f"ngpu={ngpu}; num_nodes={num_nodes}; stage=99; stop_stage=-1; . ../../TEMPLATE/tts1/tts.sh; "
              'printf "%s\\n" "${trainer_args[@]}"')
    out = subprocess.run(["bash", "-c", script], cwd=EGS / "espeak_mini" / "tts1", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.parametrize("ngpu,num_nodes", [(0, 1), (1, 1), (4, 1), (2, 2)])
def test_recipe_placement_options_apply_to_every_training_config(ngpu, num_nodes):
    """`--ngpu N --num-nodes M` must work with every recipe's configs (stage two's had no num_nodes / strategy key,
    and a plain override of a missing key is an error: `run.sh --ngpu 1` failed at stage 6 until 2026-12-06)."""
    overrides = _recipe_trainer_args(ngpu, num_nodes)
    configs = [load_config(p, overrides) for p in [*STAGE1, *STAGE2]]
    configs += [_decoder_finetune_config(p, overrides) for p in DECODER]
    for path, cfg in zip([*STAGE1, *STAGE2, *DECODER], configs):
        trainer = cfg["trainer"]
        assert trainer["accelerator"] == ("gpu" if ngpu else "cpu"), path
        if ngpu:
            assert (trainer["devices"], trainer["num_nodes"]) == (ngpu, num_nodes), path
            assert trainer.get("strategy") == "ddp" or (ngpu == 1 and num_nodes == 1), path
