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
