"""Train a stage-one codec (VAE / RVQ / FSQ / mel vocoder) and export a self-describing exp dir.

    python -m stage1_vae.train --config conf/stage1.yaml --data-dir data/train --dev-dir data/dev \\
        --exp-dir exp/stage1/vae [trainer.max_steps=2000 model.latent_dim=32 ...]

Decoder fine-tuning on given latents (``--decoder-latents``, with ``--init-from``): only the decoder trains,
on aligned crops of the dump's latents and the data dir's audio, e.g. stage two's ground-truth-aligned output
(``python -m stage2_flow.gta``), so the decoder learns to read what stage two generates (Tacotron 2's
WaveNet and HiFi-GAN were fine-tuned the same way on predicted mel spectrograms)::

    python -m stage1_vae.train --config conf/decoder_gta.yaml --init-from exp/stage1/vae \\
        --decoder-latents dump/vae/train_gta --data-dir data/train --exp-dir exp/stage2/flow_reflow/decoder

The decoder being fine-tuned is the ``--init-from`` codec's, so the fine-tuning config holds only what differs from
that codec's saved config (training settings; see :func:`finetune_config`): one such config serves every codec.

Resumes from ``<exp>/checkpoints/last.ckpt`` automatically, with the config it was trained with (one that differs
in more than the budget, placement, logging or validation is refused: see :data:`RESUMABLE`). On success writes
``<exp>/config.yaml`` (resolved), ``<exp>/params.json``, ``<exp>/train_summary.json`` and, last, ``<exp>/model.pt``
(codec weights, EMA when enabled). Rerunning a finished experiment is a no-op unless ``--overwrite``. A non-finite
loss stops the run (exit status 1) before the weights take it in, its last checkpoint intact.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path
from typing import Any

import torch

from shared.batching import AudioSegmentDataset, LatentAudioSegmentDataset, RandomBatchSampler, make_loader
from shared.config import add_config_args, apply_overrides, load_config, merge, save_config
from shared.io import MODEL_FILE, atomic_save_torch, read_json, write_json
from shared.training import (ProgressPrinter, add_budget_arg, build_trainer, check_ranks_agree, end_process_group,
                             non_finite_tensors, refuse_changed_config, resume_path, scale_budget, seed_everything,
                             start_over)
from stage1_vae.experiment import Stage1Experiment, check_config
from stage1_vae.modules import PitchCache, count_params
from stage1_vae.validation import Validator, dev_loader


def export(module: Stage1Experiment, cfg: dict[str, Any], exp_dir: Path, summary: dict[str, Any]) -> None:
    """Write the final, self-describing experiment directory (weights, config, parameter counts); ``model.pt``
    last: its presence marks a finished run, so a run killed while exporting is rerun, not taken as finished."""
    codec = module.inference_codec()
    params = {"encoder": count_params(codec.encoder), "bottleneck": count_params(codec.bottleneck),
              "decoder": count_params(codec.decoder), "total": count_params(codec),
              "discriminator": count_params(module.disc) if module.disc is not None else 0}
    write_json(exp_dir / "params.json", params)
    write_json(exp_dir / "train_summary.json", summary)
    save_config(cfg, exp_dir / "config.yaml")
    atomic_save_torch({k: v.detach().cpu() for k, v in codec.state_dict().items()}, exp_dir / MODEL_FILE)


# What a resumed run may change of the config its checkpoint was trained with (refuse_changed_config): its budget,
# which --budget-scale scales together (a run continued with more steps or time: the recipes' total_steps equal
# max_steps), where it runs (devices, precision: `precision: auto` differs by machine), logging, checkpointing and
# validation. Any other difference (model, loss_weights, loss, discriminator, data, the rest of train) would go on
# training the checkpoint as another run than its config.yaml describes.
RESUMABLE = ("trainer.max_steps", "trainer.max_time", "train.total_steps", "train.budget_scale",
             "trainer.accelerator", "trainer.devices", "trainer.num_nodes", "trainer.strategy", "trainer.precision",
             "trainer.log_every_n_steps", "trainer.enable_progress_bar", "trainer.enable_model_summary",
             "trainer.checkpoint_every_n_steps", "trainer.keep_checkpoints", "trainer.val_check_interval",
             "trainer.check_val_every_n_epoch", "trainer.num_sanity_val_steps", "trainer.limit_val_batches",
             "train.num_workers", "train.num_threads", "train.print_every", "train.cache_audio", "validation",
             "data.dev")




def finetune_config(config: str | Path, codec_cfg: dict[str, Any], overrides: list[str] | None = None) -> dict:
    """The config of a decoder fine-tuning (``--decoder-latents``): the codec's own saved config ``codec_cfg``
    (model, losses, training defaults; not its data, and its budgets as its config gave them, before its
    ``--budget-scale``) updated by the fine-tuning ``config``'s keys, then by ``overrides``. So
    ``conf/decoder_gta.yaml`` holds training settings only and serves whatever stage-one config the codec was
    trained with; a ``model`` key there or in the overrides that differs from the codec's is refused by
    :func:`init_generator` (the weights are the codec's)."""
    base = copy.deepcopy({k: v for k, v in codec_cfg.items() if k != "data"})
    scale_budget(base, 1 / float(base.get("train", {}).get("budget_scale", 1)))  # this training scales its own
    base.get("train", {}).pop("budget_scale", None)
    return apply_overrides(merge(base, load_config(config)), overrides or [])


def init_generator(module: Stage1Experiment, src: Path, model_cfg: dict[str, Any]) -> None:
    """Load ``src/model.pt`` (an exported codec) into the generator and its EMA copy."""
    from stage1_vae.codec import load_codec

    src_cfg = load_config(src / "config.yaml")
    src_model = src_cfg.get("model", {})
    if src_model != model_cfg:
        diff = sorted(k for k in set(src_model) | set(model_cfg) if src_model.get(k) != model_cfg.get(k))
        raise SystemExit(f"--init-from {src}: its model section differs from this config's in {diff}")
    state = load_codec(src, use_config=src_cfg).state_dict()
    module.codec.load_state_dict(state)
    if module.ema is not None:
        module.ema.load_state_dict(state)
    print(f"generator initialised from {src / MODEL_FILE}", flush=True)


def measured_pitch(dump: Path, codec_exp: Path) -> dict[str, str]:
    """``{utt: latent path}`` of a :mod:`stage1_vae.encode` dump, checked to be ``codec_exp``'s output."""
    from shared.latents import read_latent_scp, require_codec

    if not (dump / "latents.scp").is_file():
        raise SystemExit(f"--pitch-latents {dump}: not a finished stage1_vae.encode dump (no latents.scp)")
    require_codec(dump, codec_exp, "--pitch-latents", "the --init-from codec")
    return {utt: str(path) for utt, path in read_latent_scp(dump).items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p)
    add_budget_arg(p)
    p.add_argument("--data-dir", required=True, help="training data dir (wav.scp, utt2spk, text)")
    p.add_argument("--dev-dir", default=None, help="dev data dir for validation metrics and samples")
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--overwrite", action="store_true", help="retrain from step 0 even if <exp>/model.pt exists (its checkpoints and exported model are removed first)")
    p.add_argument("--init-from", default=None, metavar="EXP_DIR",
                   help="start the generator (and its EMA) from a trained stage-one exp dir with the same model "
                        "section, e.g. to fine-tune with adversarial losses or on a new corpus; optimisers, "
                        "schedule and discriminator start fresh")
    p.add_argument("--decoder-latents", default=None, metavar="DUMP_DIR",
                   help="fine-tune the decoder alone on this latent dump's latents against the data dir's audio "
                        "(latents.scp, optional key2utt; see shared.batching.LatentAudioSegmentDataset); needs "
                        "--init-from, whose saved config the --config file updates (model and losses are the codec's)")
    p.add_argument("--pitch-latents", default=None, metavar="DUMP_DIR",
                   help="with train.pitch_cache: a stage1_vae.encode dump of the data dir's audio by the --init-from codec, "
                        "whose pitch channels are read instead of measured again (e.g. dump/vae/train for stage 7)")
    args = p.parse_args(argv)
    if args.pitch_latents and not args.init_from:
        p.error("--pitch-latents reads what the --init-from codec encoded: give it with --init-from")
    if args.decoder_latents and not args.init_from:
        p.error("--decoder-latents fine-tunes a trained decoder: give the codec with --init-from")
    if args.decoder_latents:
        codec_cfg = load_config(Path(args.init_from) / "config.yaml")
        if "model" not in codec_cfg:
            p.error(f"--init-from {args.init_from}: not a codec trained by stage1_vae.train (no model section in its "
                    "config.yaml), so it has no decoder to fine-tune")
        cfg = finetune_config(args.config, codec_cfg, args.overrides)
    else:
        cfg = load_config(args.config, args.overrides)
    cfg = scale_budget(cfg, args.budget_scale)
    check_config(cfg)
    exp_dir = Path(args.exp_dir)
    if args.overwrite:
        if args.init_from and Path(args.init_from).resolve() == exp_dir.resolve():
            p.error(f"--overwrite would delete the codec --init-from {args.init_from} starts from: give another --exp-dir")
        start_over(exp_dir)
    t = cfg.setdefault("train", {})
    torch.set_num_threads(int(t.get("num_threads", 2)))
    seed_everything(int(t.get("seed", 0)))
    exp_dir.mkdir(parents=True, exist_ok=True)
    cfg["data"] = {"train": str(args.data_dir), "dev": str(args.dev_dir) if args.dev_dir else None}
    if args.decoder_latents:
        cfg["data"].update(decoder_latents=str(args.decoder_latents), init_from=str(args.init_from))
        info = Path(args.decoder_latents) / "gta_info.json"
        if info.is_file():  # which stage-two model.pt made the latents: stage2_flow.model.codec_dir checks it
            cfg["data"]["source_model_sha256"] = read_json(info).get("model_sha256")
        t["decoder_only"] = True
    finished = (exp_dir / MODEL_FILE).is_file()
    if finished or resume_path(exp_dir):  # a finished codec of another config was "already finished", and taken as this one
        refuse_changed_config(exp_dir, cfg, RESUMABLE)
    if finished:
        print(f"{exp_dir / MODEL_FILE} exists: training already finished (use --overwrite to retrain)")
        return 0
    save_config(cfg, exp_dir / "config.yaml")

    m = cfg["model"]
    sr, hop = int(m["sample_rate"]), int(m["hop_length"])
    segment = int(round(float(t.get("segment_seconds", 1.0)) * sr)) // hop * hop
    if str(cfg["trainer"].get("precision", "32")).startswith("16"):
        raise SystemExit("trainer.precision: fp16 is not supported (the discriminator step bypasses the grad scaler); "
                         "use 32-true or bf16-mixed")
    module = Stage1Experiment(cfg, exp_dir)
    # train.pitch_cache: the pitch channels measured once per utterance (stage1_vae.modules.PitchCache), not per batch
    pitch = module.codec.pitch
    track = None
    if t.get("pitch_cache", False):
        if pitch is None:
            print("train.pitch_cache: this codec has no pitch channel (model.pitch); nothing to cache", flush=True)
        else:
            track = PitchCache(pitch, measured_pitch(Path(args.pitch_latents), Path(args.init_from)) if args.pitch_latents else None)
    if args.decoder_latents:
        dataset = LatentAudioSegmentDataset(args.decoder_latents, args.data_dir, sr, hop, segment // hop, track=track)
    else:
        dataset = AudioSegmentDataset(args.data_dir, sr, segment, cache=bool(t.get("cache_audio", True)), track=track,
                                      hop_length=hop)
    sampler = RandomBatchSampler(len(dataset), int(t.get("batch_size", 16)), seed=int(t.get("seed", 0)))
    train_loader = make_loader(dataset, sampler, num_workers=int(t.get("num_workers", 0)))

    val_cfg = cfg.get("validation", {})
    val_loader = None
    if args.dev_dir and int(val_cfg.get("num_utts", 8)) > 0:
        val_loader = dev_loader(args.dev_dir, sr, int(val_cfg.get("num_utts", 8)))
        module.validator = Validator(sr, exp_dir, int(val_cfg.get("num_samples", 2)), bool(val_cfg.get("metrics", True)))
    trainer_cfg = dict(cfg["trainer"])
    if val_loader is None:
        trainer_cfg.update(limit_val_batches=0)
    trainer = build_trainer(trainer_cfg, exp_dir, callbacks=[ProgressPrinter(int(t.get("print_every", 50)))])
    start, t0 = resume_path(exp_dir), time.time()
    if start:
        print(f"resuming from {start}", flush=True)
    if args.init_from and not start:
        init_generator(module, Path(args.init_from), cfg["model"])
    step0 = int(torch.load(start, map_location="cpu", weights_only=False)["global_step"]) if start else 0
    try:
        trainer.fit(module, train_loader, val_loader, ckpt_path=start)
    except FloatingPointError as e:  # a non-finite loss (Stage1Experiment._require_finite): nothing is exported
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    check_ranks_agree(trainer, module)
    end_process_group(trainer)
    if trainer.is_global_zero:
        elapsed = time.time() - t0
        steps = trainer.global_step
        summary = {"steps": steps, "steps_this_run": steps - step0, "seconds_this_run": round(elapsed, 1),
                   "steps_per_second": round((steps - step0) / max(elapsed, 1e-9), 3),
                   "interrupted": bool(trainer.interrupted)}
        if trainer.interrupted:
            print("training interrupted: not exporting (rerun to resume)", file=sys.stderr)
            return 1
        bad = non_finite_tensors(module.inference_codec().state_dict())
        if bad:  # an update the run could not check (grad_clip 0 computes no gradient norm), as stage two says
            print(f"error: {len(bad)} weight tensors of the codec are not finite (e.g. {', '.join(bad[:3])}): not "
                  f"exporting {exp_dir / MODEL_FILE}; train again with --overwrite (and train.grad_clip > 0)",
                  file=sys.stderr, flush=True)
            return 1
        export(module, cfg, exp_dir, summary)
        print(f"exported {exp_dir / MODEL_FILE}: {summary}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
