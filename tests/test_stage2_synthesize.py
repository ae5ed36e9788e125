"""Synthesis inputs checked before any audio is made, on a tiny untrained model (no training, a second or two):
speaker ids, speakers a model does not know, sampling options, empty and unknown tokens, speech prompts longer than
training's, the prompt pool of a resumed run, models trained on --continuous latents, the NFE sweep's exp names and
cells, and the flow-loss channel weights of a codec without pitch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.io import read_kv
from shared.text import Frontend, Vocab
from stage2_flow import nfe_sweep, synthesize, train
from stage2_flow.data import LatentNormalizer
from stage2_flow.model import FlowTTS
from stage2_flow.synthesize import Synthesizer

D = 4


class TinyCodec:
    sample_rate, hop_length, latent_dim = 16000, 64, D

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z).mean(1).repeat_interleave(self.hop_length, -1)

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, D, T // hop): each hop's mean, spread, maximum and minimum."""
        frames = wav[:, : wav.shape[-1] // self.hop_length * self.hop_length].unflatten(-1, (-1, self.hop_length))
        return torch.stack([frames.mean(-1), frames.std(-1), frames.amax(-1), frames.amin(-1)], 1)


def tiny_synth(use_id: bool = True, use_prompt: bool = False, speakers: tuple[str, ...] = ("spk0", "spk1"), **over) -> Synthesizer:
    torch.manual_seed(0)
    vocab = Vocab.build([list("abcdefghijklmnopqrstuvwxyz") + ["\u2581"]])
    cfg = dict(latent_dim=D, n_vocab=len(vocab), n_speakers=len(speakers), speaker=dict(dim=8, use_id=use_id, use_prompt=use_prompt),
               text_encoder=dict(hidden=16, conv_layers=1, attn_layers=1, heads=2, dropout=0.0),
               duration_predictor=dict(channels=16, layers=1), estimator=dict(hidden=16, layers=2, dilations=[1, 2], kernel=3), **over)
    return Synthesizer(FlowTTS(cfg), LatentNormalizer([0.0] * D, [1.0] * D), vocab, Frontend.from_config({"frontend": "char"}),
                       TinyCodec(), list(speakers), None)


def save_exp_dir(s: Synthesizer, exp, stage1: dict | None = None, rate: bool = True):
    """``s``'s model as a trained stage-two exp dir (its codec is given to from_exp_dir as an object)."""
    from shared.config import save_config
    from shared.io import write_json

    exp.mkdir(parents=True, exist_ok=True)
    save_config({"model": s.model.cfg}, exp / "config.yaml")
    torch.save(s.model.state_dict(), exp / "model.pt")
    s.vocab.save(exp / "tokens.txt")
    (exp / "speakers.txt").write_text("".join(f"{x}\n" for x in s.speakers))
    write_json(exp / "latent_stats.json", {"mean": [0.0] * D, "std": [1.0] * D})
    write_json(exp / "stage1.json", {"exp_dir": "../stage1", "sample_rate": 16000, "hop_length": 64, "latent_dim": D, **(stage1 or {})})
    if rate:
        write_json(exp / "speaking_rate.json", {"tokens_per_frame": 0.5})
    return exp


def write_audio_data_dir(root, utt2spk: dict[str, str], seconds: float = 0.3):
    """A data dir with text, utt2spk and a wav of noise per utterance (16 kHz)."""
    import soundfile as sf

    from shared.io import write_kv

    root.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(len(utt2spk))
    for u in utt2spk:
        sf.write(root / f"{u}.wav", (0.1 * torch.randn(int(seconds * 16000), generator=g)).numpy(), 16000)
    write_kv(root / "wav.scp", {u: str(root / f"{u}.wav") for u in utt2spk})
    write_kv(root / "text", dict.fromkeys(utt2spk, "abc"))
    write_kv(root / "utt2spk", utt2spk)
    return root


def test_an_integer_speaker_is_a_known_voice_or_minus_one():
    """5 on a 2-speaker model was an IndexError deep inside the embedding, -2 silently no voice at all."""
    s = tiny_synth()
    assert [s.speaker_id(k) for k in (-1, 0, 1, None, "spk1")] == [-1, 0, 1, 0, 1]
    for bad in (2, 5, -2):
        with pytest.raises(ValueError, match=rf"speaker id {bad}: out of range; this model's voices are 0 spk0, 1 spk1"):
            s.synthesize(["abc"], speaker=bad, nfe=1)
    assert len(s.synthesize(["abc"], speaker=-1, nfe=1)) == 1


def test_sampling_options_that_cannot_work_are_errors(tmp_path, capsys):
    s = tiny_synth()
    for rate in (0.0, -0.5):
        with pytest.raises(ValueError, match=f"rate {rate}: the speaking-rate factor must be > 0"):
            s.synthesize(["abc"], nfe=1, rate=rate)
    with pytest.raises(ValueError, match="sway -2.0"):
        s.synthesize(["abc"], nfe=4, sway=-2.0)
    s.synthesize(["abc"], nfe=4, sway=-1.0)  # F5-TTS's
    with pytest.raises(ValueError, match="dopri5 chooses its own steps"):  # no grid to warp: it did nothing, yet recorded
        s.synthesize(["abc"], solver="dopri5", sway=-2.0)
    # a numpy integer seed (a loop over np.arange) is a seed, not a sequence of them ("not iterable")
    assert torch.equal(s.synthesize(["abc"], nfe=1, seed=np.int64(3))[0], s.synthesize(["abc"], nfe=1, seed=3)[0])
    for opt in (["--rate", "0"], ["--sway", "3"]):  # the CLI says so before loading anything
        with pytest.raises(SystemExit):
            synthesize.main(["--exp-dir", str(tmp_path / "none"), "--text-file", str(tmp_path / "t.txt"), "--out-dir",
                             str(tmp_path / "out"), "--nfe", "4", *opt])
        assert "--rate / --sway" in capsys.readouterr().err


def test_an_item_without_tokens_is_named():
    s = tiny_synth()
    with pytest.raises(ValueError, match=r"produced no tokens:\n  <text 1>: ''"):  # text: the frontend says so
        s.synthesize(["abc", "", "de"], nfe=1)
    with pytest.raises(ValueError, match=r"item 0$"):
        s.synthesize([[], [5, 6]], nfe=1)
    with pytest.raises(ValueError, match="utt2"):
        synthesize.require_tokens({"utt1": [5], "utt2": []})


def test_unknown_symbols_are_named_on_stderr_once_per_call(capsys):
    """They become <unk>, which training never saw: synthesis goes on, with a warning naming them."""
    s = tiny_synth()
    ids = synthesize.encode_tokens(s.vocab, {f"u{i}": ["a", "\u00e9", "b", "\u0283"] for i in range(5)} | {"ok": ["a"]})
    assert ids["u0"] == [s.vocab.stoi["a"], s.vocab.unk_id, s.vocab.stoi["b"], s.vocab.unk_id]
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "5 utterance(s) hold 2 symbol(s)" in err
    assert "'\u00e9' '\u0283'" in err and "u0, u1, u2, ..." in err and "ok" not in err
    wavs = s.synthesize(["a\u00e9b", "ab"], nfe=1)  # raw text through the frontend: the same warning, and audio
    err = capsys.readouterr().err
    assert len(wavs) == 2 and err.count("warning") == 1 and "'\u00e9'" in err and "<text 0>" in err
    s.synthesize(["ab"], nfe=1)
    assert capsys.readouterr().err == ""


def test_speakers_a_model_was_not_trained_on():
    """A data dir's speaker the model has no voice for: an error for a model whose voices are ids (it silently became
    the first voice); the prompt's voice, with id -1, for a zero-shot model; the only voice of a one-voice model."""
    utts = ["a1", "b1", "c1"]
    utt2spk = {"a1": "spk0", "b1": "p225", "c1": "p226"}
    ids = tiny_synth()
    with pytest.raises(SystemExit, match=r"2 speaker\(s\) of the input are not voices of this model: p225, p226 .*--speaker NAME"):
        synthesize.speakers_of(ids, utts, utt2spk)
    assert synthesize.speakers_of(ids, utts, utt2spk, speaker="spk1") == dict.fromkeys(utts, "spk1")
    assert synthesize.speakers_of(ids, utts, {"a1": "spk1"}) == {"a1": "spk1", "b1": "spk0", "c1": "spk0"}  # no speaker: the first
    with pytest.raises(SystemExit, match="--speaker nobody: not a voice"):
        synthesize.speakers_of(ids, utts, utt2spk, speaker="nobody")
    zero_shot = tiny_synth(use_id=False, use_prompt=True)
    spk_of = synthesize.speakers_of(zero_shot, utts, utt2spk, prompted=True)
    assert spk_of == utt2spk and [synthesize.voice(zero_shot, spk_of[u], True) for u in utts] == ["spk0", -1, -1]
    one = tiny_synth(speakers=("LJ",))
    assert synthesize.speakers_of(one, utts, utt2spk) == dict.fromkeys(utts, "LJ")


def test_a_prompt_longer_than_training_prompts_is_cut_to_its_start(tmp_path, capsys, monkeypatch):
    """The prompt encoder was trained on prompts of at most data.prompt_seconds[1]; a longer one (a 60-s recording) gave
    its attention pooling a distribution it never saw. It is cut to its first prompt_seconds, as --prompt-from-data's
    references always were, with one warning naming it; a shorter one is kept whole."""
    import soundfile as sf

    s = tiny_synth(use_id=False, use_prompt=True, speakers=())
    s.prompt_seconds = 0.5
    g = torch.Generator().manual_seed(0)
    long = torch.randn(4 * 16000, generator=g) * torch.linspace(0.1, 1.0, 4 * 16000)  # 4 s, louder as it goes on
    embeddings = []
    s.model.speaker.register_forward_hook(lambda module, args, out: embeddings.append(out))

    def voice(prompt: torch.Tensor | list[torch.Tensor], n: int = 1) -> torch.Tensor:
        s.synthesize(["abc"] * n, speaker=-1, prompt=prompt, nfe=1)
        return embeddings[-1]

    assert torch.equal(voice(long), voice(long[:8000]))
    whole = s.model.speaker(torch.tensor([-1]), s.prompt_latents(long)[None])  # what the encoder made of all 4 s
    assert not torch.allclose(voice(long), whole, atol=1e-3)
    err = capsys.readouterr().err
    assert err.count("warning") == 2 and "cut to its first 0.5 s: the prompt (4.0 s)" in err  # once per call, naming it
    short = long[:4000]
    assert torch.allclose(voice(short), s.model.speaker(torch.tensor([-1]), s.prompt_latents(short)[None]), atol=1e-6)
    assert torch.allclose(voice([short, long], 2)[1:], voice(long[:8000]), atol=1e-6)
    assert capsys.readouterr().err.count("1 speech prompt(s) longer than the 0.5 s") == 1  # prompt 1 of the two, not 0
    # the CLI: --prompt-wav cut once, named once, over several batches
    monkeypatch.setattr(Synthesizer, "from_exp_dir", lambda *args, **kw: s)
    sf.write(tmp_path / "long.wav", long.numpy(), 16000)
    (tmp_path / "lines.txt").write_text("abc\nde\nfgh\n")
    assert synthesize.main(["--exp-dir", str(tmp_path / "exp"), "--text-file", str(tmp_path / "lines.txt"), "--out-dir",
                            str(tmp_path / "out"), "--prompt-wav", str(tmp_path / "long.wav"), "--nfe", "1", "--batch-size", "1"]) == 0
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and f"{tmp_path / 'long.wav'} (4.0 s)" in err
    assert len(list((tmp_path / "out" / "wav").glob("*.wav"))) == 3


def test_bulk_synthesis_from_a_text_file_is_a_valid_data_dir_or_an_error_naming_the_line(tmp_path, monkeypatch):
    """utt2lang listed only the voices with a training language of their own, so the synthetic corpus failed
    validation; voice 'a' with utterance 'b-c' and voice 'a-b' with 'c' were both 'a-b-c' (one lost); a scene break
    ('* * *') stopped the run with a traceback naming no line; a file with no text made an empty corpus."""
    from shared.datadir import validate_data_dir

    s = tiny_synth()
    s.frontend = Frontend.from_config({"frontend": "char", "speaker_languages": {"spk0": "en-gb"}})
    monkeypatch.setattr(Synthesizer, "from_exp_dir", lambda *args, **kw: s)
    text = tmp_path / "t.txt"
    text.write_text("abc de\nfgh\n")
    run = ["--exp-dir", str(tmp_path / "exp"), "--text-file", str(text), "--nfe", "1"]
    assert synthesize.main([*run, "--out-dir", str(tmp_path / "out"), "--speakers", "all"]) == 0
    assert validate_data_dir(tmp_path / "out") == []
    assert read_kv(tmp_path / "out" / "utt2lang") == {"spk0-utt000000": "en-gb", "spk0-utt000001": "en-gb",
                                                      "spk1-utt000000": "en-us", "spk1-utt000001": "en-us"}
    text.write_text("abc\n\n* * *\n\nde\n")
    with pytest.raises(SystemExit, match=r"t.txt \(line 3\): 1 utterance\(s\) produced no tokens:\n  utt000001: '\* \* \*'"):
        synthesize.main([*run, "--out-dir", str(tmp_path / "o2")])
    text.write_text("\n  \n\u00a0\n")
    with pytest.raises(SystemExit, match="t.txt: no text to synthesise"):
        synthesize.main([*run, "--out-dir", str(tmp_path / "o3")])
    s = tiny_synth(speakers=("a", "a-b"))
    monkeypatch.setattr(Synthesizer, "from_exp_dir", lambda *args, **kw: s)
    text.write_text("b-c abc\nc de\n")
    with pytest.raises(SystemExit, match="voice 'a-b' with utterance 'c' and voice 'a' with utterance 'b-c' are both 'a-b-c'"):
        synthesize.main([*run, "--text-format", "keyed", "--out-dir", str(tmp_path / "o4"), "--speakers", "all"])


def test_nfe_sweep_refuses_exp_dirs_of_the_same_name(tmp_path, capsys):
    """Their cells (OUT/<name>/nfe<N>) would overwrite each other."""
    with pytest.raises(SystemExit):
        nfe_sweep.main(["--exp-dirs", str(tmp_path / "a/flow"), str(tmp_path / "b/flow/"), str(tmp_path / "b/other"),
                        "--data-dir", str(tmp_path), "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert f"{tmp_path / 'a/flow'}, {tmp_path / 'b/flow/'} share the name flow" in err and not (tmp_path / "out").exists()


def test_channel_weights_of_channel_zero_need_a_pitch_channel(tmp_path, capsys):
    """{0: 10.0} weights the codec's log-F0; a codec without pitch (no model.pitch, or no config.yaml at all) has an
    ordinary channel there, so the weight is dropped with a note."""
    from shared.config import save_config

    pitch, plain, adapter = tmp_path / "pitch", tmp_path / "plain", tmp_path / "adapter"
    save_config({"model": {"pitch": {"f0_min": 50}}}, pitch / "config.yaml")
    save_config({"model": {"pitch": None}}, plain / "config.yaml")
    adapter.mkdir()
    assert train.codec_has_pitch(pitch) and not train.codec_has_pitch(plain) and not train.codec_has_pitch(adapter)
    for s1, left in ((pitch, {0: 10.0, 3: 2.0}), (plain, {3: 2.0}), (adapter, {3: 2.0})):
        model = {"flow": {"channel_weights": {0: 10.0, 3: 2.0}}}
        train.resolve_channel_weights(model, s1)
        assert model["flow"]["channel_weights"] == left
        assert ("channel_weights {0: 10.0} dropped" in capsys.readouterr().out) == (s1 != pitch)
    model = {"flow": {"channel_weights": {"0": 10.0}}}  # a key from a command-line override
    train.resolve_channel_weights(model, plain)
    assert model["flow"]["channel_weights"] == {}
    train.resolve_channel_weights({"flow": {}}, plain)
    assert capsys.readouterr().out.count("dropped") == 1



def test_nfe_sweep_names_a_linked_exp_dir_by_the_link(tmp_path, capsys):
    """The remedy the error gives, a link of another name to one of two same-named exp dirs, works."""
    (tmp_path / "a/flow").mkdir(parents=True)
    (tmp_path / "flow_a").symlink_to(tmp_path / "a/flow")
    with pytest.raises(FileNotFoundError):  # past the names' check, to the (missing) data dir
        nfe_sweep.main(["--exp-dirs", str(tmp_path / "flow_a"), str(tmp_path / "b/flow"), "--data-dir", str(tmp_path / "no_data"),
                        "--out-dir", str(tmp_path / "out")])
    assert "share the name" not in capsys.readouterr().err


def test_a_resumed_synthesis_with_another_prompt_pool_is_refused(tmp_path, monkeypatch):
    """--prompt-pool was recorded under synth.json's paths, never compared: a rerun into the same OUT with another pool
    kept the old wavs and made the ones it added in other voices (the references of another pool)."""
    s = tiny_synth(use_id=False, use_prompt=True, speakers=())
    monkeypatch.setattr(Synthesizer, "from_exp_dir", lambda *args, **kw: s)
    part = write_audio_data_dir(tmp_path / "part", {"a1": "A", "b1": "B"})
    pool1 = write_audio_data_dir(tmp_path / "pool1", {"a1": "A", "a2": "A", "b1": "B", "b2": "B"})
    pool2 = write_audio_data_dir(tmp_path / "pool2", {"a1": "A", "a3": "A", "b1": "B", "b3": "B"})
    run = ["--exp-dir", str(tmp_path / "exp"), "--data-dir", str(part), "--out-dir", str(tmp_path / "out"), "--nfe", "1",
           "--prompt-from-data"]
    assert synthesize.main([*run, "--prompt-pool", str(pool1)]) == 0
    assert (tmp_path / "out/utt2prompt").read_text() == "a1 a2\nb1 b2\n"
    (tmp_path / "out/wav/b1.wav").unlink()  # an interrupted run: b1 to do
    with pytest.raises(SystemExit, match="holds wavs made with other settings \\(references_sha256: "):
        synthesize.main([*run, "--prompt-pool", str(pool2)])
    assert synthesize.main([*run, "--prompt-pool", str(pool1)]) == 0  # the same pool: resumed
    assert (tmp_path / "out/wav/b1.wav").is_file()
    # redone with one reference for all: the per-utterance references went with the wavs they were used for
    write_audio_data_dir(tmp_path / "prompt", {"c1": "C"})
    run_one = [r for r in run if r != "--prompt-from-data"]
    assert synthesize.main([*run_one, "--prompt-wav", str(tmp_path / "prompt/c1.wav"), "--overwrite"]) == 0
    assert not (tmp_path / "out/utt2prompt").exists()


def test_speaker_with_prompt_from_data_is_an_error(tmp_path, monkeypatch):
    """Each utterance speaks in its reference's voice: --speaker was ignored, yet recorded in synth.json."""
    data = write_audio_data_dir(tmp_path / "data", {"a1": "spk0", "a2": "spk0"})
    run = ["--exp-dir", str(tmp_path / "exp"), "--data-dir", str(data), "--out-dir", str(tmp_path / "out"), "--nfe", "1",
           "--speaker", "spk1"]
    for s, extra, implied in ((tiny_synth(use_prompt=True), ["--prompt-from-data"], False),
                              (tiny_synth(use_id=False, use_prompt=True), [], True)):  # a zero-shot model's default
        monkeypatch.setattr(Synthesizer, "from_exp_dir", lambda *args, _s=s, **kw: _s)
        with pytest.raises(SystemExit, match="--speaker spk1 with --prompt-from-data.*--speaker would be ignored; give --prompt-wav") as e:
            synthesize.main([*run, *extra])
        assert ("(the default of a zero-shot model without speaker ids)" in str(e.value)) == implied
    assert not (tmp_path / "out/wav").exists()


def test_a_model_with_speaker_ids_and_a_prompt_encoder_warns_once_without_a_prompt(capsys):
    """Training always gives such a model a prompt: without one its speaker vector is one it never saw."""
    s = tiny_synth(use_prompt=True)
    s.synthesize(["abc"], speaker="spk0", nfe=1)
    s.synthesize(["abd"], speaker="spk1", nfe=1)
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "--prompt-from-data or --prompt-wav" in err and "model.speaker.use_id, use_prompt" in err
    s.synthesize(["abc"], speaker="spk0", prompt=torch.randn(4000), nfe=1)
    tiny_synth().synthesize(["abc"], nfe=1)  # no prompt encoder: nothing to give
    assert "warning" not in capsys.readouterr().err


def test_speakers_and_speaking_rate_that_do_not_fit_are_errors(tmp_path):
    """A speaker list of another length than the texts (a shorter one failed with an IndexError deep inside, a longer
    one was cut silently); an alignment-free model without speaking_rate.json (lengths at 0.2 tokens per frame)."""
    s = tiny_synth()
    with pytest.raises(ValueError, match="3 speakers for 2 texts: give one speaker, or one per text"):
        s.synthesize(["abc", "de"], speaker=["spk0", "spk1", "spk0"], nfe=1)
    with pytest.raises(ValueError, match="1 speakers for 2 texts"):
        s.synthesize([[1, 2], [3]], speaker=["spk1"], nfe=1)
    free = tiny_synth(mode="alignfree", alignfree=dict(text_layers=1, text_channels=8))
    with pytest.raises(ValueError, match="speaking rate: give rate_info with its tokens_per_frame"):
        free.synthesize(["abc"], nfe=1)
    exp = save_exp_dir(free, tmp_path / "free", rate=False)
    with pytest.raises(FileNotFoundError, match=f"{exp / 'speaking_rate.json'}: not found, and this alignment-free model"):
        Synthesizer.from_exp_dir(exp, codec=TinyCodec())
    save_exp_dir(free, exp)
    loaded = Synthesizer.from_exp_dir(exp, codec=TinyCodec())
    n_tokens = len(loaded.tokenize(["abc"])[0])  # 0.5 tokens a frame: twice as many frames, of 64 samples each
    assert loaded.synthesize(["abc"], nfe=1)[0].numel() == 2 * n_tokens * 64
    assert loaded.synthesize(["abc"], nfe=1, rate=2.0)[0].numel() == n_tokens * 64


class ContinuousCodec(TinyCodec):
    """A quantised codec's two encodings: ``encode_continuous`` before quantisation, ``encode`` after (rounded)."""

    def encode_continuous(self, wav: torch.Tensor) -> torch.Tensor:
        return super().encode(wav) * 10

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.round(self.encode_continuous(wav))


def test_a_model_trained_on_continuous_latents_is_recorded_prompted_and_dumped_so(tmp_path):
    """Training on `stage1_vae.encode --continuous` latents was not recorded: synthesis encoded prompts with the codec's
    quantised encode, and labelled --save-latents dumps as the codec's own kind. stage1.json records it now (an old one
    without the flag: not continuous)."""
    from argparse import Namespace

    from shared.io import read_json, write_json
    from stage2_flow.fake import make_fake_corpus

    r = make_fake_corpus(tmp_path / "corpus", n_train=4, n_dev=1, n_test=1)
    root = r["root"]
    dump = root / "dump/fake/train"
    for continuous in (True, False):
        write_json(dump / "codec.json", {"exp_dir": str(r["stage1"]), "model_sha256": None, "sample_rate": 16000,
                                         "hop_length": 256, "latent_dim": 8, "continuous": continuous})
        args = Namespace(init_from=None, stage1_exp_dir=str(r["stage1"]), latents=str(dump), data_dir=str(root / "data/train"),
                         tokens=str(r["tokens"]), frontend_config=None)
        exp = tmp_path / f"exp_{continuous}"
        exp.mkdir()
        train.describe_exp_dir(args, exp)
        assert read_json(exp / "stage1.json")["continuous"] is continuous
    s = tiny_synth(use_prompt=True)
    s.codec = ContinuousCodec()
    exp = save_exp_dir(s, tmp_path / "stage2/flow", {"continuous": True})
    (tmp_path / "stage1").mkdir()
    wav = 0.1 * torch.randn(1600, generator=torch.Generator().manual_seed(0))
    for stage1, encode in (({"continuous": True}, ContinuousCodec().encode_continuous), ({}, ContinuousCodec().encode)):
        save_exp_dir(s, exp, stage1)
        synth = Synthesizer.from_exp_dir(exp, codec=ContinuousCodec())
        assert torch.equal(synth.prompt_latents(wav), encode(wav[None])[0])
        assert synthesize.dump_codec_info(synth, exp)["continuous"] is bool(stage1)
    synth = Synthesizer.from_exp_dir(save_exp_dir(s, exp, {"continuous": True}), codec=TinyCodec())
    with pytest.raises(ValueError, match="trained on pre-quantisation latents .* has no encode_continuous"):
        synth.prompt_latents(wav)


def test_nfe_sweep_redoes_cells_of_re_trained_weights_in_the_same_place(tmp_path, monkeypatch):
    """A cell's model was named by the weights' size and mtime and the codec's path: EXP/decoder fine-tuned again (the
    same path, new weights) reused the old cells. By the weights' SHA-256 now, as synthesis records them."""
    import os

    from shared.io import write_kv

    s = tiny_synth()
    exp = save_exp_dir(s, tmp_path / "flow")
    codec_dir = tmp_path / "flow/decoder"
    codec_dir.mkdir()
    (codec_dir / "model.pt").write_bytes(b"decoder weights 1")
    s.codec_source = codec_dir
    monkeypatch.setattr(Synthesizer, "from_exp_dir", lambda *args, **kw: s)
    monkeypatch.setattr("shared.evaluate.evaluate", lambda *args, **kw: {"metrics": {}})
    made = []
    real = nfe_sweep.synthesise_cell
    monkeypatch.setattr(nfe_sweep, "synthesise_cell", lambda *args: made.append(args[1]) or real(*args))
    data = tmp_path / "data"
    write_kv(data / "text", {"u1": "abc", "u2": "de"})
    write_kv(data / "utt2spk", {"u1": "spk0", "u2": "spk1"})
    sweep = ["--exp-dirs", str(exp), "--data-dir", str(data), "--out-dir", str(tmp_path / "sweep"), "--nfe", "1"]
    assert nfe_sweep.main(sweep) == 0 and len(made) == 1
    assert nfe_sweep.main(sweep) == 0 and len(made) == 1  # reused

    def rewrite(path, data: bytes) -> None:  # other weights of the same size and time
        st = path.stat()
        assert len(data) == st.st_size
        path.write_bytes(data)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    rewrite(codec_dir / "model.pt", b"decoder weights 2")
    assert nfe_sweep.main(sweep) == 0 and len(made) == 2
    weights = (exp / "model.pt").read_bytes()
    rewrite(exp / "model.pt", weights[:-1] + bytes([weights[-1] ^ 1]))
    assert nfe_sweep.main(sweep) == 0 and len(made) == 3
