"""Stage one at its edges: short utterances, the quantisers (autocast, snapping), config checks, atomic writes'
permissions, and the encode/decode commands (finished-markers under --overwrite, the dump's codec, key2utt,
errors naming the utterance). Tiny codecs with random weights: seconds on a CPU."""

from __future__ import annotations

import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import harmonic_tone, write_data_dir
from shared.config import save_config
from shared.io import MODEL_FILE, read_json, read_kv, write_json
from shared.latents import LatentDumpWriter, codec_info, combine_latent_dumps, read_latent_scp
from stage1_vae import decode, encode
from stage1_vae.bottlenecks import build_bottleneck
from stage1_vae.codec import load_codec
from stage1_vae.encoders import SpectralEncoder
from stage1_vae.model import Stage1Codec, build_codec
from stage1_vae.modules import PitchCache

TINY = {"dim": 16, "intermediate_dim": 32, "num_layers": 1}


def rvq_cfg() -> dict:
    return {"sample_rate": 16000, "hop_length": 256, "n_fft": 1024, "latent_dim": 8, "encoder": {"kind": "convnext", **TINY},
            "bottleneck": {"kind": "rvq", "num_quantizers": 4, "codebook_size": 16, "decay": 0.8},
            "decoder": {"kind": "vocos", **TINY}}


def trained_rvq(seed: int) -> Stage1Codec:
    """An RVQ codec whose EMA codebooks moved towards its encoder's output (as training moves them), in eval mode."""
    torch.manual_seed(seed)
    codec = build_codec(rvq_cfg())
    codec.bottleneck.train()
    wav = torch.stack([torch.from_numpy(harmonic_tone(0.5, 16000, 90 + 30 * k, seed=k)[: 31 * 256]) for k in range(8)])
    with torch.no_grad():
        h = codec.encoder(wav)
        for _ in range(20):
            codec.bottleneck(h)
    return codec.eval()


# ---- short inputs -------------------------------------------------------------------------------------
def test_utterances_shorter_than_half_a_window_encode_and_decode():
    """At most n_fft / 2 samples once padded to a hop (<= 512 at n_fft 1024) used to fail reflect padding: in the
    encoder's STFTs, YIN, the harmonic source's STFT and the pitch cache. Lengths are as documented."""
    torch.manual_seed(0)
    cfg = {"sample_rate": 16000, "hop_length": 256, "n_fft": 1024, "latent_dim": 8,
           "encoder": {"kind": "convnext", **TINY, "fine_ffts": [512, 256]}, "bottleneck": {"kind": "gaussian"},
           "pitch": {"f0_min": 50, "f0_max": 500, "lock_phase": True, "phase": True},
           "decoder": {"kind": "vocos", **TINY, "head_upsample": 2, "source": "harmonic", "harmonic_phase": "minus_sine"}}
    codec = build_codec(cfg).eval()
    for length in (1, 100, 256, 512, 513):
        wav = 0.3 * torch.sin(2 * math.pi * 150 * torch.arange(length) / 16000)[None]
        frames = math.ceil(length / 256) + 1
        z = codec.encode(wav)
        assert z.shape == (1, 8, frames) and torch.isfinite(z).all(), length
        assert codec.decode(z).shape == (1, (frames - 1) * 256), length
        assert PitchCache(codec.pitch)("u", wav[0], 0, frames).shape == (3, frames), length


# ---- config checks ------------------------------------------------------------------------------------
def test_fine_ffts_must_divide_n_fft_an_even_number_of_times():
    """An odd ratio (1200 / 400 = 3) has no window centred on each latent frame: refused when built, not at the
    first forward with a shape error."""
    with pytest.raises(ValueError, match=r"fine_ffts: 400 must divide n_fft 1200 an even number of times .*here 3"):
        SpectralEncoder(8, sample_rate=24000, hop_length=300, n_fft=1200, fine_ffts=(400,))
    enc = SpectralEncoder(8, sample_rate=24000, hop_length=300, n_fft=1200, fine_ffts=(600,), **TINY)
    assert enc(torch.randn(1, 24000)).shape == (1, 8, 81)


