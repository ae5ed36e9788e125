"""Stage-two speed: text-to-waveform real-time factor (batch 1, fixed output length) per NFE, and batch
throughput, on CPU threads (default 2) or a GPU.

    python benchmarks/bench_stage2.py --exp-dir exp/stage2/flow [--nfe 1 2 4 8 16 32 --seconds 10 --threads 2]
    python benchmarks/bench_stage2.py --config conf/stage2.yaml --stage1-exp-dir exp/stage1/vae   # untrained weights

Times are split into frontend (text -> tokens), acoustic model (text encoder, duration predictor and flow
sampling), and the stage-one decoder; durations are fixed so that every run produces exactly ``--seconds`` of audio (speed
does not depend on the weights, so an untrained model from ``--config`` measures the same). The NFEs take
turns (each once, then again, ``--repeats`` times: a change in the machine's load hits all alike); figures are
medians, with the fastest run beside them. The load average is printed before and after, with a warning when it
exceeds the cores. Writes JSON to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from machine_load import report_load

from shared.config import positive_float, positive_int

TEXT = ("The quick brown fox jumps over the lazy dog while seven wizards quietly hex the jovial bakers, "
        "and then everyone goes home to rest before the long winter night begins in the valley.")


def build(args):
    from shared.config import load_config
    from shared.text import Frontend
    from stage2_flow.codec import load_codec
    from stage2_flow.model import FlowTTS

    if args.exp_dir:
        from stage2_flow.synthesize import Synthesizer

        s = Synthesizer.from_exp_dir(args.exp_dir, args.device, stage1_exp_dir=args.stage1_exp_dir)
        return s.model, s.codec, s.frontend or Frontend.from_config({}), s.norm
    from stage2_flow.data import LatentNormalizer

    cfg = load_config(args.config)
    codec = load_codec(args.stage1_exp_dir, args.device)
    cfg["model"].update(latent_dim=codec.latent_dim, n_vocab=200, n_speakers=8)
    model = FlowTTS(cfg["model"]).to(args.device).eval()
    return model, codec, Frontend.from_config({}), LatentNormalizer([0.0] * codec.latent_dim, [1.0] * codec.latent_dim)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def run_once(model, codec, frontend, norm, texts: list[str], frames: int, nfe: int, solver: str, device: str) -> dict[str, float]:
    t0 = time.perf_counter()
    toks = frontend.tokens_batch(texts)
    n_vocab = model.text_encoder.emb.num_embeddings
    ids = [[5 + sum(map(ord, t)) % (n_vocab - 5) for t in tok] for tok in toks]  # valid ids; speed only
    t1 = time.perf_counter()
    b, n_tok = len(ids), max(len(x) for x in ids)
    tokens = torch.tensor([x + [0] * (n_tok - len(x)) for x in ids], device=device)
    lens = torch.tensor([len(x) for x in ids], device=device)
    base = torch.zeros(b, n_tok, dtype=torch.long, device=device)
    for i, n in enumerate(lens.tolist()):  # spread `frames` over the tokens
        base[i, :n] = frames // n
        base[i, n - 1] += frames - int(base[i, :n].sum())
    spk = torch.zeros(b, dtype=torch.long, device=device)
    kw = dict(spk=spk, nfe=nfe, solver=solver, generator=torch.Generator(device=device).manual_seed(0))

    def timed(fn):
        sync(device)
        t = time.perf_counter()
        result = fn()
        sync(device)
        return result, time.perf_counter() - t

    if model.mode == "aligned":
        # generate() with fixed durations runs the text encoder and the flow, not the duration predictor: that is
        # timed on its own, on the encoder's output (made off the clock: generate counts the encoder once)
        g = model.speaker(spk, None, None, batch=b, device=torch.device(device))
        h, mu, tok_mask = model.encode_text(tokens, lens, g)
        _, dp_seconds = timed(lambda: model.predict_durations(h, tok_mask, g))
        out, flow_seconds = timed(lambda: model.generate(tokens, lens, durations=base, **kw))
    else:
        dp_seconds = 0.0
        out, flow_seconds = timed(lambda: model.generate(tokens, lens, n_frames=torch.full((b,), frames, device=device), **kw))
    wav, decoder_seconds = timed(lambda: codec.decode(norm.denormalize(out["latents"])))
    acoustic = dp_seconds + flow_seconds
    return {"frontend": t1 - t0, "acoustic": acoustic, "decoder": decoder_seconds, "total": t1 - t0 + acoustic + decoder_seconds,
            "samples": wav.shape[-1] * b}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir")
    p.add_argument("--config")
    p.add_argument("--stage1-exp-dir")
    p.add_argument("--nfe", type=positive_int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--solver", default="euler")
    p.add_argument("--seconds", type=positive_float, default=10.0)
    p.add_argument("--batch", type=positive_int, default=16)
    p.add_argument("--batch-seconds", type=positive_float, default=5.0)
    p.add_argument("--batch-nfe", type=positive_int, default=4)
    p.add_argument("--repeats", type=positive_int, default=3)
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if not args.exp_dir and not (args.config and args.stage1_exp_dir):
        p.error("give --exp-dir, or --config and --stage1-exp-dir")
    load_start = report_load("start")
    torch.set_num_threads(args.threads)
    model, codec, frontend, norm = build(args)
    frame_rate = codec.sample_rate / codec.hop_length
    frames = int(round(args.seconds * frame_rate)) + 1
    run_once(model, codec, frontend, norm, [TEXT], frames, 2, args.solver, args.device)  # warm-up
    res: dict = {"device": args.device, "threads": args.threads, "seconds": args.seconds, "solver": args.solver, "rtf": {},
                 "rtf_min": {}, "parts": {}}
    runs: dict[int, list[dict[str, float]]] = {nfe: [] for nfe in args.nfe}
    for _ in range(args.repeats):  # NFE 1, 2, 4, ..., then again
        for nfe in args.nfe:
            runs[nfe].append(run_once(model, codec, frontend, norm, [TEXT], frames, nfe, args.solver, args.device))
    for nfe in args.nfe:
        audio = runs[nfe][0]["samples"] / codec.sample_rate
        med = {k: statistics.median(r[k] for r in runs[nfe]) for k in ("frontend", "acoustic", "decoder", "total")}
        res["rtf"][nfe] = med["total"] / audio
        res["rtf_min"][nfe] = min(r["total"] for r in runs[nfe]) / audio
        res["parts"][nfe] = {k: round(v / audio, 5) for k, v in med.items()}
        print(f"NFE {nfe:3d}: RTF {res['rtf'][nfe]:.4f}, fastest {res['rtf_min'][nfe]:.4f} (frontend "
              f"{med['frontend'] / audio:.4f}, acoustic {med['acoustic'] / audio:.4f}, decoder {med['decoder'] / audio:.4f}) "
              f"for {audio:.2f} s of audio", flush=True)
    if args.batch > 0:
        bframes = int(round(args.batch_seconds * frame_rate)) + 1
        batch = [TEXT] * args.batch
        run_once(model, codec, frontend, norm, batch, bframes, args.batch_nfe, args.solver, args.device)  # warm-up at this shape
        runs = [run_once(model, codec, frontend, norm, batch, bframes, args.batch_nfe, args.solver, args.device)
                for _ in range(args.repeats)]
        r = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
        audio = r["samples"] / codec.sample_rate
        fastest = min(x["total"] for x in runs)
        res["batch"] = {"batch": args.batch, "nfe": args.batch_nfe, "audio_seconds": audio, "compute_seconds": r["total"],
                        "throughput": audio / r["total"], "throughput_max": audio / fastest}
        print(f"batch {args.batch} x {args.batch_seconds:g} s at NFE {args.batch_nfe}: {audio / r['total']:.1f} s of audio per second, "
              f"fastest {audio / fastest:.1f} (acoustic {r['acoustic']:.2f} s, decoder {r['decoder']:.2f} s, frontend {r['frontend']:.2f} s)")
    res["load_average"] = {"start": load_start, "end": report_load("end")}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
