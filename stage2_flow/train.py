"""Train stage two (flow matching from a text-conditioned prior to frozen stage-one latents).

    python -m stage2_flow.train --config conf/stage2.yaml --stage1-exp-dir exp/stage1/vae \\
        --latents dump/vae/train --data-dir data/train --dev-latents dump/vae/dev --dev-dir data/dev \\
        --tokens exp/tokens.txt --exp-dir exp/stage2/flow [model.estimator.hidden=256 trainer.max_steps=2000 ...]

Reflow fine-tuning (pairs from ``python -m stage2_flow.reflow generate``; description and initial weights
come from the base exp dir)::

    python -m stage2_flow.train --config conf/stage2_reflow.yaml --init-from exp/stage2/flow \\
        --reflow-pairs exp/stage2/flow/reflow_pairs --dev-latents dump/vae/dev --dev-dir data/dev --exp-dir exp/stage2/flow_reflow

External durations instead of MAS: ``--durations FILE`` (``<utt> d1 d2 ...``, frames per token).

The exp dir describes itself: ``config.yaml`` (resolved: latent_dim, n_vocab, n_speakers filled in),
``tokens.txt`` and ``frontend.yaml`` copies, ``latent_stats.json``, ``stage1.json`` (path and interface of
the stage-one exp dir) + ``stage1_config.yaml`` copy, ``speakers.txt``, ``speaking_rate.json``; at the end
``model.pt`` (EMA weights), ``params.json``, ``train_summary.json``. Training resumes from
``checkpoints/last.ckpt``; a finished exp dir is a no-op unless ``--overwrite`` (or a larger budget, see
:func:`finished`). A run, finished or not, whose inputs or config differ from what its weights were trained with is
refused (:func:`refuse_changed_description`, :data:`RESUMABLE`). A non-finite loss or gradient stops the run (exit
status 1) before the weights take it in, its last checkpoint intact; a non-finite EMA is never exported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer

from shared.batching import BucketBatchSampler, make_loader
from shared.config import add_config_args, load_config, save_config
from shared.datadir import spread_subset
from shared.io import MODEL_FILE, atomic_copy, atomic_save_torch, atomic_write, read_json, read_kv, write_json
from shared.text import Vocab
from shared.training import (ProgressPrinter, add_budget_arg, build_trainer, check_ranks_agree, end_process_group,
                             max_time_seconds, non_finite_tensors, refuse_changed_config, resume_path, scale_budget,
                             seed_everything, start_over, warmup_cosine)
from stage2_flow.data import (PROMPT_SECONDS, LatentNormalizer, ReflowPairs, TTSDataset, check_model_latents,
                              collate_pairs, collate_tts, dump_is_continuous, speaking_rate)
from stage2_flow.experiment import Stage2Experiment, check_training_config, schedule_steps
from stage2_flow.model import count_parameters, stage1_dir, stage1_link
from stage2_flow.reflow import check_pairs_source

DESCRIPTION_FILES = ("tokens.txt", "frontend.yaml", "latent_stats.json", "stage1.json", "stage1_config.yaml", "speakers.txt", "speaking_rate.json")


def finished(exp_dir: Path, cfg: dict) -> bool:
    """Whether ``exp_dir`` holds a model.pt that this config's budget would not train further: trained for
    trainer.max_steps, or stopped by a trainer.max_time no shorter than this one. A larger max_steps (for a run its
    steps stopped) or a larger or no max_time (for a run its time stopped, also a time-only run, max_steps -1) continues
    it; a run that neither stopped (max_epochs) is finished, and so is an exported dir without train_summary.json (an
    older run's). A time-only run is taken as stopped by its time also where its summary says not (older summaries
    did so for every such run)."""
    if not (exp_dir / MODEL_FILE).is_file():
        return False
    summary = exp_dir / "train_summary.json"
    if not summary.is_file():
        return True
    s = read_json(summary)
    trainer = cfg.get("trainer", {})
    max_steps = int(trainer.get("max_steps") or -1)
    if max_steps > 0 and int(s.get("steps", 0)) >= max_steps:
        return True
    if s.get("stopped_by_time") or (max_steps <= 0 and s.get("max_time") is not None):
        now, then = trainer.get("max_time"), s.get("max_time")
        return now is not None and then is not None and max_time_seconds(now) <= max_time_seconds(then)
    return max_steps <= 0


def stopped_by_time(trainer: L.Trainer) -> bool:
    """Whether Lightning's Timer (trainer.max_time) ended the run: its budget is spent (rank 0's clock, which the Timer
    broadcasts to every rank's stop)."""
    timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
    remaining = timer.time_remaining() if timer is not None else None
    return remaining is not None and remaining <= 0


