"""Reflow: pairs (x0, ODE(x0)) from a trained model, for straightening its paths (1-4 NFE sampling).

    python -m stage2_flow.reflow [generate] --exp-dir exp/stage2/flow --latents dump/vae/train \\
        --data-dir data/train --out-dir exp/stage2/flow/reflow_pairs [--nfe 16 --solver rk4 --cfg-scale 0 --max-utts N]
    python -m stage2_flow.train --config conf/stage2_reflow.yaml --init-from exp/stage2/flow \\
        --reflow-pairs exp/stage2/flow/reflow_pairs --exp-dir exp/stage2/flow_reflow

Conditions are those of the training text: durations from MAS against the real latents (``--latents``),
or the duration predictor when no latents are given. Each pair file holds x0, x1 (D, F), the expanded
prior mean ``mu_frames`` (D, F) (and the expanded text states ``text_frames``, where the model has them) and the speaker vector g (S,) or None, so the fine-tuned estimator sees
exactly the conditions the pairs were generated with (the text side is frozen during reflow).
``--copies K`` draws K noise samples per utterance.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

from shared.config import positive_int
from shared.device import add_device_arg, batch_to
from shared.io import MODEL_FILE, atomic_save_torch, file_sha256, read_json, remove_outputs, write_json, write_kv
from shared.text import Vocab
from stage2_flow import solvers
from stage2_flow.data import PROMPT_SECONDS, LatentNormalizer, TTSDataset, check_model_latents, collate_tts
from stage2_flow.flow import Generators, utterance_generators
from stage2_flow.model import FlowTTS, load_trained, sequence_mask, validation_temperature


@torch.no_grad()
def generate_pairs(model: FlowTTS, batch: dict, nfe: int = 32, solver: str = "rk4", cfg_scale: float = 0.0,
                   temperature: float = 1.0, generator: Generators = None, use_mas: bool = True) -> list[dict]:
    """One batch -> list of {x0, x1, mu_frames, g} (unpadded, on the CPU) in batch order; with MAS durations also
    ``x1_data``, the utterance's real latent on the same frames (for a fine-tune that mixes in the
    ordinary flow-matching loss on real data, ``loss.flow_data`` of stage two's config). The batch is moved to
    the model's device; ``generator`` (one, or one per row: :func:`~stage2_flow.flow.start_noise`) may live elsewhere
    (a CPU one gives the same x0 on any device)."""
    if model.mode != "aligned":
        raise ValueError("reflow pairs are implemented for the aligned (text-prior) mode")
    model.eval()
    batch = batch_to(batch, next(model.parameters()).device)
    b = batch["tokens"].shape[0]
    g = model.speaker(batch.get("spk"), batch.get("prompt"), batch.get("prompt_mask"), batch=b, device=batch["tokens"].device)
    h, mu, tok_mask = model.encode_text(batch["tokens"], batch["tok_lens"], g)
    if use_mas:
        durations = model.align(mu, batch["latents"], batch["tok_lens"], batch["frm_lens"])
    else:
        durations = model.predict_durations(h, tok_mask, g)
    frm = durations.sum(-1)
    n = int(frm.max())
    mu_frames, text = model.frame_conditions(h, mu, durations, n)
    mask = sequence_mask(frm, n)
    x0 = model.flow.sample_x0(mu_frames, mask, temperature, generator)
    x1, _ = model.flow.sample(mu_frames, mask, g, text, nfe, solver, temperature, cfg_scale, None, generator, x0=x0)
    out = []

    def own(x: torch.Tensor) -> torch.Tensor:  # a CPU copy of its own (a saved view would drag the batch along)
        return x.to("cpu", copy=True)

    for i in range(b):
        f = int(frm[i])
        pair = {"x0": own(x0[i, :, :f]), "x1": own(x1[i, :, :f]), "mu_frames": own(mu_frames[i, :, :f]),
                "g": own(g[i]) if g is not None else None}
        if text is not None:
            pair["text_frames"] = own(text[i, :, :f])
        if use_mas:  # MAS durations sum to the real latent's length
            pair["x1_data"] = own(batch["latents"][i, :, :f])
        out.append(pair)
    return out


def add_generation_args(p: argparse.ArgumentParser, nfe: int, solver: str) -> None:
    """The options of a verb that runs a trained model over the training text (reflow pairs, GTA latents)."""
    p.add_argument("--exp-dir", required=True, help="trained stage-two exp dir (aligned mode)")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--latents", required=True, help="the data dir's real latents (MAS durations, the utterance list)")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--nfe", type=int, default=nfe, help="function evaluations (rk4: 4 per step)")
    p.add_argument("--solver", default=solver, choices=[*solvers.EVALS_PER_STEP, "dopri5"])
    p.add_argument("--cfg-scale", type=float, default=0.0,
                   help="guidance of the pairs' endpoints; the fine-tune's condition dropout (flow.cfg_drop) then teaches the "
                        "unconditional branch guided endpoints too, so guiding the reflowed model again applies it twice")
    p.add_argument("--temperature", type=float, default=None,
                   help="prior sigma scale, x0 = mu + T sigma eps (default: the model's validation.temperature, as "
                        "stage2_flow.synthesize samples)")
    p.add_argument("--copies", type=positive_int, default=1, help="noise draws per utterance")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-threads", type=int, default=2)
    add_device_arg(p)
    p.add_argument("--overwrite", action="store_true")


def check_generation_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A usage error for sampling options that cannot work (an NFE < 1 of a fixed-step solver), found before
    ``--overwrite`` removes a finished dump: it was found in the first batch, after."""
    if args.solver != "dopri5":
        try:
            solvers.steps_for_nfe(args.solver, args.nfe)
        except ValueError as e:
            p.error(f"--nfe: {e}")


