"""Train the CTC phone recogniser on a data dir's real audio (an evaluation tool, not part of the TTS).

    python -m shared.phone_recognizer.train --data-dir data/train --token-file data/train/token \
        --dev-dir data/dev --exp-dir exp/asr [--config conf/asr.yaml] [key=value ...]

Writes ``exp_dir/``: ``config.yaml`` (resolved), ``tokens.txt`` (the recogniser's phone list),
``checkpoints/last.pt`` (model, optimiser, scheduler, step, RNG; resumed automatically),
``train_log.csv``, ``model.pt`` (inference weights + config) and ``dev_per.json``. Rerunning a finished
experiment is a no-op unless ``--overwrite`` (or its training transcripts changed: then it is trained again).
Training stops at ``train.max_steps`` or ``train.max_time_s`` seconds of training, whichever comes first, and
the learning rate's cosine decay ends by the same limit (the time budget counted from the end of warm-up, so a
run that keeps a steady pace and is stopped by its step limit does not depend on the clock; one whose pace falls
below the budget's does, by the LR). The checkpoint and ``train_summary.json`` keep the
settings that shape the model (:func:`result_config`): resuming or rerunning the dir under other ones is an
error naming them. The checkpoint also keeps what it is trained on (:func:`training_inputs`): resuming it on
another data dir or token file is an error too.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from shared.batching import BucketBatchSampler
from shared.config import ConfigError, apply_overrides, check_keys_against, load_config, merge, save_config
from shared.device import resolve_device
from shared.io import MODEL_FILE, atomic_save_torch, atomic_write, file_sha256, read_json, write_json
from shared.phone_recognizer.data import (
    ROBUSTNESS_CHECKS, degrade, iter_wavs, phone_filter, read_token_file, subset_hours, utterance_ids,
    time_warp,
)
from shared.phone_recognizer.model import PhoneRecognizer, RecognizerConfig
from shared.text.vocab import Vocab

DEFAULT_CONFIG: dict = {
    "sample_rate": 16000,
    "tokens": {"drop_stress": True, "drop": []},
    "model": {"n_fft": 400, "hop_length": 160, "n_mels": 80, "subsampling": 4, "conv_channels": 128, "hidden": 128,
              "num_layers": 2, "dropout": 0.1},
    # 2000 steps: dev PER 0.45% on espeak_mini (327 s on 2 cores); 800, the default until 2026-12-05, left it at
    # 1.96% and the real audio looking worse than it is. The cap only guards against a very slow machine.
    "train": {"max_steps": 2000, "max_time_s": 900.0, "batch_frames": 6000, "lr": 2.0e-3, "warmup_steps": 100,
              "weight_decay": 1.0e-2, "grad_clip": 5.0, "seed": 0, "log_every": 25, "ckpt_every": 200,
              "num_threads": 2, "degraded_copies": 1, "speed_perturb": [1.0, 1.0],
              "noise_prob": 1.0, "time_warp": [0.8, 1.25], "max_hours": None, "device": "cpu",
              "spec_augment": {"freq_masks": 2, "freq_width": 15, "time_masks": 2, "time_width": 15}},
}


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


# what a run may change without being another training: the machine's settings, and train.max_time_s, a budget for
# the machine at hand (it can shape the LR's decay where the run falls behind, :meth:`_Loop.budget`, as any slower
# machine would)
RUN_ONLY_KEYS = ("train.device", "train.num_threads", "train.max_time_s", "train.log_every", "train.ckpt_every")
MIN_LR_RATIO = 0.05  # the cosine decay's floor, as a fraction of train.lr


def result_config(cfg: dict, prefix: str = "") -> dict:
    """``cfg`` flattened to ``{"model.hidden": 128, ...}``, without :data:`RUN_ONLY_KEYS`: the settings the
    trained model depends on, as JSON holds them (lists, not tuples)."""
    out = {}
    for k, v in cfg.items():
        key = prefix + str(k)
        if isinstance(v, dict):
            out.update(result_config(v, key + "."))
        elif key not in RUN_ONLY_KEYS:
            out[key] = json.loads(json.dumps(v))
    return out


# how a refused dir is started over
START_OVER = ("give a new --exp-dir, or --overwrite to train it again from scratch (a recipe's judge exp/asr: "
              "--retrain-asr true)")


def _differences(stored: dict, new: dict) -> str:
    """``"key: <stored> there, <new> now; ..."`` for every key whose value differs ('' where none does)."""
    unset = "(unset)"
    return "; ".join(f"{k}: {stored.get(k, unset)} there, {new.get(k, unset)} now"
                     for k in sorted(set(stored) | set(new)) if stored.get(k, unset) != new.get(k, unset))


def refuse_other_config(exp: Path, stored: dict | None, cfg: dict, what: str) -> None:
    """ValueError naming every setting in which ``cfg`` differs from the ``stored`` :func:`result_config` of the
    ``exp`` dir (None: a dir from before configs were stored, not checked)."""
    if stored is None:
        return
    differ = _differences(stored, result_config(cfg))
    if differ:
        raise ValueError(f"{exp} {what} another config ({differ}): {START_OVER}")


def training_inputs(data_dir: str, token_file: str) -> dict:
    """What a run trains on, kept in its checkpoint: the data dir (its audio) and the training transcripts' SHA-256
    (and so their utterances and phones)."""
    return {"data_dir": str(Path(data_dir).resolve()), "token_file_sha256": file_sha256(token_file)}


def refuse_other_inputs(exp: Path, stored: dict | None, inputs: dict) -> None:
    """ValueError naming what of :func:`training_inputs` differs from the ``stored`` ones of ``exp``'s checkpoint:
    resumed, it would go on training the old weights (and vocabulary) on other data, and be summarised as trained on
    it alone. None: a checkpoint from before they were kept, resumed with a warning."""
    if stored is None:
        print(f"warning: {exp}/checkpoints/last.pt does not say which data dir and token file it was trained on: "
              "resumed unchecked (--overwrite to train it from scratch on this data)", file=sys.stderr)
        return
    differ = _differences(stored, inputs)
    if differ:
        raise ValueError(f"{exp} holds a checkpoint trained on other data ({differ}): resume it with the --data-dir "
                         f"and --token-file it was started with, or {START_OVER}")


def ctc_min_frames(targets: list[torch.Tensor]) -> torch.Tensor:
    """The fewest output frames CTC needs for each target: one per label, and a blank between repeated ones."""
    return torch.tensor([len(t) + int((t[1:] == t[:-1]).sum()) for t in targets])


def build_model(cfg: dict, vocab: Vocab) -> PhoneRecognizer:
    rc = RecognizerConfig(num_classes=len(vocab), blank_id=vocab.blank_id, sample_rate=cfg["sample_rate"], **cfg["model"])
    return PhoneRecognizer(rc)


def prepare_split(data_dir: str, token_file: str, cfg: dict) -> tuple[list[str], dict[str, list[str]]]:
    """Utterances of ``data_dir`` with their (filtered) phones; every utterance must have a token line."""
    keep = phone_filter(cfg["tokens"]["drop_stress"], cfg["tokens"]["drop"])
    tokens = read_token_file(token_file, keep)
    utts = utterance_ids(data_dir)
    missing = [u for u in utts if u not in tokens]
    if missing:
        raise ValueError(f"{token_file}: no tokens for {len(missing)} utterance(s) of {data_dir}: {', '.join(missing[:10])}")
    return [u for u in utts if tokens[u]], tokens


def evaluate_per(model: PhoneRecognizer, feats: list[torch.Tensor], refs: list[list[str]], vocab: Vocab) -> dict:
    from shared.metrics.text import error_rate
    from shared.phone_recognizer.score import decode_features

    hyps = decode_features(model, feats, vocab)
    return error_rate(refs, hyps).as_dict()


def _prepare(cfg: dict, exp: Path, data_dir: str, token_file: str, dev_dir: str | None, dev_token_file: str | None):
    """Vocabulary (``exp/tokens.txt``), model, training features/targets (clean + degraded copies), dev set.
    The audio is read one utterance at a time and only its features are kept (``train.max_hours`` bounds them)."""
    tc = cfg["train"]
    t_load = time.time()
    utts, tokens = prepare_split(data_dir, token_file, cfg)
    with_phones = len(utts)
    if tc.get("max_hours"):
        utts = subset_hours(data_dir, utts, float(tc["max_hours"]), tc["seed"])
    if not utts:  # (the training loop would look for a first batch forever)
        raise ValueError(
            f"no training utterances in {data_dir}: {with_phones} of its {len(utterance_ids(data_dir))} have phones "
            f"in {token_file} after the token filter (tokens.drop_stress={cfg['tokens']['drop_stress']}, "
            f"tokens.drop={cfg['tokens']['drop']})"
            + (f", none of which fits in train.max_hours={tc['max_hours']}" if with_phones else ""))
    vocab_path = exp / "tokens.txt"
    # a checkpoint is resumed with its own output layer (trained on this data: refuse_other_inputs); a run killed
    # before its first checkpoint starts again from this data's phones
    resuming = vocab_path.exists() and (exp / "checkpoints" / "last.pt").exists()
    vocab = Vocab.load(vocab_path) if resuming else Vocab.build(tokens[u] for u in utts)
    vocab.save(vocab_path)
    save_config(cfg, exp / "config.yaml")
    model = build_model(cfg, vocab)
    aug_rng = np.random.default_rng(tc["seed"])  # the degraded copies are the same on every (re)start
    clean, degraded = [], [[] for _ in range(tc["degraded_copies"])]
    for w in iter_wavs(data_dir, utts, cfg["sample_rate"]):
        clean += compute_features(model, [w])
        for copy in degraded:
            copy += compute_features(model, [degrade(w, cfg["sample_rate"], aug_rng, tuple(tc["speed_perturb"]),
                                                     tc["noise_prob"])])
    feats = clean + [f for copy in degraded for f in copy]
    targets = [torch.tensor(vocab.encode(tokens[u], utt=u)) for u in utts] * (1 + tc["degraded_copies"])
    dev = None
    if dev_dir:
        d_utts, d_tok = prepare_split(dev_dir, dev_token_file or str(Path(dev_dir) / "token"), cfg)
        if not d_utts:  # a dev PER over nothing would read as 0%
            raise ValueError(f"no utterances with phones in the dev dir {dev_dir}")
        sr = cfg["sample_rate"]
        dev = {"refs": [d_tok[u] for u in d_utts], "clean": [], **{name: [] for name in ROBUSTNESS_CHECKS}}
        for w in iter_wavs(dev_dir, d_utts, sr):
            dev["clean"] += compute_features(model, [w])
            for name, perturb in ROBUSTNESS_CHECKS.items():
                dev[name] += compute_features(model, [perturb(w, sr)])
    print(f"[phone_recognizer.train] {len(utts)} train utts, {len(vocab) - Vocab.num_special} phones, "
          f"features in {time.time() - t_load:.1f}s", flush=True)
    return model, vocab, feats, targets, dev, len(utts)


class _Loop:
    """Optimiser, scheduler, CTC loss, checkpoint (``exp/checkpoints/last.pt``) and CSV log of one run."""

    def __init__(self, cfg: dict, model: PhoneRecognizer, vocab: Vocab, exp: Path, inputs: dict):
        from shared.training import warmup_cosine  # (imports Lightning: only where a model is trained)

        self.tc, self.model, self.exp, self.config, self.inputs = cfg["train"], model, exp, result_config(cfg), inputs
        tc = self.tc
        # elapsed: seconds of training (restored on resume); warmup_elapsed: as warm-up ended; ctc_unalignable:
        # utterances too short for their phones, whose loss zero_infinity made 0
        self.state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "elapsed": 0.0, "warmup_elapsed": 0.0,
                      "ctc_unalignable": 0}
        self.opt = torch.optim.AdamW(model.parameters(), lr=tc["lr"], weight_decay=tc["weight_decay"])
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: warmup_cosine(s, tc["warmup_steps"], tc["max_steps"], MIN_LR_RATIO, self.budget()))
        self.ctc = torch.nn.CTCLoss(blank=vocab.blank_id, zero_infinity=True)
        self.ckpt = exp / "checkpoints" / "last.pt"
        self.log_path = exp / "train_log.csv"
        # the augmentation generator (time warp, SpecAugment) restarts from its saved state, so a resumed run
        # draws what an uninterrupted one would have
        self.gen = torch.Generator().manual_seed(tc["seed"])
        if self.ckpt.exists():
            saved = torch.load(self.ckpt, map_location="cpu", weights_only=False)
            model.load_state_dict(saved["model"])
            self.opt.load_state_dict(saved["optimizer"])
            self.sched.load_state_dict(saved["scheduler"])
            self.state = {"warmup_elapsed": 0.0, "ctc_unalignable": 0, **saved["state"]}  # (older checkpoints)
            torch.set_rng_state(saved["torch_rng"])
            if "aug_rng" in saved:
                self.gen.set_state(saved["aug_rng"])
            else:  # a checkpoint from before the generator was saved: the old, inexact re-seeding
                self.gen.manual_seed(tc["seed"] + self.state["step"])
            if saved.get("cuda_rng") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(saved["cuda_rng"])
            print(f"[phone_recognizer.train] resumed from {self.ckpt} at step {self.state['step']}", flush=True)
        self.reported_unalignable = self.state["ctc_unalignable"]
        self._start_log()

    def budget(self) -> float:
        """Fraction of the time budget ``train.max_time_s`` spent since warm-up ended (0 without a budget, and
        during warm-up): the LR decay ends by it if the step limit does not come first. Counted from the end of
        warm-up, it overtakes the steps' progress only where the run falls behind the pace that reaches the step
        limit within the budget: a run that keeps ahead of it is the same whatever the machine's speed (and exactly
        resumable)."""
        tc, st = self.tc, self.state
        if not tc.get("max_time_s") or st["step"] < tc["warmup_steps"]:
            return 0.0
        return (st["elapsed"] - st["warmup_elapsed"]) / max(tc["max_time_s"] - st["warmup_elapsed"], 1e-9)

    def _start_log(self) -> None:
        """The CSV log as of the checkpoint: rows logged after it (by a run killed before its next save) would
        be logged again by the resumed run, so they go."""
        header = "step,epoch,loss,lr,elapsed_s\n"
        rows = self.log_path.read_text().splitlines(keepends=True)[1:] if self.log_path.exists() else []
        kept = [r for r in rows if r.strip() and int(r.split(",", 1)[0]) <= self.state["step"]]
        if not rows or kept != rows:
            with atomic_write(self.log_path) as f:
                f.write(header + "".join(kept))

    def save(self) -> None:
        atomic_save_torch({"model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
                           "scheduler": self.sched.state_dict(), "state": dict(self.state), "config": self.config,
                           "inputs": self.inputs,
                           "torch_rng": torch.get_rng_state(), "aug_rng": self.gen.get_state(),
                           "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
                          self.ckpt)

    def step(self, feats: list[torch.Tensor], targets: list[torch.Tensor]) -> float:
        """One update on a batch of features ``(n_mels, F)`` with time warp and SpecAugment."""
        x, x_len = pad_feats(feats)
        lo, hi = self.tc["time_warp"]
        if hi > lo:
            factor = float(torch.empty(1).uniform_(math.log(lo), math.log(hi), generator=self.gen).exp())
            x, x_len = time_warp(x, x_len, factor)
        x = spec_augment(x, x_len, self.tc["spec_augment"], self.gen)
        device = next(self.model.parameters()).device
        logp, out_len = self.model(x.to(device), x_len.to(device))
        self.state["ctc_unalignable"] += int((out_len.cpu() < ctc_min_frames(targets)).sum())
        loss = self.ctc(logp.transpose(0, 1), torch.cat(targets).to(device), out_len, torch.tensor([len(t) for t in targets]))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tc["grad_clip"])
        if not (torch.isfinite(loss) and torch.isfinite(norm)):  # one such update makes every weight NaN, for good
            raise FloatingPointError(f"step {self.state['step'] + 1}: CTC loss {loss.item()}, gradient norm "
                                     f"{norm.item()}: not updating (the last checkpoint is kept; nothing is exported)")
        self.opt.step()
        self.sched.step()
        return loss.item()

    def run(self, feats: list[torch.Tensor], targets: list[torch.Tensor]) -> float:
        """Train until ``max_steps`` or ``max_time_s``; returns the fraction of epochs done."""
        tc, st = self.tc, self.state
        # utterances of similar length under a padded-frames budget (raised to the longest utterance where that is
        # longer, as stage two does, rather than refused); which ones share a batch changes every epoch
        sampler = BucketBatchSampler([f.shape[-1] for f in feats], tc["batch_frames"], seed=tc["seed"], fit_longest=True)
        self.model.train()
        t0, running = time.time() - st["elapsed"], []
        while True:
            batches = sampler.batches(st["epoch"])
            for bi in range(st["batch_in_epoch"], len(batches)):
                # checked before each step: a run resumed at max_steps (or past max_time_s) trains no further
                out_of_time = tc["max_time_s"] is not None and st["elapsed"] >= tc["max_time_s"]
                if st["step"] >= tc["max_steps"] or out_of_time:
                    self.save()
                    return st["epoch"] + st["batch_in_epoch"] / len(batches)
                idx = batches[bi]
                running.append(self.step([feats[i] for i in idx], [targets[i] for i in idx]))
                st["step"], st["batch_in_epoch"], st["elapsed"] = st["step"] + 1, bi + 1, time.time() - t0
                if st["step"] == tc["warmup_steps"]:
                    st["warmup_elapsed"] = st["elapsed"]
                if st["step"] % tc["log_every"] == 0:
                    with open(self.log_path, "a") as f:
                        f.write(f"{st['step']},{st['epoch']},{np.mean(running):.4f},"
                                f"{self.sched.get_last_lr()[0]:.6g},{st['elapsed']:.1f}\n")
                    print(f"[phone_recognizer.train] step {st['step']} loss {np.mean(running):.3f} "
                          f"({st['elapsed']:.0f}s)", flush=True)
                    running = []
                    if st["ctc_unalignable"] > self.reported_unalignable:
                        n, self.reported_unalignable = st["ctc_unalignable"] - self.reported_unalignable, st["ctc_unalignable"]
                        print(f"[phone_recognizer.train] {n} utterance(s) since the last report had fewer output frames "
                              "than their phones need (after time warp): CTC cannot align them, and zero_infinity "
                              "counted their loss as 0", flush=True)
                if st["step"] % tc["ckpt_every"] == 0:
                    self.save()
            st["epoch"], st["batch_in_epoch"] = st["epoch"] + 1, 0


def train(cfg: dict, data_dir: str, token_file: str, exp_dir: str, dev_dir: str | None = None,
          dev_token_file: str | None = None, overwrite: bool = False) -> dict:
    """Train (or resume) and return the summary written to ``exp_dir/train_summary.json``."""
    exp = Path(exp_dir)
    inputs = training_inputs(data_dir, token_file)
    data_sha = inputs["token_file_sha256"]  # what it learns from: the training transcripts (and so their utterances)
    if (exp / MODEL_FILE).exists() and (exp / "train_summary.json").exists() and not overwrite:
        done = read_json(exp / "train_summary.json")
        if done.get("token_file_sha256", data_sha) == data_sha:
            refuse_other_config(exp, done.get("config"), cfg, "was trained with")
            print(f"[phone_recognizer.train] {exp}/model.pt exists; nothing to do (--overwrite to retrain)")
            return done
        print(f"[phone_recognizer.train] {exp} was trained on other transcripts than {token_file} (SHA-256 "
              f"{done['token_file_sha256'][:12]}... against {data_sha[:12]}...): training it again", flush=True)
        overwrite = True
    if overwrite and exp.exists():
        shutil.rmtree(exp)
    ckpt = exp / "checkpoints" / "last.pt"
    if ckpt.exists():  # resumed below: only under the config and on the data it was started with
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        refuse_other_config(exp, saved.get("config"), cfg, "holds a checkpoint of")
        refuse_other_inputs(exp, saved.get("inputs"), inputs)
    exp.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(cfg["train"]["num_threads"]))
    torch.manual_seed(cfg["train"]["seed"])
    model, vocab, feats, targets, dev, n_utts = _prepare(cfg, exp, data_dir, token_file, dev_dir, dev_token_file)
    loop = _Loop(cfg, model.to(resolve_device(cfg["train"]["device"])), vocab, exp, inputs)
    epochs = loop.run(feats, targets)
    model.cpu().eval()  # decoded and saved on the CPU, as score.py loads it
    summary = {"steps": loop.state["step"], "epochs": round(epochs, 2), "train_seconds": round(loop.state["elapsed"], 1),
               "num_train_utts": n_utts, "num_phones": len(vocab) - Vocab.num_special, "data_dir": str(data_dir),
               "token_file": str(token_file), "token_file_sha256": data_sha,
               "ctc_unalignable": loop.state["ctc_unalignable"], "config": loop.config}
    if dev is not None:
        dev_per = evaluate_per(model, dev["clean"], dev["refs"], vocab)
        # the same dev audio under changes a listener does not hear as other phones (data.ROBUSTNESS_CHECKS)
        dev_per["perturbed"] = {name: evaluate_per(model, dev[name], dev["refs"], vocab) for name in ROBUSTNESS_CHECKS}
        write_json(exp / "dev_per.json", dev_per)
        summary["dev_per"] = dev_per["rate"]
        summary["dev_per_perturbed"] = {name: r["rate"] for name, r in dev_per["perturbed"].items()}
        print(f"[phone_recognizer.train] dev PER {dev_per['rate']:.2%} ({dev_per['errors']}/{dev_per['ref_len']}); "
              + ", ".join(f"{name} {r['rate']:.2%} ({r['errors']})" for name, r in dev_per["perturbed"].items()))
    atomic_save_torch({"config": model.cfg.to_dict(), "state_dict": model.state_dict(), "tokens_cfg": cfg["tokens"]},
                      exp / MODEL_FILE)
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
    given = load_config(a.config) if a.config else {}
    try:
        check_keys_against(given, DEFAULT_CONFIG, str(a.config))
        cfg = apply_overrides(merge(DEFAULT_CONFIG, given), a.overrides)
    except ConfigError as e:
        p.error(str(e))
    random.seed(cfg["train"]["seed"])
    np.random.seed(cfg["train"]["seed"])
    try:
        train(cfg, a.data_dir, a.token_file or str(Path(a.data_dir) / "token"), a.exp_dir, a.dev_dir, a.dev_token_file,
              a.overwrite)
    except FloatingPointError as e:
        print(f"[phone_recognizer.train] error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