def describe_exp_dir(args: argparse.Namespace, exp_dir: Path) -> None:
    """Copy/derive the files that make the exp dir self-contained (base exp dir for reflow)."""
    if args.init_from:
        base = Path(args.init_from)
        if base.resolve() == exp_dir.resolve():
            return
        for name in (n for n in DESCRIPTION_FILES if (base / n).is_file()):
            if name == "stage1.json":  # the link, relative to the base, re-made relative to this dir
                write_json(exp_dir / name, {**read_json(base / name), "exp_dir": stage1_link(exp_dir, stage1_dir(base))})
            else:
                atomic_copy(base / name, exp_dir / name)
        return
    s1 = Path(args.stage1_exp_dir)
    stats = s1 / "latent_stats.json"
    if not stats.is_file():
        raise FileNotFoundError(f"{stats}: the stage-one exp dir has no latent statistics (run its encode on train)")
    atomic_copy(stats, exp_dir / "latent_stats.json")
    from stage2_flow.codec import load_codec

    codec = load_codec(s1)
    # continuous: trained on pre-quantisation latents (encode --continuous), so that synthesis encodes prompts so too
    write_json(exp_dir / "stage1.json", {"exp_dir": stage1_link(exp_dir, s1), "sample_rate": int(codec.sample_rate),
                                         "hop_length": int(codec.hop_length), "latent_dim": int(codec.latent_dim),
                                         "continuous": dump_is_continuous(args.latents)})
    if (s1 / "config.yaml").is_file():
        atomic_copy(s1 / "config.yaml", exp_dir / "stage1_config.yaml")
    tokens = Path(args.tokens)
    if not tokens.is_file():
        raise FileNotFoundError(f"{tokens}: token list not found (give --tokens)")
    atomic_copy(tokens, exp_dir / "tokens.txt")
    fe = Path(args.frontend_config) if args.frontend_config else tokens.parent / "frontend.yaml"
    if fe.is_file():
        atomic_copy(fe, exp_dir / "frontend.yaml")
    else:
        print(f"warning: no frontend config {fe}; synthesis from raw text will use the default phoneme frontend", file=sys.stderr)
    utt2spk = read_kv(Path(args.data_dir) / "utt2spk")
    with atomic_write(exp_dir / "speakers.txt") as f:
        f.write("".join(f"{s}\n" for s in sorted(set(utt2spk.values()))))


# what a checkpoint's weights were trained against: the latents' normalisation and the token and speaker ids
TRAINED_AGAINST = ("latent_stats.json", "tokens.txt", "speakers.txt")


# What a resumed run may change of the config its checkpoint was trained with (shared.training.refuse_changed_config):
# its budget (--budget-scale scales these together), where it runs, logging, checkpointing and validation; another
# model, loss, prior, data or optimiser setting would go on training the checkpoint as another run than its
# config.yaml says (the description files are refuse_changed_description's). A longer budget also lengthens the cosine
# (train.lr_total_steps, else trainer.max_steps; with lr_horizon budget also trainer.max_time), so a finished run
# continued from its floor starts again higher up, with no warm-up: warn_lr_jump says so and what to set instead
RESUMABLE = ("trainer.max_steps", "trainer.max_time", "train.lr_total_steps", "train.budget_scale",
             "trainer.accelerator", "trainer.devices", "trainer.num_nodes", "trainer.strategy", "trainer.precision",
             "trainer.log_every_n_steps", "trainer.enable_progress_bar", "trainer.enable_model_summary",
             "trainer.checkpoint_every_n_steps", "trainer.keep_checkpoints", "trainer.val_check_interval",
             "trainer.check_val_every_n_epoch", "trainer.num_sanity_val_steps", "trainer.limit_val_batches",
             "train.num_workers", "train.num_threads", "train.print_every", "validation", "data.dev", "data.dev_latents")


