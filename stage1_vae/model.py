"""The stage-one codec as one plain ``nn.Module``: encoder -> bottleneck -> decoder.

It implements the codec interface stage two relies on (``sample_rate``, ``hop_length``,
``latent_dim``, ``encode(wav (B, T)) -> z (B, D, F)``, ``decode(z (B, D, F), encoded=False) -> wav (B, T)``) and is
built from the ``model:`` section of a stage-one config by :func:`build_codec`.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

import torch
from torch import nn

from shared.audio import pad_to_multiple
from shared.config import ConfigError
from stage1_vae.bottlenecks import BOTTLENECKS, build_bottleneck
from stage1_vae.decoders import DECODERS, VocosDecoder, build_decoder
from stage1_vae.encoders import MelEncoder, SpectralEncoder
from stage1_vae.modules import PitchChannel


class Stage1Codec(nn.Module):
    """Waveform autoencoder. ``F = T // hop + 1`` latent frames for ``T`` samples (``T`` padded to a
    multiple of ``hop``); ``decode`` returns ``(F - 1) * hop`` samples.

    With a ``pitch`` channel (:class:`~stage1_vae.modules.PitchChannel`) the latent is
    ``[pitch, bottleneck latent]``: channel 0 is the normalised log-F0 of the input (with ``phase``,
    channels 1-2 the harmonic source's phase origin), the others are learned; a harmonic-source decoder
    reads its F0 (and phase origin) from them."""

    def __init__(self, encoder: nn.Module, bottleneck: nn.Module, decoder: nn.Module, sample_rate: int, hop_length: int,
                 pitch: PitchChannel | None = None):
        super().__init__()
        self.encoder, self.bottleneck, self.decoder, self.pitch = encoder, bottleneck, decoder, pitch
        self.sample_rate, self.hop_length = int(sample_rate), int(hop_length)
        self.latent_dim = int(bottleneck.latent_dim) + (pitch.channels if pitch is not None else 0)
        if getattr(decoder, "uses_f0", False) and pitch is None:
            raise ValueError("a harmonic-source decoder needs the latent's pitch channel (model.pitch)")

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def _with_pitch(self, wav: torch.Tensor, z: torch.Tensor, pitch: torch.Tensor | None = None) -> torch.Tensor:
        if self.pitch is None:
            return z
        # in float32 at least: under bf16 autocast a bf16 z (the identity bottleneck's) would round the log-F0 to
        # ~8 bits (tens of cents) and the phase origin with it, in training only (encode runs in float32)
        pitch = self.pitch(wav) if pitch is None else pitch
        dtype = torch.promote_types(z.dtype, torch.float32)
        return torch.cat([pitch.to(dtype), z.to(dtype)], dim=1)

    def _decode(self, z: torch.Tensor, return_phase: bool = False):
        if not isinstance(self.decoder, VocosDecoder):
            return (self.decoder(z), None) if return_phase else self.decoder(z)
        if not self.decoder.uses_f0:
            return self.decoder(z, return_phase=return_phase)
        offset = self.pitch.phase_offset(z[:, : self.pitch.channels])
        return self.decoder(z, return_phase=return_phase, f0=self.pitch.to_hz(z[:, 0]), phase_offset=offset)

    def forward(self, wav: torch.Tensor, return_phase: bool = False, pitch: torch.Tensor | None = None):
        """Training path. ``wav (B, T)`` with ``T % hop == 0`` -> ``(wav_hat (B, T), z (B, D, F), losses)``,
        plus the iSTFT head's phase ``(B, n_fft/2+1, F)`` with ``return_phase`` (None for other decoders).
        ``pitch (B, channels, F)``: the pitch channels measured beforehand (:meth:`PitchChannel.crop`) instead
        of from ``wav`` here."""
        z, losses = self.bottleneck(self.encoder(wav))
        z = self._with_pitch(wav, z, pitch)
        if not return_phase:
            return self._decode(z), z, losses
        wav_hat, phase = self._decode(z, return_phase=True)
        return wav_hat, z, losses, phase

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``(B, T) -> (B, D, T // hop + 1)`` (after padding ``T`` up to a multiple of hop); deterministic."""
        wav = pad_to_multiple(wav, self.hop_length)
        return self._with_pitch(wav, self.bottleneck.latent(self.encoder(wav)))

    @torch.no_grad()
    def encode_continuous(self, wav: torch.Tensor) -> torch.Tensor:
        """Pre-quantisation / pre-sampling encoder output (for the quantised codecs: the continuous latent)."""
        wav = pad_to_multiple(wav, self.hop_length)
        return self._with_pitch(wav, self.encoder(wav))

    def decode_given(self, z: torch.Tensor, wav: torch.Tensor, return_phase: bool = False, pitch: torch.Tensor | None = None):
        """Training path of decoder fine-tuning on given latents ``z (B, D, F)`` (e.g. stage two's output on
        the real utterances' timing) against their audio ``wav (B, (F - 1) hop)``. The pitch channels are not
        learned: they are measured from ``wav`` as in :meth:`forward`, so the harmonic source matches the
        target and the decoder learns to read the given spectral channels, not to correct the pitch (``pitch``:
        measured beforehand, as in :meth:`forward`). Nothing
        but the decoder learns here: the bottleneck snaps the latents in eval mode (an RVQ's EMA codebooks would
        otherwise move towards them)."""
        c = self.pitch.channels if self.pitch is not None else 0
        training = self.bottleneck.training
        with torch.no_grad():
            self.bottleneck.eval()
            snapped = self.bottleneck.prepare(z[:, c:])
            self.bottleneck.train(training)
            snapped = self._with_pitch(pad_to_multiple(wav, self.hop_length), snapped, pitch)
        return self._decode(snapped, return_phase=return_phase)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, encoded: bool = False) -> torch.Tensor:
        """``(B, D, F) -> (B, (F - 1) * hop)``. Latents from elsewhere (stage two's) have their quantised parts
        (codebooks, the pitch channel's bits) snapped first; ``encoded``: ``z`` is this codec's own :meth:`encode`
        output, on the codebook already, decoded as it is (an RVQ would re-quantise a sum of codes to other codes)."""
        if encoded:
            return self._decode(z)
        if self.pitch is not None:
            c = self.pitch.channels
            z = torch.cat([self.pitch.quantize(z[:, :c]), self.bottleneck.prepare(z[:, c:])], dim=1)
        else:
            z = self.bottleneck.prepare(z)
        return self._decode(z)


