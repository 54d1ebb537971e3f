"""The finite-width discriminator: the same stax network, trained by SGD on −L.

The network is `kernels.build_network(kcfg)` (NTK parameterisation), so its empirical NTK
converges to `kernels.make_kernel(kcfg)` as the width grows. It maximises

    L(f) = E_fake a(f(x)) − E_real b(f(y))         (plain means; `dynamics.gan_loss`)

by optax SGD with learning rate η for `round(t / η)` full-batch steps, all inside one
`lax.scan` (one jit).

Time convention (the same as `gantk.dynamics`). With g = ∇_{f(X)} L, i.e. g_i = a'(f_i)/N on
fakes and −b'(f_j)/M on reals, one SGD step on −L moves the parameters by θ ← θ + η J_Xᵀ g
(J_X = ∂f(X)/∂θ), hence every output by

    f(z) ← f(z) + η Θ_θ(z, X) g + O(η²),         Θ_θ = J_z J_Xᵀ, the empirical NTK.

The dual flow of `dynamics` is ∂_t f_t(z) = k(z, X) g(f_t(X)) (du/dt = g). Since Θ_θ → k in the
NTK parameterisation as width → ∞, `round(t/η)` steps of size η approximate the dual flow at
time t with factor exactly one (no ½, no 4); the time actually reached is round(t/η)·η.
With SGD momentum μ the effective step is η/(1 − μ); the step count is not changed for it.

Options:
- `antisymmetric`: f = (f_θ1 − f_θ2)/√2 with θ1 = θ2 at initialisation, so f_0 = 0 exactly
  while the NTK at initialisation, (Θ_θ1 + Θ_θ2)/2, is the single network's.
- `reset`: every `fit` call starts from a fresh initialisation drawn from its key (the
  reference's "discriminator reset"); otherwise `fit` continues from the given state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gantk import dynamics
from gantk.kernels import build_network

__all__ = [
    "DiscriminatorState",
    "FiniteDiscriminator",
    "make_finite_discriminator",
    "finite_discriminator_from_config",
    "num_sgd_steps",
]

Params = Any  # a pytree of stax parameters; a pair (θ1, θ2) when antisymmetric


class DiscriminatorState(NamedTuple):
    params: Params  # network parameters
    opt_state: optax.OptState  # SGD state (empty without momentum)


class FiniteDiscriminator(NamedTuple):
    """Pure functions of one finite-width discriminator (all jit-able)."""

    init: Callable[..., DiscriminatorState]  # (key, input shape [-1, ...], dtype=None)
    apply: Callable[[Params, jax.Array], jax.Array]  # (params, x [n, ...]) -> f(x) [n]
    ntk: Callable[[jax.Array, jax.Array, Params], jax.Array]  # empirical NTK [n1, n2]
    train: Callable[[DiscriminatorState, jax.Array, jax.Array], DiscriminatorState]
    fit: Callable[[DiscriminatorState, jax.Array, jax.Array, jax.Array], DiscriminatorState]
    objective: Callable[[Params, jax.Array, jax.Array], jax.Array]  # L(f_θ) []
    loss: dynamics.GanLoss
    num_steps: int  # SGD steps per `train` call: round(t / lr)
    lr: float


def num_sgd_steps(t: float, lr: float) -> int:
    """round(t / lr): the number of SGD steps that reach discriminator time t."""
    if lr <= 0:
        raise ValueError(f"discriminator learning rate must be positive, got {lr}")
    if t < 0:
        raise ValueError(f"discriminator time must be >= 0, got {t}")
    return int(round(t / lr))


def make_finite_discriminator(
    kcfg: ml_collections.ConfigDict,
    *,
    loss: str,
    t: float,
    lr: float,
    antisymmetric: bool = True,
    reset: bool = False,
    momentum: float = 0.0,
    generator_target: str = "zero",
) -> FiniteDiscriminator:
    """The finite discriminator of architecture `kcfg` (width `kcfg.width`), loss and SGD."""
    gan = dynamics.gan_loss(loss, generator_target)
    steps = num_sgd_steps(t, lr)
    net_init, net_apply, _ = build_network(kcfg)
    tx = optax.sgd(lr, momentum=momentum or None)

    def apply2d(params: Params, x: jax.Array) -> jax.Array:  # [n, ...] -> [n, 1]
        if antisymmetric:
            p1, p2 = params
            return (net_apply(p1, x) - net_apply(p2, x)) / math.sqrt(2.0)
        return net_apply(params, x)

    def apply(params: Params, x: jax.Array) -> jax.Array:
        return apply2d(params, x)[:, 0]

    def init(key: jax.Array, input_shape: tuple[int, ...], dtype=None) -> DiscriminatorState:
        _, theta = net_init(key, tuple(input_shape))
        if dtype is not None:
            theta = jax.tree_util.tree_map(lambda a: a.astype(dtype), theta)
        params = (theta, jax.tree_util.tree_map(jnp.copy, theta)) if antisymmetric else theta
        return DiscriminatorState(params, tx.init(params))

    def objective(params: Params, fakes: jax.Array, reals: jax.Array) -> jax.Array:
        f = apply(params, jnp.concatenate([fakes, reals]))
        n_fake = fakes.shape[0]
        return dynamics.discriminator_objective(gan, f[:n_fake], f[n_fake:])

    def train(state: DiscriminatorState, fakes: jax.Array, reals: jax.Array):
        # fakes [N, ...], reals [M, ...]; round(t / lr) full-batch SGD steps on −L.
        def step(s: DiscriminatorState, _):
            grads = jax.grad(lambda p: -objective(p, fakes, reals))(s.params)
            updates, opt_state = tx.update(grads, s.opt_state, s.params)
            return DiscriminatorState(optax.apply_updates(s.params, updates), opt_state), None

        state, _ = jax.lax.scan(step, state, None, length=steps)
        return state

    def fit(state: DiscriminatorState, fakes: jax.Array, reals: jax.Array, key: jax.Array):
        """Train on (fakes, reals): from a fresh init drawn from `key` if `reset`, else `state`."""
        if reset:
            state = init(key, (-1, *fakes.shape[1:]), fakes.dtype)
        return train(state, fakes, reals)

    def ntk(x1: jax.Array, x2: jax.Array, params: Params) -> jax.Array:
        """Empirical NTK Θ_θ(x1, x2) = J(x1) J(x2)ᵀ [n1, n2] (neural-tangents)."""
        from gantk.nt_compat import neural_tangents

        nt = neural_tangents()

        with jax.numpy_rank_promotion("allow"):  # neural-tangents internals
            return nt.empirical_ntk_fn(apply2d, trace_axes=(-1,))(x1, x2, params)

    return FiniteDiscriminator(
        init=init,
        apply=apply,
        ntk=ntk,
        train=train,
        fit=fit,
        objective=objective,
        loss=gan,
        num_steps=steps,
        lr=float(lr),
    )


def finite_discriminator_from_config(
    config: ml_collections.ConfigDict, width: int | None = None
) -> FiniteDiscriminator:
    """From a run config: `kernel`, `loss.{name, t, generator_target}`, `optimizer.{name, lr,
    momentum}` (SGD only) and `discriminator.{antisymmetric, reset}`; `width` overrides
    `kernel.width`."""
    if config.optimizer.name != "sgd":
        raise ValueError(f"unknown discriminator optimizer '{config.optimizer.name}'; valid: sgd")
    kcfg = config.kernel
    if width is not None:
        kcfg = ml_collections.ConfigDict(config.kernel.to_dict())
        kcfg.width = int(width)
    return make_finite_discriminator(
        kcfg,
        loss=config.loss.name,
        t=float(config.loss.t),
        lr=float(config.optimizer.lr),
        antisymmetric=bool(config.discriminator.antisymmetric),
        reset=bool(config.discriminator.reset),
        momentum=float(config.optimizer.momentum),
        generator_target=config.loss.generator_target,
    )
