"""The shared Lightning plumbing: an interrupted run resumes to exactly the same weights."""

import lightning as L
import torch
from torch.utils.data import Dataset

from shared.batching import RandomBatchSampler, make_loader
from shared.training import build_trainer, resume_path


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


def _fit(exp_dir, max_steps):
    L.seed_everything(0)
    model = _Model()
    loader = make_loader(_Noise(), RandomBatchSampler(37, 4, seed=1))  # 9 batches an epoch
    trainer = build_trainer({"max_steps": max_steps, "checkpoint_every_n_steps": 3 if max_steps == 18 else 5, "accelerator": "cpu",
                             "devices": 1}, exp_dir)
    trainer.fit(model, loader, ckpt_path=resume_path(exp_dir))
    return model


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
