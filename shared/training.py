"""Lightning plumbing both stages share: a trainer built from the ``trainer:`` config section, atomic
checkpoints that carry RNG state (``last.ckpt`` also at a run's normal end, so a continued run starts where it
stopped), automatic resume from ``<exp>/checkpoints/last.ckpt``, and a CSV log.

Every ``lightning.Trainer`` argument can be set from YAML (``devices``, ``strategy``, ``num_nodes``,
``precision``, ``max_steps``, ``max_time``, ...), so multi-GPU or multi-node DDP needs no code change::

    trainer: {accelerator: gpu, devices: 4, num_nodes: 2, strategy: ddp, precision: bf16-mixed}

Two keys are ours: ``checkpoint_every_n_steps`` (default 500) and ``keep_checkpoints`` (default 1, plus
``last.ckpt``). One value is ours too: ``precision: auto`` resolves to ``bf16-mixed`` where the hardware
computes bfloat16 natively (a CUDA GPU with bf16, or a CPU with AVX512-BF16 or AMX) and to ``32-true``
elsewhere: on an AVX2-only CPU, oneDNN emulates bf16 matmuls some 80x slower than float32.
"""

from __future__ import annotations

import csv
import math
import os
import random
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import lightning as L
import numpy as np
import torch
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.plugins.io import TorchCheckpointIO

from shared.config import ConfigError, load_config, save_config
from shared.io import MODEL_FILE, PathLike, atomic_save_torch, atomic_write, remove_outputs

OUR_KEYS = ("checkpoint_every_n_steps", "keep_checkpoints")

# Stage one optimises manually, and Lightning then warns on every run that a step checkpoint holds the
# weights after that step's update. That is the state a resume needs (tests/test_stage1.py checks that a
# killed run resumes bit for bit), so the warning is silenced here and nowhere else.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization and every_n_train_steps")


