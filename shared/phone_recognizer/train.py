"""Train the CTC phone recogniser on a data dir's real audio (an evaluation tool, not part of the TTS).

    python -m shared.phone_recognizer.train --data-dir data/train --token-file data/train/token \
        --dev-dir data/dev --exp-dir exp/asr [--config conf/asr.yaml] [key=value ...]

Writes ``exp_dir/``: ``config.yaml`` (resolved), ``tokens.txt`` (the recogniser's phone list),
``checkpoints/last.pt`` (model, optimiser, scheduler, step, RNG; resumed automatically),
``train_log.csv``, ``model.pt`` (inference weights + config) and ``dev_per.json``. Rerunning a finished
experiment is a no-op unless ``--overwrite``. Training stops at ``train.max_steps`` or
``train.max_time_s`` seconds of training, whichever comes first.
"""

from __future__ import annotations

import argparse
import copy
import math
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from shared.config import apply_overrides, load_config, save_config
from shared.io import atomic_save_torch, atomic_write, write_json
from shared.phone_recognizer.data import collate, frame_batches, load_wavs, phone_filter, read_token_file, read_wav_scp
from shared.phone_recognizer.model import PhoneRecognizer, RecognizerConfig
from shared.text.vocab import Vocab

DEFAULT_CONFIG: dict = {
    "sample_rate": 16000,
    "tokens": {"drop_stress": True, "drop": []},
    "model": {"n_fft": 400, "hop_length": 160, "n_mels": 80, "conv_channels": 192, "hidden": 160,
              "num_layers": 2, "dropout": 0.1},
    "train": {"max_steps": 2000, "max_time_s": 150.0, "batch_frames": 6000, "lr": 2.0e-3, "warmup_steps": 100,
              "weight_decay": 1.0e-2, "grad_clip": 5.0, "seed": 0, "log_every": 25, "ckpt_every": 200,
              "num_threads": 2, "spec_augment": {"freq_masks": 2, "freq_width": 10, "time_masks": 2,
                                                 "time_width": 15}},
}


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def compute_features(model: PhoneRecognizer, wavs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Normalised log-mel ``(n_mels, F)`` of each waveform, computed one utterance at a time."""
    out = []
    for w in wavs:
        f, n = model.features(w[None], torch.tensor([w.numel()]))
        out.append(f[0, :, : int(n[0])].clone())
    return out


def pad_feats(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([f.shape[-1] for f in feats])
    out = torch.zeros(len(feats), feats[0].shape[0], int(lengths.max()))
    for b, f in enumerate(feats):
        out[b, :, : f.shape[-1]] = f
    return out, lengths


def spec_augment(x: torch.Tensor, lengths: torch.Tensor, cfg: dict, gen: torch.Generator) -> torch.Tensor:
    """Zero random frequency bands and time spans of ``x (B, C, F)`` (in place on a copy)."""
    x = x.clone()
    for b in range(x.shape[0]):
        for _ in range(cfg.get("freq_masks", 0)):
            w = int(torch.randint(0, cfg["freq_width"] + 1, (1,), generator=gen))
            s = int(torch.randint(0, max(1, x.shape[1] - w), (1,), generator=gen))
            x[b, s : s + w] = 0.0
        for _ in range(cfg.get("time_masks", 0)):
            w = min(int(torch.randint(0, cfg["time_width"] + 1, (1,), generator=gen)), int(lengths[b]) // 5)
            s = int(torch.randint(0, max(1, int(lengths[b]) - w), (1,), generator=gen))
            x[b, :, s : s + w] = 0.0
    return x


def lr_lambda(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def build_model(cfg: dict, vocab: Vocab) -> PhoneRecognizer:
    rc = RecognizerConfig(num_classes=len(vocab), blank_id=vocab.blank_id, sample_rate=cfg["sample_rate"], **cfg["model"])
    return PhoneRecognizer(rc)


def prepare_split(data_dir: str, token_file: str, cfg: dict) -> tuple[list[str], list[torch.Tensor], dict[str, list[str]]]:
    """Utterances of ``data_dir`` with their (filtered) phones; every utterance must have a token line."""
    keep = phone_filter(cfg["tokens"]["drop_stress"], cfg["tokens"]["drop"])
    tokens = read_token_file(token_file, keep)
    utts = sorted(read_wav_scp(data_dir))
    missing = [u for u in utts if u not in tokens]
    if missing:
        raise ValueError(f"{token_file}: no tokens for {len(missing)} utterance(s) of {data_dir}: {', '.join(missing[:10])}")
    utts = [u for u in utts if tokens[u]]
    return utts, load_wavs(data_dir, utts, cfg["sample_rate"]), tokens


def evaluate_per(model: PhoneRecognizer, feats: list[torch.Tensor], refs: list[list[str]], vocab: Vocab) -> dict:
    from shared.metrics.text import error_rate
    from shared.phone_recognizer.score import decode_features

    hyps = decode_features(model, feats, vocab)
    return error_rate(refs, hyps).as_dict()


def train(cfg: dict, data_dir: str, token_file: str, exp_dir: str, dev_dir: str | None = None,
          dev_token_file: str | None = None, overwrite: bool = False) -> dict:
    """Train (or resume) and return the summary written to ``exp_dir/train_summary.json``."""
    exp = Path(exp_dir)
    if (exp / "model.pt").exists() and (exp / "train_summary.json").exists() and not overwrite:
        print(f"[phone_recognizer.train] {exp}/model.pt exists; nothing to do (--overwrite to retrain)")
        from shared.io import read_json
        return read_json(exp / "train_summary.json")
    if overwrite and exp.exists():
        shutil.rmtree(exp)
    exp.mkdir(parents=True, exist_ok=True)
    tc = cfg["train"]
    torch.set_num_threads(int(tc["num_threads"]))
    torch.manual_seed(tc["seed"])
    t_load = time.time()
    utts, wavs, tokens = prepare_split(data_dir, token_file, cfg)
    vocab_path = exp / "tokens.txt"
    vocab = Vocab.load(vocab_path) if vocab_path.exists() else Vocab.build(tokens[u] for u in utts)
    vocab.save(vocab_path)
    save_config(cfg, exp / "config.yaml")
    model = build_model(cfg, vocab)
    feats = compute_features(model, wavs)
    targets = [torch.tensor(vocab.encode(tokens[u], utt=u)) for u in utts]
    dev = None
    if dev_dir:
        d_utts, d_wavs, d_tok = prepare_split(dev_dir, dev_token_file or str(Path(dev_dir) / "token"), cfg)
        dev = (compute_features(model, d_wavs), [d_tok[u] for u in d_utts])
    print(f"[phone_recognizer.train] {len(utts)} train utts, {len(vocab) - Vocab.num_special} phones, "
          f"features in {time.time() - t_load:.1f}s", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=tc["lr"], weight_decay=tc["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_lambda(s, tc["warmup_steps"], tc["max_steps"]))
    ctc = torch.nn.CTCLoss(blank=vocab.blank_id, zero_infinity=True)
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "elapsed": 0.0}
    ckpt = exp / "checkpoints" / "last.pt"
    if ckpt.exists():
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        state = saved["state"]
        torch.set_rng_state(saved["torch_rng"])
        print(f"[phone_recognizer.train] resumed from {ckpt} at step {state['step']}", flush=True)
    gen = torch.Generator().manual_seed(tc["seed"] + state["step"])
    lengths = [f.shape[-1] for f in feats]

    def save_ckpt() -> None:
        atomic_save_torch({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                           "state": dict(state), "torch_rng": torch.get_rng_state()}, ckpt)

    log_path = exp / "train_log.csv"
    if not log_path.exists():
        log_path.write_text("step,epoch,loss,lr,elapsed_s\n")
    model.train()
    t0, running, n_running = time.time() - state["elapsed"], 0.0, 0
    done = False
    while not done:
        batches = frame_batches(lengths, tc["batch_frames"], np.random.default_rng(tc["seed"] + state["epoch"]))
        for bi in range(state["batch_in_epoch"], len(batches)):
            idx = batches[bi]
            x, x_len = pad_feats([feats[i] for i in idx])
            x = spec_augment(x, x_len, tc["spec_augment"], gen)
            logp, out_len = model(x, x_len)
            tgt = [targets[i] for i in idx]
            loss = ctc(logp.transpose(0, 1), torch.cat(tgt), out_len, torch.tensor([len(t) for t in tgt]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc["grad_clip"])
            opt.step()
            sched.step()
            state["step"] += 1
            state["batch_in_epoch"] = bi + 1
            state["elapsed"] = time.time() - t0
            running, n_running = running + float(loss), n_running + 1
            if state["step"] % tc["log_every"] == 0:
                with open(log_path, "a") as f:
                    f.write(f"{state['step']},{state['epoch']},{running / n_running:.4f},"
                            f"{sched.get_last_lr()[0]:.6g},{state['elapsed']:.1f}\n")
                print(f"[phone_recognizer.train] step {state['step']} loss {running / n_running:.3f} "
                      f"({state['elapsed']:.0f}s)", flush=True)
                running, n_running = 0.0, 0
            if state["step"] % tc["ckpt_every"] == 0:
                save_ckpt()
            if state["step"] >= tc["max_steps"] or state["elapsed"] >= tc["max_time_s"]:
                done = True
                break
        else:
            state["epoch"] += 1
            state["batch_in_epoch"] = 0
    save_ckpt()
    model.eval()
    summary = {"steps": state["step"], "epochs": state["epoch"] + state["batch_in_epoch"] / max(1, len(batches)),
               "train_seconds": round(state["elapsed"], 1), "num_train_utts": len(utts),
               "num_phones": len(vocab) - Vocab.num_special, "data_dir": str(data_dir), "token_file": str(token_file)}
    if dev is not None:
        dev_per = evaluate_per(model, dev[0], dev[1], vocab)
        write_json(exp / "dev_per.json", dev_per)
        summary["dev_per"] = dev_per["rate"]
        print(f"[phone_recognizer.train] dev PER {dev_per['rate']:.2%} ({dev_per['errors']}/{dev_per['ref_len']})")
    atomic_save_torch({"config": model.cfg.to_dict(), "state_dict": model.state_dict(), "tokens_cfg": cfg["tokens"]},
                      exp / "model.pt")
    write_json(exp / "train_summary.json", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="training data dir (wav.scp)")
    p.add_argument("--token-file", default=None, help="'<utt> tok ...' file (default DATA_DIR/token)")
    p.add_argument("--dev-dir", default=None, help="dev data dir for the final PER")
    p.add_argument("--dev-token-file", default=None, help="default DEV_DIR/token")
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--config", default=None, help="YAML config (missing keys take the built-in defaults)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    a = p.parse_args(argv)
    cfg = merge(DEFAULT_CONFIG, load_config(a.config) if a.config else {})
    cfg = apply_overrides(cfg, a.overrides)
    random.seed(cfg["train"]["seed"])
    np.random.seed(cfg["train"]["seed"])
    train(cfg, a.data_dir, a.token_file or str(Path(a.data_dir) / "token"), a.exp_dir, a.dev_dir, a.dev_token_file,
          a.overwrite)
    return 0


if __name__ == "__main__":
    sys.exit(main())
