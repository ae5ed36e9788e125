import pytest
import torch

from shared.batching import (AudioSegmentDataset, BucketBatchSampler, RandomBatchSampler, lengths_to_mask, pad_1d,
                             pad_2d)
from shared.config import ConfigError, apply_overrides, load_config, save_config


def test_overrides(tmp_path):
    (tmp_path / "c.yaml").write_text("model:\n  dim: 8\n  lr: 2e-4\n  rates: [2, 2]\ntrainer:\n  max_steps: 10\n")
    cfg = load_config(tmp_path / "c.yaml", ["model.dim=16", "model.rates=[8,8,2,2]", "+model.new=1e-3"])
    assert cfg["model"] == {"dim": 16, "lr": 2e-4, "rates": [8, 8, 2, 2], "new": 1e-3}
    with pytest.raises(ConfigError, match="no key 'model.dimm'"):
        apply_overrides(cfg, ["model.dimm=3"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(cfg, ["model.dim"])
    save_config(cfg, tmp_path / "exp" / "config.yaml")
    assert load_config(tmp_path / "exp" / "config.yaml") == cfg
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    # a clock stays a string (YAML 1.1 reads 1:00:00:00 as the base-60 integer 216000); a broken list is an error,
    # not a string that replaces the value
    assert apply_overrides(cfg, ["+trainer.max_time=1:00:00:00"])["trainer"]["max_time"] == "1:00:00:00"
    with pytest.raises(ConfigError, match="not valid YAML"):
        apply_overrides(cfg, ["model.rates=[8,8,2"])


def test_base_chain_merges_mappings_and_replaces_other_kinds(tmp_path):
    (tmp_path / "a.yaml").write_text("model:\n  dim: 8\n  enc: {kind: conv, layers: 4}\n  rates: [2, 2]\nlr: 1.0\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text("base: ../a.yaml\nmodel:\n  enc: {kind: mel}\n  rates: [4]\n")
    (tmp_path / "c.yaml").write_text("base: sub/b.yaml\nmodel: {dim: 16, enc: {kind: mel, n_mels: 80}}\n")
    cfg = load_config(tmp_path / "c.yaml", ["lr=0.5"])
    assert cfg == {"model": {"dim": 16, "enc": {"kind": "mel", "n_mels": 80}, "rates": [4]}, "lr": 0.5}
    assert load_config(tmp_path / "a.yaml")["model"]["enc"] == {"kind": "conv", "layers": 4}  # base untouched
    (tmp_path / "a.yaml").write_text("base: c.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match="missing.yaml: config file not found .the base of"):
        load_config(tmp_path / "d.yaml")


def test_bucket_sampler_budget_and_padding():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(50, 800, (500,), generator=g).tolist()
    s = BucketBatchSampler(lengths, max_frames=4000, seed=3)
    batches = [[i for i, _ in b] for b in s]
    assert sorted(i for b in batches for i in b) == list(range(500))  # every item exactly once
    assert all(max(lengths[i] for i in b) * len(b) <= 4000 for b in batches)
    assert s.padding_fraction() < 0.1
    s.set_epoch(1)
    assert [[i for i, _ in b] for b in s] != batches  # reshuffled per epoch
    # ... and regrouped: which items share a batch changes too, not only the batches' order
    assert {frozenset(b) for b in s.batches(1)} != {frozenset(b) for b in s.batches(0)}
    assert s.batches(0) == batches  # the same epoch gives the same batches (exact resume)
    # another run's seed is not this run shifted by an epoch (seed + epoch made seed 4's epoch 0 seed 3's epoch 1)
    assert BucketBatchSampler(lengths, max_frames=4000, seed=4).batches(0) != s.batches(1)
    with pytest.raises(ValueError, match="longer than max_frames"):
        BucketBatchSampler([10, 5000], max_frames=4000)
    fitted = BucketBatchSampler([10, 5000, 20, 4990], max_frames=4000, fit_longest=True)  # stage two and the judge
    assert fitted.max_frames == 5000 and sorted(map(sorted, fitted.batches(0))) == [[0, 2], [1], [3]]


def test_item_seeds_do_not_repeat_across_epochs_or_runs():
    from shared.batching import _item_seed

    # epoch * 10007 + index gave item i + 10007 of one epoch the crop of item i of the next (large corpora)
    seeds = {_item_seed(run, epoch, i) for run in (0, 1) for epoch in (0, 1) for i in (5, 10012, 20019)}
    assert len(seeds) == 12


def test_sampler_shards_by_rank(monkeypatch):
    import shared.batching as B

    def per_rank(num_items):
        seen = []
        for rank in range(2):
            monkeypatch.setattr(B, "_dist_info", lambda r=rank: (r, 2))
            seen.append([i for b in RandomBatchSampler(num_items, 2, seed=0) for i, _ in b])
        return seen

    a, b = per_rank(12)  # 6 batches: 3 each, disjoint
    assert len(a) == len(b) == 6 and not set(a) & set(b)
    a, b = per_rank(10)  # 5 batches: one is repeated so that both ranks take the same number of steps
    assert len(a) == len(b) == 6 and set(a) | set(b) == set(range(10))


def test_padding_helpers():
    x, n = pad_1d([torch.ones(3), torch.ones(5)])
    assert x.shape == (2, 5) and n.tolist() == [3, 5] and x[0, 3:].sum() == 0
    y, _ = pad_2d([torch.ones(4, 2), torch.ones(4, 6)])
    assert y.shape == (2, 4, 6)
    assert lengths_to_mask(n).tolist() == [[True] * 3 + [False] * 2, [True] * 5]


def test_segment_dataset_is_deterministic_per_seed(tiny_data_dir):
    ds = AudioSegmentDataset(tiny_data_dir, 16000, 4000)
    assert torch.equal(ds[(2, 7)], ds[(2, 7)])
    assert not torch.equal(ds[(2, 7)], ds[(2, 8)])
    assert ds[(0, 1)].shape == (4000,)


def test_segment_dataset_with_a_frame_track_crops_on_frames(tiny_data_dir):
    """With a frame track (stage one's cached pitch) crops start on a frame and carry the track's frames
    start .. start + n, asked of the utterance's whole audio."""
    hop, calls = 100, []

    def track(utt, wav, start, frames):
        calls.append((utt, wav.shape[-1]))
        return torch.arange(start, start + frames, dtype=torch.float32)[None]  # value = frame index

    plain = AudioSegmentDataset(tiny_data_dir, 16000, 4000)
    ds = AudioSegmentDataset(tiny_data_dir, 16000, 4000, track=track, hop_length=hop)
    for index in range(len(ds)):
        whole = plain.wav(index)
        for seed in range(3):
            item = ds[(index, seed)]
            start = int(item["track"][0, 0])
            assert item["wav"].shape == (4000,) and item["track"].shape == (1, 41)
            assert torch.equal(item["wav"], torch.nn.functional.pad(whole[start * hop : start * hop + 4000],
                                                                    (0, max(0, start * hop + 4000 - whole.shape[-1]))))
    assert {utt for utt, _ in calls} == set(ds.utts) and all(n == plain.wav(ds.utts.index(u)).shape[-1] for u, n in calls)
    with pytest.raises(ValueError, match="whole frames"):
        AudioSegmentDataset(tiny_data_dir, 16000, 4050, track=track, hop_length=hop)


def test_latent_audio_segments_line_up_and_map_keys(tmp_path):
    """Crops of latents and audio cover the same time: latent frame k is centred on sample k * hop."""
    import soundfile as sf

    from shared.batching import LatentAudioSegmentDataset
    from shared.io import write_kv
    from shared.latents import LatentDumpWriter

    hop, frames = 64, 21
    data = tmp_path / "data"
    data.mkdir()
    wav = torch.arange((frames - 1) * hop, dtype=torch.float32) / ((frames - 1) * hop)  # a ramp: value = time
    sf.write(data / "a.wav", (wav * 0.5).numpy(), 16000, subtype="FLOAT")
    for name, line in (("wav.scp", f"a {data / 'a.wav'}"), ("text", "a hello"), ("utt2spk", "a s"), ("spk2utt", "s a")):
        (data / name).write_text(line + "\n")
    dump = tmp_path / "dump"
    writer = LatentDumpWriter(dump)
    for key in ("a-c0", "a-c1"):
        writer.add(key, torch.arange(frames, dtype=torch.float32)[None].repeat(3, 1), utt="a")  # value = frame index
    writer.finish()
    assert (dump / "key2utt").read_text() == "a-c0 a\na-c1 a\n" and (dump / "utt2frames").read_text() == "a-c0 21\na-c1 21\n"
    write_kv(dump / "latents.scp", {k: f"latents/{k}.pt" for k in ("a-c0", "a-c1")})  # relative to the dump dir
    ds = LatentAudioSegmentDataset(dump, data, 16000, hop, segment_frames=5)
    assert len(ds) == 2
    for seed in range(5):
        item = ds[(1, seed)]
        assert item["latents"].shape == (3, 6) and item["wav"].shape == (5 * hop,)
        start = int(item["latents"][0, 0])
        assert torch.allclose(item["wav"][0] * 2, torch.tensor(start * hop / ((frames - 1) * hop)), atol=1e-6)
    tracked = LatentAudioSegmentDataset(dump, data, 16000, hop, segment_frames=5,
                                        track=lambda utt, wav, start, n: torch.arange(start, start + n)[None] + 100 * (utt == "a"))
    for seed in range(5):  # the track of the key's utterance, on the latents' frames
        item = tracked[(1, seed)]
        assert torch.equal(item["track"][0], item["latents"][0].long() + 100)
    write_kv(dump / "key2utt", {"a-c0": "a", "a-c1": "b"})
    with pytest.raises(KeyError, match="a-c1"):
        LatentAudioSegmentDataset(dump, data, 16000, hop, segment_frames=5)
    write_kv(dump / "key2utt", {"a-c0": "a", "a-c1": "a"})
    torch.save(torch.zeros(3, frames + 5), dump / "latents" / "a-c1.pt")  # 5 frames too many for the audio
    with pytest.raises(ValueError, match="a-c1.pt"):
        LatentAudioSegmentDataset(dump, data, 16000, hop, segment_frames=5)[(1, 0)]
    torch.save(torch.full((3, frames), float("nan")), dump / "latents" / "a-c1.pt")  # named by key and utterance
    with pytest.raises(ValueError, match=r"a-c1.pt: the latents of 'a-c1' \(utterance 'a'\) hold NaN"):
        LatentAudioSegmentDataset(dump, data, 16000, hop, segment_frames=5)[(1, 0)]


def test_latent_dumps_move_whole(tmp_path, monkeypatch):
    """latents.scp lists paths relative to its dump dir (combine: to its own dir), so a tree of dumps still
    reads after it is moved; an absolute path, or a Kaldi-style one relative to the working directory, reads too."""
    import shutil

    from shared.io import write_kv
    from shared.latents import LatentDumpWriter, combine_latent_dumps, load_latent, read_latent_scp

    root = tmp_path / "recipe"
    for job, keys in (("1", ("a", "b")), ("2", ("c",))):
        writer = LatentDumpWriter(root / "dump" / job)
        for i, key in enumerate(keys):
            writer.add(key, torch.full((2, 3 + i), float(ord(key))))
        writer.finish()
    assert (root / "dump/1/latents.scp").read_text() == "a latents/a.pt\nb latents/b.pt\n"
    assert combine_latent_dumps(root / "all", [root / "dump/1", root / "dump/2"]) == 3
    assert (root / "all/latents.scp").read_text().splitlines()[2] == "c ../dump/2/latents/c.pt"
    shutil.move(root, tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    for dump in ("dump/1", "dump/2", "all"):
        for key, path in read_latent_scp(tmp_path / "moved" / dump).items():
            assert load_latent(path)[0, 0] == ord(key), (dump, key)
    elsewhere = tmp_path / "kaldi"
    elsewhere.mkdir()
    write_kv(elsewhere / "latents.scp", {"a": "moved/dump/1/latents/a.pt", "c": str(tmp_path / "moved/dump/2/latents/c.pt")})
    assert {k: load_latent(p)[0, 0].item() for k, p in read_latent_scp(elsewhere).items()} == {"a": ord("a"), "c": ord("c")}


def test_codec_json_names_its_codec_by_weights_after_a_move(tmp_path):
    """codec.json records the codec's dir and its weights' hash: a moved copy of the dir is the same codec,
    retrained weights in the same dir are not; a codec dir without weights (a stand-in) is matched by path."""
    import shutil
    from types import SimpleNamespace

    from shared.latents import codec_info, same_codec

    codec = SimpleNamespace(sample_rate=16000, hop_length=256, latent_dim=4)
    exp = tmp_path / "exp/stage1/vae"
    exp.mkdir(parents=True)
    (exp / "model.pt").write_bytes(b"weights one")
    info = codec_info(codec, exp)
    assert info["exp_dir"] == str(exp.resolve()) and len(info["model_sha256"]) == 64
    shutil.move(tmp_path / "exp", tmp_path / "moved")
    assert same_codec(info, tmp_path / "moved/stage1/vae")
    (tmp_path / "moved/stage1/vae/model.pt").write_bytes(b"weights two")
    assert not same_codec(info, tmp_path / "moved/stage1/vae")
    standin = tmp_path / "standin"
    standin.mkdir()
    info = codec_info(codec, standin)
    assert info["model_sha256"] is None and same_codec(info, standin) and not same_codec(info, exp.parent)


def test_combine_joins_dumps_of_one_codec_made_before_and_after_a_move(tmp_path):
    """Two jobs' dumps whose codec.json differ only in where the codec's dir was (same weights) combine; dumps of
    other weights, another latent format, or one part without codec.json are refused and nothing is written."""
    from types import SimpleNamespace

    from shared.io import read_json, write_json
    from shared.latents import LatentDumpWriter, codec_info, combine_latent_dumps

    codec = SimpleNamespace(sample_rate=16000, hop_length=256, latent_dim=4)
    for where in ("before", "after", "other"):
        (tmp_path / where).mkdir()
        (tmp_path / where / "model.pt").write_bytes(b"other weights" if where == "other" else b"the weights")
    parts = {}
    for k, where in enumerate(("before", "after", "other")):
        dump = LatentDumpWriter(tmp_path / f"job{k}")
        dump.add(f"utt{k}", torch.zeros(4, 3 + k))
        dump.finish()
        write_json(tmp_path / f"job{k}" / "codec.json", codec_info(codec, tmp_path / where))
        parts[where] = tmp_path / f"job{k}"
    assert combine_latent_dumps(tmp_path / "all", [parts["before"], parts["after"]]) == 2
    assert read_json(tmp_path / "all" / "codec.json")["model_sha256"] == read_json(parts["before"] / "codec.json")["model_sha256"]
    with pytest.raises(ValueError, match="latents of two codecs"):
        combine_latent_dumps(tmp_path / "mixed", [parts["before"], parts["other"]])
    write_json(parts["after"] / "codec.json", {**read_json(parts["after"] / "codec.json"), "latent_dim": 8})
    with pytest.raises(ValueError, match="latents of two codecs"):
        combine_latent_dumps(tmp_path / "mixed", [parts["before"], parts["after"]])
    (parts["after"] / "codec.json").unlink()
    with pytest.raises(ValueError, match="latents of two codecs"):
        combine_latent_dumps(tmp_path / "mixed", [parts["before"], parts["after"]])
    assert not (tmp_path / "mixed").exists()
