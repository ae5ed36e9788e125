"""FlowTTS pieces: losses, sampler shapes, CFG, sway, alignment-free mode, speaker prompts, estimator."""

from __future__ import annotations

import math

import pytest
import torch

from stage2_flow.estimator import VelocityEstimator
from stage2_flow.flow import FlowMatcher
from stage2_flow.data import LatentNormalizer
from stage2_flow.likelihood import model_log_likelihood
from stage2_flow.model import FlowTTS, codec_dir

D = 6


def tiny_cfg(**over):
    cfg = dict(latent_dim=D, n_vocab=20, n_speakers=3, speaker=dict(dim=8, use_id=True, use_prompt=True),
               text_encoder=dict(hidden=16, conv_layers=1, attn_layers=1, heads=2, dropout=0.0),
               duration_predictor=dict(channels=16, layers=1), estimator=dict(hidden=16, layers=2, dilations=[1, 2], kernel=3))
    cfg.update(over)
    return cfg


def batch(b=3, n_tok=7, n_frm=30):
    g = torch.Generator().manual_seed(0)
    return dict(tokens=torch.randint(5, 20, (b, n_tok), generator=g), tok_lens=torch.tensor([7, 5, 3][:b]),
                latents=torch.randn(b, D, n_frm, generator=g), frm_lens=torch.tensor([30, 20, 9][:b]),
                spk=torch.tensor([0, 2, -1][:b]), prompt=torch.randn(b, D, 12, generator=g),
                prompt_mask=torch.tensor([[1.0] * 12, [1.0] * 6 + [0.0] * 6, [0.0] * 12])[:b, None])


def test_losses_and_gradients():
    torch.manual_seed(0)
    m = FlowTTS(tiny_cfg())
    losses, aux = m.losses(batch())
    assert set(losses) == {"prior/nll", "dur/log_mse", "flow/mse"}
    assert aux["durations"].sum(-1).tolist() == [30, 20, 9]
    sum(losses.values()).backward()
    for w in (m.text_encoder.emb.weight, m.speaker.prompt.out.weight):  # gradients that reach them, not only exist
        assert w.grad is not None and w.grad.abs().sum() > 0


