"""The likelihood estimator against a linear flow whose density is known in closed form."""

from __future__ import annotations

import math

import torch

from stage2_flow.data import LatentNormalizer
from stage2_flow.likelihood import gaussian_log_density, ode_log_likelihood


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
