"""Procedural physical simulators (pure JAX, integrated with diffrax).

Every simulator is a vector field ``f(t, y, args)`` plus a ``simulate_*`` function that
integrates it with :func:`integrate` (diffrax ``diffeqsolve``, fixed step or adaptive) and
returns the trajectory sampled at the requested times. Nothing is downloaded.
:func:`fixed_step_rollout` integrates learned fields (APHYNITY, LEADS, the separation model's
ODE) with equal steps per observation interval, differentiable in forward and reverse mode.

- ``wave``: the WaveEq data set of Donà et al. (ICLR 2021): ``w_tt = c² Δw + f(t) 1_disk``,
  4th-order Laplacian on the interior, zero on a two-cell border, RK4 at ``dt = 1e-3``.
- ``damped_pendulum``: ``θ'' + ω0² sin θ + α θ' = 0`` (APHYNITY).
- ``fitzhugh_nagumo``: reaction–diffusion on a periodic 32×32 grid over ``[-1, 1]²``.
- ``damped_wave``: ``w_tt = c² Δw − k w_t`` on a periodic grid (APHYNITY).
- ``heat``: ``u_t = D Δu`` with zero Dirichlet boundary (closed form by separation).
- ``burgers``: viscous Burgers ``u_t + u u_x = ν u_xx`` on a periodic 1-D grid.
- ``lotka_volterra``: ``ẋ = αx − βxy``, ``ẏ = δxy − γy`` (LEADS, CoDA).
- ``gray_scott``: Gray–Scott reaction–diffusion on a periodic grid, 9-point Laplacian (LEADS).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ClassVar

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "RK4",
    "SOLVERS",
    "get_solver",
    "integrate",
    "FIXED_STEP",
    "fixed_steps",
    "fixed_step_rollout",
    "wave_laplacian",
    "periodic_laplacian",
    "dirichlet_laplacian",
    "wave_vector_field",
    "simulate_wave",
    "damped_pendulum",
    "pendulum_energy",
    "simulate_pendulum",
    "fitzhugh_nagumo",
    "simulate_fitzhugh_nagumo",
    "damped_wave",
    "simulate_damped_wave",
    "heat",
    "simulate_heat",
    "heat_mode",
    "burgers",
    "simulate_burgers",
    "lotka_volterra",
    "lotka_volterra_invariant",
    "simulate_lotka_volterra",
    "periodic_laplacian_9",
    "gray_scott",
    "gray_scott_blocks",
    "simulate_gray_scott",
]


# ----------------------------------------------------------------------------- solvers

_rk4_tableau = diffrax.ButcherTableau(
    a_lower=(
        np.array([0.5]),
        np.array([0.0, 0.5]),
        np.array([0.0, 0.0, 1.0]),
    ),
    b_sol=np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    # Fixed-step only: the "error" is RK4 minus explicit Euler (sums to zero as diffrax
    # requires). It is never used with a ConstantStepSize controller.
    b_error=np.array([1 / 6 - 1.0, 1 / 3, 1 / 3, 1 / 6]),
    c=np.array([0.5, 0.5, 1.0]),
)


class RK4(diffrax.AbstractERK):
    """The classical 4-stage, 4th-order Runge–Kutta method (fixed step)."""

    tableau: ClassVar[diffrax.ButcherTableau] = _rk4_tableau
    interpolation_cls: ClassVar[Callable[..., diffrax.ThirdOrderHermitePolynomialInterpolation]] = (
        diffrax.ThirdOrderHermitePolynomialInterpolation.from_k
    )

    def order(self, terms):
        del terms
        return 4


SOLVERS = {
    "euler": diffrax.Euler,
    "heun": diffrax.Heun,
    "midpoint": diffrax.Midpoint,
    "rk4": RK4,
    "bosh3": diffrax.Bosh3,
    "dopri5": diffrax.Dopri5,
    "tsit5": diffrax.Tsit5,
}
ADAPTIVE = ("bosh3", "dopri5", "tsit5")


def get_solver(name: str) -> diffrax.AbstractSolver:
    if name not in SOLVERS:
        raise ValueError(f"unknown ODE solver {name!r}; valid choices: {sorted(SOLVERS)}")
    return SOLVERS[name]()


def integrate(
    vector_field: Callable,
    y0,
    ts,
    *,
    dt: float,
    solver: str = "rk4",
    args=None,
    adaptive: bool | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    max_steps: int | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    save_fn: Callable | None = None,
):
    """Solves ``dy/dt = vector_field(t, y, args)`` from ``ts[0]`` and returns ``y(ts)``.

    Fixed step ``dt`` for non-adaptive solvers; adaptive solvers (``dopri5``, ``tsit5``,
    ``bosh3``) use a PID controller with ``rtol``/``atol`` and ``dt`` as the first step.
    The leading axis of every output leaf is ``len(ts)``.
    """
    solver_obj = get_solver(solver)
    if adaptive is None:
        adaptive = solver in ADAPTIVE
    if adaptive and solver not in ADAPTIVE:
        raise ValueError(
            f"solver {solver!r} has no error estimate; adaptive choices: {list(ADAPTIVE)}"
        )
    ts = jnp.asarray(ts)
    t0, t1 = ts[0], ts[-1]
    if adaptive:
        controller = diffrax.PIDController(rtol=rtol, atol=atol)
        max_steps = max_steps or 4096
    else:
        controller = diffrax.ConstantStepSize()
        if max_steps is None:
            span = (
                float(np.asarray(ts[-1] - ts[0])) if not isinstance(ts, jax.core.Tracer) else None
            )
            max_steps = int(np.ceil(span / dt)) + 2 if span is not None else 4096
    saveat = diffrax.SaveAt(ts=ts, fn=save_fn) if save_fn is not None else diffrax.SaveAt(ts=ts)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        solver_obj,
        t0=t0,
        t1=t1,
        dt0=dt,
        y0=y0,
        args=args,
        saveat=saveat,
        stepsize_controller=controller,
        max_steps=max_steps,
        adjoint=adjoint if adjoint is not None else diffrax.RecursiveCheckpointAdjoint(),
    )
    return sol.ys


# Explicit Runge–Kutta stages in diffrax's "bounded" loop (scans) rather than its default
# checkpointed loop, a custom VJP: forward mode (`jax.jvp`, `jax.hessian`) then runs through
# `fixed_steps` and `fixed_step_rollout`. Training steps cost the same or less (bounded vs
# checkpointed, one process, alternating, Intel Xeon, 2 cores: LEADS Lotka–Volterra 8.96 vs
# 9.01 ms, Gray–Scott width 16 343 vs 346 ms, width 64 1.79 vs 1.81 s) and compile faster.
FIXED_STEP = ("euler", "heun", "midpoint", "rk4")


@functools.cache
def _fixed_step_solver(name: str) -> diffrax.AbstractSolver:
    if name not in FIXED_STEP:
        raise ValueError(f"unknown fixed-step solver {name!r}; valid choices: {list(FIXED_STEP)}")
    if name == "euler":
        return diffrax.Euler()
    return SOLVERS[name](scan_kind="bounded")


def fixed_steps(vector_field: Callable, y, t0, t1, n: int, args=None, solver: str = "rk4"):
    """``n`` equal steps of a fixed-step solver (`FIXED_STEP`, diffrax's tableaus and ``step``)
    of ``dy/dt = vector_field(t, y, args)`` from t0 to t1 -> y(t1). Without diffrax's solve
    loop, so that a scan over observation intervals compiles as a plain sequence of stages;
    differentiable in both modes."""
    stepper = _fixed_step_solver(solver)
    term = diffrax.ODETerm(vector_field)
    dt = (t1 - t0) / n
    for i in range(n):
        ta = t0 + i * dt
        tb = t1 if i == n - 1 else t0 + (i + 1) * dt
        y = stepper.step(term, ta, tb, y, args, None, made_jump=False)[0]
    return y


def fixed_step_rollout(
    vector_field: Callable, y0, ts, steps_per_interval: int, args=None, solver: str = "rk4"
):
    """y(ts) by `fixed_steps` over each interval [ts[k], ts[k+1]] (``steps_per_interval``
    equal steps), the intervals in a `lax.scan` whose body the backward pass recomputes
    (`jax.checkpoint`: residuals of one interval at a time, not of the whole trajectory:
    discretise-then-optimise, as diffrax's `RecursiveCheckpointAdjoint`).
    y0 [*state] (any pytree) -> [len(ts), *state]. Forward and reverse mode both work."""
    ts = jnp.asarray(ts)

    @jax.checkpoint
    def interval(y, k):
        y = fixed_steps(vector_field, y, ts[k], ts[k + 1], steps_per_interval, args, solver)
        return y, y

    ys = jax.lax.scan(interval, y0, jnp.arange(ts.shape[0] - 1))[1]
    return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b], 0), y0, ys)


# ----------------------------------------------------------------------------- stencils

_FOURTH_ORDER = (-1 / 12, 4 / 3, -5 / 2, 4 / 3, -1 / 12)


def wave_laplacian(w):
    """4th-order Laplacian (dx = 1) on the interior, zero on the two-cell border.

    w: [..., H, W] -> [..., H, W]
    """
    h, wd = w.shape[-2:]
    inner = jnp.zeros(w.shape[:-2] + (h - 4, wd - 4), w.dtype)
    for k, coef in enumerate(_FOURTH_ORDER):
        inner = inner + coef * w[..., k : h - 4 + k, 2:-2]  # vertical axis
        inner = inner + coef * w[..., 2:-2, k : wd - 4 + k]  # horizontal axis
    pad = [(0, 0)] * (w.ndim - 2) + [(2, 2), (2, 2)]
    return jnp.pad(inner, pad)


def periodic_laplacian(u, dx: float = 1.0):
    """5-point Laplacian with periodic boundaries. u: [..., H, W] -> [..., H, W]."""
    return (
        jnp.roll(u, 1, -1) + jnp.roll(u, -1, -1) + jnp.roll(u, 1, -2) + jnp.roll(u, -1, -2) - 4 * u
    ) / dx**2


def dirichlet_laplacian(u, dx: float = 1.0):
    """5-point Laplacian with zero (Dirichlet) values outside the grid. u: [..., H, W]."""
    pad = [(0, 0)] * (u.ndim - 2) + [(1, 1), (1, 1)]
    p = jnp.pad(u, pad)
    return (
        p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:] - 4 * u
    ) / dx**2


# ----------------------------------------------------------------------------- WaveEq


def _disk(size: int, radius2: float):
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    c = size // 2
    return ((i - c) ** 2 + (j - c) ** 2 < radius2).astype(np.float32)  # [H, W]


def wave_vector_field(t, y, args):
    """First-order form of ``w_tt = c² Δw + f0 exp(-20 t) 1_disk``.

    y = (w, w_t), each [H, W]; args = (c, f0, disk [H, W]).
    """
    w, v = y
    c, f0, disk = args
    return v, c**2 * wave_laplacian(w) + f0 * jnp.exp(-20.0 * t) * disk


def simulate_wave(
    c,
    f0,
    *,
    size: int = 64,
    num_frames: int = 300,
    dt: float = 1e-3,
    radius2: float = 25.0,
    solver: str = "rk4",
):
    """One WaveEq sequence from a zero initial state: returns w at t = k·dt, k < num_frames.

    c, f0: scalars (vmap over them for many sequences). Returns [num_frames, size, size].
    """
    dtype = jnp.result_type(float)  # float64 under jax_enable_x64, else float32
    disk = jnp.asarray(_disk(size, radius2), dtype)
    zeros = jnp.zeros((size, size), dtype)
    ts = jnp.arange(num_frames, dtype=dtype) * dt
    return integrate(
        wave_vector_field,
        (zeros, zeros),
        ts,
        dt=dt,
        solver=solver,
        args=(c, f0, disk),
        max_steps=num_frames + 1,
        save_fn=lambda t, y, args: y[0],
    )


# ----------------------------------------------------------------------------- pendulum


def damped_pendulum(t, y, args):
    """``θ'' + ω0² sin θ + α θ' = 0``; y = [θ, θ'] ([..., 2]), args = (ω0, α)."""
    del t
    omega0, alpha = args
    theta, dtheta = y[..., 0], y[..., 1]
    return jnp.stack([dtheta, -(omega0**2) * jnp.sin(theta) - alpha * dtheta], -1)


def pendulum_energy(y, omega0):
    """Mechanical energy ``½θ'² + ω0²(1 − cos θ)`` (per unit m l²). y: [..., 2] -> [...]."""
    return 0.5 * y[..., 1] ** 2 + omega0**2 * (1 - jnp.cos(y[..., 0]))


def simulate_pendulum(
    y0,
    ts,
    *,
    omega0: float = 2 * np.pi / 12,
    alpha: float = 0.2,
    dt: float = 0.01,
    solver: str = "rk4",
):
    """y0: [2] or [B, 2]; ts: [T] -> [T, ..., 2]."""
    return integrate(
        damped_pendulum, jnp.asarray(y0), ts, dt=dt, solver=solver, args=(omega0, alpha)
    )


# ----------------------------------------------------------------------------- reaction-diffusion


def fitzhugh_nagumo(t, y, args):
    """FitzHugh–Nagumo on a periodic grid.

    ``u_t = aΔu + u − u³ − k − v``, ``v_t = bΔv + u − v``; y = [..., 2, H, W]; args = (a, b, k, dx).
    """
    del t
    a, b, k, dx = args
    u, v = y[..., 0, :, :], y[..., 1, :, :]
    du = a * periodic_laplacian(u, dx) + u - u**3 - k - v
    dv = b * periodic_laplacian(v, dx) + u - v
    return jnp.stack([du, dv], -3)


def simulate_fitzhugh_nagumo(
    y0,
    ts,
    *,
    a: float = 1e-3,
    b: float = 5e-3,
    k: float = 5e-3,
    dt: float = 0.01,
    solver: str = "rk4",
):
    """y0: [..., 2, H, W] on ``[-1, 1]²`` (dx = 2 / H); ts: [T] -> [T, ..., 2, H, W]."""
    y0 = jnp.asarray(y0)
    dx = 2.0 / y0.shape[-1]
    return integrate(fitzhugh_nagumo, y0, ts, dt=dt, solver=solver, args=(a, b, k, dx))


# ----------------------------------------------------------------------------- damped wave


def damped_wave(t, y, args):
    """``w_tt = c² Δw − k w_t`` on a periodic grid; y = [..., 2, H, W] (w, w_t); args = (c, k, dx)."""
    del t
    c, k, dx = args
    w, v = y[..., 0, :, :], y[..., 1, :, :]
    return jnp.stack([v, c**2 * periodic_laplacian(w, dx) - k * v], -3)


def simulate_damped_wave(
    y0,
    ts,
    *,
    c: float = 1.0,
    k: float = 0.5,
    dx: float = 1.0,
    dt: float = 0.05,
    solver: str = "rk4",
):
    """y0: [..., 2, H, W]; ts: [T] -> [T, ..., 2, H, W]."""
    return integrate(damped_wave, jnp.asarray(y0), ts, dt=dt, solver=solver, args=(c, k, dx))


# ----------------------------------------------------------------------------- heat


def heat(t, u, args):
    """``u_t = D Δu`` with zero Dirichlet boundary; u: [..., H, W]; args = (D, dx)."""
    del t
    diffusivity, dx = args
    return diffusivity * dirichlet_laplacian(u, dx)


def heat_mode(m: int, n: int, size: int, length: float = 1.0):
    """Separable eigenmode ``sin(mπx/L) sin(nπy/L)`` on the interior grid points.

    Returns (mode [size, size], continuous decay rate π²(m²+n²)/L², discrete decay rate of the
    5-point Laplacian). The grid has ``size`` interior points, dx = L / (size + 1).
    """
    dx = length / (size + 1)
    x = dx * np.arange(1, size + 1)
    mode = np.outer(np.sin(m * np.pi * x / length), np.sin(n * np.pi * x / length))
    rate = np.pi**2 * (m**2 + n**2) / length**2
    rate_discrete = (
        4
        / dx**2
        * (np.sin(m * np.pi * dx / (2 * length)) ** 2 + np.sin(n * np.pi * dx / (2 * length)) ** 2)
    )
    return mode, rate, rate_discrete


def simulate_heat(
    u0, ts, *, diffusivity: float = 1.0, dx: float = 1.0, dt: float = 0.01, solver: str = "rk4"
):
    """u0: [..., H, W]; ts: [T] -> [T, ..., H, W]."""
    return integrate(heat, jnp.asarray(u0), ts, dt=dt, solver=solver, args=(diffusivity, dx))


# ----------------------------------------------------------------------------- Burgers


def burgers(t, u, args):
    """Viscous Burgers in conservative form, periodic 1-D grid; u: [..., N]; args = (ν, dx).

    ``u_t = −(u²/2)_x + ν u_xx`` with centred differences.
    """
    del t
    nu, dx = args
    flux = 0.5 * u**2
    adv = (jnp.roll(flux, -1, -1) - jnp.roll(flux, 1, -1)) / (2 * dx)
    diff = (jnp.roll(u, -1, -1) - 2 * u + jnp.roll(u, 1, -1)) / dx**2
    return -adv + nu * diff


def simulate_burgers(
    u0, ts, *, nu: float = 0.05, length: float = 2 * np.pi, dt: float = 1e-3, solver: str = "rk4"
):
    """u0: [..., N] on a periodic domain of the given length; ts: [T] -> [T, ..., N]."""
    u0 = jnp.asarray(u0)
    dx = length / u0.shape[-1]
    return integrate(burgers, u0, ts, dt=dt, solver=solver, args=(nu, dx))


# ----------------------------------------------------------------------------- Lotka–Volterra


def lotka_volterra(t, y, args):
    """``ẋ = αx − βxy``, ``ẏ = δxy − γy``; y = [..., 2] (prey x, predator y);
    args = (α, β, γ, δ), scalars or arrays broadcasting against ``y[..., 0]``."""
    del t
    alpha, beta, gamma, delta = args
    x, z = y[..., 0], y[..., 1]
    return jnp.stack([alpha * x - beta * x * z, delta * x * z - gamma * z], -1)


def lotka_volterra_invariant(y, args):
    """``δx − γ ln x + βy − α ln y``, constant along every positive trajectory.
    y: [..., 2] -> [...]."""
    alpha, beta, gamma, delta = args
    x, z = y[..., 0], y[..., 1]
    return delta * x - gamma * jnp.log(x) + beta * z - alpha * jnp.log(z)


def simulate_lotka_volterra(
    y0,
    ts,
    *,
    alpha: float = 0.5,
    beta: float = 0.5,
    gamma: float = 0.5,
    delta: float = 0.5,
    dt: float = 0.01,
    solver: str = "rk4",
):
    """y0: [..., 2] (positive); ts: [T] -> [T, ..., 2]."""
    return integrate(
        lotka_volterra, jnp.asarray(y0), ts, dt=dt, solver=solver, args=(alpha, beta, gamma, delta)
    )


# ----------------------------------------------------------------------------- Gray–Scott


def periodic_laplacian_9(u, dx: float = 1.0):
    """Isotropic 9-point Laplacian with periodic boundaries:
    ``(−3u + ½ Σ_edge neighbours + ¼ Σ_corner neighbours) / dx²``. u: [..., H, W]."""
    edges = jnp.roll(u, 1, -1) + jnp.roll(u, -1, -1) + jnp.roll(u, 1, -2) + jnp.roll(u, -1, -2)
    rows = jnp.roll(u, 1, -2) + jnp.roll(u, -1, -2)
    corners = jnp.roll(rows, 1, -1) + jnp.roll(rows, -1, -1)
    return (-3.0 * u + 0.5 * edges + 0.25 * corners) / dx**2


def gray_scott(t, y, args):
    """Gray–Scott on a periodic grid: ``u_t = D_u Δu − uv² + F(1 − u)``,
    ``v_t = D_v Δv + uv² − (F + k)v``; y = [..., 2, H, W] (u, v); args = (D_u, D_v, F, k, dx)
    (the first four scalars or arrays broadcasting against ``y[..., 0, :, :]``)."""
    del t
    d_u, d_v, feed, kill, dx = args
    u, v = y[..., 0, :, :], y[..., 1, :, :]
    uvv = u * v * v
    du = d_u * periodic_laplacian_9(u, dx) - uvv + feed * (1.0 - u)
    dv = d_v * periodic_laplacian_9(v, dx) + uvv - (feed + kill) * v
    return jnp.stack([du, dv], -3)


def gray_scott_blocks(rng: np.random.Generator, n: int, size: int = 32, n_block: int = 3):
    """LEADS' initial states: u = 0.95, v = 0.05 everywhere except ``n_block`` random square
    blocks of side ``size // 10`` (corners uniform in [0, size − side)) where u = 0, v = 1.
    Returns [n, 2, size, size] float32."""
    side = max(1, size // 10)
    y0 = np.empty((n, 2, size, size), np.float32)
    y0[:, 0], y0[:, 1] = 0.95, 0.05
    for i in range(n):
        for r, c in rng.integers(0, size - side, (n_block, 2)):
            y0[i, 0, r : r + side, c : c + side] = 0.0
            y0[i, 1, r : r + side, c : c + side] = 1.0
    return y0


def simulate_gray_scott(
    y0,
    ts,
    *,
    d_u: float = 0.2097,
    d_v: float = 0.105,
    feed: float = 0.037,
    kill: float = 0.060,
    dx: float = 1.0,
    dt: float = 0.5,
    solver: str = "rk4",
):
    """y0: [..., 2, H, W]; ts: [T] -> [T, ..., 2, H, W]."""
    return integrate(
        gray_scott, jnp.asarray(y0), ts, dt=dt, solver=solver, args=(d_u, d_v, feed, kill, dx)
    )