def test_generate_shapes_rate_and_determinism():
    torch.manual_seed(0)
    m = FlowTTS(tiny_cfg()).eval()
    b = batch()
    kw = dict(spk=b["spk"], prompt=b["prompt"], prompt_mask=b["prompt_mask"])
    d = torch.tensor([[2, 2, 2, 2, 2, 2, 2], [3, 3, 3, 3, 3, 0, 0], [1, 1, 1, 0, 0, 0, 0]])
    out = m.generate(b["tokens"], b["tok_lens"], durations=d, nfe=4, generator=torch.Generator().manual_seed(1), **kw)
    assert out["latents"].shape == (3, D, 15) and out["frm_lens"].tolist() == [14, 15, 3]
    assert out["latents"][2, :, 3:].abs().sum() == 0  # padding stays zero
    again = m.generate(b["tokens"], b["tok_lens"], durations=d, nfe=4, generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(out["latents"], again["latents"])
    # the rate divides the predicted durations: 3 frames a token (exp(log 4) - 1) at rate 1, 6 at 0.5, 1.5 at 2
    m.duration_predictor.forward = lambda h, mask, g=None: torch.full((h.shape[0], h.shape[2]), math.log(4.0))
    slow = m.generate(b["tokens"], b["tok_lens"], rate=0.5, nfe=2, **kw)
    fast = m.generate(b["tokens"], b["tok_lens"], rate=2.0, nfe=2, **kw)
    assert slow["frm_lens"].tolist() == (6 * b["tok_lens"]).tolist()
    assert ((fast["frm_lens"] - 1.5 * b["tok_lens"]).abs() <= 0.5).all()
    del m.duration_predictor.forward
    for solver, nfe, used in [("euler", 3, 3), ("midpoint", 4, 4), ("heun", 4, 4), ("rk4", 8, 8)]:
        assert int(m.generate(b["tokens"], b["tok_lens"], durations=d, nfe=nfe, solver=solver, **kw)["nfe"]) == used
    assert int(m.generate(b["tokens"], b["tok_lens"], durations=d, solver="dopri5", **kw)["nfe"]) >= 7


def test_per_row_generators_make_each_utterance_independent_of_its_batch():
    torch.manual_seed(0)
    m = FlowTTS(tiny_cfg()).eval()
    b = batch()
    d = torch.tensor([[2, 2, 2, 2, 2, 2, 2], [3, 3, 3, 3, 3, 0, 0], [1, 1, 1, 0, 0, 0, 0]])

    def gens(*seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    full = m.generate(b["tokens"], b["tok_lens"], spk=b["spk"], durations=d, nfe=2, generator=gens(5, 6, 7))["latents"]
    for i in range(3):  # row i alone, with its own seed: the same start noise, so the same latents
        n = int(d[i].sum())
        alone = m.generate(b["tokens"][i : i + 1, : int(b["tok_lens"][i])], b["tok_lens"][i : i + 1], spk=b["spk"][i : i + 1],
                           durations=d[i : i + 1, : int(b["tok_lens"][i])], nfe=2, generator=gens(5 + i))["latents"]
        assert alone.shape[-1] == n
        torch.testing.assert_close(alone[0], full[i, :, :n], atol=1e-5, rtol=1e-5)
    other = m.generate(b["tokens"], b["tok_lens"], spk=b["spk"], durations=d, nfe=2, generator=gens(5, 6, 8))["latents"]
    assert torch.equal(other[:2], full[:2]) and not torch.equal(other[2], full[2])
    with pytest.raises(ValueError, match="2 generators for a batch of 3"):
        m.generate(b["tokens"], b["tok_lens"], durations=d, generator=gens(1, 2))


def test_cfg_combines_conditional_and_unconditional():
    torch.manual_seed(0)
    est = VelocityEstimator(D, D, hidden=16, layers=1, spk_dim=4)
    torch.nn.init.normal_(est.out.weight)
    fm = FlowMatcher(est, cfg_drop=0.5).eval()
    mu, mask, g = torch.randn(2, D, 10), torch.ones(2, 1, 10), torch.randn(2, 4)
    x = torch.randn(2, D, 10)
    vc = fm.velocity_fn(mask, mu, g, None, 0.0)(0.3, x)
    vu = est(x, torch.full((2,), 0.3), mask, torch.zeros_like(mu), torch.zeros_like(g))
    v = fm.velocity_fn(mask, mu, g, None, 2.0)(0.3, x)
    assert torch.allclose(v, vc + 2.0 * (vc - vu), atol=1e-5)



def test_guidance_without_a_condition_or_without_dropout(capsys):
    """Guidance of a model with no condition (no mu_cond, no text or speaker condition) returned v_c + w (v_c - v_u)
    with v_c = v_u: unguided audio, without a word. Now a ValueError; of a model trained without condition dropout (its
    v_u never trained), a warning, once."""
    mask, mu, x = torch.ones(1, 1, 10), torch.randn(1, D, 10), torch.randn(1, D, 10)
    bare = FlowMatcher(VelocityEstimator(D, 0, hidden=16, layers=1), mu_cond=False).eval()
    assert bare.velocity_fn(mask, mu, None, None, 0.0)(0.3, x).shape == x.shape
    with pytest.raises(ValueError, match="cfg_scale 2: this model's velocity has no condition to guide"):
        bare.velocity_fn(mask, mu, None, None, 2.0)
    g = torch.randn(1, 4)  # a speaker alone is a condition to guide
    FlowMatcher(VelocityEstimator(D, 0, hidden=16, layers=1, spk_dim=4), mu_cond=False).velocity_fn(mask, mu, g, None, 2.0)
    assert capsys.readouterr().err == ""
    undropped = FlowMatcher(VelocityEstimator(D, D, hidden=16, layers=1), cfg_drop=0.0).eval()
    for _ in range(2):
        undropped.velocity_fn(mask, mu, None, None, 1.5)(0.3, x)
    err = capsys.readouterr().err
    assert err.count("warning: cfg_scale 1.5: this model was trained without condition dropout") == 1

@pytest.mark.parametrize("conditions", [{}, {"speaker": True}, {"frame_text_channels": 4}, {"mu_cond": True},
                                        {"mode": "alignfree"}])
def test_a_model_says_before_sampling_whether_it_can_be_guided(conditions):
    """FlowTTS.check_guidance refuses what the sampler would refuse at its first batch, so that the command lines can
    refuse it up front; the two agree for each kind of condition."""
    torch.manual_seed(0)
    speaker = dict(dim=8, use_id=True, use_prompt=False) if conditions.get("speaker") else dict(use_id=False, use_prompt=False)
    cfg = tiny_cfg(n_speakers=3 if conditions.get("speaker") else 0, speaker=speaker,
                   flow=dict(mu_cond=bool(conditions.get("mu_cond"))),
                   frame_text_channels=conditions.get("frame_text_channels", 0), mode=conditions.get("mode", "aligned"))
    m = FlowTTS(cfg).eval()
    b = batch()
    kw = dict(spk=b["spk"].clamp(min=0) if conditions.get("speaker") else None, nfe=1, cfg_scale=1.0,
              **({"n_frames": b["frm_lens"]} if conditions.get("mode") == "alignfree" else {}))
    m.check_guidance(0.0)  # no guidance: nothing to check
    if conditions:
        m.check_guidance(1.0)
        assert m.generate(b["tokens"], b["tok_lens"], **kw)["latents"].isfinite().all()
    else:
        for refuse in (lambda: m.check_guidance(1.0), lambda: m.generate(b["tokens"], b["tok_lens"], **kw)):
            with pytest.raises(ValueError, match="cfg_scale 1: this model's velocity has no condition to guide"):
                refuse()


def test_sway_and_temperature_change_samples():
    torch.manual_seed(0)
    m = FlowTTS(tiny_cfg())
    torch.nn.init.normal_(m.flow.estimator.out.weight, std=0.3)
    m.eval()
    b = batch()
    d = torch.full((3, 7), 2) * (torch.arange(7)[None] < b["tok_lens"][:, None])

    def run(**kw):
        return m.generate(b["tokens"], b["tok_lens"], spk=b["spk"], durations=d, nfe=4, generator=torch.Generator().manual_seed(0), **kw)["latents"]

    base = run()
    assert not torch.allclose(base, run(sway=-1.0))
    assert not torch.allclose(base, run(temperature=0.3))
    assert not torch.allclose(base, run(cfg_scale=1.0))


def test_time_sampling_and_prior_modes():
    est = VelocityEstimator(D, D, hidden=16, layers=1)
    fm = FlowMatcher(est, prior="noise", time_sampling="logit_normal", logit_mean=0.0, logit_std=1.0)
    t = fm.sample_t(2000, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert 0 < float(t.min()) and float(t.max()) < 1 and abs(float(t.mean()) - 0.5) < 0.03
    mu = torch.full((1, D, 5), 100.0)
    assert float(fm.sample_x0(mu, torch.ones(1, 1, 5)).abs().mean()) < 5  # noise prior ignores mu
    with pytest.raises(ValueError, match="flow.prior must be 'text' or 'noise', got 'other'"):
        FlowMatcher(est, prior="other")


def test_alignfree_mode():
    torch.manual_seed(0)
    for layout in ("pad", "stretch"):
        m = FlowTTS(tiny_cfg(mode="alignfree", alignfree=dict(layout=layout, text_layers=1, text_channels=8),
                             estimator=dict(hidden=16, layers=1, attn_layers=1, heads=2)))
        losses, _ = m.losses(batch())
        assert set(losses) == {"flow/mse"}
        losses["flow/mse"].backward()
        m.eval()
        out = m.generate(batch()["tokens"], batch()["tok_lens"], tokens_per_frame=0.5, nfe=2)
        assert out["frm_lens"].tolist() == [14, 10, 6] and out["latents"].shape == (3, D, 14)
        with pytest.raises(ValueError, match="tokens_per_frame"):
            m.generate(batch()["tokens"], batch()["tok_lens"])
        with pytest.raises(ValueError, match="aligned"):  # not the AttributeError of a missing text projection
            model_log_likelihood(m, batch(), LatentNormalizer(torch.zeros(D), torch.ones(D)), nfe=2)


def test_alignfree_infill_reaches_the_whole_utterance():
    """The infilled span was rounded down, so mask_frac's upper end 1.0 was never reached: at least one frame of the
    target was always given as context, while synthesis gives none."""
    m = FlowTTS(tiny_cfg(mode="alignfree", alignfree=dict(layout="pad", text_layers=1, text_channels=8, mask_frac=[0.99, 1.0]),
                         estimator=dict(hidden=16, layers=1, attn_layers=1, heads=2)))
    seen = []
    m.flow.compute_loss = lambda x1, mask, mu, g, extra, loss_mask, **kw: seen.append((extra, loss_mask)) or {}
    m.losses(batch())
    (extra, infill), lengths = seen[0], batch()["frm_lens"]
    assert infill[:, 0].sum(-1).tolist() == lengths.tolist()  # every frame of each utterance infilled
    assert extra[:, 8:].abs().sum() == 0  # no latents as context


def test_estimator_stride_two_handles_odd_lengths():
    est = VelocityEstimator(D, 2, hidden=16, layers=2, stride=2)
    torch.nn.init.normal_(est.out.weight)
    mask = torch.ones(2, 1, 11)
    mask[1, :, 7:] = 0
    v = est(torch.randn(2, D, 11), torch.rand(2), mask, torch.randn(2, 2, 11))
    assert v.shape == (2, D, 11) and v[1, :, 7:].abs().sum() == 0


def test_flow_segment_windows():
    from stage2_flow.model import random_windows

    x = torch.arange(10.0).view(1, 1, 10).repeat(2, 1, 1)
    mask = torch.ones(2, 1, 10)
    mask[1, :, 3:] = 0
    xc, mc = random_windows(4, torch.tensor([10, 3]), torch.Generator().manual_seed(0), x, mask)
    assert xc.shape == (2, 1, 4) and torch.all(torch.diff(xc[0, 0]) == 1)
    assert mc[1, 0].tolist() == [1, 1, 1, 0] and xc[1, 0, :3].tolist() == [0, 1, 2]
    m = FlowTTS(tiny_cfg(flow_segment_frames=8))
    seen, compute_loss = [], m.flow.compute_loss

    def windowed(x1, *args, **kwargs):
        seen.append(tuple(x1.shape))
        return compute_loss(x1, *args, **kwargs)

    m.flow.compute_loss = windowed
    losses, aux = m.losses(batch())
    assert aux["mu_frames"].shape[-1] == 30 and torch.isfinite(losses["flow/mse"])
    assert seen == [(3, D, 8)]  # the flow saw 8-frame windows, the rest of the model whole utterances


def test_flow_channel_weights_weight_the_loss_per_channel():
    """channel_weights {c: w}: a weighted mean over channels, so an error only in channel c counts w
    times more than the same error in another channel; out-of-range channels are an error."""
    from stage2_flow.flow import FlowMatcher

    class Fixed(torch.nn.Module):  # velocity = 0, so the loss is the mean of target^2
        def forward(self, xt, t, mask, cond, g):
            return torch.zeros_like(xt)

    x1 = torch.zeros(1, 4, 5)
    x1[:, 0] = 1.0
    mu, mask = torch.zeros(1, 4, 5), torch.ones(1, 1, 5)
    x0 = torch.zeros(1, 4, 5)
    plain = FlowMatcher(Fixed(), sigma=0.0).compute_loss(x1, mask, mu, x0=x0)["flow/mse"]
    heavy = FlowMatcher(Fixed(), sigma=0.0, channel_weights={0: 10.0}).compute_loss(x1, mask, mu, x0=x0)["flow/mse"]
    assert float(plain) == pytest.approx(1 / 4) and float(heavy) == pytest.approx(10 / 13)
    with pytest.raises(ValueError, match="out of range"):
        FlowMatcher(Fixed(), channel_weights={4: 2.0}).compute_loss(x1, mask, mu, x0=x0)


def test_phone_balanced_weights_give_every_phone_the_same_weight():
    """model.phone_balance: at power 1 a one-frame phone weighs as much as a four-frame one; at 0 every frame
    weighs 1 (the plain loss: the same losses as without the option); padding weighs nothing."""
    from stage2_flow.model import phone_balanced_weights

    durations, tok_mask = torch.tensor([[1, 4, 0], [2, 2, 1]]), torch.tensor([[[1.0, 1.0, 0.0]], [[1.0, 1.0, 1.0]]])
    w = phone_balanced_weights(durations, tok_mask, 6, power=1.0)  # mean duration 2
    assert w.shape == (2, 1, 6)
    assert w[0, 0].tolist() == pytest.approx([2.0, 0.5, 0.5, 0.5, 0.5, 0.0])
    assert w[1, 0].tolist() == pytest.approx([1.0, 1.0, 1.0, 1.0, 2.0, 0.0])
    assert phone_balanced_weights(durations, tok_mask, 6, power=0.0)[0, 0].tolist() == [1, 1, 1, 1, 1, 0]
    torch.manual_seed(0)
    m = FlowTTS(tiny_cfg())
    plain = m.losses(batch(), generator=torch.Generator().manual_seed(1))[0]
    m.cfg["phone_balance"] = 1e-9  # the weighted path with weights of 1
    same = m.losses(batch(), generator=torch.Generator().manual_seed(1))[0]
    m.cfg["phone_balance"] = 1.0
    balanced = m.losses(batch(), generator=torch.Generator().manual_seed(1))[0]
    assert float(same["flow/mse"]) == pytest.approx(float(plain["flow/mse"]), rel=1e-5)
    assert float(balanced["flow/mse"]) != pytest.approx(float(plain["flow/mse"]), rel=1e-3)
    assert float(balanced["prior/nll"]) == pytest.approx(float(plain["prior/nll"]))  # only the flow is weighted


def test_frame_text_channels_condition_the_estimator():
    """frame_text_channels E: the text states, projected to E channels and expanded like mu, are a further
    frame condition of the estimator (gradients reach the projection); reflow pairs store them."""
    from stage2_flow.data import collate_pairs
    from stage2_flow.reflow import generate_pairs

    torch.manual_seed(0)
    m = FlowTTS(tiny_cfg(frame_text_channels=5))
    assert m.flow.estimator.inp.in_channels == D + D + 5  # x_t, mu, text
    torch.nn.init.normal_(m.flow.estimator.out.weight, std=0.1)  # zero at init: no gradient would reach the inputs
    losses, _ = m.losses(batch())
    losses["flow/mse"].backward()
    assert m.text_proj.weight.grad is not None and m.text_proj.weight.grad.abs().sum() > 0
    m.eval()
    b = batch()
    out = m.generate(b["tokens"], b["tok_lens"], spk=b["spk"], prompt=b["prompt"], prompt_mask=b["prompt_mask"], nfe=2)
    assert torch.isfinite(out["latents"]).all()
    pairs = generate_pairs(m, b, nfe=2, solver="euler")
    assert [p["text_frames"].shape for p in pairs] == [(5, 30), (5, 20), (5, 9)]
    # each tensor is a copy of its own: saving one must not write the whole padded batch's storage
    assert all(t.untyped_storage().nbytes() == t.numel() * t.element_size() for p in pairs for t in p.values() if t is not None)
    items = [{"utt": str(i), **p} for i, p in enumerate(pairs)]
    pb = collate_pairs(items)
    assert pb["text_frames"].shape == (3, 5, 30)
    losses, _ = m.train().losses(pb)
    assert torch.isfinite(losses["flow/mse"])


def test_codec_dir_refuses_a_decoder_fine_tuned_on_an_earlier_model(tmp_path):
    import json

    import yaml

    from shared.io import file_sha256

    exp = tmp_path / "flow"
    (exp / "decoder").mkdir(parents=True)
    (exp / "stage1.json").write_text(json.dumps({"exp_dir": "../vae"}))
    (exp / "model.pt").write_bytes(b"model of the first training")
    assert codec_dir(exp) == exp / ".." / "vae"  # no decoder/model.pt: stage one's codec
    (exp / "decoder" / "model.pt").write_bytes(b"decoder")

    def decoder_made_from(sha):
        (exp / "decoder" / "config.yaml").write_text(yaml.safe_dump({"data": {"source_model_sha256": sha}}))

    decoder_made_from(file_sha256(exp / "model.pt"))
    assert codec_dir(exp) == exp / "decoder"
    (exp / "model.pt").write_bytes(b"model of a second training")  # stage two retrained, stage 7 not redone
    with pytest.raises(RuntimeError, match="fine-tuned on the output of an earlier .*model.pt"):
        codec_dir(exp)
    decoder_made_from(None)  # a decoder from before the check: nothing to compare, used
    assert codec_dir(exp) == exp / "decoder"


def test_a_validation_subset_draws_prompts_from_the_whole_set(tmp_path):
    """stage2_flow.train keeps `validation.num_utts` dev utterances (TTSDataset.subset); each one's speech prompt is
    still a segment of another utterance of its speaker in the whole set (it was once an index into the full lists)."""
    from shared.text import Vocab
    from stage2_flow.data import LatentNormalizer, TTSDataset
    from stage2_flow.fake import make_fake_corpus

    r = make_fake_corpus(tmp_path, n_train=40, n_dev=12, n_test=1)
    root = r["root"]
    ds = TTSDataset(root / "data/dev", root / "dump/fake/dev", Vocab.load(r["tokens"]),
                    LatentNormalizer.load(r["stage1"] / "latent_stats.json"), ["spk0", "spk1"], 62.5, prompt_seconds=(0.05, 0.1))
    sub = ds.subset([11, 0, 5])
    assert sub.utts == [ds.utts[i] for i in (11, 0, 5)] and len(ds) == 12
    for k in range(len(sub)):
        for seed in range(4):
            item, prompt = sub[k, seed], sub[k, seed]["prompt"]
            sources = [j for j in range(len(ds)) if ds.spk[j] == item["spk"] and ds.utts[j] != item["utt"]
                       and any(torch.equal(ds.latents[j][:, s : s + prompt.shape[1]], prompt)
                               for s in range(ds.latents[j].shape[1] - prompt.shape[1] + 1))]
            assert sources, (item["utt"], seed)


def test_standin_codec_cli_dumps_latents_and_stats(tmp_path):
    """`python -m stage2_flow.codec` (stage two without a trained stage one): a latent dump and latent_stats.json, of
    the data dir's utterances: with a segments file, the cuts (it encoded whole recordings under their ids, so stage
    two found no latents for any utterance, and the statistics included the audio between the cuts)."""
    from conftest import write_data_dir
    from shared.io import read_json
    from shared.latents import load_latent, read_latent_scp
    from stage2_flow import codec

    data = write_data_dir(tmp_path / "data", {"u0": ("s", "a", 0.5), "u1": ("s", "b", 0.5625)})
    codec.main(["--exp-dir", str(tmp_path / "exp"), "--data-dir", str(data), "--out-dir", str(tmp_path / "dump"),
                "--latent-dim", "10", "--stats"])
    scp = read_latent_scp(tmp_path / "dump")
    assert sorted(scp) == ["u0", "u1"] and load_latent(scp["u1"]).shape[0] == 10
    assert len(read_json(tmp_path / "exp/latent_stats.json")["std"]) == 10
    # one recording of 1.5 s, two utterances cut from it
    rec = write_data_dir(tmp_path / "rec", {"r": ("s", "x", 1.5)})
    seg = tmp_path / "seg"
    seg.mkdir()
    (seg / "wav.scp").write_text((rec / "wav.scp").read_text())
    (seg / "segments").write_text("s-u1 r 0.00 0.48\ns-u2 r 0.48 1.28\n")
    (seg / "text").write_text("s-u1 one\ns-u2 two\n")
    (seg / "utt2spk").write_text("s-u1 s\ns-u2 s\n")
    (seg / "spk2utt").write_text("s s-u1 s-u2\n")
    codec.main(["--exp-dir", str(tmp_path / "exp"), "--data-dir", str(seg), "--out-dir", str(tmp_path / "segdump")])
    scp = read_latent_scp(tmp_path / "segdump")
    assert sorted(scp) == ["s-u1", "s-u2"]
    # 0.48 s and 0.80 s at 16 kHz, hop 256: 30 and 50 hops (+ 1 frame of the centred STFT)
    assert [load_latent(scp[u]).shape[1] for u in ("s-u1", "s-u2")] == [31, 51]


def test_a_text_file_is_read_as_keyed_lines_or_sentences_and_a_mix_is_an_error(tmp_path):
    """--text-file: keyed when every line starts with an id (a field with a digit) and text. A keyed file with one bad
    line (an id without text, a dotted id, a BOM before the first id) was read as plain sentences, its ids spoken;
    a repeated id kept its last line."""
    from stage2_flow.synthesize import read_text_file

    def read(text: str, fmt: str = "auto") -> dict:
        (tmp_path / "t.txt").write_bytes(text.encode("utf-8"))
        return read_text_file(tmp_path / "t.txt", fmt)

    assert read("x001 red blue\r\n\nx002  near fast\n") == {"x001": "red blue", "x002": "near fast"}
    assert read("\ufeffa.001 red blue\na.002 near fast\n") == {"a.001": "red blue", "a.002": "near fast"}
    assert read("The cat sat.\nA dog ran.\n") == {"utt000000": "The cat sat.", "utt000001": "A dog ran."}
    assert read("x001 red blue\n", "plain") == {"utt000000": "x001 red blue"}
    with pytest.raises(SystemExit, match=r"t.txt: 2 of 3 lines start with an utterance id and text \(e.g. line 1\), line\(s\) 2 "
                                         r"not: give --text-format keyed"):
        read("x001 red blue\nx002\nx003 sun\n")
    with pytest.raises(SystemExit, match=r"t.txt:3: utterance id 'x001' again \(line 1\)"):
        read("x001 red blue\nx002 near\nx001 sun sat\n")
    with pytest.raises(SystemExit, match=r"t.txt:2: 'The': an utterance id without text"):
        read("x001 red blue\nThe\n", "keyed")
    with pytest.raises(SystemExit, match=r"t.txt:1: utterance id 'a/1' holds a '/'"):
        read("a/1 red\n", "keyed")
    # a line ends at '\n' alone: U+2028, a form feed or U+0085 inside one made the rest a line (keyed: an id) of its own
    assert read("x001 red\u2028blue\nx002 near\x0cfast\x85now\n") == {"x001": "red\u2028blue", "x002": "near\x0cfast\x85now"}
    # a number, a year or a list number starts a sentence, not an id; a second file's BOM is no part of an id
    assert read("1990 was good.\n2001 was odd.\n") == {"utt000000": "1990 was good.", "utt000001": "2001 was odd."}
    assert read("1. The birch.\n2. Glue it.\n") == {"utt000000": "1. The birch.", "utt000001": "2. Glue it."}
    assert read("x001 red\n\ufeffx002 blue\n") == {"x001": "red", "x002": "blue"}
    assert read("x001 red\n").line_of == {"x001": 1} and read("\n\nA cat.\n").line_of == {"utt000000": 3}
    with pytest.raises(SystemExit, match="t.txt: no text to synthesise"):
        read("\n \n")


def test_references_from_data_do_not_depend_on_the_split():
    """--prompt-from-data picks each utterance's reference in the whole set (--prompt-pool), so stage 8's parallel
    jobs (a split by utterance) give every utterance the reference one job gives it, never itself."""
    from stage2_flow.synthesize import reference_utterances

    pool = {f"spk{i % 3}-{i:03d}": f"spk{i % 3}" for i in range(15)}
    whole = reference_utterances(sorted(pool), pool)
    assert all(pool[r] == pool[u] and r != u for u, r in whole.items())
    split = {}
    for k in range(4):
        part = sorted(pool)[k::4]
        split.update(reference_utterances(part, {u: pool[u] for u in part}, pool))
    assert split == whole
    with pytest.raises(SystemExit, match="spk9"):
        reference_utterances(["spk9-000"], {"spk9-000": "spk9"}, pool)


def test_dopri5_gives_an_utterance_the_same_latents_alone_and_in_a_batch():
    """dopri5 chooses its steps by an error norm: one norm over a padded batch (the other rows' errors, the padding)
    made an utterance's latents depend on its batch (0.076 apart on a trained model); each row is integrated on its
    own now, and the norm is computed without float32 cancellation, so float rounding does not move the steps."""
    torch.manual_seed(0)
    m = FlowTTS(tiny_cfg())
    torch.nn.init.normal_(m.flow.estimator.out.weight, std=0.5)  # a field dopri5 takes many uneven steps on
    m.eval()
    b = batch()
    d = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [6, 6, 6, 6, 6, 0, 0], [2, 1, 1, 0, 0, 0, 0]])  # 7, 30 and 4 frames

    def gens(*seeds):
        return [torch.Generator().manual_seed(s) for s in seeds]

    full = m.generate(b["tokens"], b["tok_lens"], spk=b["spk"], durations=d, solver="dopri5", generator=gens(5, 6, 7))
    assert int(full["nfe"]) > 7  # more than one step
    for i in (0, 2):
        n, k = int(d[i].sum()), int(b["tok_lens"][i])
        alone = m.generate(b["tokens"][i : i + 1, :k], b["tok_lens"][i : i + 1], spk=b["spk"][i : i + 1], durations=d[i : i + 1, :k],
                           solver="dopri5", generator=gens(5 + i))["latents"]
        assert alone.shape[-1] == n
        assert float((alone[0] - full["latents"][i, :, :n]).abs().max()) < 1e-4


def test_generate_refuses_an_item_without_tokens_and_a_rate_not_above_zero():
    """An empty token sequence came out as NaN latents in a batch and as a convolution error alone; a rate <= 0 as
    durations of inf or below zero."""
    torch.manual_seed(0)
    m = FlowTTS(tiny_cfg()).eval()
    b = batch()
    with pytest.raises(ValueError, match=r"item\(s\) \[1\] of the batch have no tokens"):
        m.generate(b["tokens"], torch.tensor([7, 0, 3]), spk=b["spk"], nfe=1)
    with pytest.raises(ValueError, match=r"item\(s\) \[0\]"):
        m.generate(b["tokens"][:1, :0], torch.tensor([0]), nfe=1)
    for rate in (0.0, -1.0):
        with pytest.raises(ValueError, match=f"rate {rate}"):
            m.generate(b["tokens"], b["tok_lens"], spk=b["spk"], nfe=1, rate=rate)


def test_reflow_pairs_pick_the_shortest_or_a_spread_over_the_lengths():
    from stage2_flow.reflow import pick_utterances

    by_length = [7, 3, 9, 0, 5, 1, 8, 2, 6, 4]  # indices, shortest first
    assert pick_utterances(by_length, None) == by_length and pick_utterances(by_length, 20, "spread") == by_length
    assert pick_utterances(by_length, 3) == [7, 3, 9]
    assert pick_utterances(by_length, 3, "spread") == [7, 0, 8]  # positions 0, 3, 6: short, middle, long


@pytest.mark.parametrize("over", [{}, {"frame_text_channels": 4},
                                  {"mode": "alignfree", "alignfree": {"layout": "pad", "text_layers": 1, "text_channels": 8}},
                                  {"mode": "alignfree", "alignfree": {"layout": "stretch", "text_layers": 1, "text_channels": 8}}],
                         ids=["aligned", "frame_text", "alignfree_pad", "alignfree_stretch"])
def test_every_parameter_gets_a_gradient(over):
    """Plain DDP (the recipe's +trainer.strategy=ddp on several GPUs) stops at a parameter without a gradient: alignfree
    mode built the prior mean's projection (mu, unused there) and, with the stretch layout, the filler."""
    torch.manual_seed(0)
    m = FlowTTS(tiny_cfg(**over))
    losses, _ = m.losses(batch(), generator=torch.Generator().manual_seed(0))
    sum(losses.values()).backward()
    assert [n for n, p in m.named_parameters() if p.grad is None] == []


def test_an_older_alignfree_export_with_weights_it_never_used_loads(capsys):
    """Exports from before alignfree mode stopped building the prior mean's projection (and, stretched, the filler)."""
    torch.manual_seed(0)
    cfg = tiny_cfg(mode="alignfree", alignfree=dict(layout="stretch", text_layers=1, text_channels=8))
    m = FlowTTS(cfg)
    old = {**m.state_dict(), "text_encoder.proj_mu.weight": torch.zeros(D, 16, 1), "text_encoder.proj_mu.bias": torch.zeros(D),
           "filler": torch.zeros(16, 1)}
    again = FlowTTS(cfg)
    again.load_state_dict(old)  # strict
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in m.state_dict().items())
    assert "note: dropped text_encoder.proj_mu.weight, text_encoder.proj_mu.bias, filler" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="Unexpected key"):  # other unknown weights are still an error
        again.load_state_dict({**old, "other.weight": torch.zeros(1)})


