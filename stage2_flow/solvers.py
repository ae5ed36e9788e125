"""ODE solvers for sampling (x0 -> x1) and likelihood (x1 -> x0): fixed-step Euler, midpoint, Heun
and RK4 on an arbitrary time grid, and an adaptive Dormand-Prince 5(4) solver.

A velocity field is ``f(t: float, x: Tensor) -> Tensor`` (same shape as x). Grids may run backwards.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

Field = Callable[[float, torch.Tensor], torch.Tensor]

EVALS_PER_STEP = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
SWAY_MAX = 1.0 / (math.pi / 2 - 1)  # the largest sway whose warp is monotone on [0, 1] (its slope 0 at t = 1)


def time_grid(n_steps: int, sway: float | None = None, t0: float = 0.0, t1: float = 1.0) -> torch.Tensor:
    """Uniform grid of n_steps+1 points, optionally sway-warped (F5-TTS).

    Sway maps u -> u + s (cos(pi u / 2) - 1 + u); s < 0 puts more steps near t = 0 (F5 default -1). The warp is
    monotone on [0, 1] for -1 <= s <= 1 / (pi / 2 - 1) (about 1.75); a sway whose grid leaves [0, 1] or runs
    backwards (times before 0 or after 1, steps of negative length) is a ValueError naming it.
    """
    u = torch.linspace(0.0, 1.0, n_steps + 1, dtype=torch.float64)
    if sway is not None and sway != 0.0:
        u = u + sway * (torch.cos(math.pi / 2 * u) - 1 + u)
        eps = 1e-9  # cos(pi / 2) is 6e-17, not 0
        ok = (u >= -eps) & (u <= 1 + eps) & torch.cat([torch.ones(1, dtype=torch.bool), torch.diff(u) > 0])
        if not bool(ok.all()):
            k = int((~ok).nonzero()[0])
            where = ", ".join(f"t[{i}] = {float(u[i]):.4g}" for i in sorted({max(k - 1, 0), k}))
            raise ValueError(f"sway {sway}: its warped time grid of {n_steps} steps is not increasing within [0, 1] ({where}); "
                             f"the warp is monotone for -1 <= sway <= {SWAY_MAX:.3f} (F5-TTS uses -1)")
    return t0 + (t1 - t0) * u


def steps_for_nfe(method: str, nfe: int) -> int:
    """Number of steps a fixed-step method takes for a budget of ``nfe`` function evaluations."""
    if method not in EVALS_PER_STEP:
        raise ValueError(f"unknown fixed-step solver {method!r}; choose from {sorted(EVALS_PER_STEP)} or 'dopri5'")
    if nfe < 1:  # it was taken as one step, and recorded as asked
        raise ValueError(f"nfe {nfe}: a fixed-step solver needs at least one function evaluation")
    return max(1, nfe // EVALS_PER_STEP[method])


def _step(f: Field, method: str, t: float, dt: float, x: torch.Tensor) -> torch.Tensor:
    if method == "euler":
        return x + dt * f(t, x)
    if method == "midpoint":
        k1 = f(t, x)
        return x + dt * f(t + dt / 2, x + dt / 2 * k1)
    if method == "heun":
        k1 = f(t, x)
        k2 = f(t + dt, x + dt * k1)
        return x + dt / 2 * (k1 + k2)
    if method == "rk4":
        k1 = f(t, x)
        k2 = f(t + dt / 2, x + dt / 2 * k1)
        k3 = f(t + dt / 2, x + dt / 2 * k2)
        k4 = f(t + dt, x + dt * k3)
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    raise ValueError(f"unknown solver {method!r}")


def odeint_fixed(f: Field, x: torch.Tensor, grid: torch.Tensor, method: str = "euler") -> torch.Tensor:
    """Integrate along ``grid`` (K+1 times) with a fixed-step method; returns x at grid[-1]."""
    for k in range(len(grid) - 1):
        t, t_next = float(grid[k]), float(grid[k + 1])
        x = _step(f, method, t, t_next - t, x)
    return x


# Dormand-Prince 5(4) tableau
_C = [0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0]
_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
_B5 = [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0]
_B4 = [5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40]
_E = [b5 - b4 for b5, b4 in zip(_B5, _B4)]  # x5 - x4 = h sum_i E_i k_i


def odeint_dopri5(
    f: Field,
    x: torch.Tensor,
    t0: float = 0.0,
    t1: float = 1.0,
    rtol: float = 1e-4,
    atol: float = 1e-4,
    h0: float | None = None,
    max_steps: int = 10000,
) -> tuple[torch.Tensor, int]:
    """Adaptive Dormand-Prince 5(4) with FSAL and a standard PI-free step controller.

    Returns (x(t1), number of function evaluations).
    """
    direction = 1.0 if t1 >= t0 else -1.0
    span = abs(t1 - t0)
    h = min(span, h0 if h0 is not None else 0.1 * span) * direction
    t, nfe = t0, 0
    k1 = f(t, x)
    nfe += 1
    for _ in range(max_steps):
        if direction * (t1 - t) <= 1e-12:
            return x, nfe
        if direction * (t + h - t1) > 0:
            h = t1 - t
        ks = [k1]
        for i in range(1, 7):
            xi = x + h * sum(a * k for a, k in zip(_A[i], ks) if a != 0.0)
            ks.append(f(t + _C[i] * h, xi))
        nfe += 6
        x5 = x + h * sum(b * k for b, k in zip(_B5, ks) if b != 0.0)
        # the error estimate x5 - x4 from the stages' differences, in float64: as the difference of x5 and x4
        # (both ~|x|, 1e-4 apart) float32 rounding made it noisy at 1e-3, and the step sizes with it, so that
        # float rounding in the field (another batch shape, another device) moved the solution by 1e-4
        dx = h * sum(e * k.double() for e, k in zip(_E, ks))
        scale = atol + rtol * torch.maximum(x.abs(), x5.abs()).double()
        err = float(torch.sqrt(torch.mean((dx / scale) ** 2)))
        if err <= 1.0:
            t, x, k1 = t + h, x5, ks[6]
        factor = 0.9 * (1.0 / max(err, 1e-10)) ** 0.2
        h = h * min(5.0, max(0.2, factor))
    raise RuntimeError(f"dopri5 did not reach t1={t1} within {max_steps} steps (t={t})")


def solve(
    f: Field,
    x: torch.Tensor,
    method: str = "euler",
    nfe: int = 8,
    sway: float | None = None,
    t0: float = 0.0,
    t1: float = 1.0,
    rtol: float = 1e-4,
    atol: float = 1e-4,
) -> tuple[torch.Tensor, int]:
    """Integrate from t0 to t1. Fixed-step methods use ``nfe`` evaluations rounded down to whole steps, at
    least one step (rk4 at nfe 2 takes 4); every method returns how many it used (``dopri5`` ignores nfe)."""
    if method == "dopri5":
        return odeint_dopri5(f, x, t0, t1, rtol=rtol, atol=atol)
    n = steps_for_nfe(method, nfe)
    grid = time_grid(n, sway, t0, t1)
    return odeint_fixed(f, x, grid, method), n * EVALS_PER_STEP[method]
