"""Discriminator architectures (neural-tangents `stax`) and their infinite-width kernels.

An architecture is named by its activation family (`relu`, `relu_nobias`, `sigmoid`, `rbf`,
...) plus options: `kind` (ntk | nngp), `depth`, `width`, `W_std`, `b_std` (None: the
family's default), `layer_norm`, `network` (mlp | resmlp | conv). `stax_kernel` and
`stax_network` take them as keyword arguments; `make_kernel` and `build_network` read them
from the command line's `kernel` config group.
MLP = Flatten, Dense(width), then `depth` blocks [activation → Dense], the last Dense of
output size 1 and without bias, NTK parameterisation (the reference toolkit's definition).

neural-tangents is imported lazily, only where kernels are built, through `gantk.nt_compat`
(which lets it import on a current JAX without TensorFlow).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    import ml_collections

__all__ = [
    "ARCHITECTURES",
    "NETWORKS",
    "KERNEL_KINDS",
    "IMPLEMENTATIONS",
    "Architecture",
    "architecture",
    "build_network",
    "make_kernel",
    "stax_kernel",
    "stax_network",
    "relu_mlp_kernel",
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
IMPLEMENTATIONS = ("auto", "neural_tangents", "closed_form")


def default_kernel_config() -> ml_collections.ConfigDict:
    """The `kernel` config group of the command line (the keyword defaults of `stax_kernel`)."""
    import ml_collections

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
    # auto: the closed-form arc-cosine recursion (`relu_mlp_kernel`) for ReLU MLPs without
    # layer norm, neural-tangents otherwise | neural_tangents | closed_form
    c.implementation = "auto"
    return c


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown kernel architecture '{name}'; valid: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def _activation(stax, name: str, rbf_gamma: float, leaky_slope: float):
    table = {
        "relu": lambda: stax.Relu(),
        "sigmoid_like": lambda: stax.Sigmoid_like(),
        "rbf": lambda: stax.Rbf(gamma=rbf_gamma),
        "gelu": lambda: stax.Gelu(),
        "erf": lambda: stax.Erf(),
        "leaky_relu": lambda: stax.LeakyRelu(leaky_slope),
        "abs": lambda: stax.Abs(),
        "sin": lambda: stax.Sin(),
        "identity": lambda: stax.Identity(),
    }
    return table[name]()


def _resolve(architecture_name, network, depth, W_std, b_std):
    """(Architecture, depth, b_std) after the family's defaults, with the arguments checked."""
    arch = architecture(architecture_name)
    if network not in NETWORKS:
        raise ValueError(f"unknown kernel network '{network}'; valid: {', '.join(NETWORKS)}")
    if isinstance(depth, bool) or int(depth) != depth or depth < 1:
        raise ValueError(f"kernel depth must be a positive integer, got {depth!r}")
    if W_std < 0:
        raise ValueError(f"W_std must be >= 0, got {W_std}")
    if b_std is not None and b_std < 0:
        raise ValueError(f"b_std must be >= 0 or None (the architecture's default), got {b_std}")
    b = arch.b_std if b_std is None else float(b_std)
    return arch, (arch.depth if arch.depth is not None else int(depth)), b


def stax_network(
    architecture: str = "relu",
    *,
    network: str = "mlp",
    depth: int = 3,
    width: int = 128,
    W_std: float = 1.0,
    b_std: float | None = None,
    layer_norm: bool = False,
    rbf_gamma: float = 0.5,
    leaky_slope: float = 0.1,
    out_dim: int = 1,
):
    """neural-tangents `(init_fn, apply_fn, kernel_fn)` of a discriminator, NTK parameterisation.

    architecture: an activation family of `ARCHITECTURES` (relu, relu_nobias, relu_highbias,
    sigmoid, rbf, gelu, erf, leaky_relu, abs, sin, identity); `b_std=None` takes its bias
    scale (relu 1, relu_nobias 0, relu_highbias 4, sigmoid 0.2, ...). network:
      - mlp: Flatten, Dense(width), then `depth` blocks [activation → Dense], the last Dense
        of output size `out_dim` and without bias;
      - resmlp: Flatten, Dense(width), then `depth − 1` residual blocks
        h ← h + Dense(act(Dense(act(h)))), then act → Dense(out_dim, no bias);
      - conv: `depth` blocks [Conv 3×3 stride 2 → activation] on [N, H, W, C] images, then
        Flatten → Dense(out_dim, no bias).
    Every Dense/Conv has weights of variance W_std²/fan_in and biases of variance b_std².
    `layer_norm` inserts LayerNorm before every activation but the first (mlp, resmlp) or
    after every convolution (conv). `rbf` is one `stax.Rbf(rbf_gamma)` layer (depth 1).
    Bad names raise ValueError listing the valid choices.
    """
    from gantk.nt_compat import stax as _stax

    stax = _stax()
    arch, depth, b_std = _resolve(architecture, network, depth, W_std, b_std)
    W, width = float(W_std), int(width)

    def dense(n, b):
        return stax.Dense(n, W_std=W, b_std=b, parameterization="ntk")

    def act():
        return _activation(stax, arch.activation, rbf_gamma, leaky_slope)

    def maybe_norm(i):
        return [stax.LayerNorm()] if layer_norm and i > 0 else []

    if network == "mlp":
        layers = [stax.Flatten(), dense(width, b_std)]
        for i in range(depth):
            last = i == depth - 1
            layers += [
                *maybe_norm(i),
                act(),
                dense(out_dim if last else width, 0.0 if last else b_std),
            ]
        return stax.serial(*layers)
    if network == "resmlp":
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