def test_a_flow_without_any_text_condition_is_refused():
    with pytest.raises(ValueError, match="no text at all"):
        FlowTTS(tiny_cfg(flow=dict(prior="noise", mu_cond=False)))
    FlowTTS(tiny_cfg(flow=dict(prior="noise", mu_cond=False), frame_text_channels=4))  # the text states condition it
    FlowTTS(tiny_cfg(flow=dict(prior="text", mu_cond=False)))  # x0 around mu


def test_latents_with_other_channels_than_the_codecs_are_an_error_naming_the_file(tmp_path):
    from shared.text import Vocab
    from stage2_flow.data import TTSDataset
    from stage2_flow.fake import make_fake_corpus

    r = make_fake_corpus(tmp_path, n_train=4, n_dev=1, n_test=1)
    root, norm = r["root"], LatentNormalizer.load(r["stage1"] / "latent_stats.json")
    victim = sorted((root / "dump/fake/train/latents").glob("*.pt"))[1]
    torch.save(torch.load(victim).T.contiguous(), victim)  # (F, D): transposed
    with pytest.raises(ValueError, match=f"{victim}: latents of shape .* the codec's latents have 8 channels"):
        TTSDataset(root / "data/train", root / "dump/fake/train", Vocab.load(r["tokens"]), norm, ["spk0", "spk1"], 62.5)


