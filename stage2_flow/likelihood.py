"""Likelihood of held-out latents under the flow: log p(z | text) in bits per dimension.

Instantaneous change of variables: for dx/dt = v(x, t), d log p_t(x_t)/dt = -div v(x_t, t), so

    log p1(x1) = log p0(x0) - int_0^1 div v(x_t, t) dt,     x0 = ODE(x1) integrated from t=1 back to 0,

with p0 = N(mu, sigma^2 I) (text prior) or N(0, I) (noise prior). The divergence is exact (autograd,
one backward pass per dimension: D*F passes per evaluation; small latents only) or the
Skilling-Hutchinson estimate E[eps^T (dv/dx) eps] with Rademacher or Gaussian probes (K probes, fixed along
each trajectory and averaged). An utterance's likelihood does not depend on its batch: its probes come from its own
seed (``--seed`` and its id), and ``dopri5`` integrates it alone.

Normalisation Jacobian: the flow models x = (z - m) / s (per channel), so
log p(z) = log p(x) - F * sum_d log s_d; the reported bpd = -log p(z) / (D F ln 2) is that of the
*unnormalised* stage-one latents. Latents are continuous, so this is a differential entropy estimate
(it can be negative); compare models on the same latents only. The text condition uses the MAS
alignment of each utterance (the most likely monotonic alignment), i.e. log p(z | text, A_MAS).

    python -m stage2_flow.likelihood --exp-dir EXP --latents dump/<tag>/dev --data-dir data/dev \\
        [--divergence hutchinson --probes 4 --probe rademacher --solver rk4 --nfe 32 --max-utts 16]

writes ``EXP/likelihood/<set>.json`` (summary) and ``<set>.utt2bpd``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Callable

import torch

from stage2_flow import solvers
from stage2_flow.flow import Generators

LogDensity = Callable[[torch.Tensor], torch.Tensor]


def divergence(v: torch.Tensor, x: torch.Tensor, kind: str = "hutchinson", probes: list[torch.Tensor] | None = None) -> torch.Tensor:
    """div of v(x) (both (B, ...), graph attached). exact: sum_k dv_k/dx_k; hutchinson: mean_k e^T J e."""
    b = x.shape[0]
    if kind == "exact":
        vf = v.reshape(b, -1)
        div = torch.zeros(b, dtype=x.dtype, device=x.device)
        for k in range(vf.shape[1]):
            (grad,) = torch.autograd.grad(vf[:, k].sum(), x, retain_graph=True)
            div = div + grad.reshape(b, -1)[:, k]
        return div
    if kind != "hutchinson":
        raise ValueError(f"divergence must be 'exact' or 'hutchinson', got {kind!r}")
    if not probes:  # the mean over none was a NaN likelihood
        raise ValueError("Hutchinson's estimator needs at least one probe")
    total = torch.zeros(b, dtype=x.dtype, device=x.device)
    for i, eps in enumerate(probes):
        (grad,) = torch.autograd.grad((v * eps).sum(), x, retain_graph=i < len(probes) - 1)
        total = total + (grad * eps).reshape(b, -1).sum(1)
    return total / len(probes)


def make_probes(shape: torch.Size, k: int, dist: str, generator: Generators, mask: torch.Tensor | None, device) -> list[torch.Tensor]:
    """``k`` probe vectors for Hutchinson's estimator, zero where ``mask`` (B, 1, F) is, drawn on the generator's device
    (a CPU generator gives the same probes whatever ``device`` the model runs on) and moved to ``device``.

    With one generator per row, row i's probes are drawn at its own length (masks are prefixes) from generator i
    alone, as they are for the row alone: an utterance's probes do not depend on its batch."""
    if generator is None or isinstance(generator, torch.Generator):
        out = [draw_probe(shape, dist, generator, device) for _ in range(k)]
        return [e * mask for e in out] if mask is not None else out
    if len(generator) != shape[0]:
        raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
    lengths = mask[:, 0].sum(-1).long().tolist() if mask is not None else [shape[-1]] * shape[0]
    out = [torch.zeros(shape, device=device) for _ in range(k)]
    for i, (gen, n) in enumerate(zip(generator, lengths)):
        for e in out:
            e[i, ..., :n] = draw_probe((*shape[1:-1], n), dist, gen, device)
    return out


def draw_probe(shape: tuple[int, ...], dist: str, generator: torch.Generator | None, device) -> torch.Tensor:
    """One Rademacher or Gaussian probe, drawn on the generator's device (else ``device``) and moved to ``device``."""
    draw_on = generator.device if generator is not None else device
    if dist == "rademacher":
        e = torch.randint(0, 2, shape, generator=generator, device=draw_on).float() * 2 - 1
    elif dist == "gaussian":
        e = torch.randn(shape, generator=generator, device=draw_on)
    else:
        raise ValueError(f"probe must be 'rademacher' or 'gaussian', got {dist!r}")
    return e.to(device)


