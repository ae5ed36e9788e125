"""The likelihood estimator against a linear flow whose density is known in closed form; an utterance's likelihood under
a tiny untrained model does not depend on its batch."""

from __future__ import annotations

import math

import torch

from stage2_flow.data import LatentNormalizer, collate_tts
from stage2_flow.likelihood import gaussian_log_density, model_log_likelihood, ode_log_likelihood
from stage2_flow.model import FlowTTS


def linear_case(seed: int = 0, n: int = 6):
    g = torch.Generator().manual_seed(seed)
    w = 0.5 * torch.randn(n, n, generator=g, dtype=torch.float64)
    mean0 = torch.randn(n, generator=g, dtype=torch.float64)
    sigma0 = 0.7
    a = torch.linalg.matrix_exp(w)  # x1 = A x0 for dx/dt = W x
    dist1 = torch.distributions.MultivariateNormal(a @ mean0, covariance_matrix=sigma0**2 * a @ a.T)
    x1 = dist1.sample((5,))
    f = lambda t, x: x @ w.T  # noqa: E731
    log_p0 = lambda x0: gaussian_log_density(x0, mean0, sigma0)  # noqa: E731
    return f, x1, log_p0, dist1.log_prob(x1)


def test_exact_divergence_matches_closed_form():
    f, x1, log_p0, truth = linear_case()
    logp, nfe = ode_log_likelihood(f, x1, log_p0, "rk4", 80, div="exact")
    assert nfe == 80
    assert torch.allclose(logp, truth, atol=1e-6)


def test_hutchinson_within_monte_carlo_error():
    f, x1, log_p0, truth = linear_case(1)
    g = torch.Generator().manual_seed(0)
    estimates = torch.stack([ode_log_likelihood(f, x1, log_p0, "rk4", 40, "hutchinson", 1, "gaussian", generator=g)[0] for _ in range(60)])
    mean, se = estimates.mean(0), estimates.std(0) / math.sqrt(estimates.shape[0])
    assert torch.all((mean - truth).abs() < 4 * se + 1e-3), (mean, truth, se)
    assert float(estimates.std(0).min()) > 0  # genuinely stochastic for a non-diagonal Jacobian
    # several probes averaged reduce the variance
    many = torch.stack([ode_log_likelihood(f, x1, log_p0, "rk4", 40, "hutchinson", 8, "gaussian", generator=g)[0] for _ in range(20)])
    assert float(many.std(0).mean()) < float(estimates.std(0).mean())
    # Rademacher probes with the adaptive solver
    logp, _ = ode_log_likelihood(f, x1, log_p0, "dopri5", div="hutchinson", probes=16, probe="rademacher", generator=g)
    assert torch.allclose(logp, truth, atol=1.0)


def test_normalisation_jacobian():
    mean, std = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])
    norm = LatentNormalizer(mean, std)
    z = torch.randn(1, 2, 7)
    x = norm.normalize(z)
    # density of x ~ N(0, I)  ->  density of z ~ N(mean, std^2)
    logp_z = gaussian_log_density(x, 0.0, 1.0) + 7 * norm.log_abs_det_per_frame()
    direct = torch.distributions.Normal(mean[None, :, None], std[None, :, None]).log_prob(z).sum()
    assert torch.allclose(logp_z, direct, atol=1e-5)
    assert torch.allclose(norm.denormalize(x), z, atol=1e-6)


D = 2


def tiny_model() -> FlowTTS:
    torch.manual_seed(0)
    m = FlowTTS(dict(latent_dim=D, n_vocab=12, text_encoder=dict(hidden=16, conv_layers=1, attn_layers=1, heads=2, dropout=0.0),
                     duration_predictor=dict(channels=16, layers=1), estimator=dict(hidden=16, layers=2, dilations=[1, 2], kernel=3)))
    torch.nn.init.normal_(m.flow.estimator.out.weight, std=2.0)  # zero at init: a field of zeros
    return m


def utterances() -> list[dict]:
    """Three utterances of very different lengths and scales, as collate_tts takes them."""
    g = torch.Generator().manual_seed(0)
    shapes = [(3, 8, 1.0), (6, 20, 8.0), (2, 4, 0.1)]  # tokens, frames, scale
    return [{"utt": f"u{i}", "tokens": torch.randint(1, 12, (n_tok,), generator=g), "spk": -1,
             "latents": scale * torch.randn(D, n_frm, generator=g)} for i, (n_tok, n_frm, scale) in enumerate(shapes)]


def test_an_utterances_likelihood_does_not_depend_on_its_batch_dopri5():
    """dopri5 took its steps by one error norm over the padded batch: at a loose tolerance an utterance's likelihood
    and step count followed the other utterances (here 8 times its scale, or a tenth): 2% off. Each is now integrated
    alone."""
    m, items, norm = tiny_model(), utterances(), LatentNormalizer([0.0] * D, [1.0] * D)
    kw = dict(solver="dopri5", div="exact", rtol=1e-2, atol=1e-2)
    together = model_log_likelihood(m, collate_tts(items), norm, **kw)
    alone = [model_log_likelihood(m, collate_tts([it]), norm, **kw) for it in items]
    assert torch.allclose(together["logp_z"], torch.cat([a["logp_z"] for a in alone]), rtol=1e-4, atol=0)
    nfe = [int(a["nfe"]) for a in alone]
    assert len(set(nfe)) > 1 and int(together["nfe"]) == max(nfe)  # each its own steps; the batch reports the most


def test_hutchinson_probes_of_one_generator_per_utterance_do_not_depend_on_its_batch():
    """One generator for the batch drew probes of the batch's shape: an utterance's depended on the others'
    lengths and its place. One per utterance draws each at its own length; the CLI seeds them by utterance id."""
    m, items, norm = tiny_model(), utterances(), LatentNormalizer([0.0] * D, [1.0] * D)

    def gens(idx: list[int]) -> list[torch.Generator]:
        return [torch.Generator().manual_seed(100 + i) for i in idx]

    for solver in ("rk4", "dopri5"):
        kw = dict(nfe=8, solver=solver, div="hutchinson", probes=2, probe="rademacher")
        together = model_log_likelihood(m, collate_tts(items), norm, generator=gens([0, 1, 2]), **kw)["logp_z"]
        alone = torch.cat([model_log_likelihood(m, collate_tts([it]), norm, generator=gens([i]), **kw)["logp_z"] for i, it in enumerate(items)])
        assert torch.allclose(together, alone, rtol=1e-4, atol=0), solver
