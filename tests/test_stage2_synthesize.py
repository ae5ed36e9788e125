"""Synthesis inputs checked before any audio is made, on a tiny untrained model (no training, a second or two):
speaker ids, speakers a model does not know, sampling options, empty and unknown tokens, speech prompts longer than
training's, the NFE sweep's exp names, and the flow-loss channel weights of a codec without pitch."""

from __future__ import annotations

import pytest
import torch

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


def tiny_synth(use_id: bool = True, use_prompt: bool = False, speakers: tuple[str, ...] = ("spk0", "spk1")) -> Synthesizer:
    torch.manual_seed(0)
    vocab = Vocab.build([list("abcdefghijklmnopqrstuvwxyz") + ["\u2581"]])
    cfg = dict(latent_dim=D, n_vocab=len(vocab), n_speakers=len(speakers), speaker=dict(dim=8, use_id=use_id, use_prompt=use_prompt),
               text_encoder=dict(hidden=16, conv_layers=1, attn_layers=1, heads=2, dropout=0.0),
               duration_predictor=dict(channels=16, layers=1), estimator=dict(hidden=16, layers=2, dilations=[1, 2], kernel=3))
    return Synthesizer(FlowTTS(cfg), LatentNormalizer([0.0] * D, [1.0] * D), vocab, Frontend.from_config({"frontend": "char"}),
                       TinyCodec(), list(speakers), None)


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
    s.synthesize(["abc"], solver="dopri5", sway=-2.0)  # no grid to warp
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