def test_utterances_of_unknown_speakers_warn_or_fail(tmp_path, capsys):
    """A speaker not among the model's (or no utt2spk entry) became the zero speaker vector silently."""
    from shared.text import Vocab
    from stage2_flow.data import TTSDataset
    from stage2_flow.fake import make_fake_corpus

    r = make_fake_corpus(tmp_path, n_train=6, n_dev=1, n_test=1)
    root = r["root"]
    args = (root / "data/train", root / "dump/fake/train", Vocab.load(r["tokens"]), LatentNormalizer.load(r["stage1"] / "latent_stats.json"))
    TTSDataset(*args, ["spk0", "spk1"], 62.5, unknown_speakers="error")
    assert "warning" not in capsys.readouterr().err
    ds = TTSDataset(*args, ["spk0"], 62.5)
    assert "warning: 3 utterance(s) of" in capsys.readouterr().err and ds.spk.count(-1) == 3
    with pytest.raises(ValueError, match=r"3 utterance\(s\) .* e\.g\. \['train_s1_001'"):
        TTSDataset(*args, ["spk0"], 62.5, unknown_speakers="error")
    (root / "data/train/utt2spk").unlink()
    with pytest.raises(ValueError, match=r"6 utterance\(s\)"):
        TTSDataset(*args, ["spk0", "spk1"], 62.5, unknown_speakers="error")