def warn_lr_jump(ckpt: dict[str, Any], cfg: dict[str, Any]) -> None:
    """Warn where a resumed run's LR multiplier at its first step is well above the one the checkpoint's run left off
    with: a budget raised after the cosine reached its floor moves the run back up the curve (x0.05 to x0.5 when
    trainer.max_steps doubles) without a warm-up, which can undo what the decay gained. The schedule is not changed:
    ``train.lr_total_steps`` set to the checkpoint's step keeps it at the floor."""
    group = (ckpt.get("optimizer_states") or [{}])[0].get("param_groups", [{}])[0]
    if not group.get("initial_lr"):
        return
    was, t, step = group["lr"] / group["initial_lr"], cfg.get("train", {}), int(ckpt["global_step"])
    max_time = cfg["trainer"].get("max_time")
    budget = 0.0
    if str(t.get("lr_horizon", "steps")) == "budget" and max_time is not None:
        timer = next((v for k, v in (ckpt.get("callbacks") or {}).items() if k.startswith("Timer")), {})
        budget = min(1.0, float(timer.get("time_elapsed", {}).get("train", 0.0)) / max_time_seconds(max_time))
    min_ratio = float(t.get("lr_min_ratio", 0.05))
    now = warmup_cosine(step, int(t.get("warmup_steps", 100)), schedule_steps(cfg), min_ratio, budget)
    if now > 1.5 * was and now - was > 0.1:
        print(f"warning: resuming at step {step} at {now:.2f} x train.lr where the checkpoint's run left off at {was:.2f} x, "
              "with no warm-up: this budget lengthens the cosine (train.lr_total_steps, else trainer.max_steps; with "
              f"lr_horizon budget also trainer.max_time). To go on at the floor (x{min_ratio:g}) set "
              f"train.lr_total_steps={step}; to decay over the whole budget, --overwrite trains from step 0",
              file=sys.stderr, flush=True)


def refuse_changed_description(exp_dir: Path, before: dict[str, bytes]) -> None:
    """After :func:`describe_exp_dir` wrote this run's description over a dir with a checkpoint to resume or a model.pt
    (``before``: its description files as they were): refuse if the :data:`TRAINED_AGAINST` files changed (stage one
    re-encoded, the tokens or the speakers changed) or the latents are now of the other kind (``encode --continuous`` or
    not), rather than go on training the checkpoint on other normalisation, ids or latents, or call a model trained on
    others finished. The caller puts the files back (:func:`restore_description`)."""
    changed = [n for n in TRAINED_AGAINST if n in before and not _same_description(n, before[n], (exp_dir / n).read_bytes())]
    if "stage1.json" in before:  # an older stage1.json has no flag: trained on the codec's own (quantised) latents
        was = json.loads(before["stage1.json"]).get("continuous", False)
        if read_json(exp_dir / "stage1.json").get("continuous", False) != was:
            changed.append(f"kind of latents (continuous: {was} then)")
    if changed:
        raise SystemExit(f"{exp_dir} holds weights trained with another {', '.join(changed)} than these inputs give "
                         "(stage one's latents encoded again, or other tokens or speakers): give --overwrite to train "
                         "from step 0 on these, or the inputs it was trained on")


def _same_description(name: str, old: bytes, new: bytes) -> bool:
    """Whether a :data:`TRAINED_AGAINST` file says the same: byte for byte, but ``latent_stats.json`` by its mean and
    std, what normalises the latents (its provenance fields came later, and a dump re-encoded to the same latents at
    another path is the same data)."""
    if name != "latent_stats.json":
        return old == new
    a, b = json.loads(old), json.loads(new)
    return (a.get("mean"), a.get("std")) == (b.get("mean"), b.get("std"))


def restore_description(exp_dir: Path, before: dict[str, bytes]) -> None:
    """Put the description files back as they were (``before``) after a refused resume or a finished run's no-op, so
    the dir still says what its weights were trained with."""
    for name, data in before.items():
        if not (exp_dir / name).is_file() or (exp_dir / name).read_bytes() != data:
            with atomic_write(exp_dir / name, "wb", encoding=None) as f:
                f.write(data)


