"""Normalizing flows: NICE, RealNVP, MAF, residual flows (i-ResNet) and continuous flows (FFJORD).

A flow is an invertible map f: x ↦ z from data space to the latent space of a standard normal
base density, so that (change of variables)

    log p(x) = log N(f(x); 0, I) + log |det ∂f/∂x|.

Every flow here gives, for a batch x [n, d] (`Flow`, pure functions of the flow's variables):

- `forward(variables, x, key=None) -> (z [n, d], logdet [n])`, logdet = log |det ∂z/∂x|;
- `inverse(variables, z) -> x`;
- `log_prob(variables, x, key=None) -> [n]` = log N(z; 0, I) + logdet;
- `sample(variables, key, n) -> [n, d]` = inverse of z ~ N(0, I).

The models:

- NICE (Dinh et al. 2014): additive couplings y = b⊙x + (1 − b)⊙(x + m(b⊙x)) with binary
  masks b alternating between the even and the odd coordinates, then a final diagonal scaling
  z = exp(s)⊙h. log |det| = Σ s.
- RealNVP (Dinh et al. 2017): affine couplings y = b⊙x + (1 − b)⊙(x⊙exp(s) + t), (s, t) =
  nets(b⊙x), alternating masks (for d = 2 they alternate the conditioned coordinate, i.e. a
  reversal between layers). The log-scale is bounded: `log_scale="tanh"` gives
  s = a⊙tanh(ŝ) with a learned per coordinate (RealNVP's form), `"softclamp"` gives
  s = c·tanh(ŝ / c) with a fixed bound c (`clamp`). log |det| = Σ (1 − b)⊙s.
- MAF (Papamakarios et al. 2017): layers z_i = (x_i − μ_i(x_{<i})) exp(−α_i(x_{<i})) whose
  μ, α come from one MADE (Germain et al. 2015): dense layers with binary masks built from
  degrees (inputs 1..d in the layer's order, hidden units cycling through 1..d−1; a hidden
  connection is allowed when deg_out ≥ deg_in, an output connection when deg_out > deg_in),
  so output i depends on x_{<i} only. log |det| = −Σ α. The order is reversed between layers.
  The forward map is one pass; the inverse takes d sequential passes (after pass k the first
  k coordinates in the order are exact).
- Residual flows (Behrmann et al. 2019 "i-ResNet", Chen et al. 2019 "Residual flows"):
  blocks y = x + g(x), preceded by an elementwise affine (ActNorm) layer, where g is an MLP
  with LipSwish activations (x·sigmoid(x)/1.1, 1-Lipschitz) whose weights are spectrally
  normalised W ↦ W / max(1, σ̂/c) with σ̂ from power iteration (the vectors live in the
  `spectral` collection, updated at each training step), so that Lip(g) ≤ c < 1 and the block
  is invertible. Inverse: the fixed point x = y − g(x), iterated from x₀ = y; Banach's theorem
  bounds the error of the k-th iterate by L^k/(1 − L)·‖x₁ − x₀‖. Log-determinant
  log det(I + J_g) = Σ_{k≥1} (−1)^{k+1} tr(J_g^k)/k, estimated (`logdet`):
  `"roulette"`: the unbiased Russian-roulette estimator of Chen et al. 2019: N = n_exact + M
  terms with M geometric (P(M ≥ m) = (1 − p)^m), Hutchinson traces vᵀJ^k v with Rademacher v,
  the k-th term divided by P(N ≥ k); its gradient through the Neumann series
  ∂ log det(I + J) = Σ_{k≥0} (−1)^k vᵀJ^k (∂J) v / P(N ≥ k) (same N and v), so no graph of the
  power series is kept. `"series"`: the fixed truncation of i-ResNet (n_exact terms, biased).
  `"exact"`: log |det(I + J_g)| from the autodiff Jacobian (small d, evaluation).
- Continuous normalizing flows (FFJORD, Grathwohl et al. 2019): dx/dt = f(t, x) on [0, T]
  with an MLP field f of (x, t) (tanh), z = x(T); log p(x) = log N(z) + ∫₀ᵀ div f dt
  (`generative.continuous.solve_with_logdet`, diffrax), the divergence exact (2-D) or a
  Hutchinson estimate εᵀ(∂f/∂x)ε, gradients by the adjoint method (`BacksolveAdjoint`).

All flows act on flat data [n, d], d ≥ 2. Variables are {"params": ...} (and "spectral" for
residual flows). Family module contract: `make_experiment(config, workdir=None)`,
`evaluate_state(config, state, workdir)`.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import pathlib
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from generative.layers import Dense
from generative.nets import ACTIVATIONS, MLP

__all__ = [
    "log_likelihood",
    "test_data",
    "KINDS",
    "LOG_SCALES",
    "LOGDETS",
    "TRACES",
    "ENTROPY_NATS",
    "log_standard_normal",
    "bounded_log_scale",
    "CouplingFlow",
    "made_masks",
    "MADE",
    "MAF",
    "lipswish",
    "SpectralDense",
    "ResidualFlow",
    "fixed_point_inverse",
    "residual_logdet_exact",
    "residual_logdet_roulette",
    "lipschitz_bounds",
    "VectorField",
    "SOLVERS",
    "ADJOINTS",
    "Flow",
    "module_flow",
    "cnf_flow",
    "build_flow",
    "make_experiment",
    "evaluate_state",
]

logger = logging.getLogger(__name__)

KINDS = ("nice", "realnvp", "maf", "resflow", "cnf")
LOG_SCALES = ("tanh", "softclamp")
LOGDETS = ("roulette", "series", "exact")
TRACES = ("hutchinson", "exact")
# differential entropy of a toy distribution (nats), the floor of any model's expected NLL
ENTROPY_NATS = {"checkerboard": math.log(32.0)}

_LOG_2PI = math.log(2 * math.pi)

Variables = dict[str, Any]


def _choice(what: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(choices)}")


def _check_dim(dim: int, what: str) -> None:
    if dim < 2:
        raise ValueError(f"{what} needs data of dimension d >= 2, got d = {dim}")


def log_standard_normal(z: jax.Array) -> jax.Array:
    """log N(z; 0, I) = −½ Σ_j (log 2π + z_j²). [n, d] -> [n]."""
    return -0.5 * jnp.sum(_LOG_2PI + z**2, axis=-1)


def bounded_log_scale(raw: jax.Array, mode: str, clamp: float, scale=None) -> jax.Array:
    """ "tanh": scale⊙tanh(raw) (scale [d] learned, RealNVP); "softclamp": c·tanh(raw / c)."""
    if mode == "tanh":
        return scale[None, :] * jnp.tanh(raw)
    if mode == "softclamp":
        return clamp * jnp.tanh(raw / clamp)
    raise ValueError(f"unknown log_scale {mode!r}; valid choices: {', '.join(LOG_SCALES)}")


# ----------------------------------------------------------------------------- couplings


def _alternating_mask(dim: int, layer: int) -> np.ndarray:
    """[d] 0/1: the coordinates of parity `layer % 2` pass unchanged (condition the rest)."""
    return (np.arange(dim) % 2 == layer % 2).astype(np.float32)


class _CouplingNet(nn.Module):
    """MLP (shared `generative.nets.MLP`) then a zero-initialised Dense output layer, so that
    every coupling starts as the identity."""

    hidden: Sequence[int]
    out: int
    activation: str

    @nn.compact
    def __call__(self, x):
        h = ACTIVATIONS[self.activation](MLP(tuple(self.hidden), self.activation)(x))
        return Dense(self.out, kernel_init=nn.initializers.zeros)(h)


class _InvertibleFlow(nn.Module):
    """log_prob, sample and __call__ of a flow with an exact `forward(x, key) -> (z, logdet)`
    and `inverse(z)` to a standard normal base over `dim` coordinates."""

    def log_prob(self, x, key=None):
        z, logdet = self.forward(x, key)
        return log_standard_normal(z) + logdet

    def sample(self, key, n: int):
        return self.inverse(jax.random.normal(key, (n, self.dim)))

    def __call__(self, x):
        return self.forward(x)


class CouplingFlow(_InvertibleFlow):
    """NICE (`coupling="additive"`, `scaling=True`) or RealNVP (`coupling="affine"`).

    dim: d; layers: couplings; hidden: widths of each coupling net's hidden layers.
    forward(x [n, d]) -> (z, logdet [n]); inverse(z) -> x; log_prob(x) -> [n];
    sample(key, n) -> [n, d] (see the module docstring for the maps).
    """

    dim: int
    layers: int = 8
    hidden: Sequence[int] = (64, 64)
    activation: str = "relu"
    coupling: str = "affine"
    log_scale: str = "tanh"
    clamp: float = 2.0
    scaling: bool = False

    def setup(self):
        _check_dim(self.dim, "a coupling flow")
        _choice("coupling", self.coupling, ("additive", "affine"))
        _choice("activation", self.activation, tuple(ACTIVATIONS))
        if self.coupling == "affine":
            _choice("log_scale", self.log_scale, LOG_SCALES)
        out = self.dim if self.coupling == "additive" else 2 * self.dim
        self.nets = [_CouplingNet(tuple(self.hidden), out, self.activation) for _ in
                     range(self.layers)]  # fmt: skip
        if self.coupling == "affine" and self.log_scale == "tanh":
            self.scales = [self.param(f"tanh_scale_{i}", nn.initializers.ones, (self.dim,))
                           for i in range(self.layers)]  # fmt: skip
        if self.scaling:
            self.log_scaling = self.param("log_scaling", nn.initializers.zeros, (self.dim,))

    def _shift_scale(self, i, xa):
        out = self.nets[i](xa)
        if self.coupling == "additive":
            return out, jnp.zeros_like(out)
        scale = self.scales[i] if self.log_scale == "tanh" else None
        s = bounded_log_scale(out[:, self.dim :], self.log_scale, self.clamp, scale)
        return out[:, : self.dim], s

    def forward(self, x, key=None):
        del key
        logdet = jnp.zeros(x.shape[:1], x.dtype)
        for i in range(self.layers):
            b = jnp.asarray(_alternating_mask(self.dim, i), x.dtype)[None, :]
            t, s = self._shift_scale(i, b * x)
            s, t = (1 - b) * s, (1 - b) * t
            x = b * x + (1 - b) * (x * jnp.exp(s) + t)
            logdet = logdet + jnp.sum(s, axis=-1)
        if self.scaling:
            x = x * jnp.exp(self.log_scaling)[None, :]
            logdet = logdet + jnp.sum(self.log_scaling)
        return x, logdet

    def inverse(self, z):
        if self.scaling:
            z = z * jnp.exp(-self.log_scaling)[None, :]
        for i in reversed(range(self.layers)):
            b = jnp.asarray(_alternating_mask(self.dim, i), z.dtype)[None, :]
            t, s = self._shift_scale(i, b * z)
            z = b * z + (1 - b) * ((z - t) * jnp.exp(-s))
        return z


# ----------------------------------------------------------------------------- MAF


def made_masks(order: np.ndarray, hidden: Sequence[int], outputs: int) -> list[np.ndarray]:
    """Binary masks [in, out] of a MADE with input degrees `order` (a permutation of 1..d).

    Hidden unit j of every layer has degree (j mod (d − 1)) + 1; a connection into a hidden
    unit needs deg_out ≥ deg_in, into an output unit deg_out > deg_in. The output layer has
    `outputs` units per coordinate, laid out [outputs, d] (unit k·d + i has degree order[i]),
    so every output of coordinate i depends on the coordinates before it in the order only."""
    order = np.asarray(order)
    d = len(order)
    degrees = [order]
    for width in hidden:
        degrees.append(np.arange(width) % max(1, d - 1) + 1)
    masks = [(dout[None, :] >= din[:, None]) for din, dout in zip(degrees[:-1], degrees[1:])]
    out_deg = np.tile(order, outputs)
    masks.append(out_deg[None, :] > degrees[-1][:, None])
    return [m.astype(np.float32) for m in masks]


class _MaskedDense(nn.Module):
    features: int
    mask: Any  # numpy [in, out], static
    zero: bool = False

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.zeros if self.zero else nn.initializers.lecun_normal()
        kernel = self.param("kernel", init, (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        w = kernel * jnp.asarray(self.mask, kernel.dtype)
        return x @ w + bias[None, :]


class MADE(nn.Module):
    """Masked autoencoder: x [n, d] -> `outputs` arrays [n, d], output i a function of the
    coordinates before i in `order` (1-based degrees; see `made_masks`). The output layer is
    zero-initialised."""

    order: tuple[int, ...]
    hidden: Sequence[int] = (64, 64)
    outputs: int = 2
    activation: str = "relu"

    @nn.compact
    def __call__(self, x):
        d = len(self.order)
        masks = made_masks(np.asarray(self.order), self.hidden, self.outputs)
        act = ACTIVATIONS[self.activation]
        h = x
        for width, mask in zip(self.hidden, masks[:-1]):
            h = act(_MaskedDense(width, mask)(h))
        out = _MaskedDense(self.outputs * d, masks[-1], zero=True)(h)
        return [out[:, k * d : (k + 1) * d] for k in range(self.outputs)]


class MAF(_InvertibleFlow):
    """Masked autoregressive flow: `layers` MADE layers, orders alternately 1..d and d..1.

    forward (one pass per layer): z_i = (x_i − μ_i) exp(−α_i), logdet = −Σ α;
    inverse: d passes per layer. α = the bounded log-scale of `log_scale`/`clamp`."""

    dim: int
    layers: int = 5
    hidden: Sequence[int] = (64, 64)
    activation: str = "relu"
    log_scale: str = "softclamp"
    clamp: float = 3.0

    def setup(self):
        _check_dim(self.dim, "MAF")
        _choice("activation", self.activation, tuple(ACTIVATIONS))
        _choice("log_scale", self.log_scale, LOG_SCALES)
        base = tuple(range(1, self.dim + 1))
        self.mades = [
            MADE(base if i % 2 == 0 else base[::-1], tuple(self.hidden), 2, self.activation)
            for i in range(self.layers)
        ]
        if self.log_scale == "tanh":
            self.scales = [self.param(f"tanh_scale_{i}", nn.initializers.ones, (self.dim,))
                           for i in range(self.layers)]  # fmt: skip

    def _mu_alpha(self, i, x):
        mu, raw = self.mades[i](x)
        scale = self.scales[i] if self.log_scale == "tanh" else None
        return mu, bounded_log_scale(raw, self.log_scale, self.clamp, scale)

    def forward(self, x, key=None):
        del key
        logdet = jnp.zeros(x.shape[:1], x.dtype)
        for i in range(self.layers):
            mu, alpha = self._mu_alpha(i, x)
            x = (x - mu) * jnp.exp(-alpha)
            logdet = logdet - jnp.sum(alpha, axis=-1)
        return x, logdet

    def inverse(self, z):
        for i in reversed(range(self.layers)):
            x = jnp.zeros_like(z)
            for _ in range(self.dim):  # after pass k the first k coordinates are exact
                mu, alpha = self._mu_alpha(i, x)
                x = z * jnp.exp(alpha) + mu
            z = x
        return z


# ----------------------------------------------------------------------------- residual flows


def lipswish(x: jax.Array) -> jax.Array:
    """x·sigmoid(x) / 1.1: the swish scaled to be 1-Lipschitz (max slope of swish ≈ 1.0998)."""
    return x * jax.nn.sigmoid(x) / 1.1


def _unit(v: jax.Array) -> jax.Array:
    return v / jnp.maximum(jnp.linalg.norm(v), 1e-12)


class SpectralDense(nn.Module):
    """Dense weights (kernel [in, out], bias) spectrally normalised to norm ≤ `coeff`.

    Returns (W / max(1, σ̂/coeff), bias) with σ̂ = vᵀ W u from the power-iteration vector
    u [out] of collection "spectral" (v = W u / ‖W u‖); with `update=True`,
    `power_iterations` steps u ← Wᵀv/‖Wᵀv‖, v ← W u/‖W u‖ run first (without gradient) and
    u is stored (the collection must then be mutable). σ̂ ≤ ‖W‖₂, reaching it as u converges.
    """

    in_features: int
    features: int
    coeff: float = 0.97
    power_iterations: int = 1

    @nn.compact
    def __call__(self, update: bool = False):
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (self.in_features, self.features)
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        u_var = self.variable(
            "spectral",
            "u",
            lambda: _unit(jax.random.normal(self.make_rng("params"), (self.features,))),
        )
        w = jax.lax.stop_gradient(kernel)
        u = u_var.value.astype(kernel.dtype)
        if update:
            u = jax.lax.fori_loop(
                0, self.power_iterations, lambda _, u: _unit(w.T @ _unit(w @ u)), u
            )
            if not self.is_initializing():
                u_var.value = u
        v = jax.lax.stop_gradient(_unit(w @ u))
        sigma = v @ kernel @ u
        return kernel / jnp.maximum(1.0, sigma / self.coeff), bias


def _mlp_g(weights, x):
    """g(x) of a residual block: LipSwish between spectrally normalised dense layers."""
    h = x
    for i, (w, b) in enumerate(weights):
        h = h @ w + b[None, :]
        if i < len(weights) - 1:
            h = lipswish(h)
    return h


def fixed_point_inverse(g: Callable, y: jax.Array, *, tol: float, max_iter: int):
    """x with x + g(x) = y by x_{k+1} = y − g(x_k), x₀ = y: (x, iterations).

    Stops when max |x_{k+1} − x_k| ≤ tol over the batch or after max_iter iterations (tol = 0:
    exactly max_iter). For Lip(g) ≤ L < 1, ‖x_k − x*‖ ≤ L^k/(1 − L)·‖x₁ − x₀‖."""

    def cond(carry):
        k, _, delta = carry
        return (k < max_iter) & (delta > tol)

    def body(carry):
        k, x, _ = carry
        new = y - g(x)
        return k + 1, new, jnp.max(jnp.abs(new - x))

    inf = jnp.asarray(jnp.inf, y.dtype)
    k, x, _ = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), y, inf))
    return x, k


def residual_logdet_exact(g: Callable, params: Any, x: jax.Array) -> jax.Array:
    """log |det(I + ∂g(params, x)/∂x)| per example from the autodiff Jacobian (g sample-wise).
    [n]."""
    jac = jax.vmap(jax.jacfwd(lambda xi: g(params, xi[None, :])[0]))(x)  # [n, d, d]
    eye = jnp.eye(x.shape[-1], dtype=x.dtype)
    return jnp.linalg.slogdet(eye[None] + jac)[1]


def residual_logdet_roulette(
    g: Callable,
    params: Any,
    x: jax.Array,
    key: jax.Array,
    *,
    p: float = 0.5,
    n_exact: int = 2,
    fixed: bool = False,
    max_terms: int = 1000,
) -> jax.Array:
    """Power-series estimate of log det(I + J(x)), J = ∂g(params, x)/∂x, per example [n]
    (g sample-wise, Lip(g) < 1).

    N = n_exact + M terms, M geometric with P(M ≥ m) = (1 − p)^m, one N for the batch, one
    Rademacher v per example: Σ_{k=1}^{N} (−1)^{k+1}/k · vᵀJ^k v / P(N ≥ k), unbiased
    (Chen et al. 2019). `fixed=True`: exactly n_exact terms, weights 1 (i-ResNet's truncation,
    biased). The value carries the gradient of the Neumann series
    Σ_{k=0}^{N} (−1)^k vᵀJ^k (∂J) v / P(N ≥ k) (unbiased for ∂ log det), with respect to the
    parameters inside g and to x; the power series itself is not differentiated. `max_terms`
    caps N (the chance of reaching it, (1 − p)^(max_terms − n_exact), is negligible).
    """
    kv, kn = jax.random.split(key)
    v = jax.random.rademacher(kv, x.shape, x.dtype)
    if fixed:
        n_terms = jnp.asarray(n_exact, jnp.int32)
    else:
        u = jax.random.uniform(kn, (), jnp.float32, minval=1e-12, maxval=1.0)
        m = jnp.floor(jnp.log(u) / math.log1p(-p)).astype(jnp.int32)
        n_terms = jnp.minimum(n_exact + m, max_terms)
    log_keep = 0.0 if fixed else math.log1p(-p)

    def inv_prob(k):  # 1 / P(N ≥ k)
        return jnp.exp(-log_keep * jnp.maximum(k - n_exact, 0)).astype(x.dtype)

    frozen = jax.lax.stop_gradient(params)
    _, vjp = jax.vjp(lambda z: g(frozen, z), jax.lax.stop_gradient(x))

    def cond(c):
        return c[0] <= n_terms

    def body(c):  # c = (k, w = vᵀJ^{k−1}, series, neumann)
        k, w, series, neumann = c
        w_next = vjp(w)[0]  # vᵀJ^k
        sign = jnp.where(k % 2 == 1, 1.0, -1.0).astype(x.dtype)
        wk = inv_prob(k)
        series = series + sign / k.astype(x.dtype) * wk * jnp.sum(w_next * v, axis=-1)
        neumann = neumann - sign * wk * w_next  # (−1)^k vᵀJ^k / P(N ≥ k)
        return k + 1, w_next, series, neumann

    init = (jnp.ones((), jnp.int32), v, jnp.zeros(x.shape[:1], x.dtype), v)
    _, _, series, neumann = jax.lax.while_loop(cond, body, init)
    _, jv = jax.jvp(
        lambda z: g(params, z), (x,), (v,)
    )  # J v, differentiable in x and in g's parameters
    surrogate = jnp.sum(neumann * jv, axis=-1)
    return series + surrogate - jax.lax.stop_gradient(surrogate)


class ResidualFlow(nn.Module):
    """Residual flow: `blocks` × (ActNorm, y = x + g(x)), g an MLP d -> hidden -> d with
    LipSwish and spectral normalisation at coefficient `lipschitz` (see the module docstring).

    forward(x, key=None, update=False) -> (z, logdet): `key` drives the "roulette"/"series"
    estimators (required for them); `update` advances the power iterations (training; the
    "spectral" collection mutable). inverse(z): fixed-point iterations per block to
    `inverse_tol` (at most `inverse_max_iter`).
    """

    dim: int
    blocks: int = 8
    hidden: Sequence[int] = (64, 64)
    lipschitz: float = 0.97
    power_iterations: int = 1
    logdet: str = "roulette"
    roulette_p: float = 0.5
    exact_terms: int = 2
    inverse_tol: float = 1e-6
    inverse_max_iter: int = 500

    def setup(self):
        _check_dim(self.dim, "a residual flow")
        _choice("logdet", self.logdet, LOGDETS)
        if not 0 < self.lipschitz < 1:
            raise ValueError(f"the Lipschitz coefficient must be in (0, 1), got {self.lipschitz}")
        widths = [self.dim, *self.hidden, self.dim]
        self.layers = [
            [
                SpectralDense(widths[j], widths[j + 1], self.lipschitz, self.power_iterations)
                for j in range(len(widths) - 1)
            ]
            for _ in range(self.blocks)
        ]
        self.an_log_scale = [self.param(f"actnorm_log_scale_{i}", nn.initializers.zeros,
                                        (self.dim,)) for i in range(self.blocks)]  # fmt: skip
        self.an_bias = [self.param(f"actnorm_bias_{i}", nn.initializers.zeros, (self.dim,))
                        for i in range(self.blocks)]  # fmt: skip

    def block_weights(self, update: bool = False):
        """[blocks][layers] of (normalised W [in, out], b [out])."""
        return [[layer(update) for layer in block] for block in self.layers]

    def forward(self, x, key=None, update: bool = False):
        if self.logdet != "exact" and key is None:
            raise ValueError(f"residual flow logdet={self.logdet!r} needs a PRNG key")
        weights = self.block_weights(update)
        logdet = jnp.zeros(x.shape[:1], x.dtype)
        for i, ws in enumerate(weights):
            x = x * jnp.exp(self.an_log_scale[i])[None, :] + self.an_bias[i][None, :]
            logdet = logdet + jnp.sum(self.an_log_scale[i])
            if self.logdet == "exact":
                logdet = logdet + residual_logdet_exact(_mlp_g, ws, x)
            else:
                logdet = logdet + residual_logdet_roulette(
                    _mlp_g,
                    ws,
                    x,
                    jax.random.fold_in(key, i),
                    p=self.roulette_p,
                    n_exact=self.exact_terms,
                    fixed=self.logdet == "series",
                )
            x = x + _mlp_g(ws, x)
        return x, logdet

    def inverse(self, z):
        weights = self.block_weights()
        for i in reversed(range(self.blocks)):
            g = functools.partial(_mlp_g, weights[i])
            z, _ = fixed_point_inverse(g, z, tol=self.inverse_tol, max_iter=self.inverse_max_iter)
            z = (z - self.an_bias[i][None, :]) * jnp.exp(-self.an_log_scale[i])[None, :]
        return z

    def log_prob(self, x, key=None, update: bool = False):
        z, logdet = self.forward(x, key, update)
        return log_standard_normal(z) + logdet

    def sample(self, key, n: int):
        return self.inverse(jax.random.normal(key, (n, self.dim)))

    def __call__(self, x):
        """Creates the variables (init): the weights and power-iteration vectors."""
        self.block_weights()
        return x


def lipschitz_bounds(model: ResidualFlow, variables: Variables) -> np.ndarray:
    """[blocks] Π_layers ‖W_normalised‖₂ (exact SVD): an upper bound of Lip(g) per block."""
    weights = model.apply(variables, method=ResidualFlow.block_weights)
    return np.array([np.prod([np.linalg.norm(np.asarray(w), 2) for w, _ in ws]) for ws in weights])


# ----------------------------------------------------------------------------- CNF


class VectorField(nn.Module):
    """f(t, x) = MLP([x, t]): [n, d] -> [n, d], `activation` between the layers (smooth)."""

    dim: int
    hidden: Sequence[int] = (64, 64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, t, x):
        tt = jnp.broadcast_to(jnp.asarray(t, x.dtype), x.shape[:1])[:, None]
        return MLP((*self.hidden, self.dim), self.activation)(jnp.concatenate([x, tt], axis=1))


# ----------------------------------------------------------------------------- interface


class Flow(NamedTuple):
    """A flow's pure functions (`variables` = {"params": ..., ["spectral": ...]}).

    init: key -> variables; forward: (variables, x [n, d], key=None) -> (z, logdet [n]);
    inverse: (variables, z) -> x; log_prob: (variables, x, key=None) -> [n];
    sample: (variables, key, n) -> [n, d];
    train_log_prob: (variables, x, key) -> (log p [n], updated non-param collections or {});
    trajectory (CNF only): (variables, z [n, d], ts) -> [len(ts), n, d], the ODE from z at
    t1 back to the data (ts descending)."""

    kind: str
    dim: int
    init: Callable
    forward: Callable
    inverse: Callable
    log_prob: Callable
    sample: Callable
    train_log_prob: Callable
    module: Any = None
    trajectory: Callable | None = None


def module_flow(kind: str, module: nn.Module) -> Flow:
    """The `Flow` of a flax flow module (CouplingFlow, MAF, ResidualFlow)."""
    dim = module.dim
    residual = isinstance(module, ResidualFlow)

    def init(key):
        return dict(module.init(key, jnp.zeros((1, dim), jnp.float32)))

    def forward(variables, x, key=None):
        return module.apply(variables, x, key, method="forward")

    def inverse(variables, z):
        return module.apply(variables, z, method="inverse")

    def log_prob(variables, x, key=None):
        return module.apply(variables, x, key, method="log_prob")

    def sample(variables, key, n):
        return module.apply(variables, key, n, method="sample")

    def train_log_prob(variables, x, key):
        if not residual:
            return log_prob(variables, x, key), {}
        logp, updates = module.apply(
            variables, x, key, True, method="log_prob", mutable=["spectral"]
        )
        return logp, dict(updates)

    return Flow(kind, dim, init, forward, inverse, log_prob, sample, train_log_prob, module)


SOLVERS = ("dopri5", "tsit5")
ADJOINTS = ("backsolve", "direct", "forward")


def _solver(name: str):
    import diffrax

    _choice("solver", name, SOLVERS)
    return diffrax.Dopri5() if name == "dopri5" else diffrax.Tsit5()


def cnf_flow(
    field: VectorField,
    *,
    t1: float = 1.0,
    trace: str = "hutchinson",
    solver: str = "dopri5",
    rtol: float = 1e-5,
    atol: float = 1e-5,
    adjoint: str = "backsolve",
    max_steps: int = 4096,
) -> Flow:
    """The `Flow` of a continuous normalizing flow with vector field `field` on [0, t1].

    forward: z = x(t1), logdet = ∫₀^t1 div f dt (`generative.continuous.solve_with_logdet`;
    `trace` "exact" or "hutchinson", the latter needs a key), the adaptive `solver` at
    (`rtol`, `atol`); gradients by `adjoint` "backsolve" (diffrax.BacksolveAdjoint: the
    adjoint ODE backwards in time, O(1) memory, FFJORD's method), "direct" (backpropagation
    through the solver steps) or "forward" (diffrax.ForwardMode: forward-mode derivatives
    only, e.g. `jax.jacfwd` of the map in low dimension). inverse / sample / trajectory: the ODE
    backwards from t1 (no log-det)."""
    import diffrax

    _choice("trace", trace, TRACES)
    _choice("adjoint", adjoint, ADJOINTS)
    _check_dim(field.dim, "a CNF")
    dim = field.dim
    ode_solver = _solver(solver)

    def vf(t, x, params):
        return field.apply({"params": params}, t, x)

    def init(key):
        return {"params": field.init(key, 0.0, jnp.zeros((1, dim), jnp.float32))["params"]}

    def forward(variables, x, key=None):
        from generative.continuous import solve_with_logdet

        if trace == "hutchinson" and key is None:
            raise ValueError("a CNF with trace='hutchinson' needs a PRNG key")
        res = solve_with_logdet(
            vf,
            x,
            0.0,
            t1,
            variables["params"],
            method=trace,
            key=key,
            solver=ode_solver,
            rtol=rtol,
            atol=atol,
            adjoint={
                "backsolve": diffrax.BacksolveAdjoint(),
                "direct": None,
                "forward": diffrax.ForwardMode(),
            }[adjoint],
            max_steps=max_steps,
        )
        return res.y, res.delta

    def trajectory(variables, z, ts):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(vf),
            ode_solver,
            t1,
            0.0,
            None,
            z,
            variables["params"],
            saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
            max_steps=max_steps,
        )
        return sol.ys

    def inverse(variables, z):
        return trajectory(variables, z, jnp.zeros((1,), z.dtype))[0]

    def log_prob(variables, x, key=None):
        z, logdet = forward(variables, x, key)
        return log_standard_normal(z) + logdet

    def sample(variables, key, n):
        return inverse(variables, jax.random.normal(key, (n, dim)))

    def train_log_prob(variables, x, key):
        return log_prob(variables, x, key), {}

    return Flow(
        "cnf", dim, init, forward, inverse, log_prob, sample, train_log_prob, field, trajectory
    )


# ----------------------------------------------------------------------------- family


def _check_family(config: ml_collections.ConfigDict) -> None:
    got = config.get("family", None)
    if got != "flow":
        raise ValueError(f"config.family is {got!r}; this module builds family 'flow'")


def build_flow(config: ml_collections.ConfigDict, dim: int = 2, evaluation: bool = False) -> Flow:
    """The `Flow` of `config.model` for data of dimension `dim`. `evaluation=True`: the
    residual flow's log-det by `eval.logdet` and the CNF's divergence by `eval.trace` at
    (`eval.rtol`, `eval.atol`) instead of the training estimators."""
    m = config.model
    _choice("model.kind", m.kind, KINDS)
    hidden = tuple(int(h) for h in m.hidden)
    if m.kind in ("nice", "realnvp"):
        module = CouplingFlow(
            dim,
            layers=int(m.layers),
            hidden=hidden,
            activation=m.activation,
            coupling="additive" if m.kind == "nice" else "affine",
            log_scale=m.log_scale,
            clamp=float(m.clamp),
            scaling=m.kind == "nice",
        )
        return module_flow(m.kind, module)
    if m.kind == "maf":
        module = MAF(
            dim,
            layers=int(m.layers),
            hidden=hidden,
            activation=m.activation,
            log_scale=m.log_scale,
            clamp=float(m.clamp),
        )
        return module_flow("maf", module)
    if m.kind == "resflow":
        logdet = config.eval.logdet if evaluation else m.logdet
        _choice("logdet", logdet, LOGDETS)
        module = ResidualFlow(
            dim,
            blocks=int(m.layers),
            hidden=hidden,
            lipschitz=float(m.lipschitz),
            power_iterations=int(m.power_iterations),
            logdet=logdet,
            roulette_p=float(m.roulette_p),
            exact_terms=int(m.exact_terms),
            inverse_tol=float(m.inverse_tol),
            inverse_max_iter=int(m.inverse_max_iter),
        )
        return module_flow("resflow", module)
    field = VectorField(dim, hidden, m.activation)
    e = config.eval
    return cnf_flow(
        field,
        t1=float(m.t1),
        trace=e.trace if evaluation else m.trace,
        solver=m.solver,
        rtol=float(e.rtol if evaluation else m.rtol),
        atol=float(e.atol if evaluation else m.atol),
        adjoint=m.adjoint,
        max_steps=int(m.max_steps),
    )


@functools.partial(jax.jit, static_argnums=(0, 2))
def _draw_toy(name: str, key: jax.Array, n: int) -> jax.Array:
    from generative.data.toy import sample_toy

    return sample_toy(name, key, n)


def _check_toy(name: str) -> None:
    from generative.data.toy import TOY_DATASETS

    _choice("data.toy", name, tuple(TOY_DATASETS))


def _test_data(
    config: ml_collections.ConfigDict, salt: int = 2**31 - 1, n: int | None = None
) -> np.ndarray:
    """`n` (default `eval.num_test`) held-out toy samples [n, 2] (a key no training step
    uses)."""
    _check_toy(config.data.toy)
    key = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), salt)
    n = int(config.eval.num_test) if n is None else int(n)
    return np.asarray(_draw_toy(config.data.toy, key, n), np.float32)


def test_data(config: ml_collections.ConfigDict, n: int) -> np.ndarray:
    """The n held-out points the likelihood is measured on (the `generative likelihood`
    hook): the evaluation's held-out set when n = `eval.num_test`."""
    return _test_data(config, n=n)


