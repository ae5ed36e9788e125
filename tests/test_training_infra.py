"""The shared Lightning plumbing: an interrupted run resumes to exactly the same weights; the LR schedule,
the EMA and the precision choice."""

import copy
from unittest import mock

import lightning as L
import pytest
import torch
from torch.utils.data import Dataset

from shared.batching import RandomBatchSampler, make_loader
from shared.training import (adamw, build_trainer, clip_grad_norm, ema_update, lr_schedule, max_time_seconds, resolve_precision,
                             resume_path, scale_budget, warmup_cosine)


class _Noise(Dataset):
    def __len__(self):
        return 37

    def __getitem__(self, key):
        index, seed = key
        return torch.randn(8, generator=torch.Generator().manual_seed(seed)) + index


class _Model(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.automatic_optimization = False
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))

    def training_step(self, batch, _):
        opt = self.optimizers()
        loss = self.net(batch + torch.randn_like(batch)).pow(2).mean()  # uses the global RNG too
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        self.lr_schedulers().step()

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), 1e-2)
        return [opt], [torch.optim.lr_scheduler.StepLR(opt, 3, 0.5)]


def _fit(exp_dir, max_steps, every=None, **trainer_cfg):
    L.seed_everything(0)
    model = _Model()
    loader = make_loader(_Noise(), RandomBatchSampler(37, 4, seed=1))  # 9 batches an epoch
    every = every or (3 if max_steps == 18 else 5)
    trainer = build_trainer({"max_steps": max_steps, "checkpoint_every_n_steps": every, "accelerator": "cpu",
                             "devices": 1, **trainer_cfg}, exp_dir)
    trainer.fit(model, loader, ckpt_path=resume_path(exp_dir))
    return model


def test_step_counts_must_be_whole_numbers_and_a_killed_checkpoint_write_leaves_nothing(tmp_path):
    from shared.config import ConfigError

    # 2e3 is read as a float: it is 2000 steps; 2000.5 was handed to Lightning, which ran 2001
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".last.ckpt.9v79iqob.tmp").write_bytes(b"a killed run's half-renamed checkpoint")
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"kept")
    trainer = build_trainer({"max_steps": 2e3, "checkpoint_every_n_steps": 5.0, "accelerator": "cpu", "devices": 1}, tmp_path)
    assert trainer.max_steps == 2000 and isinstance(trainer.max_steps, int)
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.ckpt"]  # the temporary file went
    for key, value in (("max_steps", 2000.5), ("checkpoint_every_n_steps", "500"), ("keep_checkpoints", True)):
        with pytest.raises(ConfigError, match=f"trainer.{key}: {value!r} is not a whole number"):
            build_trainer({"max_steps": 10, "accelerator": "cpu", "devices": 1, key: value}, tmp_path)


def test_resume_is_exact(tmp_path):
    straight = _fit(tmp_path / "a", 23)
    _fit(tmp_path / "b", 15)  # "killed" after step 15 (checkpoint at 15)
    assert (tmp_path / "b" / "checkpoints" / "last.ckpt").is_file()
    resumed = _fit(tmp_path / "b", 23)
    for p, q in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_resume_at_an_epoch_boundary_is_exact(tmp_path):
    straight = _fit(tmp_path / "a", 23)
    _fit(tmp_path / "b", 18)  # 9 batches an epoch: killed right at the end of epoch 1
    resumed = _fit(tmp_path / "b", 23)
    for p, q in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def _last_step(exp_dir) -> int:
    return int(torch.load(exp_dir / "checkpoints" / "last.ckpt", weights_only=False)["global_step"])


