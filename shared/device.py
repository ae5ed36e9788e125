"""Where the inference verbs run: ``--device cpu | cuda[:N] | auto`` (a CUDA GPU when there is one).

Training places itself through Lightning's ``trainer.accelerator`` / ``devices``; the verbs that run a trained
model over a data dir (encode, decode, reflow pairs, GTA latents, synthesis, the NFE sweep, likelihoods) take a
``--device`` resolved here, and a recipe run with ``--ngpu N`` passes ``--device cuda`` to each of them.
Random draws that must not depend on the device (synthesis noise, probes) come from CPU generators and are
moved, so a GPU run samples the same start points as a CPU run.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``cpu``, ``cuda[:N]`` or ``auto`` -> a torch.device; asking for CUDA where there is none is an error, not
    a quiet fall-back to the CPU (a bulk job would otherwise run 50x slower without saying so)."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r}: no CUDA GPU is visible here (use cpu or auto)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RuntimeError(f"device {name!r}: only {torch.cuda.device_count()} CUDA GPU(s) are visible here "
                           f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return dev


def add_device_arg(p: argparse.ArgumentParser, default: str = "cpu") -> None:
    """``--device`` (a torch.device once parsed); a device that is not there is a usage error."""
    def parse(name: str) -> torch.device:
        try:
            return resolve_device(name)
        except RuntimeError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    p.add_argument("--device", default=default, type=parse,
                   help=f"cpu, cuda[:N] or auto (a CUDA GPU when there is one); default {default}")


def batch_to(batch: dict[str, Any], device: torch.device | str) -> dict[str, Any]:
    """A collated batch with every tensor on ``device`` (lists, strings and None as they are)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