def log_likelihood(config: ml_collections.ConfigDict, state, x, key: jax.Array) -> np.ndarray:
    """[n] log-likelihood in nats of 2-D points x [n, 2] (the `generative likelihood` hook),
    with the evaluation estimators (exact log-det / divergence); ``key`` feeds the flows that
    draw (none in 2-D evaluation)."""
    _check_family(config)
    flow = build_flow(config, evaluation=True)
    variables = _variables(state)
    fn = jax.jit(lambda y: flow.log_prob(variables, y, key))
    return _batched(fn, np.asarray(x, np.float32), int(config.eval.batch))


def _variables(state) -> Variables:
    return {"params": state.params, **(state.model_state or {})}


def make_experiment(config: ml_collections.ConfigDict, workdir=None):
    """The `Experiment` of a flow preset (`config.family == "flow"`): maximum likelihood,
    loss = −mean log p(x) (nats) on a fresh toy batch each step. Logging steps report the test
    NLL on `eval.log_num_test` held-out points (evaluation estimators) and, with `workdir`,
    save a sample snapshot there (for `training.gif`)."""
    from generative.core.train import Experiment, TrainState, loss_step, make_optimizer
    from generative.data.toy import sample_toy

    _check_family(config)
    flow = build_flow(config)
    eval_flow = build_flow(config, evaluation=True)
    tx = make_optimizer(config.optimizer, int(config.num_steps))
    batch_size, toy = int(config.batch_size), config.data.toy
    _check_toy(toy)

    def init(key):
        variables = dict(flow.init(key))
        params = variables.pop("params")
        return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), variables or None)

    def loss_fn(params, model_state, batch, key):
        del batch
        kd, kf = jax.random.split(key)
        x = sample_toy(toy, kd, batch_size)
        logp, updates = flow.train_log_prob({"params": params, **(model_state or {})}, x, kf)
        new_state = {**model_state, **updates} if model_state else model_state
        return -jnp.mean(logp), ({}, new_state)

    n_log = min(int(config.eval.log_num_test), int(config.eval.num_test))
    log_x = jnp.asarray(_test_data(config)[: max(n_log, 1)])  # the first test points
    log_key = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), 11)

    @jax.jit
    def log_fn(variables):
        nll = -jnp.mean(eval_flow.log_prob(variables, log_x, log_key))
        return nll, eval_flow.sample(variables, log_key, 1000)

    def evaluate(step, state):
        if not n_log and workdir is None:
            return {}
        nll, samples = log_fn(_variables(state))
        if workdir is not None:
            from generative.plots import save_snapshot

            save_snapshot(workdir, step, samples)
        return {"test_nll": float(nll)} if n_log else {}

    def finalize(state, wd):
        return evaluate_state(config, state, wd)

    return Experiment(init=init, step=loss_step(loss_fn, tx), evaluate=evaluate, finalize=finalize)