@pytest.mark.parametrize("stop", [17, 18])  # mid-epoch, and at the end of epoch 1 (9 batches an epoch)
def test_a_run_that_ends_saves_its_final_state_as_last_ckpt(tmp_path, stop):
    """last.ckpt once held only the last periodic save (step 15 of a 17-step run checkpointing every 5), behind the
    weights the run ended with (its model.pt): a run continued with a larger budget trained those steps again. The
    continuation now starts where the run ended, and goes on exactly as a run that was never stopped."""
    straight = _fit(tmp_path / "a", 23, every=5)
    _fit(tmp_path / "b", stop, every=5)
    assert _last_step(tmp_path / "b") == stop
    resumed = _fit(tmp_path / "b", 23, every=5)
    for p, q in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_a_run_stopped_by_its_time_budget_saves_its_final_state(tmp_path):
    """trainer.max_time, as every recipe training ends: the checkpoint is of the step the Timer stopped at."""
    import time

    class Slow(_Noise):
        def __getitem__(self, key):
            time.sleep(0.02)
            return super().__getitem__(key)

    model = _Model()
    trainer = build_trainer({"max_steps": -1, "max_time": "00:00:00:01", "checkpoint_every_n_steps": 7,
                             "accelerator": "cpu", "devices": 1}, tmp_path)
    trainer.fit(model, make_loader(Slow(), RandomBatchSampler(37, 4, seed=1)))
    assert trainer.global_step > 0 and _last_step(tmp_path) == trainer.global_step


class _Validated(_Model):
    """Automatic optimisation (as stage two's; Lightning's manual-optimisation path saves otherwise), validation every
    few steps (``val_check_interval`` in steps, as the recipes); raises in step ``crash_at``."""

    def __init__(self, crash_at=None):
        super().__init__()
        self.automatic_optimization, self.crash_at = True, crash_at

    def training_step(self, batch, _):
        if self.global_step == self.crash_at:
            raise RuntimeError("killed")
        return self.net(batch + torch.randn_like(batch)).pow(2).mean()

    def validation_step(self, batch, _):
        self.log("val/loss", self.net(batch).pow(2).mean())


def _fit_validated(exp_dir, max_steps, crash_at=None):
    L.seed_everything(0)
    loader = make_loader(_Noise(), RandomBatchSampler(37, 4, seed=1))  # 9 batches an epoch
    trainer = build_trainer({"max_steps": max_steps, "checkpoint_every_n_steps": 9, "val_check_interval": 7,
                             "check_val_every_n_epoch": None, "num_sanity_val_steps": 0, "accelerator": "cpu",
                             "devices": 1}, exp_dir)
    trainer.fit(_Validated(crash_at), loader, loader, ckpt_path=resume_path(exp_dir))


def test_a_periodic_save_on_an_epochs_last_batch_is_made_at_its_step(tmp_path):
    """Lightning puts a periodic save that falls on an epoch's last batch off until the next validation: with
    validation every 7 steps, step 9's waited for step 14, and a run killed at step 12 had no checkpoint at all (and a
    run ending at step 11 no final one)."""
    with pytest.raises(RuntimeError, match="killed"):
        _fit_validated(tmp_path / "a", 30, crash_at=12)
    assert _last_step(tmp_path / "a") == 9
    _fit_validated(tmp_path / "b", 11)
    assert _last_step(tmp_path / "b") == 11