# ---- quantisers ---------------------------------------------------------------------------------------
def test_rvq_decodes_its_own_latents_without_snapping_them_again():
    """Re-quantising a sum of residual codes picks other codes for some frames: ``decode(z, encoded=True)`` decodes
    the encoder's quantised latent as it is; the default (stage two's latents) still snaps."""
    codec = trained_rvq(0)
    wav = torch.randn(4, 32 * 256) * 0.1
    z = codec.encode(wav)
    h = codec.encoder(wav)
    assert (codec.bottleneck.codes(h) != codec.bottleneck.codes(z)).any()  # re-snapping is not idempotent here
    assert torch.equal(codec.decode(z, encoded=True), codec._decode(z))
    assert torch.equal(codec.decode(z), codec._decode(codec.bottleneck.prepare(z)))


@pytest.mark.parametrize("kind, options", [("rvq", {"num_quantizers": 8, "codebook_size": 1024}),
                                           ("fsq", {"levels": (8, 5, 5, 5), "num_codebooks": 4})])
def test_quantisers_choose_their_codes_in_float32_under_cpu_autocast(kind, options):
    torch.manual_seed(0)
    b = build_bottleneck(kind, 29, **options).eval()
    h = torch.randn(1, 29, 2000)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z16 = b.latent(h)
        codes16 = b.codes(h) if kind == "rvq" else None
    assert z16.dtype == torch.float32 and torch.equal(z16, b.latent(h))
    if kind == "rvq":
        assert torch.equal(codes16, b.codes(h))


def test_fsq_prepare_snaps_to_the_grid_and_keeps_grid_points():
    """Stage two's latents are snapped to the image of the FSQ grid (least squares through the output projection,
    then rounding); the codec's own latents are fixed points."""
    torch.manual_seed(0)
    b = build_bottleneck("fsq", 12, levels=(8, 5, 5), num_codebooks=2).eval()
    z = b.latent(torch.randn(2, 12, 50) * 2)
    assert torch.allclose(b.prepare(z), z, atol=1e-5)
    noisy = z + 0.01 * torch.randn_like(z)
    assert torch.allclose(b.prepare(noisy), z, atol=1e-5)
    far = torch.randn_like(z) * 3
    assert torch.allclose(b.prepare(b.prepare(far)), b.prepare(far), atol=1e-5)
    # more code dimensions than latent channels: the snapping could not invert the projection, so it is refused
    with pytest.raises(ValueError, match="3 codebooks of 3 levels are 9 code dimensions, more than the 8 latent"):
        build_bottleneck("fsq", 8, levels=(8, 5, 5), num_codebooks=3)


# ---- files --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_atomic_writes_give_files_the_umask_permissions(tmp_path, umask):
    import shared.io

    old = os.umask(umask)
    shared.io._umask.cache_clear()  # read once per process: this one's umask is set here
    try:
        write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
        shared.io._umask.cache_clear()
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    from shared.io import atomic_write

    path = tmp_path / "table"
    path.write_text("old\n")
    with pytest.raises(RuntimeError, match="midway"):
        with atomic_write(path) as f:
            f.write("new, half written")
            raise RuntimeError("midway")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["table"]