def test_a_malformed_reflow_pair_is_an_error_naming_the_file(tmp_path):
    from shared.io import write_kv
    from stage2_flow.data import ReflowPairs

    torch.save({"x1": torch.zeros(D, 5), "mu_frames": torch.zeros(D, 5)}, tmp_path / "u1.pt")
    write_kv(tmp_path / "pairs.scp", {"u1": "u1.pt"})
    with pytest.raises(ValueError, match=f"{tmp_path / 'u1.pt'}: not a reflow pair \\(no x0\\)"):
        ReflowPairs(tmp_path)


def test_prompts_of_speakers_without_an_id_come_from_their_other_utterances(tmp_path, capsys):
    """A speaker not in speakers.txt (id -1: an unseen voice, the zero-shot case of a dev or likelihood set) had its
    prompts cut from the target utterance itself; they come from its speaker's other utterances (by utt2spk name), and
    from itself only for a speaker's only utterance, with one warning naming it."""
    from shared.io import read_kv, write_kv
    from shared.text import Vocab
    from stage2_flow.data import TTSDataset
    from stage2_flow.fake import make_fake_corpus

    r = make_fake_corpus(tmp_path, n_train=8, n_dev=1, n_test=1)
    root = r["root"]
    utt2spk = read_kv(root / "data/train/utt2spk")
    lone = sorted(utt2spk)[-1]
    write_kv(root / "data/train/utt2spk", {**utt2spk, lone: "spk9"})  # a speaker of one utterance
    ds = TTSDataset(root / "data/train", root / "dump/fake/train", Vocab.load(r["tokens"]),
                    LatentNormalizer.load(r["stage1"] / "latent_stats.json"), ["spk0"], 62.5, prompt_seconds=(0.05, 0.1))
    err = capsys.readouterr().err
    assert err.count("cut from itself") == 1 and f"1 utterance(s) of {root / 'data/train'}" in err and lone in err
    names = dict(zip(ds.utts, ds.spk_names))
    for k, utt in enumerate(ds.utts):
        assert ds.spk[k] == (0 if names[utt] == "spk0" else -1)
        for seed in range(4):
            prompt = ds[k, seed]["prompt"]
            sources = [j for j in range(len(ds)) if any(torch.equal(ds.latents[j][:, s : s + prompt.shape[1]], prompt)
                                                        for s in range(ds.latents[j].shape[1] - prompt.shape[1] + 1))]
            expected = [k] if utt == lone else [j for j, u in enumerate(ds.utts) if names[u] == names[utt] and u != utt]
            assert sources and set(sources) <= set(expected), (utt, seed)
    ds[0, 0], ds[1, 1]
    assert capsys.readouterr().err == ""  # not once per item or batch