def _batched(fn, x: np.ndarray, batch: int) -> np.ndarray:
    """fn over x in batches of `batch` rows (the last one padded: one compiled shape)."""
    n = len(x)
    batch = max(1, min(batch, n))
    pad = (-n) % batch
    xp = np.concatenate([x, np.repeat(x[-1:], pad, 0)]) if pad else x
    out = [np.asarray(fn(jnp.asarray(xp[i : i + batch]))) for i in range(0, len(xp), batch)]
    return np.concatenate(out)[:n]


def evaluate_state(config: ml_collections.ConfigDict, state, workdir) -> dict:
    """Test metrics and figures of a trained flow, written into `workdir`.

    eval.json: `nll_nats` = −mean log p on `eval.num_test` held-out points with its standard
    error (evaluation estimators: exact log-det / divergence in 2-D), next to the data's
    entropy (`entropy_nats`, ln 32 for the checkerboard: the floor of the expected NLL);
    `sinkhorn` (ε = `eval.sinkhorn_epsilon`; NaN when `eval.sinkhorn` is off) and `energy`
    distances of `eval.num_samples`
    samples to as many held-out points, and the same distances between two independent data
    sets of that size (`*_data`, the noise floor); `grid_mass`, ∫ exp(log p) over the
    plotted grid [−`eval.extent`, `eval.extent`]² (≈ 1 when the mass lies inside);
    `inverse_max_error` of inverse(forward(x)) on held-out points; residual flows also the
    largest Lipschitz bound of g (exact SVD of the normalised weights, < 1 for
    invertibility). Figures: density.png (exp log p on the grid), samples_scatter.png,
    training.gif (samples over training, when snapshots were saved) and, for the CNF,
    flow.gif (noise carried to data along the ODE time).
    """
    from generative import metrics as metrics_lib
    from generative import plots

    _check_family(config)
    t0 = time.perf_counter()
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    e = config.eval
    flow = build_flow(config, evaluation=True)
    variables = _variables(state)
    test = _test_data(config)
    n, n_samples = len(test), min(int(e.num_samples), len(test))
    root = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), 13)

    log_prob = jax.jit(lambda x: flow.log_prob(variables, x, root))
    logp = _batched(log_prob, test, int(e.batch))
    nll = -float(logp.mean())
    samples = np.asarray(jax.jit(flow.sample, static_argnums=2)(variables, root, n_samples))
    reference = test[:n_samples]
    other = _test_data(config, salt=2**31 - 2)[:n_samples]
    eps = float(e.sinkhorn_epsilon)

    @jax.jit
    def distances(a, b):
        sink = metrics_lib.sinkhorn_divergence(a, b, eps) if e.sinkhorn else jnp.nan
        return sink, metrics_lib.energy_distance(a, b)

    finite = np.isfinite(samples).all(1)
    sink, energy = map(float, distances(samples[finite], reference))
    sink_data, energy_data = map(float, distances(other, reference))

    g, ext = int(e.grid), float(e.extent)
    h = 2 * ext / g
    centres = -ext + h * (np.arange(g) + 0.5)
    gx, gy = np.meshgrid(centres, centres)  # [G, G]: row i at y_i, column j at x_j
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32)
    density = np.exp(_batched(log_prob, grid, int(e.batch))).reshape(g, g)
    mass = float(density.sum() * h * h)

    m = min(n, 1000)
    fwd = jax.jit(lambda x: flow.forward(variables, x, root)[0])
    inv = jax.jit(lambda z: flow.inverse(variables, z))
    inverse_error = float(np.abs(np.asarray(inv(fwd(jnp.asarray(test[:m])))) - test[:m]).max())

    toy = config.data.toy
    out: dict[str, Any] = {
        "family": "flow",
        "kind": config.model.kind,
        "step": int(jax.device_get(state.step)),
        "data": f"toy {toy} (generative.data.toy)",
        "num_test": n,
        "nll_nats": nll,
        "nll_nats_stderr": float(logp.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
    }
    if toy in ENTROPY_NATS:
        out["entropy_nats"] = ENTROPY_NATS[toy]
        out["nll_minus_entropy"] = nll - ENTROPY_NATS[toy]
    out.update(
        {
            "num_samples": n_samples,
            "nonfinite_samples": int((~finite).sum()),
            "sinkhorn": sink,
            "sinkhorn_data": sink_data,
            "sinkhorn_epsilon": eps,
            "energy": energy,
            "energy_data": energy_data,
            "grid_mass": mass,
            "grid": g,
            "extent": ext,
            "inverse_max_error": inverse_error,
            "num_parameters": int(sum(np.size(a) for a in jax.tree.leaves(state.params))),
        }
    )
    if config.model.kind == "resflow":
        out["lipschitz_bound_max"] = float(lipschitz_bounds(flow.module, variables).max())
    if config.model.kind == "cnf":
        out["logdet"] = f"exact divergence, rtol {e.rtol:g}, atol {e.atol:g}"
    elif config.model.kind == "resflow":
        out["logdet"] = e.logdet

    name = config.model.kind
    title = f"{name} density (exp log p), NLL {nll:.3f} nats"
    plots.save_density_grid(workdir / "density.png", density, ext, title=title)
    plots.save_scatter(workdir / "samples_scatter.png", samples[finite], reference, ext,
                       title=f"{name} samples, {toy}")  # fmt: skip

    def render(a, step):
        return plots.scatter_frame(a, reference, ext, title=f"step {step}")

    gif = plots.snapshots_gif(workdir, workdir / "training.gif", render)
    if gif is not None:
        out["training_gif"] = gif.name
    if flow.trajectory is not None:
        frames = int(e.gif_frames)
        ts = np.linspace(float(config.model.t1), 0.0, frames).astype(np.float32)
        z = jax.random.normal(jax.random.fold_in(root, 1), (n_samples, flow.dim))
        path = jax.jit(flow.trajectory)(variables, z, jnp.asarray(ts))
        ode_dir = workdir / "ode_time"
        for i, xs in enumerate(np.asarray(path)):
            plots.save_snapshot(ode_dir, i, xs)

        def render_t(a, i):
            return plots.scatter_frame(a, reference, ext, title=f"ODE time t = {ts[i]:.2f}")

        gif = plots.snapshots_gif(ode_dir, workdir / "flow.gif", render_t, max_frames=frames)
        out["flow_gif"] = gif.name
    out["eval_seconds"] = time.perf_counter() - t0
    (workdir / "eval.json").write_text(json.dumps(out, indent=2) + "\n")
    logger.info(
        "flow %s eval (%s): test NLL %.4f ± %.4f nats (%d points)%s, Sinkhorn %.4g (data %.4g)",
        name,
        toy,
        nll,
        out["nll_nats_stderr"],
        n,
        f", entropy {ENTROPY_NATS[toy]:.4f}" if toy in ENTROPY_NATS else "",
        sink,
        sink_data,
    )
    return out