@pytest.mark.parametrize("form", ["pt", "npy", "dict"])
def test_latents_with_nan_or_inf_are_refused_as_they_are_read(tmp_path, form):
    """Every reader of a latent dump (stage two's training, the decoder fine-tuning, decode, a resumed dump's kept
    files) gets the file's NaN or infinite values refused by shared.latents.load_latent, naming the file, the frames
    and (where the caller says) whose latents they are; stage two's dataset had checked for itself."""
    import numpy as np

    from shared.latents import load_latent

    z = torch.randn(4, 9)
    z[1, 2], z[3, 7] = float("nan"), float("inf")
    path = tmp_path / f"u1.{'npy' if form == 'npy' else 'pt'}"
    if form == "npy":
        np.save(path, z.numpy())
    else:
        torch.save({"z": z} if form == "dict" else z, path)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: the latents hold NaN or infinite values in 2 "
                                         r"frame\(s\) \(e\.g\. \[2, 7\]\)"):
        load_latent(path)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: the latents of utterance 'u1' hold NaN"):
        load_latent(path, "utterance 'u1'")
    if form == "pt":  # a resumed dump keeps only finite files
        dump = LatentDumpWriter(tmp_path / "dump")
        shutil.copy(path, dump.path("u1"))
        with pytest.raises(ValueError, match=r"latents/u1\.pt: the latents of 'u1' hold NaN"):
            dump.keep("u1")
        # and they are refused where they are made, before any file is written (encode of NaN audio, a NaN model)
        dump.path("u1").unlink()
        with pytest.raises(ValueError, match=r"dump: the latents of 'u1' hold NaN or infinite values in 2 frame"):
            dump.add("u1", z)
        assert not dump.path("u1").exists() and "u1" not in dump.scp


# ---- the commands -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Path:
    """``data`` (five utterances of 0.04-0.44 s) and two RVQ codecs' exp dirs ``A`` and ``B``."""
    root = tmp_path_factory.mktemp("s1io")
    write_data_dir(root / "data", {f"spk{i % 2}_u{i}": (f"spk{i % 2}", f"tone {i}", 0.04 + 0.1 * i) for i in range(5)})
    for name, seed in (("A", 0), ("B", 1)):
        save_config({"model": rvq_cfg()}, root / name / "config.yaml")
        torch.save(trained_rvq(seed).state_dict(), root / name / MODEL_FILE)
    return root


def run_encode(setup: Path, exp: str, out: Path, *extra: str) -> int:
    return encode.main(["--exp-dir", str(setup / exp), "--data-dir", str(setup / "data"), "--out-dir", str(out),
                        "--num-threads", "1", *extra])


def dying_after(calls: int):
    """A stand-in for a function that is interrupted (Ctrl-C, a kill) on its ``calls``-th call."""
    count = [0]

    def wrap(real):
        def dying(*args, **kwargs):
            count[0] += 1
            if count[0] == calls:
                raise KeyboardInterrupt
            return real(*args, **kwargs)
        return dying
    return wrap


def test_killed_encode_overwrite_never_looks_finished(setup, tmp_path, monkeypatch):
    from shared.datadir import DataDir

    dump, stats = tmp_path / "dump", tmp_path / "stats.json"
    assert run_encode(setup, "A", dump, "--stats-out", str(stats)) == 0
    with monkeypatch.context() as m:
        m.setattr(DataDir, "load_audio", dying_after(3)(DataDir.load_audio))
        with pytest.raises(KeyboardInterrupt):
            run_encode(setup, "B", dump, "--stats-out", str(stats), "--overwrite")
    assert not any(p.exists() for p in (dump / "latents.scp", dump / "codec.json", stats))
    assert run_encode(setup, "B", dump, "--stats-out", str(stats)) == 0  # resumes: B's two latents, none of A's
    assert run_encode(setup, "B", tmp_path / "fresh") == 0
    fresh = {u: torch.load(p) for u, p in read_latent_scp(tmp_path / "fresh").items()}
    assert {u: torch.load(p) for u, p in read_latent_scp(dump).items()}.keys() == fresh.keys()
    assert all(torch.equal(torch.load(p), fresh[u]) for u, p in read_latent_scp(dump).items())
    assert read_json(dump / "codec.json") == read_json(tmp_path / "fresh" / "codec.json")
    assert read_json(dump / "codec.json")["encoded"] and read_json(stats)["num_frames"] == sum(z.shape[1] for z in fresh.values())