def test_a_reflow_pairs_path_ends_at_its_own_x1_also_with_ot_cfm():
    """OT-CFM's path (1 - (1 - sigma_min) t) x0 + t x1 ends at x1 + sigma_min x0: applied to a reflow pair (x0, x1) it
    trained the fine-tune towards a noisier x1 than the one the base model made from that x0. A given x0 now takes the
    straight line; the sampled x0 of ordinary training keeps OT-CFM's path."""
    seen = []

    class Probe(torch.nn.Module):  # the estimator: records what it is given, answers zero
        def forward(self, x, t, mask, cond, g):
            seen.append(x.clone())
            return torch.zeros_like(x)

    fm = FlowMatcher(VelocityEstimator(D, D, hidden=16, layers=1), prior="noise", sigma_min=0.1).train()
    fm.estimator = Probe()
    x0, x1, mu, mask = torch.randn(2, D, 9), torch.randn(2, D, 9), torch.zeros(2, D, 9), torch.ones(2, 1, 9)
    one = torch.ones(2)
    given = fm.compute_loss(x1, mask, mu, x0=x0, t=one)["flow/mse"]
    assert torch.allclose(seen[-1], x1) and given == pytest.approx(float(((x1 - x0) ** 2).mean()), rel=1e-5)
    torch.manual_seed(0)
    fm.compute_loss(x1, mask, mu, t=one)
    torch.manual_seed(0)
    drawn = fm.sample_x0(mu, mask)
    assert torch.allclose(seen[-1], x1 + 0.1 * drawn, atol=1e-6)  # OT-CFM as before