def codec_has_pitch(stage1_exp_dir: Path) -> bool:
    """Whether the stage-one codec's latent channel 0 is its log-F0: its exp dir's ``config.yaml`` sets ``model.pitch``
    (a codec without one, such as an EnCodec / DAC adapter or the stand-in codec, has no pitch channel)."""
    path = Path(stage1_exp_dir) / "config.yaml"
    return path.is_file() and (load_config(path).get("model") or {}).get("pitch") is not None  # {}: the defaults


def resolve_channel_weights(model_cfg: dict, stage1_exp_dir: Path) -> None:
    """``model.flow.channel_weights`` that name channel 0 weight the codec's log-F0 (``{0: 10.0}``, the default
    recipe's); with a codec that has no pitch channel they would weight an ordinary latent channel instead, so they
    are dropped (in place, with a note; the exp dir's config.yaml records what is left)."""
    flow = model_cfg.get("flow") or {}
    weights = flow.get("channel_weights") or {}
    pitch = {k: v for k, v in weights.items() if int(k) == 0}
    if pitch and not codec_has_pitch(stage1_exp_dir):
        flow["channel_weights"] = {k: v for k, v in weights.items() if int(k) != 0}
        print(f"note: model.flow.channel_weights {pitch} dropped: the codec of {Path(stage1_exp_dir).resolve()} has no pitch "
              "channel (no model.pitch in a config.yaml there), so its channel 0 is no log-F0", flush=True)


def resolve_config(args: argparse.Namespace, cfg: dict[str, Any], exp_dir: Path) -> None:
    """Fill in, in place, what the exp dir's description and the command line decide: the model section (the base
    model's for ``--init-from``: its architecture, also what the datasets give it, such as speech prompts; channel
    weights the codec has no channel for dropped), its latent_dim, n_vocab and n_speakers, and the data paths. The config
    config.yaml records and a resumed or finished run is compared with."""
    if args.init_from:
        cfg["model"] = load_config(Path(args.init_from) / "config.yaml")["model"]
    resolve_channel_weights(cfg["model"], stage1_dir(exp_dir))
    cfg["model"].update(latent_dim=read_json(exp_dir / "stage1.json")["latent_dim"],
                        n_vocab=len(Vocab.load(exp_dir / "tokens.txt")),
                        n_speakers=len((exp_dir / "speakers.txt").read_text().split()))
    cfg["data"] = {**cfg.get("data", {}), "train": args.data_dir, "latents": args.latents, "dev": args.dev_dir,
                   "dev_latents": args.dev_latents, "durations": args.durations, "reflow_pairs": args.reflow_pairs,
                   "init_from": args.init_from}