def test_latent_stats_record_the_dump_and_codec_they_were_computed_on(setup, tmp_path):
    """Stage two refuses statistics of another codec's latents than it trains on (stage2_flow.data.check_stats_codec):
    they say so by the dump's own codec.json, and where the dump was."""
    stats = tmp_path / "stats.json"
    assert run_encode(setup, "A", tmp_path / "dump", "--stats-out", str(stats)) == 0
    st = read_json(stats)
    assert st["codec"] == read_json(tmp_path / "dump" / "codec.json") and st["dump"] == str((tmp_path / "dump").resolve())
    assert len(st["mean"]) == len(st["std"]) == st["latent_dim"] == 8


def test_killed_decode_overwrite_never_looks_finished(setup, tmp_path, monkeypatch):
    out = tmp_path / "resynth"
    args = ["--exp-dir", str(setup / "A"), "--data-dir", str(setup / "data"), "--out-dir", str(out), "--num-threads", "1"]
    assert decode.main(args) == 0
    with monkeypatch.context() as m:
        m.setattr(decode, "save_audio", dying_after(2)(decode.save_audio))
        with pytest.raises(KeyboardInterrupt):
            decode.main(args + ["--overwrite"])
    assert not (out / "wav.scp").exists()
    import shared.datadir

    written, write_kv = [], decode.write_kv
    with monkeypatch.context() as m:
        for module in (decode, shared.datadir):  # decode writes its data dir through DataDir.save
            m.setattr(module, "write_kv", lambda path, table: written.append(Path(path).name) or write_kv(path, table))
        assert decode.main(args) == 0
    assert written[-1] == "wav.scp" and {"text", "utt2spk", "spk2utt", "utt2dur"} <= set(written[:-1])
    assert len(read_kv(out / "wav.scp")) == 5 and len(read_kv(out / "text")) == 5


