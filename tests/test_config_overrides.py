"""Config loading is as strict in a child config's ``base:`` merge as on the command line, and a command-line value
means what its text says: YAML 1.2's scalars (``010`` is ten, ``no`` a string), of the type the config already holds."""

from pathlib import Path

import pytest

from shared.config import ConfigError, apply_overrides, load_config

CONF = Path(__file__).resolve().parent.parent / "egs" / "espeak_mini" / "tts1" / "conf"
WITH_BASE = sorted(p for p in CONF.parents[2].glob("*/tts1/conf/*.yaml") if "\nbase:" in "\n" + p.read_text())


def _child(tmp_path: Path, text: str, base: Path = CONF / "stage1.yaml") -> Path:
    path = tmp_path / "child.yaml"
    path.write_text(f"base: {base}\n{text}")
    return path


# ------------------------------------------------------------------ a child config's keys against its base's


def test_a_misspelt_child_key_is_an_error_naming_the_file_the_key_and_the_closest_key(tmp_path):
    """``train: {ema_decy: 0.999}`` over stage1.yaml loaded with a stray ema_decy and ema_decay unchanged."""
    path = _child(tmp_path, "train: {ema_decy: 0.999}\n")
    with pytest.raises(ConfigError, match=r"child.yaml: 'train.ema_decy' is not a key of its base .*stage1.yaml.*"
                                          r"did you mean 'ema_decay'.*\+ema_decy"):
        load_config(path)
    with pytest.raises(ConfigError, match="no key 'train.ema_decy'"):  # as on the command line
        load_config(CONF / "stage1.yaml", ["train.ema_decy=0.999"])
    with pytest.raises(ConfigError, match="'trainr' is not a key.*did you mean 'trainer'"):  # a whole section
        load_config(_child(tmp_path, "trainr: {max_steps: 10}\n"))
    with pytest.raises(ConfigError, match="'model.decoder.num_layer' .*did you mean 'num_layers'"):  # deeper down
        load_config(_child(tmp_path, "model: {decoder: {num_layer: 2}}\n"))


def test_a_plus_key_in_a_child_adds_a_key(tmp_path):
    cfg = load_config(_child(tmp_path, "train: {+ema_decy: 0.5, ema_decay: 0.9}\nmodel: {+extra: {+a: 1}}\n"))
    assert cfg["train"]["ema_decy"] == 0.5 and cfg["train"]["ema_decay"] == 0.9 and cfg["model"]["extra"] == {"a": 1}
    assert not any(str(k).startswith("+") for k in cfg["train"])
    assert load_config(_child(tmp_path, "train: {+ema_decay: 0.5}\n"))["train"]["ema_decay"] == 0.5  # a known key too
    with pytest.raises(ConfigError, match="child.yaml: 'train' holds both 'ema_decay' and '\\+ema_decay'"):
        load_config(_child(tmp_path, "train: {+ema_decay: 0.5, ema_decay: 0.9}\n"))


def test_a_child_may_name_new_keys_unlike_the_bases(tmp_path):
    """A base does not list every option the code takes (stage1_fsq.yaml's model.pitch.quantize_bits, egs/ljspeech's
    asr.yaml's train.device): only a near miss of a key the base has is taken for a typo."""
    cfg = load_config(_child(tmp_path, "model: {pitch: {quantize_bits: 8}}\ndata: {language: en-us}\n"))
    assert cfg["model"]["pitch"]["quantize_bits"] == 8 and cfg["model"]["pitch"]["f0_min"] == 50
    assert cfg["data"] == {"language": "en-us"}


def test_a_child_section_of_another_kind_is_not_checked_against_the_bases(tmp_path):
    """A section whose ``kind`` differs replaces the base's whole: the other kind takes other options. Of the same
    kind it is merged, so its keys are checked."""
    cfg = load_config(_child(tmp_path, "model: {bottleneck: {kind: rvq, num_quantizers: 8, codebook_size: 1024}}\n"))
    assert cfg["model"]["bottleneck"] == {"kind": "rvq", "num_quantizers": 8, "codebook_size": 1024}
    base = tmp_path / "base.yaml"
    base.write_text("model: {encoder: {kind: mel, n_mels: 80}}\n")
    assert load_config(_child(tmp_path, "model: {encoder: {kind: conv, n_mel: 8}}\n", base))["model"]["encoder"] == {
        "kind": "conv", "n_mel": 8}
    with pytest.raises(ConfigError, match="'model.encoder.n_mel' .*did you mean 'n_mels'"):
        load_config(_child(tmp_path, "model: {encoder: {kind: mel, n_mel: 8}}\n", base))
    with pytest.raises(ConfigError, match="'model.encoder.n_mel' .*did you mean 'n_mels'"):
        load_config(_child(tmp_path, "model: {encoder: {n_mel: 8}}\n", base))