def stax_kernel(
    architecture: str = "relu",
    *,
    kind: str | None = None,
    network: str = "mlp",
    depth: int = 3,
    W_std: float = 1.0,
    b_std: float | None = None,
    layer_norm: bool = False,
    rbf_gamma: float = 0.5,
    leaky_slope: float = 0.1,
    implementation: str = "auto",
) -> KernelFn:
    """The infinite-width kernel `k(x1 [n1, ...], x2 [n2, ...] | None) -> [n1, n2]` of
    `stax_network(architecture, network=..., ...)` (x2=None: x2 = x1).

    kind: ntk (the neural tangent kernel Θ(x, x') = E ∂_θf(x)·∂_θf(x')) or nngp (the output
    covariance Σ(x, x') = E f(x)f(x') at initialisation); None takes the family's default
    (nngp for rbf, ntk otherwise). The width does not enter the infinite-width kernel.
    implementation: auto (the closed-form arc-cosine recursion `relu_mlp_kernel` for ReLU
    MLPs without layer norm, neural-tangents' `kernel_fn` otherwise), neural_tangents, or
    closed_form (ReLU MLPs only). Inputs are flattened per example, so any trailing shape
    works for mlp/resmlp; conv needs [n, H, W, C]. Bad names raise ValueError listing the
    valid choices.
    """
    arch, depth_, b = _resolve(architecture, network, depth, W_std, b_std)
    kind = kind or arch.kind
    if kind not in KERNEL_KINDS:
        raise ValueError(f"unknown kernel kind '{kind}'; valid: {', '.join(KERNEL_KINDS)}")
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"unknown kernel implementation '{implementation}'; valid: {', '.join(IMPLEMENTATIONS)}"
        )
    closed_form_ok = arch.activation == "relu" and network == "mlp" and not layer_norm
    if implementation == "closed_form" and not closed_form_ok:
        raise ValueError(
            "kernel implementation 'closed_form' needs a ReLU MLP without layer norm "
            f"(architecture '{architecture}', network '{network}', "
            f"layer_norm={layer_norm}); use 'auto' or 'neural_tangents'"
        )
    if closed_form_ok and implementation != "neural_tangents":
        W = float(W_std)

        def k(x1: jax.Array, x2: jax.Array | None) -> jax.Array:
            return relu_mlp_kernel(x1, x2, depth=depth_, W_std=W, b_std=b, kind=kind)

        return k
    _, _, kernel_fn = stax_network(
        architecture, network=network, depth=depth, W_std=W_std, b_std=b_std,
        layer_norm=layer_norm, rbf_gamma=rbf_gamma, leaky_slope=leaky_slope,
    )  # fmt: skip

    def k(x1: jax.Array, x2: jax.Array | None) -> jax.Array:
        return kernel_fn(x1, x2, kind)

    return k


def _config_kwargs(kcfg: ml_collections.ConfigDict) -> dict:
    """Keyword arguments of `stax_kernel` from a `kernel` config group (see
    `default_kernel_config`: kind "" and b_std < 0 mean the architecture's default)."""
    return dict(
        architecture=kcfg.architecture,
        network=kcfg.network,
        depth=kcfg.depth,
        W_std=float(kcfg.W_std),
        b_std=None if kcfg.b_std < 0 else float(kcfg.b_std),
        layer_norm=bool(kcfg.layer_norm),
        rbf_gamma=float(kcfg.get("rbf_gamma", 0.5)),
        leaky_slope=float(kcfg.get("leaky_slope", 0.1)),
    )


def build_network(kcfg: ml_collections.ConfigDict, out_dim: int = 1):
    """`stax_network` from a `kernel` config group (the command line's form)."""
    return stax_network(**_config_kwargs(kcfg), width=int(kcfg.width), out_dim=out_dim)