def _run_again_after_retraining(setup, tmp_path, main, out: Path, capsys) -> tuple[Path, list[str], str, str]:
    """``main`` (encode or decode) of codec A's copy, run twice, then once more with B's weights in that copy (its exp
    dir retrained): ``(the copy, the arguments, what the second run said, what the third said)``."""
    exp = tmp_path / "exp"
    shutil.copytree(setup / "A", exp)
    args = ["--exp-dir", str(exp), "--data-dir", str(setup / "data"), "--out-dir", str(out), "--num-threads", "1"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0
    again = capsys.readouterr().out
    shutil.copyfile(setup / "B" / MODEL_FILE, exp / MODEL_FILE)
    assert main(args) == 0
    return exp, args, again, capsys.readouterr().out


def test_a_finished_dump_of_another_codec_is_encoded_again(setup, tmp_path, capsys):
    """A finished dump was left alone whatever its codec.json said: a codec retrained in the same exp dir (other
    weights) kept its old latents, as did a rerun with --continuous."""
    dump = tmp_path / "dump"
    exp, args, again, retrained = _run_again_after_retraining(setup, tmp_path, encode.main, dump, capsys)
    assert "nothing to do" in again
    assert f"{dump}/codec.json names the codec of {exp.resolve()} (weights sha256" in retrained
    assert run_encode(setup, "B", tmp_path / "b") == 0
    expected = {u: torch.load(p) for u, p in read_latent_scp(tmp_path / "b").items()}
    assert all(torch.equal(torch.load(p), expected[u]) for u, p in read_latent_scp(dump).items())
    assert read_json(dump / "codec.json")["model_sha256"] == read_json(tmp_path / "b" / "codec.json")["model_sha256"]
    assert encode.main(args + ["--continuous"]) == 0  # the other kind of latent
    assert "says continuous=False, this run gives --continuous: encoding again" in capsys.readouterr().out
    assert read_json(dump / "codec.json")["continuous"] is True


def test_a_finished_decode_of_other_inputs_is_decoded_again(setup, tmp_path, capsys):
    """A finished output was left alone whatever made it: a codec retrained in the same exp dir, or a dump synthesised
    again into the same dir, kept the old audio (encode already checked its codec.json)."""
    out = tmp_path / "resynth"
    _, _, again, retrained = _run_again_after_retraining(setup, tmp_path, decode.main, out, capsys)
    assert "decoded from these inputs: nothing to do" in again
    assert f"{out} was decoded from other inputs than this run's (codec_sha256 differ): decoding again" in retrained
    b = tmp_path / "b"
    assert decode.main(["--exp-dir", str(setup / "B"), "--data-dir", str(setup / "data"), "--out-dir", str(b)]) == 0
    for utt, path in read_kv(b / "wav.scp").items():
        assert np.array_equal(sf.read(path)[0], sf.read(read_kv(out / "wav.scp")[utt])[0]), utt
    # a dump written again under the same keys: its latents' files are newer
    dump, decoded = tmp_path / "dump", tmp_path / "decoded"
    assert run_encode(setup, "A", dump) == 0
    args = ["--exp-dir", str(setup / "A"), "--latents-dir", str(dump), "--out-dir", str(decoded)]
    assert decode.main(args) == 0
    for path in read_latent_scp(dump).values():
        torch.save(torch.load(path) * 0.5, path)
    capsys.readouterr()
    assert decode.main(args) == 0 and "(latents/files differ): decoding again" in capsys.readouterr().out


def test_decode_checks_the_dumps_codec_and_decodes_its_own_latents_unsnapped(setup, tmp_path, capsys):
    dump = tmp_path / "dump"
    assert run_encode(setup, "A", dump) == 0
    # another codec of the same shape (e.g. a fine-tuned decoder's) decodes them with a note, snapped
    assert decode.main(["--exp-dir", str(setup / "B"), "--latents-dir", str(dump), "--out-dir", str(tmp_path / "b")]) == 0
    assert f"names the codec in {setup / 'A'}" in capsys.readouterr().out
    other = tmp_path / "other"  # another frame rate: refused, naming both
    shutil.copytree(dump, other)
    write_json(other / "codec.json", {**read_json(dump / "codec.json"), "hop_length": 128})
    with pytest.raises(SystemExit, match=rf"{re.escape(str(other))}/codec.json: latents at sample_rate 16000, hop_length 128"):
        decode.main(["--exp-dir", str(setup / "A"), "--latents-dir", str(other), "--out-dir", str(tmp_path / "o")])
    assert decode.main(["--exp-dir", str(setup / "A"), "--latents-dir", str(dump), "--out-dir", str(tmp_path / "o")]) == 0
    codec, wavs, off_own, off_snapped = load_codec(setup / "A"), read_kv(tmp_path / "o" / "wav.scp"), [], []
    for utt, path in read_latent_scp(dump).items():
        z = torch.load(path)[None]
        wav = torch.from_numpy(sf.read(wavs[utt], dtype="float32")[0])
        off_own.append(float((wav - codec.decode(z, encoded=True)[0]).abs().max()))
        off_snapped.append(float((wav - codec.decode(z)[0]).abs().max()))
    assert max(off_own) < 1e-4 < max(off_snapped)  # 16-bit files: 3e-5


def test_decode_maps_dump_keys_to_their_utterances(setup, tmp_path):
    """A dump's keys need not be utterance ids (``key2utt``, e.g. stage two's noise draws): the output data dir has
    the text and speaker of each key's utterance; a key that is no utterance of the data dir is an error."""
    codec, dump = load_codec(setup / "A"), LatentDumpWriter(tmp_path / "draws")
    for utt in ("spk0_u2", "spk1_u3"):
        for c in (1, 2):
            dump.add(f"{utt}-c{c}", torch.randn(8, 5), utt=utt)
    dump.finish()
    write_json(tmp_path / "draws" / "codec.json", codec_info(codec, setup / "A"))
    args = ["--exp-dir", str(setup / "A"), "--latents-dir", str(tmp_path / "draws"), "--data-dir", str(setup / "data")]
    assert decode.main(args + ["--out-dir", str(tmp_path / "o")]) == 0
    text, utt2spk = read_kv(tmp_path / "o" / "text"), read_kv(tmp_path / "o" / "utt2spk")
    assert text == {"spk0_u2-c1": "tone 2", "spk0_u2-c2": "tone 2", "spk1_u3-c1": "tone 3", "spk1_u3-c2": "tone 3"}
    assert utt2spk["spk1_u3-c2"] == "spk1" and len(read_kv(tmp_path / "o" / "wav.scp")) == 4
    (tmp_path / "draws" / "key2utt").unlink()
    with pytest.raises(SystemExit, match=r"4 key\(s\) not an utterance of --data-dir .*'spk0_u2-c1'"):
        decode.main(args + ["--out-dir", str(tmp_path / "o2")])
    assert not (tmp_path / "o2" / "wav.scp").exists()


def test_encode_and_decode_errors_name_the_utterance(setup, tmp_path, monkeypatch):
    def broken(self, wav):
        raise ValueError("boom")

    monkeypatch.setattr(Stage1Codec, "encode", broken)
    with pytest.raises(RuntimeError, match="utterance 'spk0_u0': ValueError: boom"):
        run_encode(setup, "A", tmp_path / "dump")
    with pytest.raises(RuntimeError, match="utterance 'spk0_u0': ValueError: boom"):
        decode.main(["--exp-dir", str(setup / "A"), "--data-dir", str(setup / "data"), "--out-dir", str(tmp_path / "o")])



def test_combined_dumps_are_encode_output_only_if_every_part_is(setup, tmp_path):
    """Joined with a part of stage two's latents, the codec's own encode output no longer says it needs no snapping."""
    codec = load_codec(setup / "A")
    for name, encoded in (("own", True), ("own2", True), ("generated", False)):
        dump = LatentDumpWriter(tmp_path / name)
        dump.add(f"{name}_u", torch.randn(8, 5))
        dump.finish()
        write_json(tmp_path / name / "codec.json", codec_info(codec, setup / "A", encoded=encoded))
    combine_latent_dumps(tmp_path / "both", [tmp_path / "own", tmp_path / "own2"])
    combine_latent_dumps(tmp_path / "mixed", [tmp_path / "generated", tmp_path / "own"])
    assert read_json(tmp_path / "both" / "codec.json")["encoded"] and not read_json(tmp_path / "mixed" / "codec.json")["encoded"]


def test_continuous_latents_are_the_rvq_codecs_only_and_decoded_latents_have_no_metrics(setup, tmp_path, capsys):
    """``--continuous``: an RVQ's pre-quantisation latent is one its decoder reads (the quantiser snaps it); a VAE's is
    the posterior's mean and log-variance, twice the channels its codec.json would name, so it is refused. Decoded
    latents have no time-aligned reference, so ``--metrics-out`` there is an error, not a file never written."""
    assert run_encode(setup, "A", tmp_path / "cont", "--continuous") == 0
    vae = tmp_path / "vae"
    save_config({"model": {**rvq_cfg(), "bottleneck": {"kind": "gaussian"}}}, vae / "config.yaml")
    torch.save(build_codec({**rvq_cfg(), "bottleneck": {"kind": "gaussian"}}).state_dict(), vae / MODEL_FILE)
    with pytest.raises(SystemExit, match="--continuous is for the RVQ codec"):
        encode.main(["--exp-dir", str(vae), "--data-dir", str(setup / "data"), "--out-dir", str(tmp_path / "v"), "--continuous"])
    with pytest.raises(SystemExit):
        decode.main(["--exp-dir", str(setup / "A"), "--latents-dir", str(tmp_path / "cont"), "--out-dir", str(tmp_path / "o"),
                     "--metrics-out", str(tmp_path / "m.json")])
    assert "--metrics-out scores resynthesis (--data-dir alone)" in capsys.readouterr().err
