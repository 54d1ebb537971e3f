"""Discriminator architectures (neural-tangents `stax`) and their infinite-width kernels.

An architecture is named by its activation family (`relu`, `relu_nobias`, `sigmoid`, `rbf`,
...) plus options in the `kernel` config group: `kind` (ntk | nngp), `depth`, `width`,
`W_std`, `b_std` (None: the family's default), `layer_norm`, `network` (mlp | resmlp | conv).
MLP = Flatten, Dense(width), then `depth` blocks [activation → Dense], the last Dense of
output size 1 and without bias, NTK parameterisation (the reference toolkit's definition).

neural-tangents (and through it TensorFlow) is imported lazily, only where kernels are built.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections

__all__ = [
    "ARCHITECTURES",
    "NETWORKS",
    "KERNEL_KINDS",
    "Architecture",
    "architecture",
    "build_network",
    "make_kernel",
    "kernel_matvec",
    "default_kernel_config",
]

KernelFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x1 [n1, ...], x2 [n2, ...]) -> [n1, n2]


@dataclasses.dataclass(frozen=True)
class Architecture:
    activation: str
    b_std: float
    kind: str = "ntk"  # default kernel kind for this family
    depth: int | None = None  # None: the config's depth


# Families of the paper and a few more; b_std is the reference toolkit's default.
ARCHITECTURES: dict[str, Architecture] = {
    "relu": Architecture("relu", 1.0),
    "relu_nobias": Architecture("relu", 0.0),
    "relu_highbias": Architecture("relu", 4.0),
    "sigmoid": Architecture("sigmoid_like", 0.2),
    "rbf": Architecture("rbf", 0.0, kind="nngp", depth=1),
    "gelu": Architecture("gelu", 1.0),
    "erf": Architecture("erf", 1.0),
    "leaky_relu": Architecture("leaky_relu", 1.0),
    "abs": Architecture("abs", 1.0),
    "sin": Architecture("sin", 1.0),
    "identity": Architecture("identity", 1.0),
}
NETWORKS = ("mlp", "resmlp", "conv")
KERNEL_KINDS = ("ntk", "nngp")


def default_kernel_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.architecture = "relu"  # see ARCHITECTURES
    c.kind = ""  # ntk | nngp; empty: the architecture's default (nngp for rbf)
    c.network = "mlp"  # mlp | resmlp | conv
    c.depth = 3
    c.width = 128  # irrelevant for the infinite-width kernel; sets the finite network
    c.W_std = 1.0
    c.b_std = -1.0  # negative: the architecture's default
    c.layer_norm = False
    c.rbf_gamma = 0.5
    c.leaky_slope = 0.1
    c.block_size = 1024  # kernel columns per block in kernel_matvec (memory O(n * block))
    return c


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown kernel architecture '{name}'; valid: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def _activation(stax, name: str, kcfg):
    table = {
        "relu": lambda: stax.Relu(),
        "sigmoid_like": lambda: stax.Sigmoid_like(),
        "rbf": lambda: stax.Rbf(gamma=kcfg.rbf_gamma),
        "gelu": lambda: stax.Gelu(),
        "erf": lambda: stax.Erf(),
        "leaky_relu": lambda: stax.LeakyRelu(kcfg.leaky_slope),
        "abs": lambda: stax.Abs(),
        "sin": lambda: stax.Sin(),
        "identity": lambda: stax.Identity(),
    }
    return table[name]()


def build_network(kcfg: ml_collections.ConfigDict, out_dim: int = 1):
    """neural-tangents `(init_fn, apply_fn, kernel_fn)` of the configured discriminator."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
    from neural_tangents import stax

    arch = architecture(kcfg.architecture)
    if kcfg.network not in NETWORKS:
        raise ValueError(f"unknown kernel network '{kcfg.network}'; valid: {', '.join(NETWORKS)}")
    b_std = arch.b_std if kcfg.b_std < 0 else float(kcfg.b_std)
    depth = arch.depth if arch.depth is not None else int(kcfg.depth)
    W, width = float(kcfg.W_std), int(kcfg.width)

    def dense(n, b):
        return stax.Dense(n, W_std=W, b_std=b, parameterization="ntk")

    def act():
        return _activation(stax, arch.activation, kcfg)

    def maybe_norm(i):
        return [stax.LayerNorm()] if kcfg.layer_norm and i > 0 else []

    if kcfg.network == "mlp":
        layers = [stax.Flatten(), dense(width, b_std)]
        for i in range(depth):
            last = i == depth - 1
            layers += [
                *maybe_norm(i),
                act(),
                dense(out_dim if last else width, 0.0 if last else b_std),
            ]
        return stax.serial(*layers)
    if kcfg.network == "resmlp":
        layers = [stax.Flatten(), dense(width, b_std)]
        for i in range(depth - 1):
            block = stax.serial(
                *maybe_norm(i), act(), dense(width, b_std), act(), dense(width, b_std)
            )
            layers += [stax.FanOut(2), stax.parallel(stax.Identity(), block), stax.FanInSum()]
        layers += [act(), dense(out_dim, 0.0)]
        return stax.serial(*layers)
    # conv: a DCGAN-like discriminator for [N, H, W, C] images (stride-2 3x3 convolutions).
    layers = []
    for i in range(depth):
        layers += [
            stax.Conv(width, (3, 3), strides=(2, 2), padding="SAME", W_std=W, b_std=b_std),
            *maybe_norm(i + 1),
            act(),
        ]
    layers += [stax.Flatten(), dense(out_dim, 0.0)]
    return stax.serial(*layers)