def make_kernel(kcfg: ml_collections.ConfigDict) -> KernelFn:
    """`stax_kernel` from a `kernel` config group (the command line's form)."""
    return stax_kernel(
        **_config_kwargs(kcfg),
        kind=kcfg.kind or None,
        implementation=kcfg.get("implementation", "auto"),
    )


@jax.custom_jvp
def _safe_sqrt(v):
    return jnp.sqrt(jnp.maximum(v, 0.0))


@_safe_sqrt.defjvp
def _safe_sqrt_jvp(primals, tangents):
    (v,), (dv,) = primals, tangents
    out = _safe_sqrt(v)
    return out, jnp.where(out > 0, 0.5 * dv / jnp.where(out > 0, out, 1.0), 0.0)


# arccos(x) ≈ √(1 − x)·Σ a_i x^i on [0, 1], |error| ≤ 2.2e-8 (Abramowitz & Stegun 4.4.46)
_ACOS = (
    1.5707963050,
    -0.2145988016,
    0.0889789874,
    -0.0501743046,
    0.0308918810,
    -0.0170881256,
    0.0066700901,
    -0.0012624911,
)


@jax.custom_jvp
def _angle(sin, cos):
    """θ ∈ [0, π] from sin θ ≥ 0 and cos θ. float64: `arctan2`; otherwise a polynomial
    arccos (2e-8, below float32 resolution) that XLA vectorises — its `atan2` is 20× slower
    than a multiply-add on CPU. The derivative is the exact (cos dsin − sin dcos)."""
    if cos.dtype == jnp.float64:
        return jnp.arctan2(sin, cos)
    x = jnp.abs(cos)
    p = jnp.full_like(x, _ACOS[-1])
    for a in _ACOS[-2::-1]:
        p = p * x + a
    p = p * jnp.sqrt(jnp.maximum(1.0 - x, 0.0))
    return jnp.where(cos >= 0, p, jnp.pi - p)


@_angle.defjvp
def _angle_jvp(primals, tangents):
    (sin, cos), (dsin, dcos) = primals, tangents
    return _angle(sin, cos), (cos * dsin - sin * dcos) / (sin * sin + cos * cos)


def relu_mlp_kernel(x1, x2, *, depth: int, W_std: float, b_std: float, kind: str = "ntk"):
    """Infinite-width NTK/NNGP of `build_network`'s ReLU MLP (NTK parameterisation), closed form.

    The same function as neural-tangents' `kernel_fn` for that network (tested to 1e-12 in
    float64, with input gradients), computed as one fused elementwise recursion on the
    [n1, n2] Gram matrix instead of stax's layer-by-layer kernel objects. Recursion, per layer:
    Dense maps Σ → W²Σ + b², Θ → Σ' + W²Θ; ReLU maps Σ → √(c₁c₂)(sin θ + (π − θ) cos θ)/2π,
    c → c/2, Θ → Θ (π − θ)/2π, with cos θ = Σ/√(c₁c₂). sin θ uses a square root whose
    derivative at 0 is 0, so input gradients at coincident points (the cusp) are finite.

    The kernel depends on the inputs only through Σ₀ = W²x·x'/d + b² and the two variances
    c = W²|x|²/d + b², so its VJP is custom: the forward pass also returns ∂k/∂Σ₀, ∂k/∂c₁,
    ∂k/∂c₂ (forward-mode, fused with the values) and the input gradient is two matrix products
    and a row sum — reverse mode through the recursion would be ~40 elementwise passes over the
    [n1, n2] matrix. x2=None: x2 = x1.
    """
    if kind not in KERNEL_KINDS:
        raise ValueError(f"unknown kernel kind '{kind}'; valid: {', '.join(KERNEL_KINDS)}")
    if isinstance(depth, bool) or int(depth) != depth or depth < 1:
        raise ValueError(f"kernel depth must be a positive integer, got {depth!r}")
    if x1.ndim < 2 or (x2 is not None and x2.ndim < 2):
        shapes = (x1.shape, None if x2 is None else x2.shape)
        raise ValueError(f"kernel inputs must be [n, ...] batches of points, got shapes {shapes}")
    a = x1.reshape(x1.shape[0], -1)
    b = a if x2 is None else x2.reshape(x2.shape[0], -1)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"kernel inputs have different point shapes {x1.shape[1:]} and {x2.shape[1:]}"
        )
    return _relu_kernel(a, b, int(depth), float(W_std) ** 2, float(b_std) ** 2, kind, x2 is None)


