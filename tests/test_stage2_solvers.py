"""ODE solvers: order of accuracy on an ODE with a known solution, adaptive accuracy, time grids."""

from __future__ import annotations

import math

import pytest
import torch

from stage2_flow import solvers


def field(t: float, x: torch.Tensor) -> torch.Tensor:
    return x * math.cos(t)  # x(t) = x0 exp(sin t)


def exact(x0: torch.Tensor, t: float) -> torch.Tensor:
    return x0 * math.exp(math.sin(t))


@pytest.mark.parametrize("method,order", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_order_of_accuracy(method, order):
    x0 = torch.tensor([1.0, -0.5], dtype=torch.float64)
    errs = []
    for n in (8, 16, 32):
        x1 = solvers.odeint_fixed(field, x0, solvers.time_grid(n), method)
        errs.append(float((x1 - exact(x0, 1.0)).abs().max()))
    ratios = [errs[i] / errs[i + 1] for i in range(2)]
    for r in ratios:
        assert 2 ** order * 0.75 < r < 2 ** order * 1.35, (method, errs, ratios)


def test_backwards_integration_inverts():
    x0 = torch.tensor([0.3], dtype=torch.float64)
    x1 = solvers.odeint_fixed(field, x0, solvers.time_grid(50), "rk4")
    back = solvers.odeint_fixed(field, x1, solvers.time_grid(50, t0=1.0, t1=0.0), "rk4")
    assert torch.allclose(back, x0, atol=1e-9)


def test_dopri5_adaptive():
    x0 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    x1, nfe = solvers.odeint_dopri5(field, x0, rtol=1e-7, atol=1e-9)
    assert torch.allclose(x1, exact(x0, 1.0), atol=1e-6)
    _, nfe_loose = solvers.odeint_dopri5(field, x0, rtol=1e-3, atol=1e-3)
    assert nfe_loose < nfe
    back, _ = solvers.solve(field, x1, "dopri5", t0=1.0, t1=0.0, rtol=1e-7, atol=1e-9)
    assert torch.allclose(back, x0, atol=1e-6)


def test_nfe_budget_and_sway_grid():
    assert solvers.steps_for_nfe("rk4", 8) == 2 and solvers.steps_for_nfe("euler", 8) == 8 and solvers.steps_for_nfe("heun", 1) == 1
    _, used = solvers.solve(field, torch.ones(1), "midpoint", nfe=8)
    assert used == 8
    g = solvers.time_grid(8, sway=-1.0)
    assert float(g[0]) == 0.0 and float(g[-1]) == pytest.approx(1.0)
    assert torch.all(torch.diff(g) > 0)
    assert float(g[1]) < 1 / 8  # sway < 0 puts small steps near t = 0
    with pytest.raises(ValueError, match="unknown"):
        solvers.steps_for_nfe("rk45", 4)


def test_dopri5_steps_do_not_follow_float_rounding():
    """The error estimate was x5 - x4 in float32, two numbers ~|x| about 1e-4 apart: noisy at 1e-3, so a change of the
    field at float rounding (another batch shape, another device) moved the steps and the solution by ~1e-4; from the
    stages' differences in float64 it moves the solution by about the rounding itself."""
    torch.manual_seed(0)
    w = torch.randn(8, 8) * 0.8

    def f(t: float, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(torch.einsum("ij,bjf->bif", w, x)) * (1 + 3 * t)

    x0 = torch.randn(1, 8, 18)
    a, n = solvers.odeint_dopri5(f, x0)
    b, _ = solvers.odeint_dopri5(lambda t, x: f(t, x) * (1 + 1e-7), x0)
    assert n > 20 and float((a - b).abs().max()) < 1e-5


@pytest.mark.parametrize("sway,steps", [(-2.0, 4), (3.0, 4), (-1.05, 32), (1.8, 32), (float("nan"), 4)])
def test_a_sway_whose_grid_leaves_zero_one_is_an_error(sway, steps):
    """Outside -1 <= sway <= 1.75 the warp is not monotone: times before 0 or after 1 (sway -2 gave t = -0.098 at 4
    steps), integrated silently before."""
    with pytest.raises(ValueError, match=f"sway {sway}"):
        solvers.time_grid(steps, sway)
    with pytest.raises(ValueError, match="sway"):
        solvers.solve(field, torch.ones(1), "euler", nfe=steps, sway=sway)


def test_the_sway_range_is_monotone_on_every_grid():
    for sway in (-1.0, -0.5, 0.5, 1.0, solvers.SWAY_MAX - 1e-6):
        for steps in (1, 2, 4, 32, 256):
            g = solvers.time_grid(steps, sway)
            assert torch.all(torch.diff(g) > 0) and float(g[0]) == 0.0 and abs(float(g[-1]) - 1.0) < 1e-9
