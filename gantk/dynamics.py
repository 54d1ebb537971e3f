"""Infinite-width discriminator dynamics in dual coefficients.

Fakes x_1..x_N, reals y_1..y_M, X = [x; y] (n = N + M), kernel k, K = k(X, X). The
discriminator maximises L(f) = E_fake a(f(x)) − E_real b(f(y)) by function-space gradient
flow; with f_0 = 0 its solution is `f_t(z) = k(z, X) u(t)` where the dual coefficients solve

    du/dt = g(K u),   g_i = a'(f_i)/N on fakes,  −b'(f_j)/M on reals,   u(0) = 0.

Time-scale convention (one for all losses): t is the time of this flow with the objective
written as a plain mean (no ½, no factor 4 as in neural-tangents' MSE predictor, which the
reference toolkit compensated by evaluating NT at 4t).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "METHODS",
    "dual_coefficients",
    "dual_rhs",
    "lsgan_eigen",
    "lsgan_lanczos",
    "solve_dual_ode",
    "LOSSES",
    "GanLoss",
    "gan_loss",
    "dual_weights",
    "labels",
    "ipm_coefficients",
    "discriminator_objective",
]


class GanLoss(NamedTuple):
    a: Callable[[jax.Array], jax.Array]  # fake term of the discriminator objective
    b: Callable[[jax.Array], jax.Array]  # real term (subtracted)
    c: Callable[[jax.Array], jax.Array]  # generator per-point loss c(f(x))


def _lsgan_c(variant: str):
    if variant == "zero":
        return lambda f: f**2
    if variant == "one":
        return lambda f: (f - 1.0) ** 2
    raise ValueError(f"unknown lsgan generator target '{variant}'; valid: zero, one")


LOSSES = ("ipm", "lsgan", "vanilla", "hinge")


def gan_loss(name: str, generator_target: str = "zero") -> GanLoss:
    """(a, b, c) of the paper's losses; `generator_target` selects LSGAN's c (f² or (f−1)²)."""
    if name == "ipm":
        return GanLoss(lambda f: f, lambda f: f, lambda f: f)
    if name == "lsgan":
        return GanLoss(
            lambda f: -((f + 1.0) ** 2), lambda f: (f - 1.0) ** 2, _lsgan_c(generator_target)
        )
    if name == "vanilla":
        return GanLoss(
            lambda f: jax.nn.log_sigmoid(-f),  # log(1 − σ(f))
            lambda f: -jax.nn.log_sigmoid(f),  # −log σ(f)
            lambda f: -jax.nn.log_sigmoid(f),  # non-saturating generator
        )
    if name == "hinge":
        return GanLoss(
            lambda f: -jax.nn.relu(1.0 + f), lambda f: jax.nn.relu(1.0 - f), lambda f: -f
        )
    raise ValueError(f"unknown GAN loss '{name}'; valid: {', '.join(LOSSES)}")


def dual_weights(n_fake: int, n_real: int, dtype=jnp.float32) -> jax.Array:
    """[n] = [1/N, ..., 1/N, −1/M, ..., −1/M]."""
    return jnp.concatenate(
        [jnp.full((n_fake,), 1.0 / n_fake, dtype), jnp.full((n_real,), -1.0 / n_real, dtype)]
    )


def labels(n_fake: int, n_real: int, dtype=jnp.float32) -> jax.Array:
    """[n] = [−1 (fakes) ..., +1 (reals) ...] (LSGAN targets)."""
    return jnp.concatenate([-jnp.ones((n_fake,), dtype), jnp.ones((n_real,), dtype)])


def ipm_coefficients(t: float, n_fake: int, n_real: int, dtype=jnp.float32) -> jax.Array:
    """IPM: g is constant, so u(t) = t·[1/N, −1/M] and f_t = t (E_fake k(·, x) − E_real k(·, y))."""
    return t * dual_weights(n_fake, n_real, dtype)


def discriminator_objective(loss: GanLoss, f_fake: jax.Array, f_real: jax.Array) -> jax.Array:
    """L(f) = E_fake a(f(x)) − E_real b(f(y))."""
    return jnp.mean(loss.a(f_fake)) - jnp.mean(loss.b(f_real))


# ----------------------------------------------------------------------------- general solver

MatVec = Callable[[jax.Array], jax.Array]  # u [n] -> K u [n]
METHODS = ("auto", "closed_form", "eigen", "lanczos", "ode", "fixed_step")


def dual_rhs(loss: GanLoss, n_fake: int, n_real: int) -> Callable[[jax.Array], jax.Array]:
    """g(f) [n]: a'(f_i)/N on fakes, −b'(f_j)/M on reals (the dual ODE is du/dt = g(K u))."""
    da = jax.vmap(jax.grad(loss.a))
    db = jax.vmap(jax.grad(loss.b))

    def g(f):
        return jnp.concatenate([da(f[:n_fake]) / n_fake, -db(f[n_fake:]) / n_real])

    return g


def _as_matvec(K: jax.Array | MatVec) -> MatVec:
    return K if callable(K) else (lambda v: K @ v)


def lsgan_eigen(K: jax.Array, n_fake: int, n_real: int, t: float) -> jax.Array:
    """Exact LSGAN u(t) by an eigendecomposition (the reference's O(n³) route, kept to check).

    With W = diag(1/N, 1/M), y the labels and S = W^½ K W^½ (symmetric):
    u(t) = W^½ h(S) W^½ y,  h(λ) = (1 − e^{−2tλ})/λ, so that K u = (I − e^{−2tKW}) y.
    """
    w = jnp.abs(dual_weights(n_fake, n_real, K.dtype))
    sw = jnp.sqrt(w)
    S = sw[:, None] * K * sw[None, :]
    lam, V = jnp.linalg.eigh(S)
    return sw * (V @ (_h(lam, t) * (V.T @ (sw * labels(n_fake, n_real, K.dtype)))))


def _h(lam: jax.Array, t: float) -> jax.Array:
    """(1 − e^{−2tλ})/λ, continuous at λ = 0 (value 2t); eigenvalues below 0 are round-off."""
    lam = jnp.maximum(lam, 0.0)
    small = lam * t < 1e-6
    safe = jnp.where(small, 1.0, lam)
    return jnp.where(small, 2 * t * (1 - t * lam), -jnp.expm1(-2 * t * safe) / safe)


def lsgan_lanczos(
    K: jax.Array | MatVec, n_fake: int, n_real: int, t: float, num_iters: int = 48, dtype=None
) -> jax.Array:
    """LSGAN u(t) = W^½ h(S) W^½ y by `num_iters` Lanczos steps on S (no n×n decomposition).

    O(num_iters) products with K instead of an O(n³) eigendecomposition: the Krylov space of S
    from b = W^½ y gives h(S) b ≈ ‖b‖ Q h(T) e₁ (T tridiagonal, Q orthonormal, fully
    re-orthogonalised for float32). h is entire and the kernel spectrum decays fast, so a few
    dozen steps reach 1e-6 relative accuracy at the paper's settings (see the benchmark).
    """
    mv = _as_matvec(K)
    n = n_fake + n_real
    dtype = dtype or (K.dtype if not callable(K) else jnp.float32)
    sw = jnp.sqrt(jnp.abs(dual_weights(n_fake, n_real, dtype)))
    b = sw * labels(n_fake, n_real, dtype)
    m = min(int(num_iters), n)
    beta0 = jnp.linalg.norm(b)
    Q = jnp.zeros((m + 1, n), dtype).at[0].set(b / beta0)

    def body(j, carry):
        Q, alphas, betas = carry
        q = Q[j]
        v = sw * mv(sw * q)  # S q
        alpha = jnp.dot(q, v)
        v = v - alpha * q - jnp.where(j > 0, betas[j - 1], 0.0) * Q[jnp.maximum(j - 1, 0)]
        # full re-orthogonalisation against the basis built so far (rows > j are still zero)
        v = v - Q.T @ (Q @ v)
        v = v - Q.T @ (Q @ v)
        beta = jnp.linalg.norm(v)
        Q = Q.at[j + 1].set(v / jnp.where(beta > 0, beta, 1.0))
        return Q, alphas.at[j].set(alpha), betas.at[j].set(beta)

    Q, alphas, betas = jax.lax.fori_loop(
        0, m, body, (Q, jnp.zeros((m,), dtype), jnp.zeros((m,), dtype))
    )
    T = jnp.diag(alphas) + jnp.diag(betas[: m - 1], 1) + jnp.diag(betas[: m - 1], -1)
    lam, V = jnp.linalg.eigh(T)
    coeffs = V @ (_h(lam, t) * V[0])  # h(T) e₁
    return sw * (beta0 * (Q[:m].T @ coeffs))


def solve_dual_ode(
    loss: GanLoss,
    K: jax.Array | MatVec,
    n_fake: int,
    n_real: int,
    t: float,
    *,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    fixed_steps: int = 0,
    max_steps: int = 100_000,
    dtype=jnp.float32,
) -> jax.Array:
    """u(t) for any loss by integrating du/dt = g(K u), u(0) = 0 with diffrax.

    Adaptive Tsit5 with a PID controller (`rtol`, `atol`), or, when `fixed_steps > 0`, that
    many constant Tsit5 steps (the fine fixed-step reference of the tests).
    """
    import diffrax

    mv = _as_matvec(K)
    g = dual_rhs(loss, n_fake, n_real)
    term = diffrax.ODETerm(lambda s, u, args: g(mv(u)))
    y0 = jnp.zeros((n_fake + n_real,), dtype)
    if fixed_steps > 0:
        solver, controller, dt0 = diffrax.Tsit5(), diffrax.ConstantStepSize(), t / fixed_steps
    else:
        solver = diffrax.Tsit5()
        controller = diffrax.PIDController(rtol=rtol, atol=atol)
        dt0 = t / 64
    with jax.numpy_rank_promotion("allow"):  # diffrax/equinox internals
        sol = diffrax.diffeqsolve(
            term,
            solver,
            t0=0.0,
            t1=t,
            dt0=dt0,
            y0=y0,
            stepsize_controller=controller,
            max_steps=max(max_steps, fixed_steps + 1),
            saveat=diffrax.SaveAt(t1=True),
            throw=False,
        )
    # A failed solve (e.g. max_steps reached) returns NaN, which the training loop reports
    # as a non-finite quantity at that step instead of a stack trace.
    ok = sol.result == diffrax.RESULTS.successful
    return jnp.where(ok, sol.ys[-1], jnp.nan)


def dual_coefficients(
    loss_name: str,
    K: jax.Array | MatVec,
    n_fake: int,
    n_real: int,
    t: float,
    *,
    method: str = "auto",
    generator_target: str = "zero",
    lanczos_iters: int = 48,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    fixed_steps: int = 0,
    dtype=jnp.float32,
) -> jax.Array:
    """u(t) [n] of the infinite-width discriminator for any loss; one code path for all.

    method: auto (closed form for IPM, Lanczos for LSGAN, adaptive ODE otherwise),
    closed_form, eigen (LSGAN), lanczos (LSGAN), ode (any loss), fixed_step (any loss).
    `K` is the [n, n] kernel matrix of X = [fakes; reals], or a function u -> K u.
    """
    if method not in METHODS:
        raise ValueError(f"unknown dual solver '{method}'; valid: {', '.join(METHODS)}")
    loss = gan_loss(loss_name, generator_target)
    if not callable(K):
        dtype = K.dtype
    if method == "auto":
        method = {"ipm": "closed_form", "lsgan": "lanczos"}.get(loss_name, "ode")
    if method == "closed_form":
        if loss_name == "ipm":
            return ipm_coefficients(t, n_fake, n_real, dtype)
        if loss_name == "lsgan":
            method = "eigen"
        else:
            raise ValueError(
                f"loss '{loss_name}' has no closed form; valid methods: ode, fixed_step"
            )
    if method in ("eigen", "lanczos") and loss_name != "lsgan":
        raise ValueError(f"method '{method}' solves the LSGAN loss only, not '{loss_name}'")
    if method == "eigen":
        if callable(K):
            raise ValueError("method 'eigen' needs the kernel matrix, not a matvec")
        return lsgan_eigen(K, n_fake, n_real, t)
    if method == "lanczos":
        return lsgan_lanczos(K, n_fake, n_real, t, lanczos_iters, dtype)
    steps = fixed_steps if method == "fixed_step" else 0
    if method == "fixed_step" and steps <= 0:
        steps = 1000
    return solve_dual_ode(
        loss, K, n_fake, n_real, t, rtol=rtol, atol=atol, fixed_steps=steps, dtype=dtype
    )