def _relu_recursion(sigma, c1, c2, depth, w2, b2, kind, diag=None):
    """The kernel from the first layer's Σ₀ [n1, n2] and variances c₁ [n1, 1], c₂ [1, n2].

    diag: mask of the pairs that are the same point (x2=None); there cos θ = 1 exactly, so
    that the derivative of k(x, x) is that of the smooth diagonal, not round-off."""
    theta_ntk = sigma
    for layer in range(depth):
        prod = _safe_sqrt(c1 * c2)
        cos = jnp.clip(sigma / jnp.where(prod > 0, prod, 1.0), -1.0, 1.0)
        if diag is not None:
            cos = jnp.where(diag, 1.0, cos)
        sin = _safe_sqrt(1.0 - cos * cos)
        angle = _angle(sin, cos)
        sigma = prod * (sin + (jnp.pi - angle) * cos) / (2 * jnp.pi)
        theta_ntk = theta_ntk * (jnp.pi - angle) / (2 * jnp.pi)
        bias = 0.0 if layer == depth - 1 else b2  # the last Dense has no bias
        sigma = w2 * sigma + bias
        c1, c2 = w2 * c1 / 2 + bias, w2 * c2 / 2 + bias
        theta_ntk = sigma + w2 * theta_ntk
    return theta_ntk if kind == "ntk" else sigma


def _first_layer(a, b, w2, b2):
    d = a.shape[1]
    if d <= 8:  # low-dimensional points: an elementwise sum fuses with the recursion
        sigma = w2 * sum(a[:, i : i + 1] * b[:, i][None, :] for i in range(d)) / d + b2
    else:
        sigma = w2 * (a @ b.T) / d + b2
    c1 = w2 * jnp.sum(a * a, axis=1, keepdims=True) / d + b2
    c2 = w2 * jnp.sum(b * b, axis=1, keepdims=True).T / d + b2
    return sigma, c1, c2


def _diag_mask(start, rows, cols):
    return (start + jnp.arange(rows))[:, None] == jnp.arange(cols)[None, :]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5, 6))
def _relu_kernel(a, b, depth, w2, b2, kind, same):
    diag = _diag_mask(0, a.shape[0], b.shape[0]) if same else None
    return _relu_recursion(*_first_layer(a, b, w2, b2), depth, w2, b2, kind, diag)


def _values_and_partials(a, b, start, depth, w2, b2, kind, same):
    sigma, c1, c2 = _first_layer(a, b, w2, b2)
    c1, c2 = jnp.broadcast_to(c1, sigma.shape), jnp.broadcast_to(c2, sigma.shape)
    diag = _diag_mask(start, a.shape[0], b.shape[0]) if same else None
    f = lambda s, u, v: _relu_recursion(s, u, v, depth, w2, b2, kind, diag)
    one, zero = jnp.ones_like(sigma), jnp.zeros_like(sigma)
    k, d_sigma = jax.jvp(f, (sigma, c1, c2), (one, zero, zero))
    _, d_c1 = jax.jvp(f, (sigma, c1, c2), (zero, one, zero))
    _, d_c2 = jax.jvp(f, (sigma, c1, c2), (zero, zero, one))
    return k, d_sigma, d_c1, d_c2


_ROW_BLOCK = 64  # rows per block of the fused pass: its ~20 intermediates stay in cache


def _relu_kernel_fwd(a, b, depth, w2, b2, kind, same):
    n = a.shape[0]
    if n <= _ROW_BLOCK:
        out = _values_and_partials(a, b, 0, depth, w2, b2, kind, same)
    else:
        pad = -n % _ROW_BLOCK
        ap = jnp.concatenate([a, jnp.zeros((pad, a.shape[1]), a.dtype)]) if pad else a
        blocks = ap.reshape(-1, _ROW_BLOCK, a.shape[1])
        starts = jnp.arange(blocks.shape[0]) * _ROW_BLOCK
        out = jax.lax.map(
            lambda blk: _values_and_partials(blk[0], b, blk[1], depth, w2, b2, kind, same),
            (blocks, starts),
        )
        out = [o.reshape(-1, o.shape[-1])[:n] for o in out]
    k, d_sigma, d_c1, d_c2 = out
    return k, (a, b, d_sigma, d_c1, d_c2)


def _relu_kernel_bwd(depth, w2, b2, kind, same, res, g):
    a, b, d_sigma, d_c1, d_c2 = res
    scale = w2 / a.shape[1]
    g_sigma = g * d_sigma
    ga = scale * (g_sigma @ b + 2 * a * jnp.sum(g * d_c1, axis=1, keepdims=True))
    gb = scale * (g_sigma.T @ a + 2 * b * jnp.sum(g * d_c2, axis=0)[:, None])
    return ga, gb


_relu_kernel.defvjp(_relu_kernel_fwd, _relu_kernel_bwd)


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
