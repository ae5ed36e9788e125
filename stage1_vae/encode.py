"""Encode a data dir into per-utterance latents for stage two.

    python -m stage1_vae.encode --exp-dir exp/stage1/vae --data-dir data/train --out-dir dump/vae/train \\
        [--stats-out exp/stage1/vae/latent_stats.json]

Writes ``<out>/latents/<utt>.pt`` (float32 ``(D, F)``), ``<out>/latents.scp`` (``<utt> <abs path>``),
``<out>/utt2frames`` and ``<out>/codec.json`` (exp dir, sample rate, hop, latent dim, frame rate), and with
``--stats-out`` the per-channel mean/std over all frames (``{"mean": [D], "std": [D], "num_frames": N}``).
The VAE stores the posterior mean; the quantised codecs the quantised vectors (``--continuous``: the
pre-quantisation encoder output). A finished output is left alone unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from shared.datadir import DataDir
from shared.device import add_device_arg
from shared.io import write_json
from shared.latents import LatentDumpWriter, codec_info
from stage1_vae.codec import load_codec


class StatsAccumulator:
    """Streaming per-channel mean/std over frames (float64 sums)."""

    def __init__(self) -> None:
        self.n, self.s, self.ss = 0, None, None

    def add(self, z: torch.Tensor) -> None:  # (D, F)
        z = z.double()
        self.s = z.sum(1) if self.s is None else self.s + z.sum(1)
        self.ss = z.pow(2).sum(1) if self.ss is None else self.ss + z.pow(2).sum(1)
        self.n += z.shape[1]

    def result(self) -> dict:
        mean = self.s / self.n
        std = (self.ss / self.n - mean.pow(2)).clamp(min=1e-10).sqrt()
        return {"mean": mean.tolist(), "std": std.tolist(), "num_frames": self.n, "latent_dim": int(mean.numel())}


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
    if done and not args.overwrite:
        print(f"{out}/latents.scp exists: nothing to do (use --overwrite to redo)")
        return 0
    codec = load_codec(args.exp_dir, args.device)
    if args.continuous and not hasattr(codec, "encode_continuous"):
        raise SystemExit(f"{args.exp_dir}: this codec has no continuous (pre-quantisation) latents")
    enc = codec.encode_continuous if args.continuous else codec.encode
    data = DataDir.load(args.data_dir)
    dump, stats = LatentDumpWriter(out), StatsAccumulator()
    for i, utt in enumerate(data.utts):
        wav = data.load_audio(utt, codec.sample_rate).to(args.device)
        stats.add(dump.add(utt, enc(wav[None])[0]))  # (D, F)
        if (i + 1) % 200 == 0:
            print(f"encoded {i + 1}/{len(data)}", flush=True)
    write_json(out / "codec.json", codec_info(codec, args.exp_dir, continuous=args.continuous))
    dump.finish()
    if args.stats_out:
        write_json(args.stats_out, stats.result())
    print(f"wrote {len(dump.scp)} latents ({stats.n} frames) to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