def test_sigma_min_with_the_text_prior_is_refused():
    """x_t = (1 - (1 - sigma_min) t) x0 + t x1 ends at x1 + sigma_min x0: with x0 = mu + sigma eps every sample would be
    shifted by sigma_min mu. A ConfigError before training (check_training_config); a model trained so before this
    check still builds (and loads). The noise prior (OT-CFM) and sigma_min 0 (every shipped config) are unchanged."""
    from shared.config import ConfigError
    from stage2_flow.experiment import check_training_config

    FlowTTS(tiny_cfg(flow=dict(sigma_min=1e-4)))  # an existing model of the text prior (the default) loads
    train = {"trainer": {"max_steps": 10}}
    with pytest.raises(ConfigError, match="sigma_min 0.0001 with flow.prior text: .* shifted by sigma_min \\* mu"):
        check_training_config({**train, "model": {"flow": {"prior": "text", "sigma_min": 1e-4}}})
    with pytest.raises(ConfigError, match="model.flow.sigma_min 0.001"):
        check_training_config({**train, "model": {"flow": {"prior": "text", "sigma_min": 1e-3}}})
    check_training_config({**train, "model": {"flow": {"prior": "noise", "sigma_min": 1e-3}}})
    check_training_config({**train, "model": {"mode": "alignfree", "flow": {"sigma_min": 1e-3}}})  # always the noise prior


def fake_stage2_exp(r: dict, exp) -> None:
    """A stage-two exp dir of the fake corpus's stand-in codec, enough to reach the latents' checks (no real weights)."""
    import os

    from shared.io import write_json

    exp.mkdir(parents=True)
    write_json(exp / "stage1.json", {"exp_dir": os.path.relpath(r["stage1"], exp), "sample_rate": 16000, "hop_length": 256,
                                     "latent_dim": 8})  # as written before "continuous" was recorded
    (exp / "model.pt").write_bytes(b"weights")


