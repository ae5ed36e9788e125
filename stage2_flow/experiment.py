"""The LightningModule: wires FlowTTS to optimiser, schedule, EMA, loss weights, logging and
validation (fixed seed and time grid, sampled latents, PNG images of latents and alignments)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as L
import torch

from shared.config import ConfigError, check_known_keys
from shared.training import adamw, clip_grad_norm, ema_update, lr_schedule, require_finite
from stage2_flow.alignment import durations_to_path
from stage2_flow.flow import check_sigma_min
from stage2_flow.model import FlowTTS, check_model_config

LOSS_WEIGHTS = {"flow/": "flow", "flow_data/": "flow_data", "prior/": "prior", "dur/": "duration"}
VAL_TIMES = (0.1, 0.3, 0.5, 0.7, 0.9)


# what this module and stage2_flow.train read from ``train:`` (budget_scale: recorded by --budget-scale); stage one's
# names for three of them, which a config written after stage one's might carry
TRAIN_KEYS = ("seed", "num_threads", "num_workers", "print_every", "lr", "betas", "weight_decay", "warmup_steps",
              "lr_total_steps", "lr_min_ratio", "lr_horizon", "ema_decay", "budget_scale")
STAGE1_NAMES = {"total_steps": "train.lr_total_steps", "min_lr_ratio": "train.lr_min_ratio",
                "grad_clip": "trainer.gradient_clip_val"}
VALIDATION_KEYS = ("num_utts", "nfe", "solver", "temperature", "num_images")
# the batching keys, then those stage2_flow.train writes from its options
DATA_KEYS = ("batch_frames", "max_batch", "max_frames", "prompt_seconds",
             "train", "latents", "dev", "dev_latents", "durations", "reflow_pairs", "init_from")
# the config's sections, with the keys of those read key by key with defaults (None: checked by what builds from it)
SECTIONS = {"model": None, "loss": None, "data": DATA_KEYS, "train": TRAIN_KEYS, "validation": VALIDATION_KEYS,
            "trainer": None}


def check_training_config(cfg: dict[str, Any]) -> int:
    """The checks of a training config that need no model: an unknown section (``validaton:``), a ``loss`` key that
    weighs no loss (``dur`` for ``duration`` would leave its loss at weight 1), a ``train``, ``data``, ``validation``
    or ``model`` key nothing reads (``lr_min_ratoi`` would leave the floor at its default), a schedule without a length and a
    sigma_min the text prior cannot take (:func:`~stage2_flow.flow.check_sigma_min`) are ConfigErrors. Returns
    :func:`schedule_steps`."""
    check_known_keys(cfg, SECTIONS, "stage two",
                     {f"train.{k}": f"{k} is stage one's; here it is {ours}" for k, ours in STAGE1_NAMES.items()})
    unknown = sorted(set(cfg.get("loss") or {}) - set(LOSS_WEIGHTS.values()))
    if unknown:
        raise ConfigError(f"loss: unknown key(s) {', '.join(unknown)}; the losses are {', '.join(LOSS_WEIGHTS.values())}")
    model = cfg.get("model") or {}
    check_model_config(model)
    if model.get("mode", "aligned") == "aligned":  # alignfree mode always has the noise prior
        flow = model.get("flow") or {}
        check_sigma_min(flow.get("prior", "text"), flow.get("sigma_min", 0.0))
    return schedule_steps(cfg)


def schedule_steps(cfg: dict[str, Any]) -> int:
    """The cosine's length in steps: ``train.lr_total_steps``, else ``trainer.max_steps``. Without either (max_steps -1
    or absent) only ``lr_horizon: budget`` with a ``trainer.max_time`` ends the decay: the steps then never do. Any
    other such config is a ConfigError (the LR would fall to its floor right after warm-up)."""
    t, trainer = cfg.get("train", {}), cfg.get("trainer", {})
    if t.get("lr_total_steps"):
        return int(t["lr_total_steps"])
    if int(trainer.get("max_steps") or -1) > 0:
        return int(trainer["max_steps"])
    if str(t.get("lr_horizon", "steps")) == "budget" and trainer.get("max_time") is not None:
        return 2**62
    raise ConfigError("no length for the LR schedule: trainer.max_steps is -1 or absent; give train.lr_total_steps, "
                      "trainer.max_steps, or train.lr_horizon=budget with a trainer.max_time")


def weighted_total(losses: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    total = 0.0
    for key, value in losses.items():
        name = next((w for prefix, w in LOSS_WEIGHTS.items() if key.startswith(prefix)), None)
        total = total + float(weights.get(name, 1.0)) * value
    return total


class Stage2Experiment(L.LightningModule):
    def __init__(self, cfg: dict[str, Any], exp_dir: str | Path, reflow: bool = False) -> None:
        super().__init__()
        self.cfg, self.exp_dir = cfg, Path(exp_dir)
        self.model = FlowTTS(cfg["model"])
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.train_cfg = cfg.get("train", {})
        self.weights = cfg.get("loss", {})
        self.lr_total_steps = check_training_config(cfg)
        self.seed = int(self.train_cfg.get("seed", 0))
        self._step_loss: tuple[torch.Tensor, dict[str, torch.Tensor], list[str]] | None = None  # for _require_finite
        if reflow:  # only the velocity estimator learns from the pairs; conditions were stored
            for name, p in self.model.named_parameters():
                p.requires_grad_(name.startswith("flow."))

    # ---- training ----------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        gen = torch.Generator(device=self.device).manual_seed(self.step_seed())
        losses, _ = self.model.losses(batch, generator=gen)
        loss = weighted_total(losses, self.weights)
        self._step_loss = (loss.detach(), {k: v.detach() for k, v in losses.items()}, list(batch["utts"]))
        bs = len(batch["utts"])
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        for k, v in losses.items():
            self.log(f"train/{k}", v, batch_size=bs)
        return loss

    def step_seed(self) -> int:
        """The seed of a training step's draws (flow times, CFG drops, windows, infill spans): a function of (seed, step,
        rank), so a resumed run draws what the uninterrupted one did and each DDP rank draws its own (rank 0, and a
        single process, as before ranks counted). Gradient accumulation (trainer.accumulate_grad_batches, which no
        config sets) would need the micro-batch too: its micro-batches share a global_step."""
        return self.seed * 1_000_003 + self.global_step + self.global_rank * 1_000_000_007

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        # EMA right after the parameter update: before any checkpoint callback sees the step (exact resume)
        super().optimizer_step(*args, **kwargs)
        self._update_ema()

    def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Clip, then :meth:`_require_finite`: Lightning calls this after every step's backward and before its optimiser
        step (also without trainer.gradient_clip_val), the one point that sees both the loss and the gradient norm."""
        if gradient_clip_algorithm not in (None, "norm"):
            raise ValueError(f"trainer.gradient_clip_algorithm: only 'norm' is supported, got '{gradient_clip_algorithm}'")
        self._require_finite(clip_grad_norm(self, optimizer, float(gradient_clip_val or 0.0)))

    def _require_finite(self, grad_norm: torch.Tensor | None) -> None:
        """:func:`shared.training.require_finite` of :meth:`training_step`'s loss, naming its batch's utterances."""
        loss, terms, utts = self._step_loss
        named = ", ".join(utts[:8]) + (f", ... ({len(utts)} in all)" if len(utts) > 8 else "")  # a batch may hold hundreds
        require_finite(self, f"the training loss of utterances {named}", loss, terms, grad_norm, lambda: (
            "; the dataset checked their inputs to be finite: the training diverged; try a lower train.lr, a "
            "trainer.gradient_clip_val, or trainer.precision=32-true"))

    def _update_ema(self) -> None:
        ema_update(self.ema, self.model, float(self.train_cfg.get("ema_decay", 0.999)), self.global_step)

    def configure_optimizers(self):
        t = self.train_cfg
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = adamw(params, float(t.get("lr", 2e-3)), t.get("betas", [0.9, 0.99]), float(t.get("weight_decay", 0.01)))
        schedule = lr_schedule(self, int(t.get("warmup_steps", 100)), self.lr_total_steps, float(t.get("lr_min_ratio", 0.05)),
                               str(t.get("lr_horizon", "steps")))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ---- validation --------------------------------------------------------------------------
    @torch.autocast("cpu", enabled=False)  # validated as deployed: float32, also when training in mixed precision
    @torch.autocast("cuda", enabled=False)
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        model = self.ema
        model.eval()
        bs = len(batch["utts"])
        gen = torch.Generator(device=self.device).manual_seed(1234 + batch_idx)
        totals: dict[str, float] = {}
        for tv in VAL_TIMES:  # fixed time grid: the flow loss is comparable across steps
            losses, aux = model.losses(batch, generator=gen, t=torch.full((bs,), tv, device=self.device))
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + float(v) / len(VAL_TIMES)
        for k, v in totals.items():
            self.log(f"val/{k}", v, batch_size=bs, sync_dist=True)
        self.log("val/loss", weighted_total({k: torch.tensor(v) for k, v in totals.items()}, self.weights), batch_size=bs, sync_dist=True)
        if batch_idx == 0 and "tokens" in batch:
            self._sample_and_plot(model, batch, aux)

    @torch.no_grad()
    def _sample_and_plot(self, model: FlowTTS, batch: dict[str, Any], aux: dict[str, torch.Tensor]) -> None:
        v = self.cfg.get("validation", {})
        gen = torch.Generator(device=self.device).manual_seed(4321)
        kw = dict(spk=batch["spk"], prompt=batch.get("prompt"), prompt_mask=batch.get("prompt_mask"), nfe=int(v.get("nfe", 8)),
                  solver=v.get("solver", "euler"), temperature=float(v.get("temperature", 1.0)), generator=gen)
        if model.mode == "aligned":
            out = model.generate(batch["tokens"], batch["tok_lens"], durations=aux["durations"], **kw)
        else:
            out = model.generate(batch["tokens"], batch["tok_lens"], n_frames=batch["frm_lens"], **kw)
        x1, mask = batch["latents"], (torch.arange(x1_len := batch["latents"].shape[-1], device=self.device)[None] < batch["frm_lens"][:, None])
        err = ((out["latents"][..., :x1_len] - x1) ** 2 * mask[:, None]).sum() / (mask.sum() * x1.shape[1])
        self.log("val/sample_mse", float(err), batch_size=len(batch["utts"]), sync_dist=True)
        if self.global_rank == 0 and int(v.get("num_images", 2)) > 0:
            self._plot(batch, out, aux, int(v.get("num_images", 2)))

    def _plot(self, batch, out, aux, n: int) -> None:
        from shared.plots import plt, save_figure  # Agg

        img_dir = self.exp_dir / "images"
        for i in range(min(n, len(batch["utts"]))):
            f = int(batch["frm_lens"][i])
            panels = [("target latent (normalised)", batch["latents"][i, :, :f]), ("sampled latent", out["latents"][i, :, :f])]
            if "mu_frames" in out:
                panels.insert(1, ("prior mean mu", out["mu_frames"][i, :, :f]))
            if "durations" in aux:
                panels.append(("MAS alignment", durations_to_path(aux["durations"][i : i + 1], f)[0, : int(batch["tok_lens"][i])]))
            fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.2 * len(panels)))
            for ax, (title, data) in zip(axes, panels):
                ax.imshow(data.float().cpu().numpy(), aspect="auto", origin="lower", interpolation="nearest")
                ax.set_title(title, fontsize=9)
            fig.suptitle(f"{batch['utts'][i]} step {self.global_step}")
            fig.tight_layout()
            save_figure(fig, img_dir / f"step{self.global_step:07d}_{batch['utts'][i]}.png", dpi=80)