@pytest.mark.parametrize("case", ["written by ModelCheckpoint", "another interval"])
def test_a_resumed_run_keeps_its_checkpoint_callbacks_state(tmp_path, recwarn, case):
    """Resumed, last.ckpt is still the file saved to and the older step files are pruned (``keep_checkpoints: 1``),
    not left beside it or a ``last-v1.ckpt``, with no warning of a callback's state left unread: for checkpoints
    written by Lightning's own ModelCheckpoint (before StepCheckpoint), and for a run resumed with another
    ``checkpoint_every_n_steps`` (which both stages allow; the state's key held the interval, so the old step file
    stayed for good)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    def old_callback(**kwargs):  # what build_trainer made before
        return ModelCheckpoint(**{k: v for k, v in kwargs.items()
                                  if k not in ("save_on_train_epoch_end", "enable_version_counter")})

    if case == "written by ModelCheckpoint":
        with mock.patch("shared.training.StepCheckpoint", old_callback):
            _fit(tmp_path, 4, every=3)
        _fit(tmp_path, 8, every=3)
    else:
        _fit(tmp_path, 10, every=5)
        _fit(tmp_path, 20, every=4)
    last = 8 if case == "written by ModelCheckpoint" else 20
    assert _last_step(tmp_path) == last
    kept = "step00000006.ckpt" if case == "written by ModelCheckpoint" else "step00000020.ckpt"
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last.ckpt", kept]
    assert not [w for w in recwarn if "callbacks" in str(w.message)]


def test_start_over_removes_the_finished_models_marks_first(tmp_path, monkeypatch):
    """``--overwrite`` removed the checkpoints before model.pt: interrupted in between, the old model.pt and
    train_summary.json stood without checkpoints and the next run took the old model for finished."""
    import shared.training as training

    removed = []
    monkeypatch.setattr(training, "remove_outputs", lambda exp, names: removed.extend(names))
    training.start_over(tmp_path)
    assert removed.index("model.pt") < removed.index("checkpoints")
    assert removed.index("train_summary.json") < removed.index("checkpoints")


def test_scale_budget_scales_time_caps_and_schedule_together(tmp_path):
    cfg = {"trainer": {"max_time": "00:00:05:30", "max_steps": 1950, "precision": "auto"},
           "train": {"total_steps": 7000, "lr_total_steps": None, "lr": 2e-3}}
    out = scale_budget(copy.deepcopy(cfg), 2.5)
    assert out["trainer"] == {"max_time": "00:00:13:45", "max_steps": 4875, "precision": "auto"}
    assert out["train"] == {"total_steps": 17500, "lr_total_steps": None, "lr": 2e-3, "budget_scale": 2.5}
    # a day and more, and the dict form Lightning also takes
    assert scale_budget({"trainer": {"max_time": "00:20:00:00"}}, 1.5)["trainer"]["max_time"] == "01:06:00:00"
    assert max_time_seconds({"minutes": 3, "seconds": 30}) == 210
    assert scale_budget({"trainer": {"max_time": {"minutes": 3}}}, 2)["trainer"]["max_time"] == "00:00:06:00"
    assert scale_budget(copy.deepcopy(cfg), 1) == cfg  # 1 leaves the config (and what it saves) as it was
    with pytest.raises(ValueError, match="leaves trainer.max_time 00:00:00:01 under a second"):  # it was 00:00:00:00
        scale_budget({"trainer": {"max_time": "00:00:00:01"}}, 0.1)
    trainer = L.Trainer(max_time=out["trainer"]["max_time"], logger=False, enable_checkpointing=False,
                        default_root_dir=str(tmp_path))  # the format Lightning parses
    timer = next(cb for cb in trainer.callbacks if type(cb).__name__ == "Timer")
    assert timer._duration == 825
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="budget scale"):
            scale_budget(copy.deepcopy(cfg), bad)
    with pytest.raises(ValueError, match="DD:HH:MM:SS"):
        scale_budget({"trainer": {"max_time": "05:30"}}, 2)


def test_warmup_cosine_steps_and_budget():
    assert warmup_cosine(0, 10, 110, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 110, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(60, 10, 110, 0.1) == pytest.approx(0.55)  # half way: (1 + 0.1) / 2
    assert warmup_cosine(110, 10, 110, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(500, 10, 110, 0.1) == pytest.approx(0.1)
    # a time budget further along than the step count takes over, and ends the decay when it is used up
    assert warmup_cosine(20, 10, 110, 0.1, budget=0.5) == pytest.approx(0.55)
    assert warmup_cosine(20, 10, 110, 0.1, budget=1.0) == pytest.approx(0.1)
    assert warmup_cosine(100, 10, 110, 0.1, budget=0.2) == warmup_cosine(100, 10, 110, 0.1)
    assert warmup_cosine(5, 10, 110, 0.1, budget=0.9) == pytest.approx(0.6)  # warm-up is by steps


def test_budget_schedule_reads_the_trainers_timer(tmp_path):
    module = _Model()
    trainer = build_trainer({"max_steps": 10, "max_time": "00:00:10:00"}, tmp_path)
    module._trainer = trainer
    timer = next(cb for cb in trainer.callbacks if type(cb).__name__ == "Timer")
    fn, by_steps = lr_schedule(module, 0, 1000, 0.0, "budget"), lr_schedule(module, 0, 1000, 0.0, "steps")
    with mock.patch.object(timer, "time_elapsed", return_value=300.0):  # half of the 10 minutes
        assert fn(10) == pytest.approx(0.5)
        assert by_steps(10) == pytest.approx(warmup_cosine(10, 0, 1000, 0.0))
    with pytest.raises(ValueError, match="lr_horizon"):
        lr_schedule(module, 0, 1000, 0.0, "epochs")


def test_ema_update_matches_the_formula():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    ema = copy.deepcopy(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        model[1].running_mean.fill_(3.0)
    before = [p.clone() for p in ema.parameters()]
    ema_update(ema, model, 0.99, step=1000)
    for b, e, m in zip(before, ema.parameters(), model.parameters()):
        torch.testing.assert_close(e, 0.99 * b + 0.01 * m)
    assert torch.equal(ema[1].running_mean, model[1].running_mean)
    before = [p.clone() for p in ema.parameters()]
    ema_update(ema, model, 0.99, step=0)  # early on the decay is ramped: (1 + 0) / (10 + 0) = 0.1
    for b, e, m in zip(before, ema.parameters(), model.parameters()):
        torch.testing.assert_close(e, 0.1 * b + 0.9 * m)


def test_precision_auto_follows_the_hardware():
    assert resolve_precision("32-true") == "32-true"
    assert resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
    with mock.patch("torch.cpu._is_avx512_bf16_supported", return_value=False), \
            mock.patch("torch.cpu._is_amx_tile_supported", return_value=False):
        assert resolve_precision("auto", "cpu") == "32-true"
    with mock.patch("torch.cpu._is_avx512_bf16_supported", return_value=True):
        assert resolve_precision("auto", "cpu") == "bf16-mixed"


@pytest.mark.parametrize("major, expected", [(7, "32-true"), (8, "bf16-mixed")])
def test_precision_auto_on_a_gpu_takes_bf16_only_where_it_is_native(major, expected):
    """torch.cuda.is_bf16_supported() counts emulation: on a T4 or V100 `auto` picked the slow emulated bf16."""
    props = mock.Mock(major=major, minor=5)
    props.name = "a GPU"
    with mock.patch("torch.cuda.is_available", return_value=True), mock.patch("torch.cuda.current_device", return_value=0), \
            mock.patch("torch.cuda.get_device_properties", return_value=props), \
            mock.patch("torch.cuda.get_device_capability", return_value=(major, 5)), \
            mock.patch("torch.cuda._check_bf16_tensor_supported", return_value=True, create=True):
        assert resolve_precision("auto", "gpu") == expected


@pytest.mark.parametrize("scaled", [False, True])
def test_clip_grad_norm_with_a_fused_optimizer(scaled):
    net = torch.nn.Linear(4, 3)
    opt = adamw(net.parameters(), 1e-3)  # fused: Lightning's own clip_gradients refuses it under mixed precision
    scaler = mock.Mock() if scaled else None
    module = mock.Mock(trainer=mock.Mock(precision_plugin=mock.Mock(scaler=scaler)))
    (100 * net(torch.ones(2, 4)).sum()).backward()
    norm = clip_grad_norm(module, opt, 1.0)
    assert norm > 1.0
    clipped = torch.cat([p.grad.flatten() for p in net.parameters()]).norm()
    torch.testing.assert_close(clipped, torch.tensor(1.0), rtol=1e-4, atol=1e-4)
    if scaled:  # fp16: gradients are unscaled before their norm is taken
        scaler.unscale_.assert_called_once_with(opt)
    assert clip_grad_norm(module, opt, 0.0) is None


def test_device_option_resolves_and_refuses_a_missing_gpu(monkeypatch):
    import argparse

    from shared.device import add_device_arg, batch_to, resolve_device

    p = argparse.ArgumentParser()
    add_device_arg(p)
    assert p.parse_args([]).device == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    moved = batch_to({"x": torch.ones(2), "utts": ["a", "b"], "g": None}, "cpu")
    assert moved["utts"] == ["a", "b"] and moved["g"] is None and torch.equal(moved["x"], torch.ones(2))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a machine with a GPU
    with pytest.raises(SystemExit):  # asking for a GPU that is not there is a usage error, not a quiet CPU run
        p.parse_args(["--device", "cuda"])
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        resolve_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # two GPUs: cuda:2 is none of them (it failed
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)  # later, as "invalid device ordinal")
    assert resolve_device("cuda:1") == torch.device("cuda:1") and resolve_device("cuda") == torch.device("cuda")
    with pytest.raises(RuntimeError, match=r"only 2 CUDA GPU\(s\) are visible here \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")


def _ddp_stub(**strategy) -> "object":
    """A two-rank trainer as far as budget_fraction and check_ranks_agree look at one."""
    from types import SimpleNamespace

    return SimpleNamespace(world_size=2, interrupted=False, callbacks=[],
                           strategy=SimpleNamespace(root_device=torch.device("cpu"), **strategy))


def test_check_ranks_agree_refuses_replicas_that_drifted_apart():
    from shared.training import check_ranks_agree

    model = torch.nn.Linear(3, 2)  # weight and bias
    same = _ddp_stub(all_gather=lambda t: torch.stack([t, t.clone()]))
    check_ranks_agree(same, model)
    drifted = _ddp_stub(all_gather=lambda t: torch.stack([t, t + torch.tensor([[1e-12, 0.0], [0.0, 0.0]], dtype=t.dtype)]))
    with pytest.raises(RuntimeError, match="1 of 2 weight tensors differ between the 2 DDP ranks"):
        check_ranks_agree(drifted, model)
    drifted.interrupted = True  # its ranks may have stopped at different steps: not compared
    check_ranks_agree(drifted, model)


def test_end_process_group_destroys_the_group_and_is_a_no_op_without_one(tmp_path):
    """Left to the interpreter's exit, a gloo group can abort a finished run (exit -6, "terminate called without
    an active exception"; once in CI, and 3 of 50 two-rank runs here): both stages destroy it after training, but not
    after an interrupted one (a rank may still wait in a collective)."""
    from types import SimpleNamespace

    from shared.training import end_process_group

    finished, interrupted = SimpleNamespace(interrupted=False), SimpleNamespace(interrupted=True)
    end_process_group(finished)  # a single process never made one
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        end_process_group(interrupted)
        assert torch.distributed.is_initialized()
        end_process_group(finished)
        assert not torch.distributed.is_initialized()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def test_budget_fraction_is_rank_zeros_clock_under_ddp():
    from datetime import timedelta

    from lightning.pytorch.callbacks import Timer

    from shared.training import budget_fraction

    timer = Timer(duration=timedelta(seconds=100))
    timer.time_elapsed = lambda *a, **k: 40.0  # this rank's own clock
    sent = []
    trainer = _ddp_stub(broadcast=lambda value, src=0: sent.append((value, src)) or 0.25)  # rank 0's reading
    trainer.callbacks = [timer]
    assert budget_fraction(trainer) == 0.25 and sent == [(0.4, 0)]
    trainer.world_size = 1
    assert budget_fraction(trainer) == 0.4