# where a checkpoint files :class:`StepCheckpoint`'s state (which step files it has saved, so which it prunes).
# Lightning's own key holds the save interval, so a run resumed with another ``checkpoint_every_n_steps`` (a setting
# both stages let a resumed run change) found no state under it, warned, and never pruned the old step files
STEP_CHECKPOINT_KEY = "ModelCheckpoint{'monitor': 'step', 'mode': 'max'}"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write checkpoints to a temporary file and rename, so a kill never leaves a truncated one. A checkpoint whose
    step-checkpoint state is under Lightning's own key (with the interval it was saved at: every checkpoint before
    :data:`STEP_CHECKPOINT_KEY`) is read with that state under :data:`STEP_CHECKPOINT_KEY`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: PathLike, storage_options: Any = None) -> None:
        atomic_save_torch(checkpoint, path)

    def load_checkpoint(self, path: PathLike, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        # Our own checkpoints carry RNG states (NumPy arrays, tuples), which torch's weights-only
        # unpickler rejects; they are written by this toolkit, so load them in full.
        checkpoint = torch.load(path, map_location=map_location or "cpu", weights_only=False)
        states = checkpoint.get("callbacks")
        if isinstance(states, dict) and STEP_CHECKPOINT_KEY not in states:
            keyed = [k for k in states if isinstance(k, str) and k.startswith(f"{ModelCheckpoint.__qualname__}{{")]
            if len(keyed) == 1:
                states[STEP_CHECKPOINT_KEY] = states.pop(keyed[0])
        return checkpoint


class StepCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (``last.ckpt`` and the newest step files, every ``checkpoint_every_n_steps``
    steps) that also makes a run's last step a checkpoint step: ``last.ckpt`` is saved as the step ends after which the
    run stops by itself (``trainer.max_steps`` reached, the ``trainer.max_time`` Timer's stop, the last batch of
    ``trainer.max_epochs``), unless a periodic save has just saved it. Without it ``last.ckpt`` was up to
    ``checkpoint_every_n_steps - 1`` steps behind the weights the run exports as ``model.pt``, and a run continued with a
    larger budget trained those steps again.

    Saved at that step's end, as a periodic save there would be, not in ``on_train_end``: by then Lightning counts a
    stopped epoch as completed, and a run resumed from that state would skip the rest of the epoch's batches. Every rank
    decides alike (the step count; the Timer's stop, which it broadcasts from rank 0) and saves, as the collective
    ``save_checkpoint`` (and :class:`RNGState`'s gather) needs. An interrupted run (an exception, a signal, a kill) never
    gets there and keeps its last periodic checkpoint.

    :func:`build_trainer` makes it save at the steps themselves (``save_on_train_epoch_end=True``): otherwise Lightning
    puts a periodic save that falls on an epoch's last batch off until the next validation, which with
    ``val_check_interval`` in steps may be hundreds of steps later (and this final save would wait with it). Its state
    is filed under :data:`STEP_CHECKPOINT_KEY`, whatever the save interval, and :class:`AtomicCheckpointIO` reads a
    checkpoint written before under it too, so a resumed run keeps its callback state (which files it has saved, and
    so which it prunes)."""

    @property
    def state_key(self) -> str:
        return STEP_CHECKPOINT_KEY

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        if _stops_after_this_step(trainer) and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


def _stops_after_this_step(trainer: L.Trainer) -> bool:
    """Whether the fit loop ends after the training step that has just ended (Lightning's ``FitLoop.done``, looked at
    from ``on_train_batch_end``: the Timer, which runs before checkpoint callbacks, has set ``should_stop`` by then)."""
    loop = trainer.fit_loop
    if 0 <= loop.max_steps <= trainer.global_step:
        return True
    if trainer.should_stop and loop._can_stop_early:
        return True
    last_epoch = loop.max_epochs is not None and 0 <= loop.max_epochs <= trainer.current_epoch + 1
    return last_epoch and bool(loop.epoch_loop.batch_progress.is_last_batch)


class RNGState(Callback):
    """Save and restore Python, NumPy and torch (CPU and CUDA) RNG states with each checkpoint: under DDP every rank's
    (``rng_ranks``, gathered as the checkpoint is made on every rank, written by rank 0), so that each rank resumes its
    own streams (dropout draws from them), not rank 0's."""

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["rng"] = {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }
        if trainer.world_size > 1:
            ranks: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(ranks, checkpoint["rng"])
            checkpoint["rng_ranks"] = ranks

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        ranks = checkpoint.get("rng_ranks")
        # a checkpoint of as many ranks: this rank's own states; else (one process, or another world size) rank 0's
        state = ranks[trainer.global_rank] if ranks and len(ranks) == trainer.world_size else checkpoint.get("rng")
        if not state:
            return
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if state["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class ProgressPrinter(Callback):
    """One stdout line every ``every`` steps: step, steps/s, then the logged ``train/...`` values (loss first)."""

    def __init__(self, every: int = 50) -> None:
        self.every, self.t0, self.s0 = every, None, 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step
        if self.t0 is None:
            self.t0, self.s0 = time.time(), step
        if step % self.every == 0 and trainer.is_global_zero:
            rate = (step - self.s0) / max(1e-9, time.time() - self.t0)
            m = {k.split("/", 1)[1]: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
            keys = [k for k in ("loss",) if k in m] + sorted(k for k in m if k not in ("loss", "lr"))
            print(f"step {step} {rate:.2f} steps/s " + " ".join(f"{k}={m[k]:.4f}" for k in keys), flush=True)


def resume_path(exp_dir: PathLike) -> str | None:
    """``<exp>/checkpoints/last.ckpt`` if a previous run left one."""
    last = Path(exp_dir) / "checkpoints" / "last.ckpt"
    return str(last) if last.is_file() else None


def start_over(exp_dir: PathLike, outputs: tuple[str, ...] = ()) -> None:
    """``--overwrite``: remove a run's checkpoints, its CSV log and what it exported (``MODEL_FILE``,
    ``train_summary.json`` and ``outputs``), so training starts again from step 0 instead of resuming the finished run, and an
    interrupted retraining is not taken for the finished old one by the next rerun."""
    # what marks the run finished goes first: an interrupted removal must not leave it beside no checkpoints
    remove_outputs(exp_dir, (MODEL_FILE, "train_summary.json", "checkpoints", "logs/metrics.csv", *outputs))


def native_bf16(accelerator: str = "auto") -> bool:
    """Whether the device Lightning will train on computes bfloat16 natively (not emulated)."""
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    if gpu:  # torch counts emulated bf16 (pre-Ampere GPUs: V100, T4) as supported unless told not to
        if not torch.cuda.is_available():
            return False
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # a torch before the argument
            return torch.cuda.get_device_capability()[0] >= 8
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(precision: Any, accelerator: str = "auto") -> str:
    """``auto`` -> ``bf16-mixed`` on hardware with native bf16, else ``32-true``; other values unchanged."""
    if str(precision) != "auto":
        return str(precision)
    return "bf16-mixed" if native_bf16(str(accelerator)) else "32-true"


class KillAtStep(Callback):
    """Test hook (environment ``FLOWTTS_KILL_AT_STEP=N``, any training built by :func:`build_trainer`): exit at once,
    status 3, as step N begins, i.e. after step N's checkpoint, as a ``kill -9`` would: what resume must survive."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            os._exit(3)


class _ResumingWriter(ExperimentWriter):
    """Lightning's CSV writer deletes ``metrics.csv`` as it starts, so a resumed run's log would begin at its
    checkpoint (and a resumed run killed before its first flush would leave none). This one leaves the file alone
    until it has rows to write; the first time, it rewrites it atomically with the earlier rows logged before the
    first step the new run logs (a run killed after its checkpoint logs those steps again), then appends.
    A retraining from step 0 (``--overwrite``) starts without the file: :func:`start_over` removes it."""

    def __init__(self, log_dir: str) -> None:
        path = Path(log_dir) / self.NAME_METRICS_FILE
        self._earlier: list[dict[str, str]] | None = None
        if path.is_file():
            with open(path, newline="") as f:
                self._earlier = [r for r in csv.DictReader(f) if (r.get("step") or "").isdigit()]
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:  # Lightning's deletes metrics.csv here
        pass

    def save(self) -> None:
        if self._earlier is None or not self.metrics:
            super().save()
            return
        first = min(int(m["step"]) for m in self.metrics)
        self.metrics = [r for r in self._earlier if int(r["step"]) < first] + self.metrics
        self._earlier = None
        self._record_new_keys()
        with atomic_write(Path(self.metrics_file_path)) as f:
            writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(self.metrics)
        self.metrics = []


class ResumingCSVLogger(CSVLogger):
    """``<exp>/logs/metrics.csv`` over all of a run's resumptions (:class:`_ResumingWriter`)."""

    @property
    @rank_zero_experiment  # other ranks get a dummy, as with Lightning's own
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumingWriter(log_dir=self.log_dir)
        return self._experiment


# the trainer keys that count steps, epochs or checkpoints (Lightning takes 2000.5 for max_steps and runs 2001 steps)
WHOLE_NUMBER_KEYS = ("max_steps", "min_steps", "max_epochs", "min_epochs", "checkpoint_every_n_steps", "keep_checkpoints",
                     "log_every_n_steps", "accumulate_grad_batches", "num_sanity_val_steps", "check_val_every_n_epoch")


def _whole_numbers(cfg: dict) -> dict:
    """``cfg`` with each of WHOLE_NUMBER_KEYS given as a number made an int (``max_steps: 2e3`` is 2000); a fraction
    (2000.5), or a value of another kind, is a ConfigError naming the key."""
    out = dict(cfg)
    for key in WHOLE_NUMBER_KEYS:
        value = out.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise ConfigError(f"trainer.{key}: {value!r} is not a whole number")
        out[key] = int(value)
    return out


def build_trainer(trainer_cfg: dict, exp_dir: PathLike, callbacks: list[Callback] | None = None, **overrides: Any) -> L.Trainer:
    """A Lightning trainer for ``exp_dir`` from the ``trainer:`` config section."""
    cfg = _whole_numbers(trainer_cfg)
    every = cfg.pop("checkpoint_every_n_steps", 500)
    keep = cfg.pop("keep_checkpoints", 1)
    exp_dir = Path(exp_dir)
    if os.environ.get("NODE_RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0":
        # a run killed between a checkpoint's write and its rename left the whole temporary file, for good
        for tmp in (exp_dir / "checkpoints").glob(".*.ckpt.*.tmp"):
            tmp.unlink(missing_ok=True)
    ckpt = StepCheckpoint(dirpath=exp_dir / "checkpoints", filename="step{step:08d}", auto_insert_metric_name=False,
                          every_n_train_steps=every, save_top_k=keep, monitor="step", mode="max", save_last=True,
                          save_on_train_epoch_end=True, enable_version_counter=False)
    cfg.setdefault("accelerator", "auto")
    cfg.setdefault("devices", "auto")
    cfg.setdefault("log_every_n_steps", 25)
    cfg.setdefault("enable_progress_bar", False)
    cfg.setdefault("enable_model_summary", False)
    cfg.update(overrides)
    if str(cfg.get("precision")) == "auto":
        cfg["precision"] = resolve_precision("auto", cfg["accelerator"])
        print(f"trainer.precision auto -> {cfg['precision']}", flush=True)
    return L.Trainer(
        default_root_dir=str(exp_dir),
        callbacks=[ckpt, RNGState(), *(callbacks or []),
                   *([KillAtStep(int(os.environ["FLOWTTS_KILL_AT_STEP"]))] if os.environ.get("FLOWTTS_KILL_AT_STEP") else [])],
        logger=ResumingCSVLogger(save_dir=str(exp_dir), name="logs", version=""),
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # our samplers shard by rank themselves
        **cfg,
    )


def adamw(params, lr: float, betas=(0.9, 0.99), weight_decay: float = 0.0) -> torch.optim.AdamW:
    """AdamW with the fused kernel (CPU and CUDA): on 2 CPU threads 3x faster than the per-tensor loop."""
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, fused=True)


def clip_grad_norm(module: L.LightningModule, optimizer: Any, max_norm: float) -> torch.Tensor | None:
    """Clip the gradients of ``optimizer``'s parameters to ``max_norm`` (L2, over all of them); returns the norm.

    Lightning's own ``clip_gradients`` refuses a fused optimizer under mixed precision, even bf16, which has no
    loss scaler to undo; this unscales (fp16 only) and clips itself. Both stages clip through it: stage one from
    its manual step, stage two from ``configure_gradient_clipping``.
    """
    if not max_norm or max_norm <= 0:
        return None
    optimizer = getattr(optimizer, "optimizer", optimizer)  # a LightningOptimizer wraps the torch one
    scaler = getattr(module.trainer.precision_plugin, "scaler", None)
    if scaler is not None:
        scaler.unscale_(optimizer)  # a fused step then sees the stage UNSCALED and does not unscale again
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    return torch.nn.utils.clip_grad_norm_(params, max_norm)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """``ema <- decay * ema + (1 - decay) * model``, decay ramped up as ``(1 + step) / (10 + step)`` early on;
    buffers are copied."""
    d = min(decay, (1 + step) / (10 + step))
    torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1 - d)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


BUDGET_STEP_KEYS = (("trainer", "max_steps"), ("train", "total_steps"), ("train", "lr_total_steps"))


def max_time_seconds(value: Any) -> float:
    """Lightning's ``max_time`` as YAML gives it (``"DD:HH:MM:SS"`` or ``{days, hours, minutes, seconds}``) in seconds."""
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) != 4:
            raise ValueError(f"trainer.max_time {value!r}: expected DD:HH:MM:SS")
        days, hours, minutes, seconds = (float(x) for x in parts)
    elif isinstance(value, dict):
        days, hours, minutes, seconds = (float(value.get(k, 0)) for k in ("days", "hours", "minutes", "seconds"))
    else:
        raise ValueError(f"trainer.max_time {value!r}: expected 'DD:HH:MM:SS' or a dict of days/hours/minutes/seconds")
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def non_finite_tensors(state: dict[str, torch.Tensor]) -> list[str]:
    """The names of ``state``'s floating-point tensors that hold a NaN or an infinity: weights no model is exported
    with (a NaN model.pt would pass for a trained model with every later stage)."""
    return [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]


def scale_budget(cfg: dict, factor: float) -> dict:
    """Multiply a training config's budget by ``factor``, in place: ``trainer.max_time`` (wall clock), the step
    caps and the schedule's length (``trainer.max_steps``, ``train.total_steps``, ``train.lr_total_steps``
    where set), so caps and cosine keep their relation to the time budget. ``train.budget_scale`` records it.
    The training verbs' ``--budget-scale``; the recipes pass theirs (``run.sh --budget-scale 2``)."""
    if not factor > 0:
        raise ValueError(f"budget scale must be positive, got {factor}")
    if factor == 1:
        return cfg
    trainer = cfg.setdefault("trainer", {})
    if trainer.get("max_time") is not None:
        seconds = round(max_time_seconds(trainer["max_time"]) * factor)
        if seconds < 1:  # "00:00:00:00": a training that stops before its first step, and exports an untrained model
            raise ValueError(f"budget scale {factor} leaves trainer.max_time {trainer['max_time']} under a second")
        minutes, s = divmod(seconds, 60)
        hours, m = divmod(minutes, 60)
        d, h = divmod(hours, 24)
        trainer["max_time"] = f"{d:02d}:{h:02d}:{m:02d}:{s:02d}"
    for section, key in BUDGET_STEP_KEYS:
        value = cfg.get(section, {}).get(key)
        if value is not None and int(value) > 0:
            cfg[section][key] = max(1, round(int(value) * factor))
    cfg.setdefault("train", {})["budget_scale"] = factor
    return cfg


def add_budget_arg(parser: Any) -> None:
    """``--budget-scale F`` (see :func:`scale_budget`)."""
    parser.add_argument("--budget-scale", type=float, default=1.0, metavar="F",
                        help="multiply the training budget by F: trainer.max_time, trainer.max_steps and the LR "
                             "schedule's length (e.g. 2 for a run given twice the time; default 1)")


def budget_fraction(trainer: L.Trainer | None) -> float:
    """Fraction of ``trainer.max_time`` used so far (Lightning's Timer, restored on resume); 0 without one.

    Under DDP it is rank 0's clock, broadcast: each rank's own timer reads a little differently, and an LR that
    differs between ranks makes their weights drift apart (:func:`check_ranks_agree`). Every rank calls this at
    the same points (its LR scheduler's steps), as a collective needs."""
    fraction = 0.0
    for cb in getattr(trainer, "callbacks", None) or []:
        if isinstance(cb, Timer) and cb._duration:
            fraction = min(1.0, cb.time_elapsed() / cb._duration)
    if trainer is not None and trainer.world_size > 1:
        fraction = trainer.strategy.broadcast(fraction, src=0)
    return fraction


def check_ranks_agree(trainer: L.Trainer, module: torch.nn.Module) -> None:
    """Under DDP, refuse a run whose ranks ended with different weights.

    DDP keeps the replicas equal only if every rank steps with the same averaged gradients and the same LR; a
    backward that bypasses its hooks, or an LR from a per-rank clock, lets them drift, and rank 0 would then
    export one replica as if it were the run's model. Call on every rank after ``fit``; a no-op on one process
    and for an interrupted run (whose ranks may have stopped at different steps)."""
    if trainer.world_size <= 1 or trainer.interrupted:
        return
    params = [p.detach().double() for p in module.parameters()]
    sums = torch.stack([torch.stack((p.sum(), p.square().sum())) for p in params])  # (tensors, 2) per rank
    # on the strategy's device: after fit Lightning has moved the module to the CPU, which NCCL cannot gather from
    gathered = trainer.strategy.all_gather(sums.to(trainer.strategy.root_device))  # (ranks, tensors, 2)
    differ = (gathered != gathered[:1]).any(dim=-1).any(dim=0)
    if differ.any():
        raise RuntimeError(f"after training, {int(differ.sum())} of {len(params)} weight tensors differ between the "
                           f"{trainer.world_size} DDP ranks: their gradients or learning rates were not the same, so "
                           "no rank holds the run's model (nothing exported)")


def require_finite(module: L.LightningModule, what: str, loss: torch.Tensor, terms: dict[str, torch.Tensor],
                   grad_norm: torch.Tensor | None, explain: Callable[[], str] = lambda: "") -> None:
    """Stop the run (FloatingPointError) before a non-finite loss or gradient reaches an optimiser: from that step on
    the weights, the EMA, every later checkpoint and the exported model would be NaN; the last checkpoint is left as it
    was. Call it after the backward and the clipping, before the optimiser step. ``what`` names the loss (and its
    batch), ``terms`` its parts (those not finite are named), ``grad_norm`` the clipped norm (None without clipping,
    and not checked under fp16, whose loss scaler skips an overflowing step itself), ``explain()`` what made a loss
    non-finite where the caller can tell (its inputs), called only then. Decided by all DDP ranks together in one
    reduction: a rank stopping alone would leave the others waiting in an all-reduce."""
    loss_ok = bool(torch.isfinite(loss))
    scaler = getattr(module.trainer.precision_plugin, "scaler", None)
    grads_ok = grad_norm is None or scaler is not None or bool(torch.isfinite(grad_norm))
    if module.trainer.strategy.reduce_boolean_decision(loss_ok and grads_ok, all=True):
        return
    step = module.global_step
    if loss_ok and grads_ok:
        msg = f"step {step}: {what} or its gradient is not finite on another DDP rank (its error says why)"
    elif loss_ok:
        msg = (f"step {step}: {what} is finite but its gradient norm is {float(grad_norm)}: an overflow in the backward "
               "pass; try trainer.precision=32-true or a lower train.lr")
    else:
        off = ", ".join(k for k, v in terms.items() if not torch.isfinite(v).all())
        msg = f"step {step}: {what} is {float(loss.detach())} ({off} not finite){explain()}"
    exp_dir = getattr(module, "exp_dir", None)
    ckpt = f"{exp_dir}/checkpoints" if exp_dir is not None else "the checkpoint dir"
    raise FloatingPointError(f"{msg}. Stopped before the weights took it in: a rerun resumes from the last checkpoint "
                             f"in {ckpt} (if any) once the cause is dealt with")


def end_process_group(trainer: L.Trainer) -> None:
    """Destroy the DDP process group once a run's collectives are done (after :func:`check_ranks_agree`).

    Lightning leaves it to the interpreter's exit, where gloo's worker threads can still hold tensors whose
    release needs the dying interpreter: the process then aborts ("terminate called without an active
    exception", exit -6) after it exported its model. Called on every rank after ``fit``; left alone after an
    interrupted one: a rank that stopped may leave the others inside a collective, which destroying the group would
    hang."""
    if trainer.interrupted:
        return
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float, budget: float = 0.0) -> float:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine decay to ``min_ratio``.

    Progress is the larger of ``(step - warmup) / (total - warmup)`` and ``budget`` (a fraction of a time
    budget, see :func:`budget_fraction`), so a wall-clock-capped run ends its schedule whichever limit
    binds first: on a slow machine the decay still completes instead of being cut off at high LR."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, max((step - warmup) / max(1, total - warmup), budget))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def lr_schedule(module: L.LightningModule, warmup: int, total: int, min_ratio: float, horizon: str = "steps"):
    """The ``LambdaLR`` function both stages use. ``horizon: steps`` decays over ``total`` steps (exactly
    reproducible on resume); ``horizon: budget`` also ends the decay at ``trainer.max_time`` (wall clock:
    the recipe's fixed-budget runs; a resumed run continues from the elapsed time its checkpoint saved)."""
    if horizon not in ("steps", "budget"):
        raise ValueError(f"lr_horizon must be 'steps' or 'budget', got {horizon!r}")

    def fn(step: int) -> float:
        # ``_trainer``: None until the module is attached (``module.trainer`` would raise before that)
        budget = budget_fraction(module._trainer) if horizon == "budget" else 0.0
        return warmup_cosine(step, warmup, total, min_ratio, budget)
    return fn


def seed_everything(seed: int) -> None:
    L.seed_everything(seed, workers=True, verbose=False)


def _flatten(cfg: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a.b.c": value}`` of a nested config (an empty section is a value of its own)."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def refuse_changed_config(exp_dir: PathLike, cfg: dict[str, Any], resumable: tuple[str, ...]) -> None:
    """Before a run resumes ``exp_dir``'s checkpoint, or calls its model.pt finished (and before its config.yaml is
    rewritten): refuse (SystemExit) a config that differs from the saved one in a key not in ``resumable`` (dotted keys
    or sections: each stage's budget, placement, logging and validation), naming the keys, rather than go on training
    the checkpoint on other data or losses (or fail on another architecture's weights), or keep a model as this
    config's, under a config.yaml that no longer says what it was trained with."""
    exp_dir = Path(exp_dir)
    path = exp_dir / "config.yaml"
    if not path.is_file():
        return
    with tempfile.TemporaryDirectory() as tmp:  # this config as config.yaml would hold it (YAML's types)
        save_config(cfg, Path(tmp) / "config.yaml")
        new = _flatten(load_config(Path(tmp) / "config.yaml"))
    old = _flatten(load_config(path))
    missing = object()
    changed = sorted(k for k in set(old) | set(new) if old.get(k, missing) != new.get(k, missing)
                     and not any(k == r or k.startswith(r + ".") for r in resumable))
    if not changed:
        return

    def show(value: Any) -> str:
        text = "(absent)" if value is missing else repr(value)
        return text if len(text) <= 60 else text[:57] + "..."

    diff = "; ".join(f"{k}: {show(old.get(k, missing))} -> {show(new.get(k, missing))}" for k in changed)
    held = f"a trained {MODEL_FILE}" if (exp_dir / MODEL_FILE).is_file() else "a checkpoint to resume (checkpoints/last.ckpt)"
    raise SystemExit(f"{exp_dir} holds {held} trained with another config than this run's, in {len(changed)} key(s): "
                     f"{diff}. Give --overwrite to train from step 0 with this config, or the data and config in {path} "
                     "to resume or keep it (only the budget, placement, logging and validation may change)")