@pytest.mark.parametrize("path", WITH_BASE, ids=lambda p: f"{p.parts[-4]}/{p.name}")
def test_every_shipped_config_with_a_base_loads(path):
    assert load_config(path)


# ------------------------------------------------------------------ command-line values


@pytest.fixture(scope="module")
def stage1() -> dict:
    return load_config(CONF / "stage1.yaml")


@pytest.mark.parametrize("override, match", [
    ("trainer.max_steps=2k", r"'trainer.max_steps' is a number in the config \(7000\), not a string \('2k'\)"),
    ("train.ema_decay=0.99x", "'train.ema_decay' is a number"),
    ("validation.metrics=on", r"'validation.metrics' is true or false in the config \(True\), not a string \('on'\)"),
    ("validation.metrics=1", "'validation.metrics' is true or false"),
    ("trainer.max_steps=true", "'trainer.max_steps' is a number"),
    ("train.betas=0.9", "'train.betas' is a list"),
    ("trainer.precision=32", r"'trainer.precision' is a string in the config \('auto'\), not a number \(32\); "
                             r"quote it \(trainer.precision='32'\)"),
    ("model.bottleneck=rvq", r"'model.bottleneck' is a section \(kind\); set its keys \(model.bottleneck.kind=...\)"),
    ("model=3", "'model' is a section"),
    ("model.bottleneck=[1,2]", "'model.bottleneck' is a section"),
    ("trainer.max_steps=", "no value"),
])
def test_an_override_of_another_type_is_an_error(stage1, override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(stage1, [override])


def _value(cfg: dict, override: str):
    """The value ``override`` leaves at its key."""
    node = apply_overrides(cfg, [override])
    for part in override.split("=", 1)[0].lstrip("+").split("."):
        node = node[part]
    return node


def test_config_files_are_read_by_yaml_1_2_as_overrides_are(tmp_path):
    """Files were read by YAML 1.1: an unquoted ``max_time: 1:00:00:00`` (a day) was the base-60 integer 216000
    (Lightning takes a string), a frontend's ``language: no`` (Norwegian) was False, ``010`` the octal 8."""
    from shared.text import Frontend

    (tmp_path / "c.yaml").write_text("trainer: {max_time: 1:00:00:00, max_steps: 010}\ndata: {language: no, x: on}\n"
                                     "train: {lr: 1e-3, on_off: [yes, off], flag: true, none: ~}\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg["trainer"] == {"max_time": "1:00:00:00", "max_steps": 10} and cfg["data"] == {"language": "no", "x": "on"}
    assert cfg["train"] == {"lr": 1e-3, "on_off": ["yes", "off"], "flag": True, "none": None}
    (tmp_path / "frontend.yaml").write_text("frontend: char\nlanguage: no\n")
    assert Frontend.from_config(tmp_path / "frontend.yaml").config.language == "no"


def test_override_values_are_yaml_1_2(stage1):
    """YAML 1.1 read 010 as the octal 8, no / on / yes as booleans, 1:30 as the base-60 integer 90."""
    def value(override: str):
        return _value(stage1, override)

    assert value("trainer.max_steps=010") == 10 and value("trainer.max_steps=-1") == -1
    assert value("+data.language=no") == "no" and value("+x=on") == "on" and value("+x=yes") == "yes"
    assert value("+x=2001-12-14") == "2001-12-14" and value("+x=1_000") == "1_000" and value("+x=0x10") == "0x10"
    assert value("validation.metrics=false") is False and value("validation.metrics=True") is True
    assert value("train.lr=1e-3") == 1e-3 and value("train.lr=2.5E+2") == 250.0 and value("train.lr=.5") == 0.5
    assert value("+x=[no, 010, 1e-3, on]") == ["no", 10, 1e-3, "on"]
    assert value("+x={a: no, 1: 2}") == {"a": "no", 1: 2}
    assert value("+x=#not a comment") == "#not a comment"
    assert value("train.lr_horizon='010'") == "010" and value('train.lr_horizon="true"') == "true"
    with pytest.raises(ConfigError, match="not valid YAML"):
        apply_overrides(stage1, ["train.betas=[0.9,0.99"])


@pytest.mark.parametrize("override, expected", [
    ("trainer.max_time=00:00:16:00", "00:00:16:00"),  # the string Lightning expects, not a base-60 integer
    ("trainer.max_time=1:00:00:00", "1:00:00:00"),
    ("trainer.max_time=null", None),
    ("trainer.max_time=~", None),
    ("trainer.check_val_every_n_epoch=5", 5),  # None takes anything
    ("trainer.max_steps=2000", 2000),
    ("train.lr=1", 1),  # a number for a number
    ("trainer.val_check_interval=0.5", 0.5),
    ("train.lr_horizon=steps", "steps"),
    ("trainer.precision=bf16-mixed", "bf16-mixed"),
    ("trainer.precision='32'", "32"),
    ("trainer.precision=null", None),
    ("train.betas=[0.9,0.99]", [0.9, 0.99]),
    ("model.pitch.lock_phase=false", False),
    ("model.bottleneck.kind=rvq", "rvq"),
    ("model.bottleneck={kind: rvq, num_quantizers: 8}", {"kind": "rvq", "num_quantizers": 8}),
    ("model.pitch=null", None),
    ("+trainer.devices=auto", "auto"),  # + sets a key whatever it holds
    ("+model.bottleneck=rvq", "rvq"),
    ("+trainer.accelerator=cpu", "cpu"),
])
def test_legitimate_overrides_keep_working(stage1, override, expected):
    node = _value(stage1, override)
    assert node == expected and type(node) is type(expected)


@pytest.mark.parametrize("conf, overrides", [
    # README.md, RESULTS.md and egs/TEMPLATE/tts1/tts.sh
    ("stage1.yaml", ["trainer.max_time=00:00:16:00", "+trainer.accelerator=gpu", "+trainer.devices=2",
                     "+trainer.num_nodes=1", "+trainer.strategy=ddp_find_unused_parameters_true",
                     "train.num_threads=1"]),
    ("stage1.yaml", ["trainer.max_steps=1049", "trainer.max_time=null", "train.seed=0", "train.total_steps=7000",
                     "loss_weights.kl=0.01", "loss_weights.stft/complex=1.0", "+model.encoder.fine_ffts=[512,256]"]),
    ("decoder_gta.yaml", ["trainer.max_time=00:00:09:00", "trainer.max_steps=7000", "train.total_steps=7000"]),
    ("stage2.yaml", ["train.lr=1e-4", "train.betas=[0.9,0.99]", "trainer.max_steps=2000", "validation.temperature=1.0",
                     "validation.temperature=0.667", "+model.flow.channel_weights.1=0.1", "model.phone_balance=1.0",
                     "model.speaker.use_prompt=true", "+data.prompt_seconds=[0.5,1.0]", "+trainer.strategy=ddp",
                     "+model.flow.channel_weights={0: 10.0, 3: 2.0}", "model.flow.prior=noise", "model.mode=alignfree",
                     "+loss.flow_data=0.5", "trainer.max_time=00:00:11:00", "+trainer.precision=bf16-mixed"]),
    ("stage1_smoke.yaml", ["trainer.precision=bf16-mixed", "trainer.devices=2", "+trainer.max_time=00:00:01:00",
                           "+train.lr_horizon=budget", "trainer.precision=32-true", "+trainer.keep_checkpoints=0"]),
    ("asr.yaml", ["train.speed_perturb=[0.9,1.1]", "train.max_steps=2000", "train.max_time_s=330",
                  "train.noise_prob=0.5"]),
    ("../../../ljspeech/tts1/conf/asr.yaml", ["train.device=cuda", "train.max_hours=null"]),
])
def test_the_overrides_the_docs_and_scripts_pass_apply(conf, overrides):
    cfg = load_config(CONF / conf, overrides)
    if conf == "stage1.yaml" and "trainer.max_time=00:00:16:00" in overrides:
        assert cfg["trainer"]["max_time"] == "00:00:16:00"
