"""The LightningModule that trains a :class:`~stage1_vae.model.Stage1Codec`: it owns the discriminator,
the loss weights, the optimisers (manual optimisation for G and D), the optional EMA generator,
validation metrics and the audio/spectrogram samples. The networks themselves stay plain modules.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch

from shared.config import ConfigError, check_known_keys
from stage1_vae.bottlenecks import RVQBottleneck
from stage1_vae.discriminators import MultiDiscriminator
from stage1_vae.losses import (ADV_LOSSES, PhaseLoss, ReconstructionLoss, discriminator_loss, feature_matching_loss,
                               generator_adv_loss, weighted_sum)
from shared.training import adamw, clip_grad_norm, ema_update, lr_schedule, require_finite
from stage1_vae.model import build_codec

RECON_KEYS = ("mel/l1", "stft/mr", "stft/complex")
PHASE_KEYS = ("phase/ip", "phase/gd", "phase/iaf")
LOSS_KEYS = (*RECON_KEYS, *PHASE_KEYS, "kl", "vq/commit", "adv/gen", "fm/l1", "adv/disc")
# what this module and stage1_vae.train read from ``train:`` (decoder_only: set by --decoder-latents; budget_scale:
# recorded by --budget-scale)
TRAIN_KEYS = ("seed", "num_threads", "batch_size", "segment_seconds", "pitch_cache", "cache_audio", "num_workers",
              "print_every", "lr", "disc_lr", "betas", "weight_decay", "warmup_steps", "total_steps", "min_lr_ratio",
              "lr_horizon", "grad_clip", "ema_decay", "disc_start_step", "adv_loss", "decoder_only", "budget_scale")
STAGE2_NAMES = {"lr_min_ratio": "min_lr_ratio", "lr_total_steps": "total_steps"}  # stage two's names for two of them
VALIDATION_KEYS = ("num_utts", "num_samples", "metrics")
# the config's sections, with the keys of those read key by key with defaults (None: built from as keyword
# arguments, whose unknown ones are errors there; ``data``: written by stage1_vae.train from its options)
# DAC's and EnCodec's name for the dead-code threshold, an absolute EMA use per batch up to vector-quantize-pytorch 1.32;
# 1.34 takes it for dead_code_threshold_ratio (a fraction of the mean use) after dividing a value >= 1 by codebook_size
OLD_DEAD_CODE_KEY = "threshold_ema_dead_code"
SECTIONS = {"model": None, "loss_weights": LOSS_KEYS, "loss": None, "discriminator": None, "train": TRAIN_KEYS,
            "validation": VALIDATION_KEYS, "trainer": None, "data": None}


def check_config(cfg: dict[str, Any]) -> None:
    """The checks of a stage-one training config that need no model. Its sections are read key by key with
    defaults, so a misspelt name would silently do nothing: an unknown section (``validaton:``), a ``loss_weights`` key
    that weighs no loss (``mel/L1`` for ``mel/l1`` turns the mel loss off), an unknown ``train`` or ``validation`` key,
    and a ``train.adv_loss`` that is no adversarial loss (found only when the discriminator starts, hours into a GPU
    run) are ConfigErrors naming them. So is an RVQ's ``threshold_ema_dead_code``, whose meaning
    vector-quantize-pytorch 1.34 changed (see :data:`OLD_DEAD_CODE_KEY`)."""
    check_known_keys(cfg, SECTIONS, "stage one",
                     {f"train.{k}": f"{k} is stage two's name for {ours}" for k, ours in STAGE2_NAMES.items()})
    adv_loss = (cfg.get("train") or {}).get("adv_loss", "hinge")
    if adv_loss not in ADV_LOSSES:
        raise ConfigError(f"train.adv_loss: {adv_loss!r} is not one of {', '.join(ADV_LOSSES)}")
    bottleneck = (cfg.get("model") or {}).get("bottleneck") or {}
    if OLD_DEAD_CODE_KEY in bottleneck:
        raise ConfigError(f"model.bottleneck.{OLD_DEAD_CODE_KEY}: vector-quantize-pytorch 1.34 no longer reads it as a "
                          "code's least EMA use per batch, but as a fraction of the mean use (a value of 1 or more "
                          "divided by codebook_size, so 2 means 0.002): give dead_code_threshold_ratio (0.1 replaces "
                          "a code used less than a tenth as often as the average one) instead")


class Stage1Experiment(L.LightningModule):
    def __init__(self, cfg: dict[str, Any], exp_dir: str | Path | None = None):
        super().__init__()
        check_config(cfg)
        self.automatic_optimization = False
        self.cfg, self.exp_dir = cfg, Path(exp_dir) if exp_dir is not None else None
        self.train_cfg: dict[str, Any] = cfg.get("train", {})
        self.weights: dict[str, float] = {k: float(v) for k, v in cfg["loss_weights"].items()}
        self.codec = build_codec(cfg["model"])
        m = cfg["model"]
        # The complex-spectrum and phase terms work at the synthesis STFT's own size: the iSTFT head's
        # (which runs finer than the latent rate with head_upsample), else the model's.
        head = getattr(self.codec.decoder, "head", None)
        syn_fft = head.n_fft if head is not None else int(m.get("n_fft", 4 * int(m["hop_length"])))
        syn_hop = head.hop_length if head is not None else int(m["hop_length"])
        self.recon = ReconstructionLoss(int(m["sample_rate"]), complex_fft=syn_fft, complex_hop=syn_hop, **cfg.get("loss", {}))
        phase_terms = [k for k in PHASE_KEYS if self.weights.get(k, 0.0) > 0]
        if phase_terms and head is None:  # one loss_weights block serves every decoder: a note, not an error
            print(f"warning: loss_weights {', '.join(phase_terms)}: the {m.get('decoder', {}).get('kind')} decoder has "
                  "no iSTFT phase to compare, so these losses are not computed (set them to 0 to silence this)",
                  file=sys.stderr, flush=True)
        self.use_phase = bool(phase_terms) and head is not None
        self.phase_loss = PhaseLoss(syn_fft, syn_hop) if self.use_phase else None
        self.use_adv = self.weights.get("adv/gen", 0.0) > 0 or self.weights.get("fm/l1", 0.0) > 0
        self.disc = MultiDiscriminator(**cfg.get("discriminator", {})) if self.use_adv else None
        self.disc_lr = float(self.train_cfg.get("disc_lr", self.train_cfg.get("lr", 1e-3)))
        self.ema_decay = float(self.train_cfg.get("ema_decay", 0.0))
        self.ema = copy.deepcopy(self.codec).requires_grad_(False) if self.ema_decay > 0 else None
        self.validator = None  # set by train.py (needs the dev data); see stage1_vae.validation
        # decoder fine-tuning on given latents (stage1_vae.train --decoder-latents): batches are
        # {"latents", "wav"}, only the decoder is trained, the encoder and bottleneck stay as they are
        self.decoder_only = bool(self.train_cfg.get("decoder_only", False))
        if self.decoder_only:
            self.codec.encoder.requires_grad_(False)
            self.codec.bottleneck.requires_grad_(False)

    def setup(self, stage: str) -> None:
        # vector_quantize_pytorch decides whether to sum its EMA codebooks' statistics over processes when the
        # quantiser is built (is_distributed(), cached), before Lightning starts the process group: each rank's
        # codebooks would then learn from its own batches alone (and DDP hands rank 0's buffers to all)
        dist = torch.distributed
        if stage == "fit" and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            if isinstance(self.codec.bottleneck, RVQBottleneck):
                self.codec.bottleneck.sync_codebooks()

    # ---- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self):
        t = self.train_cfg
        total = int(t.get("total_steps", self.trainer.max_steps if self.trainer.max_steps > 0 else 100000))
        warm, min_ratio = int(t.get("warmup_steps", 100)), float(t.get("min_lr_ratio", 0.05))
        betas = tuple(t.get("betas", (0.8, 0.99)))
        trained = self.codec.decoder if self.decoder_only else self.codec
        opt_g = adamw(trained.parameters(), float(t.get("lr", 1e-3)), betas, float(t.get("weight_decay", 0.0)))
        sched = lr_schedule(self, warm, total, min_ratio, str(t.get("lr_horizon", "steps")))
        opts = [opt_g]
        if self.disc is not None:
            # no schedule of its own: each discriminator step takes the generator's LR factor of that step
            # (training_step), so one that starts at disc_start_step neither warms up again nor decays on its own count
            opts.append(adamw(self.disc.parameters(), self.disc_lr, betas))
        return opts, [torch.optim.lr_scheduler.LambdaLR(opt_g, sched)]

    def _adv_active(self) -> bool:
        return self.disc is not None and self.global_step >= int(self.train_cfg.get("disc_start_step", 0))

    def training_step(self, batch: torch.Tensor | dict[str, torch.Tensor], batch_idx: int) -> None:
        # Per-step seeding makes the reparameterisation noise a function of (seed, step, rank) alone,
        # so a resumed run draws exactly what the uninterrupted run drew.
        torch.manual_seed(int(self.train_cfg.get("seed", 0)) * 1_000_003 + self.global_step * 7919 + self.global_rank)
        # a batch is the audio (B, T), or a dict of it ("wav"), the pitch channels measured beforehand ("track",
        # stage1_vae.modules.PitchCache) and, for decoder fine-tuning, the given latents (B, D, F) of the audio
        batch = batch if isinstance(batch, dict) else {"wav": batch}
        pitch = batch.get("track")
        if "latents" in batch:
            wav = batch["wav"]
            wav_hat, phase = self.codec.decode_given(batch["latents"], wav, return_phase=True, pitch=pitch)
            losses: dict[str, torch.Tensor] = {}
        else:
            wav = batch["wav"][..., : batch["wav"].shape[-1] // self.codec.hop_length * self.codec.hop_length]
            wav_hat, _, losses, phase = self.codec(wav, return_phase=True, pitch=pitch)
        opts = self.optimizers()
        opt_g, opt_d = (opts[0], opts[1]) if isinstance(opts, list) else (opts, None)
        sched = self.lr_schedulers()
        lr = sched.get_last_lr()[0]  # the generator's LR this step
        clip = float(self.train_cfg.get("grad_clip", 1.0))
        adv = self._adv_active()
        logs: dict[str, torch.Tensor] = {}
        if adv:  # discriminator update (its optimizer is stepped directly so global_step counts G steps only)
            lr_d = self.disc_lr * lr / sched.base_lrs[0] if sched.base_lrs[0] > 0 else 0.0  # the same schedule
            for group in opt_d.optimizer.param_groups:
                group["lr"] = lr_d
            real_logits, _ = self.disc(wav)
            fake_logits, _ = self.disc(wav_hat.detach())
            d_losses = discriminator_loss(real_logits, fake_logits, self.train_cfg.get("adv_loss", "hinge"))
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(self.weights.get("adv/disc", 1.0) * d_losses["adv/disc"])
            norm = clip_grad_norm(self, opt_d, clip)
            self._require_finite("the discriminator loss", d_losses["adv/disc"], d_losses, batch, norm)
            opt_d.optimizer.step()
            logs.update(d_losses)
        terms = tuple(k for k in RECON_KEYS if self.weights.get(k, 0.0) != 0.0)
        losses.update(self.recon(wav_hat, wav, terms))
        if self.use_phase and phase is not None:
            losses.update(self.phase_loss(phase, wav))
        if adv:
            _, real_feats = self.disc(wav)
            fake_logits, fake_feats = self.disc(wav_hat)
            losses["adv/gen"] = generator_adv_loss(fake_logits, self.train_cfg.get("adv_loss", "hinge"))
            losses["fm/l1"] = feature_matching_loss(real_feats, fake_feats)
        total = weighted_sum(losses, self.weights)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(total)
        norm = clip_grad_norm(self, opt_g, clip)
        self._require_finite("the training loss", total, losses, batch, norm)
        opt_g.step()
        sched.step()
        self._update_ema()
        logs.update(losses)
        logs["loss"] = total
        self.log_dict({f"train/{k}": v.detach() for k, v in logs.items()}, prog_bar=False, on_step=True, on_epoch=False)
        self.log("train/lr", lr, on_step=True, on_epoch=False)
        if adv:
            self.log("train/lr_disc", lr_d, on_step=True, on_epoch=False)

    def _require_finite(self, what: str, loss: torch.Tensor, terms: dict[str, torch.Tensor],
                        batch: dict[str, Any], grad_norm: torch.Tensor | None = None) -> None:
        """:func:`shared.training.require_finite`, a non-finite loss explained by the batch's inputs where they are."""
        require_finite(self, what, loss, terms, grad_norm, lambda: self._non_finite_inputs(batch) or (
            "; the training diverged: try a lower train.lr, a train.grad_clip, or trainer.precision=32-true"))

    def _non_finite_inputs(self, batch: dict[str, Any]) -> str:
        """What of ``batch`` (its audio, its given latents) is not finite, and where to look; "" if nothing."""
        data = self.cfg.get("data", {})
        found = []
        for key, what, where in (("wav", "audio", f"`python -m shared.datadir validate --check-audio "
                                                  f"{data.get('train', 'DATA_DIR')}` names the file(s)"),
                                 ("latents", "latents", f"the latent dump {data.get('decoder_latents')}")):
            bad = [i for i, x in enumerate(batch.get(key, ())) if not torch.isfinite(x).all()]
            if bad:
                utts = batch.get("utts")  # where a dataset names its items
                items = (", ".join(str(utts[i]) for i in bad) if utts is not None
                         else f"item(s) {', '.join(map(str, bad))} of the batch")
                found.append(f"the input {what} of {items} hold(s) NaN or infinite values ({where})")
        return "; " + "; ".join(found) if found else ""

    def _update_ema(self) -> None:
        if self.ema is not None:
            ema_update(self.ema, self.codec, self.ema_decay, self.global_step)

    def inference_codec(self):
        """The generator used for validation and export: the EMA copy when enabled."""
        return self.ema if self.ema is not None else self.codec

    # ---- validation ---------------------------------------------------------------------------
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if self.validator is not None:
            self.validator.step(self, batch, batch_idx)

    def on_validation_epoch_end(self) -> None:
        if self.validator is not None:
            self.validator.epoch_end(self)