def finished_dump(out: Path, scp: str, info: str, settings: dict[str, Any], overwrite: bool) -> bool:
    """Whether ``out`` holds a finished dump (its ``scp``) this run can keep: one made with ``settings`` (as far as
    its ``info`` file records them; ``paths`` are not compared). One made with other settings is an error naming them,
    never kept silently (a pair or GTA dump of another model would train the next stage on it); ``overwrite``: never
    kept."""
    if overwrite or not (out / scp).is_file():
        return False
    old = read_json(out / info) if (out / info).is_file() else {}
    changed = {k: (old[k], v) for k, v in settings.items() if k != "paths" and k in old and old[k] != v}
    if changed:
        raise SystemExit(f"{out}: made with other settings ({'; '.join(f'{k} {a} -> {b}' for k, (a, b) in changed.items())}): "
                         f"give --overwrite to make it again, or another --out-dir")
    print(f"{out}/{scp} exists, made with these settings: nothing to do (use --overwrite to redo)")
    return True


def inputs_digest(data_dir: str | Path, latents: str | Path) -> str:
    """SHA-256 of what a reflow-pair or GTA dump is made from: the data dir's ``token`` and ``utt2spk`` and the latent
    dump's ``latents.scp``, ``utt2frames`` and ``codec.json`` (each by its own SHA-256; '-' for one it lacks)."""
    import hashlib

    h = hashlib.sha256()
    for path in (Path(data_dir) / "token", Path(data_dir) / "utt2spk", *(Path(latents) / n for n in ("latents.scp", "utt2frames", "codec.json"))):
        h.update(f"{path.name} {file_sha256(path) if path.is_file() else '-'}\n".encode("utf-8"))
    return h.hexdigest()


def dump_settings(args: argparse.Namespace, exp: Path) -> dict[str, Any]:
    """What decides a reflow-pair or GTA dump: the model's weights, its inputs (:func:`inputs_digest` of ``--data-dir``
    and ``--latents``) and the sampling options (a temperature not given is the model's validation.temperature, set in
    ``args`` here); under ``paths``, where the inputs were (recorded, not compared: a recipe tree copied elsewhere
    makes the same dump)."""
    if args.temperature is None:
        from shared.config import load_config

        args.temperature = validation_temperature(load_config(exp / "config.yaml"))
    return {"model_sha256": file_sha256(exp / MODEL_FILE), "inputs_sha256": inputs_digest(args.data_dir, args.latents),
            "nfe": args.nfe, "solver": args.solver, "cfg_scale": args.cfg_scale, "temperature": args.temperature,
            "copies": args.copies, "seed": args.seed,
            "paths": {"data_dir": str(Path(args.data_dir).resolve()), "latents": str(Path(args.latents).resolve())}}


def check_pairs_source(pair_dir: str | Path, exp_dir: str | Path) -> None:
    """Refuse reflow pairs that the model of ``exp_dir`` (the fine-tune's ``--init-from``) did not make, by the
    ``model_sha256`` their ``reflow_info.json`` records (:func:`dump_settings`); pairs without one, too."""
    info_path, model = Path(pair_dir) / "reflow_info.json", Path(exp_dir) / MODEL_FILE
    info = read_json(info_path) if info_path.is_file() else {}
    if not info.get("model_sha256"):
        raise SystemExit(f"--reflow-pairs {pair_dir}: no model_sha256 in {info_path}, so nothing tells which model made "
                         f"them: regenerate them (python -m stage2_flow.reflow generate --exp-dir {exp_dir} --overwrite ...)")
    sha = file_sha256(model)
    if info["model_sha256"] != sha:
        raise SystemExit(f"--reflow-pairs {pair_dir} were made by another model (sha256 {info['model_sha256']}, "
                         f"{info.get('exp_dir')}) than --init-from {model} (sha256 {sha}): regenerate them "
                         f"with --exp-dir {exp_dir}, or fine-tune the model that made them")