@pytest.mark.parametrize("verb", ["reflow", "gta", "likelihood"])
def test_reflow_gta_and_likelihood_refuse_latents_the_model_was_not_trained_on(tmp_path, verb):
    """Only training checked a dump's codec.json: reflow pairs, GTA latents and likelihoods were made from another
    codec's latents (or from pre-quantisation --continuous ones) as if they were the model's."""
    import shutil

    from shared.io import read_json, write_json
    from stage2_flow import gta, likelihood, reflow
    from stage2_flow.fake import make_fake_corpus

    r = make_fake_corpus(tmp_path, n_train=4, n_dev=1, n_test=1)
    root, exp = r["root"], tmp_path / "exp/stage2/flow"
    fake_stage2_exp(r, exp)
    other = tmp_path / "other"
    shutil.copytree(root / "dump/fake/train", other)
    main = {"reflow": reflow.main, "gta": gta.main, "likelihood": likelihood.main}[verb]
    args = ["--exp-dir", str(exp), "--data-dir", str(root / "data/train"), "--latents", str(other)]
    if verb != "likelihood":
        args += ["--out-dir", str(tmp_path / "out"), "--temperature", "0.5"]
    info = {"exp_dir": str(tmp_path / "vae_old"), "model_sha256": "0" * 64, "sample_rate": 16000, "hop_length": 256, "latent_dim": 8}
    write_json(other / "codec.json", info)
    with pytest.raises(SystemExit, match=f"--latents {other}: encoded by the codec of {tmp_path / 'vae_old'} .*not by the "
                                         f"stage-one codec {r['stage1'].resolve()}"):
        main(args)
    write_json(other / "codec.json", {**info, "exp_dir": str(r["stage1"]), "model_sha256": None, "continuous": True})
    with pytest.raises(SystemExit, match=f"--latents {other}: pre-quantisation latents .* but the model of {exp} is trained on "
                                         "the codec's own encode output"):
        main(args)
    write_json(other / "codec.json", {**read_json(other / "codec.json"), "continuous": False})
    with pytest.raises(ValueError, match="config.yaml: config file not found"):  # past the checks, to the (fake) model
        main(args)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.pt"))


def test_reflow_and_gta_dumps_are_redone_for_other_inputs(tmp_path, capsys):
    """'Nothing to do' compared the model and sampling settings only: another --data-dir or --latents kept pairs (or
    GTA latents) of other utterances. Their inputs' digest is compared now; their paths are recorded, not compared (a
    recipe tree copied elsewhere makes the same dump)."""
    import argparse
    import shutil

    from shared.io import read_json, write_json, write_kv
    from stage2_flow import gta, reflow
    from stage2_flow.fake import make_fake_corpus

    r = make_fake_corpus(tmp_path / "a", n_train=4, n_dev=2, n_test=1)
    root, exp = r["root"], tmp_path / "exp"
    fake_stage2_exp(r, exp)
    defaults = {reflow.main: (16, "rk4"), gta.main: (4, "euler")}  # their --nfe and --solver
    for main, scp, info in ((reflow.main, "pairs.scp", "reflow_info.json"), (gta.main, "latents.scp", "gta_info.json")):
        out = tmp_path / f"out_{info}"

        def run(data: str, root=root) -> list[str]:
            return ["--exp-dir", str(exp), "--data-dir", str(root / "data" / data), "--latents", str(root / "dump/fake" / data),
                    "--out-dir", str(out), "--temperature", "0.5"]

        nfe, solver = defaults[main]
        made = argparse.Namespace(data_dir=root / "data/train", latents=root / "dump/fake/train", temperature=0.5, nfe=nfe,
                                  solver=solver, cfg_scale=0.0, copies=1, seed=0)
        write_json(out / info, reflow.dump_settings(made, exp))  # a finished dump of the training set
        write_kv(out / scp, {"u": "x.pt"})
        assert main(run("train")) == 0 and "nothing to do" in capsys.readouterr().out
        with pytest.raises(SystemExit, match=f"{out}: made with other settings \\(inputs_sha256 "):
            main(run("dev"))
        shutil.copytree(root / "data", tmp_path / "copy/data")  # the same inputs elsewhere
        shutil.copytree(root / "dump", tmp_path / "copy/dump")
        assert main(run("train", tmp_path / "copy")) == 0 and "nothing to do" in capsys.readouterr().out
        shutil.rmtree(tmp_path / "copy")
        assert read_json(out / info)["paths"]["latents"] == str((root / "dump/fake/train").resolve())


def test_standin_codec_cli_refuses_settings_its_exp_dir_does_not_have(tmp_path):
    """An existing standin_codec.json silently overrode --latent-dim, --sample-rate and --hop-length."""
    from conftest import write_data_dir
    from shared.io import read_json
    from shared.latents import load_latent, read_latent_scp
    from stage2_flow import codec

    data = write_data_dir(tmp_path / "data", {"u0": ("s", "a", 0.5)})
    run = ["--exp-dir", str(tmp_path / "exp"), "--data-dir", str(data), "--out-dir", str(tmp_path / "dump")]
    codec.main([*run, "--latent-dim", "10"])
    assert read_json(tmp_path / "exp/standin_codec.json") == {"type": "mel", "sample_rate": 16000, "hop_length": 256, "latent_dim": 10}
    with pytest.raises(SystemExit, match=f"{tmp_path / 'exp/standin_codec.json'} exists with other settings: --hop-length 128 "
                                         "\\(it has 256\\), --latent-dim 12 \\(it has 10\\); leave the options out"):
        codec.main([*run, "--latent-dim", "12", "--hop-length", "128"])
    codec.main([*run, "--latent-dim", "10", "--sample-rate", "16000"])  # the same: fine
    codec.main(run)  # none given: the exp dir's
    assert load_latent(read_latent_scp(tmp_path / "dump")["u0"]).shape[0] == 10
