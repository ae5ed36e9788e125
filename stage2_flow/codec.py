"""Codec access for stage two: ``load_codec(stage1_exp_dir)`` and a stand-in "codec".

Stage two only uses the codec interface (``sample_rate``, ``hop_length``, ``latent_dim``,
``encode(wav (B, T)) -> (B, D, F)``, ``decode(z (B, D, F)) -> (B, T)``). The real one comes from
``stage1_vae.load_codec``. For development and tests without a trained stage one, an exp dir holding
``standin_codec.json`` gives :class:`MelStandinCodec`: log-mel "latents", Griffin-Lim decoding.

Make a stand-in exp dir and dump latents (same layout as stage one's encode, ``codec.json`` included; ``--stats``:
``latent_stats.json`` as :class:`shared.latents.LatentStats` writes it)::

    python -m stage2_flow.codec --exp-dir exp/stage1/mel --data-dir data/train --out-dir dump/mel/train --stats
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

STANDIN = "standin_codec.json"
STANDIN_DEFAULTS = {"sample_rate": 16000, "hop_length": 256, "latent_dim": 32}  # of a new stand-in exp dir (the CLI)


class MelStandinCodec(nn.Module):
    """Log-mel spectrogram as latents; decode = mel -> linear (least squares) -> Griffin-Lim."""

    def __init__(self, sample_rate: int = 16000, hop_length: int = 256, latent_dim: int = 32, n_fft: int = 1024, gl_iters: int = 32) -> None:
        super().__init__()
        import torchaudio

        from shared.features import MelSpectrogram

        self.sample_rate, self.hop_length, self.latent_dim = sample_rate, hop_length, latent_dim
        self.mel = MelSpectrogram(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=latent_dim)
        self.inv = torchaudio.transforms.InverseMelScale(n_fft // 2 + 1, latent_dim, sample_rate, norm="slaney", mel_scale="slaney")
        self.gl = torchaudio.transforms.GriffinLim(n_fft=n_fft, hop_length=hop_length, power=1.0, n_iter=gl_iters, rand_init=False)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        return self.mel(wav)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, encoded: bool = False) -> torch.Tensor:  # nothing quantised: ``encoded`` changes nothing
        lin = self.inv(torch.exp(z)).clamp(min=0)
        return self.gl(lin)


def load_codec(exp_dir: str | Path, device: str | torch.device = "cpu") -> Any:
    """The codec of a stage-one exp dir (a stand-in if it holds ``standin_codec.json``), in eval mode."""
    exp_dir = Path(exp_dir)
    if (exp_dir / STANDIN).is_file():
        cfg = json.loads((exp_dir / STANDIN).read_text())
        cfg.pop("type", None)
        return MelStandinCodec(**cfg).to(device).eval()
    try:
        from stage1_vae import load_codec as stage1_load
    except ImportError as e:
        raise ImportError(f"cannot load the codec of {exp_dir}: stage1_vae.load_codec unavailable ({e})") from e
    codec = stage1_load(exp_dir)
    if hasattr(codec, "to"):
        codec = codec.to(device)
    if hasattr(codec, "eval"):
        codec.eval()
    return codec


def main(argv: list[str] | None = None) -> None:
    from tqdm import tqdm

    from shared.datadir import DataDir
    from shared.io import write_json
    from shared.latents import LatentDumpWriter, LatentStats, codec_info

    p = argparse.ArgumentParser(prog="python -m stage2_flow.codec", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", type=Path, required=True, help="stand-in codec exp dir (created if missing)")
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--out-dir", type=Path, required=True)
    # None: the exp dir's (an existing one's standin_codec.json), else the defaults in STANDIN_DEFAULTS
    p.add_argument("--latent-dim", type=int, default=None, help=f"default {STANDIN_DEFAULTS['latent_dim']} (a new exp dir)")
    p.add_argument("--sample-rate", type=int, default=None, help=f"default {STANDIN_DEFAULTS['sample_rate']} (a new exp dir)")
    p.add_argument("--hop-length", type=int, default=None, help=f"default {STANDIN_DEFAULTS['hop_length']} (a new exp dir)")
    p.add_argument("--stats", action="store_true", help="compute latent_stats.json into --exp-dir from this set")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    given = {k: getattr(args, k) for k in STANDIN_DEFAULTS if getattr(args, k) is not None}
    if not (args.exp_dir / STANDIN).is_file():
        args.exp_dir.mkdir(parents=True, exist_ok=True)
        write_json(args.exp_dir / STANDIN, {"type": "mel", **STANDIN_DEFAULTS, **given})
    else:  # the exp dir's codec encodes: options that say otherwise would be silently ignored
        have = json.loads((args.exp_dir / STANDIN).read_text())
        differ = [f"--{k.replace('_', '-')} {v} (it has {have.get(k)})" for k, v in given.items() if have.get(k) != v]
        if differ:
            raise SystemExit(f"{args.exp_dir / STANDIN} exists with other settings: {', '.join(differ)}; leave the options "
                             "out to encode with it, or give another --exp-dir (or remove it) for a new stand-in codec")
    codec = load_codec(args.exp_dir)
    data = DataDir.load(args.data_dir)  # its utterances: with a segments file, the cuts, not the recordings
    dump, stats = LatentDumpWriter(args.out_dir), LatentStats()
    for utt in tqdm(data.utts, desc="encode"):
        stats.add(dump.add(utt, codec.encode(data.load_audio(utt, codec.sample_rate)[None])[0]))
    info = codec_info(codec, args.exp_dir, encoded=True)
    write_json(args.out_dir / "codec.json", info)
    dump.finish()
    if args.stats:
        write_json(args.exp_dir / "latent_stats.json", stats.result(args.out_dir, info))
    print(f"wrote {len(dump.scp)} latents to {args.out_dir}")


if __name__ == "__main__":
    main()