def model_and_dataset(exp: Path, data_dir: str | Path, latents: str | Path,
                      device: torch.device | str = "cpu", cfg_scale: float = 0.0) -> tuple[FlowTTS, TTSDataset]:
    """A trained model (on ``device``) and the dataset of ``data_dir`` + its real ``latents`` as the model sees
    them (its tokens, latent statistics, speakers, and speech prompts where it uses them): the input of
    :func:`generate_pairs`. ``latents`` made by another codec than the model's stage-one codec, or of the other kind
    (``--continuous``), are refused (:func:`~stage2_flow.data.check_model_latents`), as training refuses them, and so
    is guidance by ``cfg_scale`` of a model with nothing to guide (:meth:`FlowTTS.check_guidance`)."""
    check_model_latents(exp, latents, "--latents")
    model, cfg = load_trained(exp)
    try:
        model.check_guidance(cfg_scale)
    except ValueError as e:
        raise SystemExit(f"--cfg-scale: {e}") from None
    model.to(device)
    s1 = read_json(exp / "stage1.json")
    prompt = tuple(cfg.get("data", {}).get("prompt_seconds", PROMPT_SECONDS)) if cfg["model"].get("speaker", {}).get("use_prompt") else None
    ds = TTSDataset(data_dir, latents, Vocab.load(exp / "tokens.txt"), LatentNormalizer.load(exp / "latent_stats.json"),
                    (exp / "speakers.txt").read_text().split(), s1["sample_rate"] / s1["hop_length"], prompt_seconds=prompt)
    return model, ds


def pick_utterances(by_length: list[int], max_utts: int | None, pick: str = "shortest") -> list[int]:
    """``max_utts`` of the dataset indices ``by_length`` (sorted by length): the first (``shortest``), or evenly
    spaced over them (``spread``), in length order; all of them without ``max_utts``."""
    if not max_utts or max_utts >= len(by_length):
        return list(by_length)
    if pick == "shortest":
        return by_length[:max_utts]
    return [by_length[(k * len(by_length)) // max_utts] for k in range(max_utts)]


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm


    p = argparse.ArgumentParser(prog="python -m stage2_flow.reflow", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    gp = sub.add_parser("generate", help="write reflow pairs")
    add_generation_args(gp, nfe=16, solver="rk4")
    gp.add_argument("--predicted-durations", action="store_true", help="use the duration predictor instead of MAS")
    gp.add_argument("--max-utts", type=int, default=None, help="at most this many utterances (--pick decides which)")
    gp.add_argument("--pick", choices=["shortest", "spread"], default="shortest",
                    help="with --max-utts: the shortest (the cheapest pairs; the 2-core recipe's) or evenly spaced "
                         "over the lengths, short to long (the GPU recipes')")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["generate", *argv]  # the subcommand is optional
    args = p.parse_args(argv)
    check_generation_args(gp, args)
    torch.set_num_threads(args.num_threads)
    exp, out = Path(args.exp_dir), Path(args.out_dir)
    settings = {**dump_settings(args, exp), "mas_durations": not args.predicted_durations,
                "max_utts": args.max_utts, "pick": args.pick}
    if finished_dump(out, "pairs.scp", "reflow_info.json", settings, args.overwrite):
        return 0
    model, ds = model_and_dataset(exp, args.data_dir, args.latents, args.device, args.cfg_scale)
    if args.overwrite:  # only once the inputs are known good: a refused run keeps the old pairs
        remove_outputs(out, ("pairs.scp", "reflow_info.json", "pairs"))
    idx = pick_utterances(sorted(range(len(ds)), key=lambda i: ds.latents[i].shape[1]), args.max_utts, args.pick)
    scp, t0 = {}, time.time()
    for copy in range(args.copies):
        for k in tqdm(range(0, len(idx), args.batch_size), desc=f"reflow pairs {copy + 1}/{args.copies}", unit="batch"):
            items = [ds[(i, args.seed + 7919 * copy + i)] for i in idx[k : k + args.batch_size]]
            gens = utterance_generators(args.seed + 7919 * copy, [it["utt"] for it in items])  # the same at any batch size
            pairs = generate_pairs(model, collate_tts(items), args.nfe, args.solver, args.cfg_scale, args.temperature, gens,
                                   use_mas=not args.predicted_durations)
            for it, pair in zip(items, pairs):
                key = it["utt"] if args.copies == 1 else f"{it['utt']}-c{copy}"
                atomic_save_torch(pair, out / "pairs" / f"{key}.pt")
                scp[key] = f"pairs/{key}.pt"
    write_json(out / "reflow_info.json", {"exp_dir": str(exp.resolve()), **settings, "seconds": round(time.time() - t0, 1)})
    write_kv(out / "pairs.scp", scp)
    print(f"wrote {len(scp)} reflow pairs to {out} in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
