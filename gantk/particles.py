"""Particle flows of the generated distribution under the exact infinite-width discriminator.

Plain functions of a kernel and arrays (no configuration objects). One generator step trains
the discriminator from f_0 = 0 on the current particles x [N, ...] against the targets
y [M, ...] for time t (exactly, through its dual coefficients u(t), `dynamics.discriminator`),
then moves every particle along the negative input gradient of the mean generator loss, the
discriminator held fixed:

    C(x) = (1/N) Σ_i c(f_t(x_i)),    x ← x − η ∇_x C(x)

(so each particle moves by η/N · ∇c, as in the reference toolkit). The gradient is taken
through the evaluation points only (u and the discriminator's training set are constants).
Where the kernel has a cusp at coincident points (the ReLU NTK's angle term), the derivative
of k(x, x_i) at x = x_i uses the symmetric subgradient ½∇k(x, x) (`kernels.kernel_matvec`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gantk import dynamics
from gantk.kernels import KernelFn

__all__ = ["FlowTrajectory", "dense_loss_and_grad", "generator_loss_and_grad", "particle_flow"]


class FlowTrajectory(NamedTuple):
    particles: jax.Array  # [steps // save_every + 1, N, ...]: x0, then every save_every steps
    gen_loss: jax.Array  # [steps]: C(x_k) at the particles before step k


def _solver_options(method, lanczos_iters, rtol, atol, fixed_steps) -> dict:
    return dict(
        method=method, lanczos_iters=lanczos_iters, rtol=rtol, atol=atol, fixed_steps=fixed_steps
    )


def generator_loss_and_grad(
    kernel: KernelFn,
    x: jax.Array,
    target: jax.Array,
    loss: str = "ipm",
    t: float = 1.0,
    *,
    method: str = "auto",
    generator_target: str = "zero",
    block_size: int = 1024,
    lanczos_iters: int = 48,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    fixed_steps: int = 0,
    k_real: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """(C(x) [], ∇_x C(x) [N, ...]) with C(x) = mean_i c(f_t(x_i)), f_t trained on (x, target).

    f_t = `dynamics.discriminator(kernel, x, target, loss, t)`, held fixed in the gradient;
    c is the loss's generator per-point loss (`dynamics.gan_loss(loss, generator_target).c`).
    IPM (closed form) evaluates k(x, X) in column blocks of `block_size` (memory O(N · block));
    the other losses compute the rows k(x, X) [N, N + M] once, with their VJP, for both the
    dual solve and the gradient. k_real: k(target, target) [M, M] if already computed.
    """
    opts = _solver_options(method, lanczos_iters, rtol, atol, fixed_steps)
    if loss == "ipm" and method in ("auto", "closed_form"):
        fixed = jax.lax.stop_gradient(x)
        disc = dynamics.discriminator(
            kernel, fixed, target, loss, t, generator_target=generator_target,
            block_size=block_size, **opts,
        )  # fmt: skip
        c = dynamics.gan_loss(loss, generator_target).c
        return jax.value_and_grad(lambda z: jnp.mean(c(disc(z, self_rows=True))))(x)
    return dense_loss_and_grad(
        kernel, x, target, loss, t, generator_target=generator_target, k_real=k_real, **opts
    )


def dense_loss_and_grad(
    kernel: KernelFn,
    x: jax.Array,
    target: jax.Array,
    loss: str,
    t: float,
    *,
    generator_target: str = "zero",
    k_real: jax.Array | None = None,
    **solver,
) -> tuple[jax.Array, jax.Array]:
    """`generator_loss_and_grad` with one kernel pass: k(x, X) [N, n] is computed once with its
    VJP; its rows and k(target, target) give K for the dual solve, its pull-back the gradient.
    The cusp diagonal k(x_i, x_i) uses the symmetric subgradient ½∇k(x, x)."""
    n_fake, n_real = x.shape[0], target.shape[0]
    gan = dynamics.gan_loss(loss, generator_target)
    X = jax.lax.stop_gradient(jnp.concatenate([x, target.astype(x.dtype)]))
    k_fake, pullback = jax.vjp(lambda z: kernel(z, X), x)  # [N, n]
    if loss == "ipm" and solver.get("method", "auto") in ("auto", "closed_form"):
        u = dynamics.ipm_coefficients(t, n_fake, n_real, x.dtype)  # no kernel matrix
    else:
        if k_real is None:
            k_real = kernel(X[n_fake:], X[n_fake:])
        K = dynamics.gram_from_rows(jax.lax.stop_gradient(k_fake), k_real)
        u = dynamics.dual_coefficients(
            loss, K, n_fake, n_real, t, generator_target=generator_target, **solver
        )
        u = jax.lax.stop_gradient(u)
    f = k_fake @ u  # [N]
    c_values, dc = jax.vmap(jax.value_and_grad(gan.c))(f)
    w = dc / n_fake  # d mean(c) / d f_i
    idx = jnp.arange(n_fake)
    cotangent = (w[:, None] * u[None, :]).at[idx, idx].set(0.0)
    (grad,) = pullback(cotangent)
    half_diag_grad = jax.vmap(jax.grad(lambda z: 0.5 * kernel(z[None], None)[0, 0]))(x)
    grad = grad + (w * u[:n_fake]).reshape(-1, *([1] * (x.ndim - 1))) * half_diag_grad
    return jnp.mean(c_values), grad


_STATIC = (
    "kernel", "loss", "steps", "save_every", "method", "generator_target", "block_size",
    "lanczos_iters", "rtol", "atol", "fixed_steps",
)  # fmt: skip


@functools.partial(jax.jit, static_argnames=_STATIC)
def _flow(
    kernel, x0, target, eta, t, *, loss, steps, save_every, method, generator_target,
    block_size, lanczos_iters, rtol, atol, fixed_steps,
):  # fmt: skip
    opts = _solver_options(method, lanczos_iters, rtol, atol, fixed_steps)
    dense = not (loss == "ipm" and method in ("auto", "closed_form"))
    k_real = kernel(target, target) if dense else None  # the targets do not move

    def step(x, _):
        value, grad = generator_loss_and_grad(
            kernel, x, target, loss, t, generator_target=generator_target,
            block_size=block_size, k_real=k_real, **opts,
        )  # fmt: skip
        return x - eta * grad, value

    def chunk(x, _):
        x, values = jax.lax.scan(step, x, None, length=save_every)
        return x, (x, values)

    _, (saved, values) = jax.lax.scan(chunk, x0, None, length=steps // save_every)
    return FlowTrajectory(jnp.concatenate([x0[None], saved]), values.reshape(steps))


def particle_flow(
    kernel: KernelFn,
    x0: jax.Array,
    target: jax.Array,
    loss: str = "ipm",
    eta: float = 1.0,
    t: float = 1.0,
    steps: int = 100,
    *,
    save_every: int = 1,
    method: str = "auto",
    generator_target: str = "zero",
    block_size: int = 1024,
    lanczos_iters: int = 48,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    fixed_steps: int = 0,
) -> FlowTrajectory:
    """`steps` generator steps x_{k+1} = x_k − η ∇_x C(x_k) from x0 [N, ...] towards target
    [M, ...] (same point shape), the discriminator retrained from f_0 = 0 for time t on
    (x_k, target) at every step; C(x) = mean_i c(f_t(x_i)) (`generator_loss_and_grad`).

    One compiled `lax.scan` (recompiled for a new kernel function, loss, shapes or step
    count; not for new eta, t or x0 values). Returns `FlowTrajectory(particles
    [steps // save_every + 1, N, ...], gen_loss [steps])`: x0 and the particles after every
    `save_every` steps, and C(x_k) before each step k. The flow is deterministic (no random
    key). loss: one of `LOSSES`; the solver options are `dynamics.dual_coefficients`'.
    """
    x0 = dynamics._points("x0", x0)
    target = dynamics._points("target", target)
    dynamics._same_point_shape(x0=x0, target=target)
    dynamics.gan_loss(loss, generator_target)
    if method not in dynamics.METHODS:
        raise ValueError(f"unknown dual solver '{method}'; valid: {', '.join(dynamics.METHODS)}")
    for name, v in (("steps", steps), ("save_every", save_every)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if steps % save_every:
        raise ValueError(f"steps ({steps}) must be a multiple of save_every ({save_every})")
    dynamics._check_time(t)
    return _flow(
        kernel, x0, target.astype(x0.dtype), jnp.asarray(eta, x0.dtype), jnp.asarray(t, x0.dtype),
        loss=loss, steps=int(steps), save_every=int(save_every), method=method,
        generator_target=generator_target, block_size=int(block_size),
        lanczos_iters=int(lanczos_iters), rtol=float(rtol), atol=float(atol),
        fixed_steps=int(fixed_steps),
    )  # fmt: skip
