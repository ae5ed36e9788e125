"""Stage-one speed: encode/decode real-time factors on CPU threads (or a GPU) and the decoder against a HiFi-GAN V1 generator.

    python benchmarks/bench_stage1.py [--config egs/espeak_mini/tts1/conf/stage1.yaml | --exp-dir EXP]
        [--threads 2] [--device cpu | cuda] [--seconds 10] [--batches 1 16] [--repeats 5] [--json-out FILE]

Times the codec built from the config (random weights) or the trained one in ``--exp-dir`` on
``--seconds`` of audio per item. The reference is a HiFi-GAN V1-sized generator (upsample rates
8, 8, 2, 2; 512 initial channels; ~13.9 M parameters; random weights) run in this process on the same
latent frames. Encoder, decoder and HiFi-GAN take turns (one call each, then again: a change in the machine's
load hits all alike). Figures: ``x real time`` = audio seconds / compute seconds (median of the repeats; the
fastest one beside it), and ``speedup`` = HiFi-GAN time / our decoder time (medians). The targets: default
decoder >= 200x real time on 2 threads and >= 25x faster than HiFi-GAN V1. The load average is printed before
and after, with a warning when it exceeds the cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine_load import report_load  # noqa: E402
from shared.config import load_config, positive_float, positive_int  # noqa: E402
from shared.device import add_device_arg  # noqa: E402
from stage1_vae.codec import load_codec  # noqa: E402
from stage1_vae.decoders import HiFiGANDecoder  # noqa: E402
from stage1_vae.model import build_codec  # noqa: E402
from stage1_vae.modules import count_params  # noqa: E402

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "egs/espeak_mini/tts1/conf/stage1.yaml"


def interleaved_times(fns: dict[str, tuple[Callable[[], object], int]],
                      device: torch.device = torch.device("cpu")) -> dict[str, list[float]]:
    """Wall times of each ``{name: (fn, repeats)}``, the functions taking turns (A B C A B C ...; one with fewer
    repeats drops out of the later turns) after one warm-up call each (allocations, oneDNN primitives, CUDA
    kernels); on a GPU each call is waited for, so the time is the work's, not the launch's."""
    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t

    for fn, _ in fns.values():
        timed(fn)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(max(n for _, n in fns.values())):
        for name, (fn, n) in fns.items():
            if r < n:
                times[name].append(timed(fn))
    return times


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument("--exp-dir", default=None, help="benchmark a trained exp dir instead of the config")
    p.add_argument("--threads", type=positive_int, default=2)
    add_device_arg(p)
    p.add_argument("--seconds", type=positive_float, default=10.0)
    p.add_argument("--batches", type=positive_int, nargs="+", default=[1, 16])
    p.add_argument("--repeats", type=positive_int, default=5)
    p.add_argument("--hifigan-batches", type=positive_int, nargs="+", default=[1],
                   help="batch sizes at which to time HiFi-GAN too (it is slow: batch 16 x 10 s takes minutes)")
    p.add_argument("--json-out", default=None)
    args = p.parse_args(argv)
    load_start = report_load("start")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = args.device
    codec = load_codec(args.exp_dir, dev) if args.exp_dir else build_codec(load_config(args.config)["model"]).to(dev).eval()
    sr, hop = codec.sample_rate, codec.hop_length
    hifigan = HiFiGANDecoder(codec.latent_dim, hop_length=256, upsample_rates=(8, 8, 2, 2), upsample_initial_channel=512).to(dev).eval()
    if hop != 256:
        print(f"note: codec hop {hop} != 256; HiFi-GAN V1 is run on the same number of frames (hop 256)")
    print(f"device={dev} threads={torch.get_num_threads()} audio={args.seconds:g}s/item sr={sr} hop={hop} frame_rate={sr / hop:g}Hz "
          f"latent_dim={codec.latent_dim}")
    if hasattr(codec, "encoder"):  # (an EnCodec / DAC adapter holds its model whole)
        print(f"params: encoder={count_params(codec.encoder):,} decoder={count_params(codec.decoder):,} "
              f"hifigan_v1={count_params(hifigan):,}")
    results = []
    with torch.inference_mode():
        for b in args.batches:
            wav = torch.randn(b, int(args.seconds * sr), device=dev) * 0.1
            z = codec.encode(wav)
            audio = b * args.seconds
            fns = {"encode": (lambda: codec.encode(wav), args.repeats), "decode": (lambda: codec.decode(z), args.repeats)}
            if b in args.hifigan_batches:  # (slow: at most 3 turns)
                fns["hifigan"] = (lambda: hifigan(z), max(1, min(args.repeats, 3)))
            times = interleaved_times(fns, dev)
            row = {"batch": b, "frames": int(z.shape[-1])}
            for name, ts in times.items():
                t = statistics.median(ts)
                row.update({f"{name}_s": t, f"{name}_min_s": min(ts), f"{name}_x_realtime": audio / t,
                            f"{name}_x_realtime_max": audio / min(ts)})
            t_enc, t_dec = row["encode_s"], row["decode_s"]
            line = (f"batch {b:3d}: encode {row['encode_x_realtime']:8.1f}x real time ({t_enc * 1000:.1f} ms, fastest "
                    f"{row['encode_min_s'] * 1000:.1f}), decode {row['decode_x_realtime']:8.1f}x real time "
                    f"({t_dec * 1000:.1f} ms, fastest {row['decode_min_s'] * 1000:.1f})")
            if "hifigan" in times:
                row["decoder_speedup_vs_hifigan"] = row["hifigan_s"] / t_dec
                line += (f", HiFi-GAN V1 {row['hifigan_x_realtime']:.1f}x real time ({row['hifigan_s'] * 1000:.0f} ms, "
                         f"fastest {row['hifigan_min_s'] * 1000:.0f}) -> our decoder "
                         f"{row['decoder_speedup_vs_hifigan']:.1f}x faster")
            results.append(row)
            print(line, flush=True)
    load = {"start": load_start, "end": report_load("end")}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"device": str(dev), "threads": args.threads, "seconds": args.seconds,
                                                   "load_average": load, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
