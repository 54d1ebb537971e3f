"""Continuous-time change of variables: an ODE together with the integral of its divergence.

For ``dx/dt = f(t, x)`` the log-density of the transported points obeys the instantaneous change
of variables ``d log p_t(x(t))/dt = −div f(t, x(t))`` (Chen et al. 2018). Integrating the
augmented state ``(x, δ)`` with ``dδ/dt = div f(t, x)`` from ``t0`` to ``t1`` gives

    log p_{t0}(x(t0)) = log p_{t1}(x(t1)) + δ,   δ = ∫_{t0}^{t1} div f(t, x(t)) dt,

which is what continuous normalizing flows (FFJORD) and the probability-flow ODE of score SDEs
need for exact likelihoods. Either direction works (``t1 < t0`` integrates backwards).

The divergence is exact (``method="exact"``: one forward-mode JVP per dimension, for low
dimension) or Hutchinson's estimate ``εᵀ (∂f/∂x) ε`` (``method="hutchinson"``: one VJP,
ε Rademacher or Gaussian, drawn once per solve and held fixed along the trajectory as FFJORD
does, so the solve stays an ODE); the estimate is unbiased for ``δ``.

Batches: ``vector_field(t, x, args)`` maps ``x [n, *shape]`` to ``[n, *shape]`` sample-wise
(sample ``i`` of the output depends on sample ``i`` of the input only); the whole batch is one
ODE solve with a shared adaptive step size, which is how a batched network evaluates fastest.
The solve is differentiable by any diffrax adjoint (``adjoint=diffrax.BacksolveAdjoint()`` for
FFJORD's O(1)-memory gradients).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import diffrax
import jax
import jax.numpy as jnp

__all__ = ["DIVERGENCES", "NOISES", "ContinuousResult", "divergence", "solve_with_logdet"]

DIVERGENCES = ("exact", "hutchinson")
NOISES = ("rademacher", "gaussian")

VectorField = Callable[[jax.Array, jax.Array, Any], jax.Array]


class ContinuousResult(NamedTuple):
    """End point, divergence integral and solver statistics of `solve_with_logdet`."""

    y: jax.Array  # [n, *shape] the state at t1
    delta: jax.Array  # [n] ∫_{t0}^{t1} div f dt (estimated when Hutchinson)
    num_steps: jax.Array  # [] accepted + rejected steps of the solver
    num_evaluations: jax.Array  # [] evaluations of f (each with its divergence)


def _check_method(method: str, noise: str) -> None:
    if method not in DIVERGENCES:
        raise ValueError(f"unknown divergence method '{method}'; valid: {', '.join(DIVERGENCES)}")
    if noise not in NOISES:
        raise ValueError(f"unknown Hutchinson noise '{noise}'; valid: {', '.join(NOISES)}")


def divergence(
    fn: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    *,
    method: str = "exact",
    eps: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """``(fn(x), div)``: the sample-wise divergence ``div[i] = tr ∂fn(x)_i/∂x_i``.

    ``x`` is ``[n, *shape]``; ``fn`` maps it sample-wise to the same shape. ``exact`` takes
    ``d = prod(shape)`` JVPs along the basis directions (summing each sample's diagonal term);
    ``hutchinson`` needs the probe ``eps`` (shape of ``x``) and returns ``εᵀ J ε`` per sample.
    """
    _check_method(method, "rademacher")
    n = x.shape[0]
    if method == "hutchinson":
        if eps is None:
            raise ValueError("the Hutchinson divergence needs a probe eps with the shape of x")
        fx, vjp = jax.vjp(fn, x)
        (eps_j,) = vjp(eps.astype(fx.dtype))
        return fx, jnp.sum((eps_j * eps).reshape(n, -1), axis=1)
    d = math.prod(x.shape[1:])
    flat = x.reshape(n, d)
    fx, jvp = jax.linearize(lambda z: fn(z.reshape(x.shape)).reshape(n, d), flat)

    def diag_term(j):  # column j of every sample's Jacobian, its diagonal entry
        return jvp(jnp.zeros((n, d), x.dtype).at[:, j].set(1.0))[:, j]

    if d <= 8:  # unrolled: a handful of JVPs, best for 2-D flows
        div = sum(diag_term(j) for j in range(d))
    else:
        div = jax.lax.fori_loop(0, d, lambda j, acc: acc + diag_term(j), jnp.zeros((n,), fx.dtype))
    return fx.reshape(x.shape), div


def solve_with_logdet(
    vector_field: VectorField,
    x: jax.Array,
    t0: float,
    t1: float,
    args: Any = None,
    *,
    method: str = "exact",
    key: jax.Array | None = None,
    noise: str = "rademacher",
    solver: diffrax.AbstractSolver | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    dt0: float | None = None,
    adjoint: diffrax.AbstractAdjoint | None = None,
    max_steps: int = 4096,
) -> ContinuousResult:
    """Solve ``dx/dt = f(t, x, args)`` from ``t0`` to ``t1`` with ``δ = ∫ div f dt``.

    ``x``: ``[n, *shape]``. Returns `ContinuousResult` with ``log p_{t0}(x) = log p_{t1}(y) +
    delta``. ``solver`` defaults to ``diffrax.Tsit5()`` with a PID controller at
    ``(rtol, atol)``; a fixed step is used instead when ``dt0`` is given and the solver is not
    adaptive-capable (pass ``rtol = atol = 0`` to force the fixed step ``dt0``). ``key`` draws
    the Hutchinson probe (required for ``method="hutchinson"``).
    """
    _check_method(method, noise)
    if x.ndim < 2:
        raise ValueError(f"x must be a batch [n, *shape], got shape {x.shape}")
    eps = None
    if method == "hutchinson":
        if key is None:
            raise ValueError("method='hutchinson' needs a PRNG key for its probe")
        if noise == "rademacher":
            eps = jax.random.rademacher(key, x.shape, dtype=x.dtype)
        else:
            eps = jax.random.normal(key, x.shape, dtype=x.dtype)

    # the probe travels in the solver's args, not in a closure: an adjoint's custom VJP
    # (diffrax.BacksolveAdjoint) must not close over values traced by an enclosing jit
    def augmented(t, state, args_and_probe):
        z, _ = state
        args, probe = args_and_probe
        fz, div = divergence(lambda u: vector_field(t, u, args), z, method=method, eps=probe)
        return fz, div

    solver = diffrax.Tsit5() if solver is None else solver
    if rtol == 0 and atol == 0:
        if dt0 is None:
            raise ValueError("a fixed-step solve (rtol = atol = 0) needs dt0")
        controller = diffrax.ConstantStepSize()
    else:
        controller = diffrax.PIDController(rtol=rtol, atol=atol)
    if dt0 is not None and (t1 - t0) * dt0 < 0:
        raise ValueError(f"dt0 = {dt0} points away from t1 = {t1} (t0 = {t0})")
    kwargs = {} if adjoint is None else {"adjoint": adjoint}
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(augmented),
        solver,
        t0,
        t1,
        dt0,
        (x, jnp.zeros((x.shape[0],), x.dtype)),
        (args, eps),
        saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=controller,
        max_steps=max_steps,
        **kwargs,
    )
    y, delta = sol.ys
    return ContinuousResult(
        y=y[0],
        delta=delta[0],
        num_steps=sol.stats["num_steps"],
        num_evaluations=_num_evaluations(sol, solver),
    )


def _num_evaluations(sol, solver) -> jax.Array:
    """Vector-field evaluations of the solve: new stages per step × steps (+1 for the first
    stage of the first-same-as-last solvers); exact for Euler, Heun, Tsit5, Dopri5 and Dopri8
    (counted by a host callback in the tests)."""
    stages = {
        diffrax.Euler: 1,
        diffrax.Heun: 2,
        diffrax.Midpoint: 2,
        diffrax.Ralston: 2,
        diffrax.Bosh3: 3,
        diffrax.Tsit5: 6,
        diffrax.Dopri5: 6,
        diffrax.Dopri8: 13,
    }
    fsal = isinstance(solver, diffrax.Tsit5 | diffrax.Dopri5 | diffrax.Dopri8 | diffrax.Bosh3)
    per_step = stages.get(type(solver), 0)
    return sol.stats["num_steps"] * per_step + (1 if fsal else 0)