def ode_log_likelihood(
    f: Callable[[float, torch.Tensor], torch.Tensor],
    x1: torch.Tensor,
    log_p0: LogDensity,
    method: str = "rk4",
    nfe: int = 32,
    div: str = "hutchinson",
    probes: int = 1,
    probe: str = "rademacher",
    mask: torch.Tensor | None = None,
    generator: Generators = None,
    rtol: float = 1e-4,
    atol: float = 1e-4,
) -> tuple[torch.Tensor, int]:
    """log p1(x1) per batch item (B,) for the flow dx/dt = f(t, x); integrates [x, a] from t=1 to 0 with
    da/dt = div f, so log p1(x1) = log p0(x0) + a(0). Returns (log p, function evaluations).

    ``dopri5`` (``rtol``, ``atol``) takes its steps by one error norm over all of x1: for results that do not
    depend on the batch, give it one item (:func:`model_log_likelihood` does)."""
    b, shape = x1.shape[0], x1.shape
    n = x1[0].numel()
    eps = make_probes(shape, probes, probe, generator, mask, x1.device) if div == "hutchinson" else None

    def aug(t: float, s: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = s[:, :n].reshape(shape).detach().requires_grad_(True)
            v = f(t, x)
            d = divergence(v, x, div, eps)
        return torch.cat([v.detach().reshape(b, n), d.detach()[:, None]], dim=1)

    s1 = torch.cat([x1.reshape(b, n), torch.zeros(b, 1, dtype=x1.dtype, device=x1.device)], dim=1)
    s0, used = solvers.solve(aug, s1, method, nfe, None, 1.0, 0.0, rtol, atol)
    x0 = s0[:, :n].reshape(shape)
    return log_p0(x0) + s0[:, n], used


def gaussian_log_density(x: torch.Tensor, mean: torch.Tensor | float, sigma: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """sum over non-batch (masked) dims of log N(x; mean, sigma^2). -> (B,)"""
    lp = -0.5 * ((x - mean) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
    if mask is not None:
        lp = lp * mask
    return lp.reshape(x.shape[0], -1).sum(1)


def model_log_likelihood(model, batch: dict, normalizer, nfe: int = 32, solver: str = "rk4", div: str = "hutchinson",
                         probes: int = 1, probe: str = "rademacher", generator: Generators = None, rtol: float = 1e-4,
                         atol: float = 1e-4) -> dict[str, torch.Tensor]:
    """Per-utterance log p(z | text) (nats) and bpd of the *unnormalised* latents. batch from
    collate_tts, moved to the model's device.

    ``generator``: one, or one per utterance (its probes then do not depend on its batch: :func:`make_probes`).
    ``dopri5`` integrates each utterance alone at its own length, as :meth:`~stage2_flow.flow.FlowMatcher.sample`
    does: one error norm over a padded batch would set an utterance's steps, and so its likelihood, by the other
    utterances (and the padding); ``nfe`` is then the most any utterance used. The fixed-step solvers share one time
    grid, so they integrate the batch at once, each utterance as it would be alone."""
    from shared.device import batch_to
    from stage2_flow.model import sequence_mask

    if model.mode != "aligned":
        raise ValueError(f"the likelihood is implemented for the aligned (text-prior) mode, not {model.mode!r}: it conditions "
                         "the flow on the text prior aligned to the latents by MAS")
    model.eval()
    batch = batch_to(batch, next(model.parameters()).device)
    x1, frm = batch["latents"], batch["frm_lens"]
    b, d, n = x1.shape
    mask = sequence_mask(frm, n)
    with torch.no_grad():
        g = model.speaker(batch.get("spk"), batch.get("prompt"), batch.get("prompt_mask"), batch=b, device=x1.device)
        h, mu, _ = model.encode_text(batch["tokens"], batch["tok_lens"], g)
        durations = model.align(mu, x1, batch["tok_lens"], frm)
        mu_frames, text = model.frame_conditions(h, mu, durations, n)
    fl = model.flow

    def rows_log_likelihood(rows: slice, frames: int, gen: Generators) -> tuple[torch.Tensor, int]:
        """log p(x) of the batch's ``rows``, their first ``frames`` frames."""
        m, mu_r, text_r = (None if x is None else x[rows, :, :frames] for x in (mask, mu_frames, text))
        f = fl.velocity_fn(m, mu_r, None if g is None else g[rows], text_r, 0.0)
        mean, sigma = (mu_r, fl.sigma) if fl.prior == "text" else (0.0, 1.0)
        log_p0 = lambda x0: gaussian_log_density(x0, mean, sigma, m)  # noqa: E731
        return ode_log_likelihood(f, x1[rows, :, :frames] * m, log_p0, solver, nfe, div, probes, probe, m, gen, rtol, atol)

    if solver == "dopri5":
        gens = [generator] * b if generator is None or isinstance(generator, torch.Generator) else list(generator)
        each = [rows_log_likelihood(slice(i, i + 1), k, gens[i]) for i, k in enumerate(frm.tolist())]
        logp_x, used = torch.cat([lp for lp, _ in each]), max(k for _, k in each)
    else:
        logp_x, used = rows_log_likelihood(slice(None), n, generator)
    dims = frm.double() * d
    logp_z = logp_x.double() + frm.double() * normalizer.log_abs_det_per_frame()
    return {"logp_z": logp_z, "logp_x": logp_x.double(), "dims": dims, "bpd": -logp_z / (dims * math.log(2)), "nfe": torch.tensor(used)}


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from shared.config import positive_int
    from shared.device import add_device_arg
    from shared.io import read_json, write_json, write_kv
    from shared.text import Vocab
    from stage2_flow.data import PROMPT_SECONDS, LatentNormalizer, TTSDataset, check_model_latents, collate_tts
    from stage2_flow.model import load_trained
    from stage2_flow.flow import utterance_generators

    p = argparse.ArgumentParser(prog="python -m stage2_flow.likelihood", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--latents", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--divergence", default="hutchinson", choices=["hutchinson", "exact"])
    p.add_argument("--probes", type=positive_int, default=4)
    p.add_argument("--probe", default="rademacher", choices=["rademacher", "gaussian"])
    p.add_argument("--solver", default="rk4", choices=["euler", "midpoint", "heun", "rk4", "dopri5"])
    p.add_argument("--nfe", type=positive_int, default=32, help="function evaluations of a fixed-step solver (rk4: 4 a "
                   "step); dopri5 chooses its own. The summary records the most any batch used")
    p.add_argument("--max-utts", type=positive_int, default=None)
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="summary JSON (default EXP/likelihood/<set>.json)")
    p.add_argument("--num-threads", type=int, default=2)
    add_device_arg(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.num_threads)
    exp = Path(args.exp_dir)
    check_model_latents(exp, args.latents, "--latents")  # another codec's latents would be scored as this one's
    model, cfg = load_trained(exp)
    model.requires_grad_(False).to(args.device)
    s1 = read_json(exp / "stage1.json")
    norm = LatentNormalizer.load(exp / "latent_stats.json")
    prompt = tuple(cfg.get("data", {}).get("prompt_seconds", PROMPT_SECONDS)) if cfg["model"].get("speaker", {}).get("use_prompt") else None
    ds = TTSDataset(args.data_dir, args.latents, Vocab.load(exp / "tokens.txt"), norm, (exp / "speakers.txt").read_text().split(),
                    s1["sample_rate"] / s1["hop_length"], prompt_seconds=prompt)
    idx = list(range(len(ds)))[: args.max_utts]
    utt2bpd, tot_logp, tot_dims, nfe_used, t0 = {}, 0.0, 0.0, 0, time.time()
    for k in tqdm(range(0, len(idx), args.batch_size), desc="likelihood", unit="batch"):
        items = [ds[(i, args.seed + i)] for i in idx[k : k + args.batch_size]]
        gens = utterance_generators(args.seed, [it["utt"] for it in items])  # its probes, whatever its batch
        res = model_log_likelihood(model, collate_tts(items), norm, args.nfe, args.solver, args.divergence, args.probes, args.probe, gens)
        for it, bpd in zip(items, res["bpd"].tolist()):
            utt2bpd[it["utt"]] = f"{bpd:.5f}"
        nfe_used = max(nfe_used, int(res["nfe"]))
        tot_logp += float(res["logp_z"].sum())
        tot_dims += float(res["dims"].sum())
    name = Path(args.data_dir).name
    out = Path(args.out) if args.out else exp / "likelihood" / f"{name}.json"
    summary = {"bpd": -tot_logp / (tot_dims * math.log(2)), "nats_per_dim": -tot_logp / tot_dims, "utts": len(utt2bpd),
               "divergence": args.divergence, "probes": args.probes, "probe": args.probe, "solver": args.solver, "nfe": nfe_used,
               "nfe_requested": args.nfe,
               "seconds": round(time.time() - t0, 1), "note": "bpd of unnormalised stage-one latents (continuous density), MAS alignment"}
    write_json(out, summary)
    write_kv(out.with_suffix(".utt2bpd"), utt2bpd)
    print(f"{name}: {summary['bpd']:.4f} bits/dim over {len(utt2bpd)} utterances -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