# the keys of ``model:`` (its sections' options are checked by check_options)
MODEL_KEYS = ("sample_rate", "hop_length", "n_fft", "latent_dim", "encoder", "bottleneck", "pitch", "decoder")


def build_codec(model_cfg: dict[str, Any], strict: bool = True) -> Stage1Codec:
    """Build from a config section such as::

        sample_rate: 16000
        hop_length: 256          # frame rate = sample_rate / hop_length
        n_fft: 1024              # encoder analysis and iSTFT head size
        latent_dim: 32
        encoder: {kind: convnext, input: stft, dim: 256, intermediate_dim: 768, num_layers: 4,
                  fine_ffts: [512, 256]}  # optional: shorter windows' log-magnitudes stacked per latent frame
        bottleneck: {kind: gaussian}          # or rvq / fsq / identity (+ their options)
        pitch: {f0_min: 50, f0_max: 500}      # optional: latent channel 0 is log-F0 (latent_dim counts it);
                                              # phase: true adds channels 1-2, the source's phase origin
        decoder: {kind: vocos, dim: 384, intermediate_dim: 1152, num_layers: 8}   # or hifigan

    A key the model does not read, or an option a module does not take (:func:`check_options`), is a ConfigError;
    with ``strict=False`` (loading an exported codec, whose config may hold an option older code ignored) it is
    dropped with a warning.
    """
    unknown = sorted(set(model_cfg) - set(MODEL_KEYS))
    if unknown:  # read with defaults: ``n_ftt: 2048`` would build the model with n_fft 1024
        _unknown_options(f"model: unknown key(s) {', '.join(map(str, unknown))}; the keys are {', '.join(MODEL_KEYS)}",
                         strict)
        model_cfg = {k: v for k, v in model_cfg.items() if k in MODEL_KEYS}
    sr, hop = int(model_cfg["sample_rate"]), int(model_cfg["hop_length"])
    n_fft = int(model_cfg.get("n_fft", 4 * hop))
    dim = int(model_cfg["latent_dim"])
    enc_cfg = dict(model_cfg.get("encoder", {}))
    bot_cfg = dict(model_cfg.get("bottleneck", {"kind": "gaussian"}))
    dec_cfg = dict(model_cfg.get("decoder", {"kind": "vocos"}))
    pitch_cfg = model_cfg.get("pitch")
    if pitch_cfg is not None:
        pitch_cfg = check_options("pitch", PitchChannel, pitch_cfg, ("sample_rate", "hop_length"), strict)
    pitch = PitchChannel(sr, hop, **pitch_cfg) if pitch_cfg is not None else None
    learned = dim - (pitch.channels if pitch is not None else 0)
    if learned < 1:  # a codec of the pitch channels alone (or fewer channels than they take) was built without a word
        raise ConfigError(f"model.latent_dim {dim}: the pitch channels take {dim - learned} of them, which leaves "
                          f"{learned} learned channel(s); give latent_dim {dim - learned + 1} or more")
    bot_kind = bot_cfg.pop("kind", "gaussian")
    if bot_kind in BOTTLENECKS:
        bot_cfg = check_options("bottleneck", BOTTLENECKS[bot_kind], bot_cfg, ("latent_dim",), strict)
    bottleneck = build_bottleneck(bot_kind, learned, **bot_cfg)
    encoders = {"convnext": SpectralEncoder, "mel": MelEncoder}
    enc_kind = enc_cfg.pop("kind", "convnext")
    if enc_kind not in encoders:
        raise ValueError(f"unknown encoder '{enc_kind}' (expected 'convnext' or 'mel')")
    enc_cfg = check_options("encoder", encoders[enc_kind], enc_cfg, ("out_dim", "sample_rate", "hop_length", "n_fft"),
                            strict)
    encoder = encoders[enc_kind](bottleneck.in_dim, sample_rate=sr, hop_length=hop, n_fft=n_fft, **enc_cfg)
    dec_kind = dec_cfg.pop("kind", "vocos")
    if dec_kind in DECODERS:
        dec_cfg = check_options("decoder", DECODERS[dec_kind], dec_cfg, ("latent_dim", "hop_length", "n_fft", "sample_rate"),
                                strict)
    decoder = build_decoder(dec_kind, dim, hop, n_fft, sample_rate=sr, **dec_cfg)
    return Stage1Codec(encoder, bottleneck, decoder, sr, hop, pitch)


