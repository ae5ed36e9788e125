"""Encode a data dir into per-utterance latents for stage two.

    python -m stage1_vae.encode --exp-dir exp/stage1/vae --data-dir data/train --out-dir dump/vae/train \\
        [--stats-out exp/stage1/vae/latent_stats.json]

Writes ``<out>/latents/<utt>.pt`` (float32 ``(D, F)``), ``<out>/latents.scp`` (``<utt> latents/<utt>.pt``,
relative to ``<out>``), ``<out>/utt2frames`` and ``<out>/codec.json`` (exp dir, sample rate, hop, latent dim, frame
rate, ``encoded``: the codec's own quantised output, which ``decode`` does not snap again), and with
``--stats-out`` the per-channel mean/std over all frames, with the dump and its codec.json they were computed on
(:class:`shared.latents.LatentStats`; stage two refuses them for another codec's latents).
The VAE stores the posterior mean; the quantised codecs the quantised vectors (``--continuous``: the
pre-quantisation encoder output). A finished output is left alone unless ``--overwrite``, or unless its
``codec.json`` names another codec (the exp dir's retrained since: by the weights' SHA-256) or another kind of latent
(``--continuous``): such a dump is encoded again. An interrupted one (no ``latents.scp`` yet) resumes: the latents
it saved are kept, and read back for the statistics, as long as ``<out>/encoding.json`` says the same codec (config
and weights' SHA-256) wrote them; another codec's are redone.
A run removes the finished-markers (``latents.scp``, ``codec.json``, the statistics) before it writes anything,
so that a killed ``--overwrite`` never leaves a dump that looks finished with old and new latents in it.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from shared.datadir import DataDir
from shared.device import add_device_arg
from shared.io import errors_named, file_sha256, read_json, remove_files, write_json
from shared.latents import LatentDumpWriter, LatentStats, codec_fingerprint, codec_info, same_codec
from stage1_vae.codec import load_codec


def stale_dump(out: Path, exp_dir: str | Path, continuous: bool) -> str | None:
    """Why the finished dump ``out`` is not what this run would write, by its ``codec.json``: another codec's latents
    (the codec in ``exp_dir`` retrained since, by its weights' hash), or the other kind (``--continuous`` or not);
    None if it is (or, without a ``codec.json``, cannot be told)."""
    path = out / "codec.json"
    if not path.is_file():
        return None
    info = read_json(path)
    if not same_codec(info, exp_dir):
        return (f"{path} names the codec of {info.get('exp_dir')} (weights sha256 {info.get('model_sha256')}), not "
                f"{Path(exp_dir).resolve()}'s (sha256 {codec_fingerprint(exp_dir)})")
    if bool(info.get("continuous")) != continuous:
        given = "gives" if continuous else "omits"
        return f"{path} says continuous={bool(info.get('continuous'))}, this run {given} --continuous"
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True, help="stage-one exp dir (or adapter exp dir)")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--stats-out", default=None, help="write per-channel latent mean/std (JSON) here")
    p.add_argument("--continuous", action="store_true", help="quantised codecs: store pre-quantisation latents")
    add_device_arg(p)
    p.add_argument("--num-threads", type=int, default=2)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.num_threads)
    out = Path(args.out_dir)
    done = (out / "latents.scp").is_file() and (args.stats_out is None or Path(args.stats_out).is_file())
    stale = done and stale_dump(out, args.exp_dir, args.continuous)
    if stale:
        print(f"note: {stale}: encoding again", flush=True)
    elif done and not args.overwrite:
        print(f"{out}/latents.scp exists: nothing to do (use --overwrite to redo)")
        return 0
    codec = load_codec(args.exp_dir, args.device)
    if args.continuous and not hasattr(codec, "encode_continuous"):
        raise SystemExit(f"{args.exp_dir}: this codec has no continuous (pre-quantisation) latents")
    if args.continuous and type(getattr(codec, "bottleneck", None)).__name__ != "RVQBottleneck":
        # an FSQ's input is not in the space its decoder reads (its projections differ), and a VAE's "continuous"
        # output is the posterior's mean and log-variance: only an RVQ's pre-quantisation latent decodes as a latent
        raise SystemExit(f"{args.exp_dir}: --continuous is for the RVQ codec, whose pre-quantisation latents its "
                         f"quantiser snaps when decoding; this codec's plain encode output is what to model")
    enc = codec.encode_continuous if args.continuous else codec.encode
    data = DataDir.load(args.data_dir)
    info = codec_info(codec, args.exp_dir, continuous=args.continuous, encoded=not args.continuous)
    exp = Path(args.exp_dir)
    config = exp / "config.yaml"  # info holds the weights' hash
    state = {**info, "config.yaml_sha256": file_sha256(config) if config.is_file() else None}
    progress = out / "encoding.json"  # what is writing this dump: a rerun keeps the latents only if it is the same
    resume = not args.overwrite and progress.is_file() and read_json(progress) == state
    remove_files(out / "latents.scp", out / "codec.json", args.stats_out)  # before anything is rewritten
    if not resume:  # latents of another (or an unknown) codec: none may be kept by a rerun of this one
        progress.unlink(missing_ok=True)
        shutil.rmtree(out / "latents", ignore_errors=True)
    dump, stats = LatentDumpWriter(out), LatentStats()
    write_json(progress, state)
    kept = 0
    for i, utt in enumerate(data.utts):
        if resume and dump.path(utt).is_file():
            stats.add(dump.keep(utt))
            kept += 1
        else:
            with errors_named(f"utterance '{utt}'"):
                wav = data.load_audio(utt, codec.sample_rate).to(args.device)
                stats.add(dump.add(utt, enc(wav[None])[0]))  # (D, F)
        if (i + 1) % 200 == 0:
            print(f"encoded {i + 1}/{len(data)}", flush=True)
    if kept:
        print(f"resumed: kept {kept} latents an interrupted run of this codec had written", flush=True)
    write_json(out / "codec.json", info)
    dump.finish()
    progress.unlink()
    if args.stats_out:
        write_json(args.stats_out, stats.result(out, info))
    print(f"wrote {len(dump.scp)} latents ({stats.n} frames) to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
