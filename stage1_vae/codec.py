"""``load_codec(exp_dir)``: the one function stage two uses to get a codec from an experiment directory.

Every codec has ``sample_rate``, ``hop_length`` (samples per latent frame), ``latent_dim``,
``encode(wav (B, T)) -> z (B, D, F)`` and ``decode(z (B, D, F), encoded=False) -> wav (B, T')``, with
``F = ceil(T / hop) + 1`` for our codecs. ``decode`` snaps quantised latents from elsewhere (stage two's) to the
codebook; ``encoded=True`` says ``z`` is the codec's own ``encode`` output, decoded without snapping it again.
Dispatch is on ``<exp>/config.yaml``:

- ``model:`` section (written by ``stage1_vae.train``): our VAE, RVQ/FSQ codec or mel vocoder, weights in
  ``<exp>/model.pt``;
- ``adapter:`` section: an external codec through its own pip package and LOCAL weights, e.g.::

      adapter: {kind: encodec, weights: /path/encodec_24khz.th, bandwidth: 6.0}
      adapter: {kind: dac, weights: /path/weights_16khz.pth}

  ``weights: null`` with ``random_init: true`` builds a randomly initialised model (tests only).
  Write one with ``python -m stage1_vae.codec adapter --kind encodec --weights W --exp-dir EXP``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from shared.audio import pad_to_multiple
from shared.config import load_config, save_config
from shared.io import MODEL_FILE, PathLike


class Codec(Protocol):
    sample_rate: int
    hop_length: int
    latent_dim: int

    def encode(self, wav: torch.Tensor) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor, encoded: bool = False) -> torch.Tensor: ...


class EncodecAdapter(nn.Module):
    """EnCodec (``pip install encodec``). Latent: the encoder's continuous output (128-dim, 75 Hz at
    24 kHz); ``decode`` re-quantises at ``bandwidth`` kbps (``quantize: false`` decodes it as is)."""

    def __init__(self, weights: str | None = None, model: str = "encodec_24khz", bandwidth: float = 6.0,
                 quantize: bool = True, random_init: bool = False):
        super().__init__()
        from encodec import EncodecModel

        if weights is None and not random_init:
            raise ValueError("encodec adapter: 'weights' (a local state-dict file) is required; nothing is downloaded")
        # the 48 kHz model is stereo, normalises each 1-s segment's volume and codes segments apart: its encoder
        # and decoder cannot be called on mono frames as here, so it is not offered
        builders = {"encodec_24khz": EncodecModel.encodec_model_24khz}
        if model not in builders:
            raise ValueError(f"encodec adapter: unknown model '{model}' (expected one of {sorted(builders)}; the "
                             f"48 kHz model is stereo and segment-normalised, which this adapter does not handle)")
        self.model = builders[model](pretrained=False)
        if weights is not None:
            self.model.load_state_dict(torch.load(weights, map_location="cpu"))
        self.model.set_target_bandwidth(bandwidth)
        self.model.eval()
        self.bandwidth, self.quantize = bandwidth, quantize
        self.sample_rate = int(self.model.sample_rate)
        self.hop_length = int(torch.prod(torch.tensor(self.model.encoder.ratios)))
        self.latent_dim = int(self.model.encoder.dimension)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        x = pad_to_multiple(wav, self.hop_length).unsqueeze(1)
        return self.model.encoder(x)  # (B, 128, T / hop)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, encoded: bool = False) -> torch.Tensor:
        if self.quantize:  # also ``encoded``: the encoder's output is continuous, quantised only here
            frame_rate = self.sample_rate / self.hop_length
            codes = self.model.quantizer.encode(z, frame_rate, self.bandwidth)
            z = self.model.quantizer.decode(codes)
        return self.model.decoder(z).squeeze(1)


class DACAdapter(nn.Module):
    """Descript Audio Codec (``pip install descript-audio-codec``). Latent: the quantised continuous
    ``z`` (1024-dim); ``decode`` re-quantises it unless ``encoded`` (``quantize: false`` always skips that)."""

    def __init__(self, weights: str | None = None, quantize: bool = True, random_init: bool = False, **model_kwargs: Any):
        super().__init__()
        import dac

        if weights is not None:
            self.model = dac.DAC.load(weights)
        elif random_init:
            self.model = dac.DAC(**model_kwargs)
        else:
            raise ValueError("dac adapter: 'weights' (a local .pth file) is required; nothing is downloaded")
        self.model.eval()
        self.quantize = quantize
        self.sample_rate = int(self.model.sample_rate)
        self.hop_length = int(self.model.hop_length)
        self.latent_dim = int(self.model.latent_dim)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        x = pad_to_multiple(wav, self.hop_length).unsqueeze(1)
        return self.model.encode(x)[0]

    @torch.no_grad()
    def decode(self, z: torch.Tensor, encoded: bool = False) -> torch.Tensor:
        if self.quantize and not encoded:  # ``encode`` gives the quantised z already
            z = self.model.quantizer(z)[0]
        return self.model.decode(z).squeeze(1)


ADAPTERS = {"encodec": EncodecAdapter, "dac": DACAdapter}


def load_codec(exp_dir: PathLike, device: str | torch.device = "cpu", use_config: dict | None = None) -> nn.Module:
    """The codec described by ``<exp_dir>/config.yaml`` (in eval mode, on ``device``)."""
    exp_dir = Path(exp_dir)
    cfg = use_config if use_config is not None else load_config(exp_dir / "config.yaml")
    if "adapter" in cfg:
        a = dict(cfg["adapter"])
        kind = a.pop("kind")
        if kind not in ADAPTERS:
            raise ValueError(f"{exp_dir}/config.yaml: unknown adapter '{kind}' (expected one of {sorted(ADAPTERS)})")
        return ADAPTERS[kind](**a).to(device).eval()
    if "model" not in cfg:
        raise ValueError(f"{exp_dir}/config.yaml: neither a 'model' nor an 'adapter' section")
    from stage1_vae.model import build_codec  # not stage1_vae.train: Lightning costs ~3.5 s to import

    weights = exp_dir / MODEL_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no exported weights (did stage1_vae.train finish?)")
    codec = build_codec(cfg["model"], strict=False)  # its config as it was trained: options older code ignored may be in it
    codec.load_state_dict(torch.load(weights, map_location="cpu"))
    return codec.to(device).eval()


def write_adapter_exp_dir(exp_dir: PathLike, kind: str, weights: str | None, **options: Any) -> Path:
    """Create an exp dir whose config points ``load_codec`` at an external codec."""
    if kind not in ADAPTERS:
        raise ValueError(f"unknown adapter '{kind}' (expected one of {sorted(ADAPTERS)})")
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    save_config({"adapter": {"kind": kind, "weights": str(Path(weights).resolve()) if weights else None, **options}},
                exp_dir / "config.yaml")
    return exp_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write an exp dir for an external codec (adapter).")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("adapter")
    a.add_argument("--kind", required=True, choices=sorted(ADAPTERS))
    a.add_argument("--weights", required=True, help="local weights file")
    a.add_argument("--exp-dir", required=True)
    a.add_argument("--bandwidth", type=float, default=None, help="encodec: target bandwidth (kbps)")
    args = p.parse_args(argv)
    opts = {"bandwidth": args.bandwidth} if args.bandwidth is not None and args.kind == "encodec" else {}
    out = write_adapter_exp_dir(args.exp_dir, args.kind, args.weights, **opts)
    load_codec(out)  # fail now, not in stage two, if the weights do not load
    print(f"wrote {out}/config.yaml")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
