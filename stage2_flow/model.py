"""FlowTTS: text encoder + durations (MAS / predictor / external) + speaker conditioning + flow matcher.

A plain nn.Module: ``losses(batch)`` for training, ``generate(...)`` for inference. All latents here
are *normalised* (per-channel mean/std of the stage-one training latents); see data.LatentNormalizer.

Modes (``model.mode``):
* ``aligned`` (default): mu per token, expanded to frames by durations; x0 = mu + sigma eps.
* ``alignfree`` (E2/F5-TTS): per-token text states padded with a learned filler to the latent length
  (or stretched uniformly), refined at frame rate; the flow starts from N(0, I) and is trained to
  infill a random 70-100% span given the rest of the latents; total length from a speaking-rate heuristic.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shared.config import check_known_keys
from shared.io import MODEL_FILE, file_sha256, read_json
from stage2_flow.alignment import gaussian_log_p, length_regulate, monotonic_alignment_search, round_durations
from stage2_flow.estimator import VelocityEstimator
from stage2_flow.flow import FlowMatcher, Generators
from stage2_flow.layers import ConvNeXtBlock
from stage2_flow.speaker import SpeakerConditioner
from stage2_flow.text_encoder import DurationPredictor, TextEncoder, duration_loss, log_durations_to_frames


def sequence_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(B,) -> (B, 1, T) float mask, 1 on valid positions."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return (torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]).float()[:, None, :]


# what FlowTTS reads from ``model:`` and its two sections read key by key (text_encoder, duration_predictor, estimator
# and flow are keyword arguments of their modules, which refuse an unknown one themselves); latent_dim, n_vocab and
# n_speakers are written by stage2_flow.train
MODEL_KEYS = {
    "model": ("mode", "latent_dim", "n_vocab", "n_speakers", "speaker", "text_encoder", "duration_predictor", "estimator",
              "flow", "frame_text_channels", "flow_segment_frames", "phone_balance", "alignfree"),
    "model.speaker": ("dim", "use_id", "use_prompt"),
    "model.alignfree": ("layout", "text_layers", "text_channels", "mask_frac"),
}


def check_model_config(cfg: dict[str, Any]) -> None:
    """Refuse (ConfigError) a key of the ``model`` section, or of its ``speaker`` or ``alignfree`` section, that
    FlowTTS does not read: each is read with a default, so ``phone_balnce: 1`` would train without the option."""
    sections = {"model": cfg, **{f"model.{k}": cfg[k] for k in ("speaker", "alignfree") if k in cfg}}
    check_known_keys(sections, MODEL_KEYS, "stage two")


class FlowTTS(nn.Module):
    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = cfg
        d = int(cfg["latent_dim"])
        self.latent_dim = d
        self.mode = cfg.get("mode", "aligned")
        if self.mode not in ("aligned", "alignfree"):
            raise ValueError(f"model.mode must be 'aligned' or 'alignfree', got {self.mode!r}")
        scfg = cfg.get("speaker", {})
        spk_dim = int(scfg.get("dim", 64))
        self.speaker = SpeakerConditioner(
            int(cfg.get("n_speakers", 0)) if scfg.get("use_id", True) else 0, spk_dim, bool(scfg.get("use_prompt", False)), d
        )
        g_dim = spk_dim if self.speaker.enabled else 0
        tcfg = dict(cfg.get("text_encoder", {}))
        # only the parts a mode uses are built: plain DDP (no find_unused_parameters) needs a gradient for every
        # parameter (alignfree mode has no prior mean mu, the stretch layout no filler)
        self.text_encoder = TextEncoder(int(cfg["n_vocab"]), d if self.mode == "aligned" else None, spk_dim=g_dim, **tcfg)
        hidden = self.text_encoder.hidden
        fcfg = dict(cfg.get("flow", {}))
        if self.mode == "aligned":
            self.duration_predictor = DurationPredictor(hidden, spk_dim=g_dim, **cfg.get("duration_predictor", {}))
            cond_ch = d if fcfg.get("mu_cond", True) else 0
            # the text encoder's states, projected and expanded to frames, as a further condition of the
            # estimator: mu is a per-token mean *latent*, so phones with similar average spectra (a flap and a
            # /d/, syllabic and plain /n/) get nearly the same mu, these channels need not. Off by default: 64
            # of them changed nothing measurable on espeak_mini (164 vs 164 phone errors, egs/espeak_mini/tts1/RESULTS.md)
            n_text = int(cfg.get("frame_text_channels", 0))
            self.text_proj = nn.Conv1d(hidden, n_text, 1) if n_text > 0 else None
            cond_ch += n_text
            if cond_ch == 0 and fcfg.get("prior", "text") == "noise":
                raise ValueError("model: the flow would get no text at all (flow.prior noise, flow.mu_cond false and no "
                                 "frame_text_channels): use flow.prior text, flow.mu_cond true or frame_text_channels > 0")
        else:
            acfg = cfg.get("alignfree", {})
            self.layout = acfg.get("layout", "pad")
            if self.layout not in ("pad", "stretch"):
                raise ValueError(f"model.alignfree.layout must be 'pad' or 'stretch', got {self.layout!r}")
            self.filler = nn.Parameter(torch.zeros(hidden, 1)) if self.layout == "pad" else None
            self.frame_text = nn.ModuleList(ConvNeXtBlock(hidden, mult=2, kernel=7) for _ in range(int(acfg.get("text_layers", 4))))
            self.text_out = nn.Conv1d(hidden, int(acfg.get("text_channels", 64)), 1)
            self.mask_frac = tuple(acfg.get("mask_frac", [0.7, 1.0]))
            fcfg.update(prior="noise", mu_cond=False)
            cond_ch = int(acfg.get("text_channels", 64)) + d
        ecfg = dict(cfg.get("estimator", {}))
        self.flow = FlowMatcher(VelocityEstimator(d, cond_ch, spk_dim=g_dim, **ecfg), **fcfg)
        self.register_load_state_dict_pre_hook(drop_unused_weights)

    def check_guidance(self, cfg_scale: float) -> None:
        """A ValueError for guidance (``cfg_scale`` != 0) of a model whose velocity has no condition at all (no prior
        mean, frame text or speaker): :meth:`FlowMatcher.check_guidance`."""
        self.flow.check_guidance(cfg_scale)

    # ---- shared pieces -----------------------------------------------------------------------
    def speaker_vector(self, batch: dict[str, torch.Tensor], b: int, device: torch.device) -> torch.Tensor | None:
        return self.speaker(batch.get("spk"), batch.get("prompt"), batch.get("prompt_mask"), batch=b, device=device)

    def encode_text(self, tokens: torch.Tensor, tok_lens: torch.Tensor, g: torch.Tensor | None):
        """-> (h (B, H, L), mu (B, D, L) (None in alignfree mode), tok_mask (B, 1, L))."""
        tok_mask = sequence_mask(tok_lens, tokens.shape[1])
        h, mu = self.text_encoder(tokens, tok_mask, g)
        return h, mu, tok_mask

    def frame_conditions(self, h: torch.Tensor, mu: torch.Tensor, durations: torch.Tensor, n_frames: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Aligned mode: the prior mean expanded to frames (B, D, F) and the expanded text states (B, E, F)
        (None without ``frame_text_channels``), the estimator's frame conditions."""
        mu_frames, _ = length_regulate(mu, durations, n_frames)
        if self.text_proj is None:
            return mu_frames, None
        text, _ = length_regulate(self.text_proj(h), durations, n_frames)
        return mu_frames, text

    @torch.no_grad()
    def align(self, mu: torch.Tensor, x1: torch.Tensor, tok_lens: torch.Tensor, frm_lens: torch.Tensor, impl: str = "auto") -> torch.Tensor:
        """MAS durations (B, L) of latents x1 (B, D, F) under N(mu_i, I), in float32 also under mixed precision (in
        bf16 the log-likelihoods' rounding moves token boundaries)."""
        with torch.autocast(mu.device.type, enabled=False):
            log_p = gaussian_log_p(mu.detach().float(), x1.float())
        path = monotonic_alignment_search(log_p, tok_lens, frm_lens, impl)
        return path.sum(-1).long()

    def frame_text_features(self, h: torch.Tensor, tok_lens: torch.Tensor, n_frames: int, frm_lens: torch.Tensor) -> torch.Tensor:
        """Alignment-free text condition (B, E, F): token states padded with the filler (or stretched)."""
        b, c, n_tok = h.shape
        if n_tok > n_frames:
            raise ValueError(f"alignfree: {n_tok} tokens do not fit into {n_frames} frames")
        fmask = sequence_mask(frm_lens, n_frames)
        if self.layout == "stretch":
            w = frm_lens[:, None].float() / tok_lens[:, None].float() * sequence_mask(tok_lens, n_tok)[:, 0]
            x, _ = length_regulate(h, round_durations(w, sequence_mask(tok_lens, n_tok)[:, 0].long()), n_frames)
        else:
            pos = torch.arange(n_frames, device=h.device)[None, :]
            is_tok = (pos < tok_lens[:, None]).float()[:, None, :]
            x = torch.nn.functional.pad(h, (0, n_frames - n_tok)) * is_tok + self.filler[None] * (1 - is_tok)
        x = x * fmask
        for block in self.frame_text:
            x = block(x, fmask)
        return self.text_out(x) * fmask

    # ---- training ----------------------------------------------------------------------------
    def losses(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None, t: torch.Tensor | None = None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """batch: tokens (B, L), tok_lens, latents (B, D, F) normalised, frm_lens, optional spk (B,),
        prompt (B, D, P) + prompt_mask, durations (B, L) (external), x0 (B, D, F) + mu_frames + g (reflow;
        + x1_data, the real latents, for the mixed-in ``flow_data/mse``).
        Returns (losses with slash keys, aux tensors for logging)."""
        x1, frm_lens = batch["latents"], batch["frm_lens"]
        b, _, n_frm = x1.shape
        mask = sequence_mask(frm_lens, n_frm)
        if "x0" in batch:  # reflow pairs: only the flow is trained, conditions were stored
            mu_frames, text, g = batch["mu_frames"], batch.get("text_frames"), batch.get("g")
            out = self.flow.compute_loss(x1, mask, mu_frames, g, extra=text, x0=batch["x0"], generator=generator, t=t)
            # and the ordinary flow-matching loss on the real latents, from fresh prior samples at temperature 1 as in
            # the base training, whatever the pairs' temperature (at theirs, 0.2, every NFE's MCD was measurably worse:
            # egs/espeak_mini/tts1/RESULTS.md, "The reflow flow_data term's temperature")
            if "x1_data" in batch:
                data = self.flow.compute_loss(batch["x1_data"], mask, mu_frames, g, extra=text, generator=generator, t=t)
                out["flow_data/mse"] = data["flow/mse"]
            return out, {}
        g = self.speaker_vector(batch, b, x1.device)
        h, mu, tok_mask = self.encode_text(batch["tokens"], batch["tok_lens"], g)
        if self.mode == "alignfree":
            return self._alignfree_losses(x1, mask, h, batch, g, generator, t)
        durations = batch.get("durations")
        if durations is None:
            durations = self.align(mu, x1, batch["tok_lens"], frm_lens)
        mu_frames, text = self.frame_conditions(h, mu, durations, n_frm)
        out = {}
        n = (mask.sum() * self.latent_dim).clamp(min=1)
        # Grad-TTS's encoder loss: the latents' NLL per dimension under N(mu, I) whatever flow.sigma is (the prior the
        # flow starts from is N(mu, sigma^2 I); the alignment search, too, scores under unit variance)
        out["prior/nll"] = (0.5 * ((x1 - mu_frames) ** 2 + math.log(2 * math.pi)) * mask).sum() / n
        log_w_hat = self.duration_predictor(h, tok_mask, g)
        out["dur/log_mse"] = duration_loss(log_w_hat, durations, tok_mask)
        seg = self.cfg.get("flow_segment_frames")
        balance = float(self.cfg.get("phone_balance", 0.0))
        weight = phone_balanced_weights(durations, tok_mask, n_frm, balance) if balance > 0 else mask
        parts = [x1, mu_frames, mask, weight] + ([text] if text is not None else [])
        if seg and self.training and n_frm > seg:  # flow loss on a random window per item (Matcha's out_size)
            parts = random_windows(int(seg), frm_lens, generator, *parts)
        x1_c, mu_c, mask_c, weight_c = parts[:4]
        text_c = parts[4] if text is not None else None
        out.update(self.flow.compute_loss(x1_c, mask_c, mu_c, g, extra=text_c, loss_mask=weight_c, generator=generator, t=t))
        return out, {"durations": durations, "mu_frames": mu_frames.detach()}

    def _alignfree_losses(self, x1, mask, h, batch, g, generator, t=None):
        b, _, n_frm = x1.shape
        frm_lens = batch["frm_lens"]
        text = self.frame_text_features(h, batch["tok_lens"], n_frm, frm_lens)
        lo, hi = self.mask_frac
        frac = lo + (hi - lo) * torch.rand(b, generator=generator, device=x1.device)
        # rounded up, so that mask_frac's upper end is reached: 1.0 infills the whole utterance with no latents as
        # context, as synthesis does (rounded down, at least one frame of the target was always given)
        span = torch.minimum(torch.ceil(frac * frm_lens).long().clamp(min=1), frm_lens)
        start = (torch.rand(b, generator=generator, device=x1.device) * (frm_lens - span + 1)).long()
        pos = torch.arange(n_frm, device=x1.device)[None, :]
        infill = ((pos >= start[:, None]) & (pos < (start + span)[:, None])).float()[:, None, :]
        extra = torch.cat([text, x1 * (1 - infill) * mask], dim=1)
        zero_mu = torch.zeros_like(x1)
        return self.flow.compute_loss(x1, mask, zero_mu, g, extra=extra, loss_mask=infill, generator=generator, t=t), {}

    # ---- inference ---------------------------------------------------------------------------
    @torch.no_grad()
    def predict_durations(self, h, tok_mask, g, rate: float = 1.0) -> torch.Tensor:
        w = log_durations_to_frames(self.duration_predictor(h, tok_mask, g), rate)
        return round_durations(w, tok_mask[:, 0].long())

    @torch.no_grad()
    def generate(
        self,
        tokens: torch.Tensor,
        tok_lens: torch.Tensor,
        spk: torch.Tensor | None = None,
        prompt: torch.Tensor | None = None,
        prompt_mask: torch.Tensor | None = None,
        durations: torch.Tensor | None = None,
        n_frames: torch.Tensor | None = None,
        tokens_per_frame: float | None = None,
        rate: float = 1.0,
        nfe: int = 4,
        solver: str = "euler",
        temperature: float = 1.0,
        cfg_scale: float = 0.0,
        sway: float | None = None,
        generator: Generators = None,
    ) -> dict[str, torch.Tensor]:
        """tokens (B, L) -> {"latents": (B, D, F) normalised, "frm_lens": (B,), "durations": (B, L) or absent,
        "nfe": used}. ``rate`` > 1 speaks faster. Alignment-free mode needs ``n_frames`` or
        ``tokens_per_frame`` (the training-set speaking rate). ``generator``: one for the batch, or one per row
        (each utterance's start noise then independent of the batch, :func:`~stage2_flow.flow.start_noise`).
        An item without tokens (``tok_lens`` 0) or a ``rate`` <= 0 is a ValueError."""
        b = tokens.shape[0]
        empty = [i for i, n in enumerate(tok_lens.tolist()) if n <= 0]
        if empty:  # it would come out as NaN latents in a batch, a convolution error alone
            raise ValueError(f"item(s) {empty} of the batch have no tokens: nothing to synthesise")
        check_rate(rate)
        g = self.speaker(spk, prompt, prompt_mask, batch=b, device=tokens.device)
        h, mu, tok_mask = self.encode_text(tokens, tok_lens, g)
        if self.mode == "aligned":
            if durations is None:
                durations = self.predict_durations(h, tok_mask, g, rate)
            frm_lens = durations.sum(-1).clamp(min=1)
            n = int(frm_lens.max())
            mu_frames, text = self.frame_conditions(h, mu, durations, n)
            mask = sequence_mask(frm_lens, n)
            x1, used = self.flow.sample(mu_frames, mask, g, text, nfe, solver, temperature, cfg_scale, sway, generator)
            return {"latents": x1, "frm_lens": frm_lens, "durations": durations, "nfe": torch.tensor(used), "mu_frames": mu_frames}
        if n_frames is None:
            if tokens_per_frame is None:
                raise ValueError("alignfree generation needs n_frames or tokens_per_frame (speaking_rate.json)")
            n_frames = torch.ceil(tok_lens.float() / tokens_per_frame / rate).long()
        frm_lens = torch.maximum(n_frames, tok_lens)
        n = int(frm_lens.max())
        mask = sequence_mask(frm_lens, n)
        text = self.frame_text_features(h, tok_lens, n, frm_lens)
        extra = torch.cat([text, torch.zeros(b, self.latent_dim, n, device=tokens.device)], dim=1)
        zero_mu = torch.zeros(b, self.latent_dim, n, device=tokens.device)
        x1, used = self.flow.sample(zero_mu, mask, g, extra, nfe, solver, temperature, cfg_scale, sway, generator)
        return {"latents": x1, "frm_lens": frm_lens, "nfe": torch.tensor(used)}


def check_rate(rate: float) -> None:
    """A ValueError for a speaking-rate factor that is not > 0."""
    if not rate > 0:
        raise ValueError(f"rate {rate}: the speaking-rate factor must be > 0 (1: the training rate, 2: twice as fast)")


def phone_balanced_weights(durations: torch.Tensor, tok_mask: torch.Tensor, n_frames: int, power: float,
                           max_weight: float = 8.0) -> torch.Tensor:
    """``(B, 1, F)`` weights of the flow loss's frames: each frame weighs ``(d / d_mean) ** -power``, ``d`` its
    token's duration and ``d_mean`` the batch's mean token duration (capped at ``max_weight``). At power 0
    every frame counts the same, so a long vowel's ten frames count ten times a flap's one; at 1 every phone
    counts the same however short. Padding and tokens without frames weigh nothing."""
    d = durations.float()
    valid = (d > 0) & (tok_mask[:, 0] > 0)
    mean = d[valid].mean() if valid.any() else d.new_tensor(1.0)
    w = torch.where(valid, (d.clamp(min=1.0) / mean) ** -power, torch.zeros_like(d)).clamp(max=max_weight)
    return length_regulate(w[:, None], durations, n_frames)[0]


def random_windows(seg: int, lengths: torch.Tensor, generator: torch.Generator | None, *xs: torch.Tensor) -> list[torch.Tensor]:
    """Crop each (B, C, F) tensor to a random window of ``seg`` frames per item (inside its length)."""
    b = lengths.shape[0]
    room = (lengths - seg).clamp(min=0)
    start = (torch.rand(b, generator=generator, device=lengths.device) * (room + 1)).long().clamp(max=room)
    idx = start[:, None] + torch.arange(seg, device=lengths.device)[None]  # (B, seg)
    idx = idx.clamp(max=xs[0].shape[-1] - 1)
    return [x.gather(2, idx[:, None, :].expand(-1, x.shape[1], -1)) for x in xs]


# weights that older exports built in every mode: alignfree mode never used the prior mean's projection, nor
# its stretch layout the filler
UNUSED_IN_OLDER_EXPORTS = ("text_encoder.proj_mu.weight", "text_encoder.proj_mu.bias", "filler")


def drop_unused_weights(model: "FlowTTS", state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Load hook: an older export's weights of parts this model does not build are dropped, with a note."""
    own = {name for name, _ in model.named_parameters()}
    dropped = [k for k in UNUSED_IN_OLDER_EXPORTS if prefix + k in state_dict and k not in own]
    for k in dropped:
        del state_dict[prefix + k]
    if dropped:
        print(f"note: dropped {', '.join(dropped)} from the weights: unused by {model.mode} mode (an older export)", flush=True)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def load_trained(exp_dir: str | Path) -> tuple[FlowTTS, dict[str, Any]]:
    """The exported model of a stage-two exp dir (``config.yaml`` + ``model.pt``) in eval mode, and its config."""
    from shared.config import load_config

    exp = Path(exp_dir)
    if not (exp / MODEL_FILE).is_file():
        raise FileNotFoundError(f"{exp}/model.pt not found: train the model first (python -m stage2_flow.train)")
    cfg = load_config(exp / "config.yaml")
    model = FlowTTS(cfg["model"])
    model.load_state_dict(torch.load(exp / MODEL_FILE, map_location="cpu", weights_only=True))
    return model.eval(), cfg


def validation_temperature(cfg: dict[str, Any]) -> float:
    """The temperature a model was validated at (its config's ``validation.temperature``, default 1): the default of
    every verb that samples it (synthesis, reflow pairs, GTA latents, the NFE sweep). The recipes validate at the
    temperature they sample at (``validation.temperature=$temperature``: espeak_mini's 0.2)."""
    return float((cfg.get("validation") or {}).get("temperature", 1.0))


def stage1_dir(exp_dir: str | Path) -> Path:
    """The stage-one exp dir a stage-two exp dir was trained on (``stage1.json``; relative paths are relative
    to the stage-two dir, as training and a packed model write them)."""
    import json

    exp = Path(exp_dir)
    return exp / json.loads((exp / "stage1.json").read_text())["exp_dir"]


def trained_continuous(exp_dir: str | Path) -> bool:
    """Whether a stage-two exp dir was trained on a quantised codec's pre-quantisation latents (``stage1_vae.encode
    --continuous``), as its ``stage1.json`` records (one from before it was recorded: not)."""
    return bool(read_json(Path(exp_dir) / "stage1.json").get("continuous", False))


def stage1_link(exp_dir: str | Path, stage1_exp_dir: str | Path) -> str:
    """``stage1_exp_dir`` relative to ``exp_dir``, as ``stage1.json`` holds it: a recipe directory that holds
    both can be moved or copied whole."""
    import os

    return os.path.relpath(Path(stage1_exp_dir).resolve(), Path(exp_dir).resolve())


def codec_dir(exp_dir: str | Path) -> Path:
    """The codec that decodes a stage-two exp dir's latents: its ``decoder/`` (a stage-one exp dir whose decoder
    was fine-tuned on this model's ground-truth-aligned output, see :mod:`stage2_flow.gta`) when there is one,
    else the stage-one exp dir it was trained on. A ``decoder/`` fine-tuned on another model.pt's output (its
    config's ``data.source_model_sha256``, from the GTA dump) is an error, not silently used."""
    own = Path(exp_dir) / "decoder"
    if not (own / MODEL_FILE).is_file():
        return stage1_dir(exp_dir)
    from shared.config import load_config

    source = load_config(own / "config.yaml").get("data", {}).get("source_model_sha256")
    if source is not None and source != file_sha256(Path(exp_dir) / MODEL_FILE):
        raise RuntimeError(f"{own} was fine-tuned on the output of an earlier {Path(exp_dir) / 'model.pt'} (the model "
                           "was retrained since): redo the decoder fine-tuning (the recipe's stage 7, with --overwrite), "
                           f"move {own} away, or decode with another codec (--stage1-exp-dir)")
    return own