def build_datasets(args, cfg, exp_dir: Path) -> tuple[TTSDataset | ReflowPairs, TTSDataset | None]:
    """The training set (the utterances, or ``--reflow-pairs``) and the validation subset (None without a dev set)."""
    vocab = Vocab.load(exp_dir / "tokens.txt")
    norm = LatentNormalizer.load(exp_dir / "latent_stats.json")
    s1 = read_json(exp_dir / "stage1.json")
    frame_rate = s1["sample_rate"] / s1["hop_length"]
    speakers = (exp_dir / "speakers.txt").read_text().split()
    d = cfg.get("data", {})
    prompt = tuple(d.get("prompt_seconds", PROMPT_SECONDS)) if cfg["model"].get("speaker", {}).get("use_prompt") else None
    max_frames = int(d.get("max_frames", 2000))
    if args.reflow_pairs:
        train = ReflowPairs(args.reflow_pairs, with_data=float(cfg.get("loss", {}).get("flow_data", 0.0)) > 0,
                            max_frames=max_frames)
    else:
        check_model_latents(exp_dir, args.latents, "--latents")
        train = TTSDataset(args.data_dir, args.latents, vocab, norm, speakers, frame_rate, args.durations, prompt,
                           max_frames, unknown_speakers="error")
        if not (exp_dir / "speaking_rate.json").is_file():
            sr = speaking_rate(train.tokens, train.lengths(), frame_rate, vocab.stoi.get("\u2581"))
            write_json(exp_dir / "speaking_rate.json", sr)
    dev = None
    if args.dev_dir and args.dev_latents:
        check_model_latents(exp_dir, args.dev_latents, "--dev-latents")
        n = int(cfg.get("validation", {}).get("num_utts", 8))
        dev = TTSDataset(args.dev_dir, args.dev_latents, vocab, norm, speakers, frame_rate, None, prompt, max_frames)
        dev = dev.subset([dev.utts.index(u) for u in spread_subset(sorted(dev.utts), n)] if n > 0 else [])  # every speaker
    return train, dev


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stage2_flow.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    add_budget_arg(p)
    p.add_argument("--stage1-exp-dir", help="stage-one exp dir (codec + latent_stats.json)")
    p.add_argument("--latents", help="training latent dump dir (latents.scp)")
    p.add_argument("--data-dir", help="training data dir (token, utt2spk)")
    p.add_argument("--dev-latents")
    p.add_argument("--dev-dir")
    p.add_argument("--tokens", default="exp/tokens.txt", help="tokens.txt (default exp/tokens.txt)")
    p.add_argument("--frontend-config", help="frontend YAML (default: frontend.yaml beside --tokens)")
    p.add_argument("--durations", help="external durations file '<utt> d1 d2 ...' instead of MAS")
    p.add_argument("--reflow-pairs", help="train on reflow pairs from this dir (needs --init-from)")
    p.add_argument("--init-from", help="exp dir whose model.pt initialises this run (reflow fine-tuning)")
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    if args.reflow_pairs and not args.init_from:
        p.error("--reflow-pairs needs --init-from BASE_EXP_DIR")
    if not args.init_from and not (args.stage1_exp_dir and args.latents and args.data_dir):
        p.error("give --stage1-exp-dir, --latents and --data-dir (or --init-from for fine-tuning)")
    if args.init_from and not args.reflow_pairs and not (args.latents and args.data_dir):
        p.error("--init-from without --reflow-pairs fine-tunes on data: give --latents and --data-dir")
    if bool(args.dev_dir) != bool(args.dev_latents):
        p.error("validation needs both --dev-dir and --dev-latents (give both, or neither to train without validation)")
    model_over = [o for o in args.overrides if o.split("=", 1)[0].lstrip("+").split(".")[0] == "model"]
    if args.init_from and model_over:  # the model is the base's: its architecture, and what the weights were trained as
        p.error(f"--init-from takes the model section from {args.init_from}/config.yaml: {' '.join(model_over)} cannot change it")
    cfg = scale_budget(load_config(args.config, args.overrides), args.budget_scale)
    check_training_config(cfg)
    if args.reflow_pairs:
        check_pairs_source(args.reflow_pairs, args.init_from)
    exp_dir = Path(args.exp_dir)
    if args.overwrite:
        if args.init_from and Path(args.init_from).resolve() == exp_dir.resolve():
            p.error(f"--overwrite would delete the model --init-from {args.init_from} starts from: give another --exp-dir")
        start_over(exp_dir, ("speaking_rate.json",))
    t = cfg.setdefault("train", {})
    torch.set_num_threads(int(t.get("num_threads", 2)))
    seed_everything(int(t.get("seed", 0)))
    exp_dir.mkdir(parents=True, exist_ok=True)
    # resuming or finished: the description as it was, put back if this run is refused (its inputs or config are not
    # what the weights were trained with) or fails before it trains
    trained = resume_path(exp_dir) or (exp_dir / MODEL_FILE).is_file()
    before = {n: (exp_dir / n).read_bytes() for n in DESCRIPTION_FILES if (exp_dir / n).is_file()} if trained else {}
    describe_exp_dir(args, exp_dir)
    try:
        refuse_changed_description(exp_dir, before)
        resolve_config(args, cfg, exp_dir)
        if before:
            refuse_changed_config(exp_dir, cfg, RESUMABLE)
        # only now: a finished run rerun with other inputs or another config is refused as an unfinished one is
        if finished(exp_dir, cfg):
            restore_description(exp_dir, before)  # a run that trains nothing leaves the dir as its model was trained
            print(f"{exp_dir / MODEL_FILE} exists: training already finished (use --overwrite to retrain)")
            return 0
        train_set, dev_set = build_datasets(args, cfg, exp_dir)
    except BaseException:
        restore_description(exp_dir, before)
        raise
    save_config(cfg, exp_dir / "config.yaml")

    d = cfg.get("data", {})
    sampler = BucketBatchSampler(train_set.lengths(), int(d.get("batch_frames", 8000)), max_batch=d.get("max_batch"),
                                 seed=int(t.get("seed", 0)), fit_longest=True)
    collate = collate_pairs if args.reflow_pairs else collate_tts
    train_loader = make_loader(train_set, sampler, num_workers=int(t.get("num_workers", 0)), collate_fn=collate)
    val_loader = None
    if dev_set is not None and len(dev_set):
        val_loader = torch.utils.data.DataLoader(dev_set, batch_size=len(dev_set), shuffle=False, collate_fn=collate_tts)
    module = Stage2Experiment(cfg, exp_dir, reflow=bool(args.reflow_pairs))
    if args.init_from:
        state = torch.load(Path(args.init_from) / MODEL_FILE, map_location="cpu", weights_only=True)
        module.model.load_state_dict(state)
        module.ema.load_state_dict(state)
    trainer_cfg = dict(cfg["trainer"])
    trainer_cfg.setdefault("num_sanity_val_steps", 0)
    if val_loader is None:
        trainer_cfg.update(limit_val_batches=0)
    trainer = build_trainer(trainer_cfg, exp_dir, callbacks=[ProgressPrinter(int(t.get("print_every", 50)))])
    start, t0 = resume_path(exp_dir), time.time()
    step0 = 0
    if start:
        print(f"resuming from {start}", flush=True)
        ckpt = torch.load(start, map_location="cpu", weights_only=False)
        step0 = int(ckpt["global_step"])
        warn_lr_jump(ckpt, cfg)
        del ckpt  # fit loads it again
    params = {"total": count_parameters(module.model), "text_encoder": count_parameters(module.model.text_encoder),
              "estimator": count_parameters(module.model.flow.estimator), "speaker": count_parameters(module.model.speaker)}
    if module.model.mode == "aligned":
        params["duration_predictor"] = count_parameters(module.model.duration_predictor)
    print(f"parameters: {params}; {len(train_set)} training items", flush=True)
    try:
        trainer.fit(module, train_loader, val_loader, ckpt_path=start)
    except FloatingPointError as e:  # a non-finite loss or gradient (Stage2Experiment._require_finite): nothing exported
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    check_ranks_agree(trainer, module)
    end_process_group(trainer)
    if not trainer.is_global_zero:
        return 0
    elapsed = time.time() - t0
    summary = {"steps": trainer.global_step, "steps_this_run": trainer.global_step - step0, "seconds_this_run": round(elapsed, 1),
               "interrupted": bool(trainer.interrupted),
               "max_time": cfg["trainer"].get("max_time"), "stopped_by_time": stopped_by_time(trainer),
               "final_metrics": {k: float(v) for k, v in trainer.callback_metrics.items()}}
    if trainer.interrupted:
        print("training interrupted: not exporting (rerun to resume)", file=sys.stderr)
        return 1
    state = {k: v.detach().cpu() for k, v in module.ema.state_dict().items()}
    bad = non_finite_tensors(state)
    if bad:
        print(f"error: {len(bad)} of the {len(state)} EMA weight tensors are not finite (e.g. {', '.join(bad[:3])}): not "
              f"exporting {exp_dir / MODEL_FILE}. An update the run could not check made them so (without "
              "trainer.gradient_clip_val no gradient norm is computed): set trainer.gradient_clip_val and train again "
              "with --overwrite", file=sys.stderr, flush=True)
        return 1
    atomic_save_torch(state, exp_dir / MODEL_FILE)
    write_json(exp_dir / "params.json", params)
    write_json(exp_dir / "train_summary.json", summary)
    print(f"exported {exp_dir / MODEL_FILE}: {summary}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