def make_kernel(kcfg: ml_collections.ConfigDict) -> KernelFn:
    """The infinite-width kernel `k(x1, x2) -> [n1, n2]` (NTK or NNGP) of the architecture."""
    arch = architecture(kcfg.architecture)
    kind = kcfg.kind or arch.kind
    if kind not in KERNEL_KINDS:
        raise ValueError(f"unknown kernel kind '{kind}'; valid: {', '.join(KERNEL_KINDS)}")
    _, _, kernel_fn = build_network(kcfg)

    def k(x1: jax.Array, x2: jax.Array) -> jax.Array:
        return kernel_fn(x1, x2, kind)

    return k


def kernel_matvec(
    k: KernelFn,
    x: jax.Array,
    X: jax.Array,
    u: jax.Array,
    block_size: int = 1024,
    *,
    self_rows: bool = False,
) -> jax.Array:
    """`k(x, X) @ u` [n_x] without forming the [n_x, n_X] matrix at once.

    The columns X [n, ...] are processed in blocks of `block_size` inside a `lax.scan`, so
    memory is O(n_x · block) (padded columns get zero weight). Differentiable in x, X, u.

    `self_rows=True` declares that x[i] is X[i] (a particle evaluated in the discriminator's
    own training set). Kernels such as the ReLU NTK have a cusp at x = x' (the angle term), so
    the input gradient of k(x, x_i) at x = x_i is not defined and its computed value depends
    on round-off (it differs between one and several devices). There the symmetric
    subgradient ½∇_x k(x, x) is used instead; values are unchanged.
    """
    n = X.shape[0]
    n_x = x.shape[0]
    if n <= block_size and not self_rows:
        return k(x, X) @ u
    block_size = min(block_size, n)
    n_blocks = -(-n // block_size)
    pad = n_blocks * block_size - n
    Xp = jnp.concatenate([X, jnp.broadcast_to(X[:1], (pad, *X.shape[1:]))]) if pad else X
    up = jnp.concatenate([u, jnp.zeros((pad,), u.dtype)]) if pad else u
    Xb = Xp.reshape(n_blocks, block_size, *X.shape[1:])
    ub = up.reshape(n_blocks, block_size)
    rows = jnp.arange(n_x)

    @jax.checkpoint  # recompute blocks in the backward pass: memory stays O(n_x · block)
    def body(acc, blk):
        xb, wb, start = blk
        kb = k(x, xb)  # [n_x, block]
        if self_rows:
            diag = rows[:, None] == (start + jnp.arange(block_size))[None, :]
            kb = jnp.where(diag, jax.lax.stop_gradient(kb), kb)
        return acc + kb @ wb, None

    starts = jnp.arange(n_blocks) * block_size
    out, _ = jax.lax.scan(body, jnp.zeros((n_x,), u.dtype), (Xb, ub, starts))
    if self_rows:
        half_diag = 0.5 * jax.vmap(lambda z: k(z[None], None)[0, 0])(x)  # ½ k(x_i, x_i)
        out = out + u[:n_x] * (half_diag - jax.lax.stop_gradient(half_diag))
    return out
