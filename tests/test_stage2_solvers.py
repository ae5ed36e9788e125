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