def check_options(section: str, cls: type, options: dict[str, Any], from_model: tuple[str, ...],
                  strict: bool = True) -> dict[str, Any]:
    """Refuse (ConfigError) an option of ``model.<section>`` that ``cls`` does not take, naming it and those it takes,
    rather than build a model without what the config asked for (``num_layer: 12`` for ``num_layers``); returns the
    options. ``from_model``: the arguments :func:`build_codec` gives ``cls`` itself (the model's rate, hop, sizes). A
    class that passes further options on (the RVQ, to ``vector_quantize_pytorch``, which checks them) is not checked
    here. ``strict=False``: the unknown options are dropped with a warning instead (an exported codec's config)."""
    params = inspect.signature(cls).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return options
    known = [n for n in params if n not in from_model]
    unknown = sorted(set(options) - set(known))
    if unknown:
        shared = [k for k in unknown if k in params]  # taken, but given by build_codec
        note = f" ({', '.join(shared)}: set at the top of the model section)" if shared else ""
        _unknown_options(f"model.{section}: unknown option(s) {', '.join(unknown)} for {cls.__name__}; its options are "
                         f"{', '.join(known)}{note}", strict)
    return {k: v for k, v in options.items() if k not in unknown}


def _unknown_options(msg: str, strict: bool) -> None:
    """A ConfigError (``strict``), else a warning that the options are dropped (an exported codec's config)."""
    if strict:
        raise ConfigError(msg)
    print(f"warning: {msg}: ignored, as the code that trained this codec ignored them", file=sys.stderr, flush=True)
