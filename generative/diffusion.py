"""Diffusion and score-based models: DDPM (with DDIM), NCSN, score SDEs, classifier guidance.

All three learn one network ε̂(x, c) ≈ the noise ε that made x from a clean example, at a noise
condition c ∈ [0, 1] (1 = the most noise); its score is s = −ε̂/σ for the noise scale σ.

DDPM (Ho et al., 2020). Forward chain q(x_t | x_{t−1}) = N(√α_t x_{t−1}, β_t I), t = 1..T,
α_t = 1 − β_t, ᾱ_t = Π_{s≤t} α_s, linear β from 1e-4 to 0.02, T = 1000 (ᾱ_T = 4.0358e-5).
Closed-form marginal q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I). Loss (the "simple" one):
E_{t, x0, ε} ‖ε − ε̂(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t/T)‖², t ~ U{1..T}. Ancestral sampling:

    x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) ε̂(x_t, t/T)) / √α_t + σ_t z,   σ_t² = β_t (or β̃_t),

with no noise at t = 1. The course slides print √(1 − α_t) in that denominator (and in the
mean μ_θ); the posterior mean of q(x_{t−1} | x_t, x_0) with x_0 = (x_t − √(1 − ᾱ_t) ε)/√ᾱ_t
has √(1 − ᾱ_t), which is what `ancestral_sample` uses (with √(1 − α_t) = √β_t the sampler
would remove the noise about 1/√ᾱ_t times too slowly at large t). β̃_t = β_t (1 − ᾱ_{t−1}) /
(1 − ᾱ_t) is the posterior variance. DDIM (Song et al., 2021): on a subsequence τ of the
steps, x̂_0 = (x_t − √(1 − ᾱ_t) ε̂)/√ᾱ_t and

    x_{t'} = √ᾱ_{t'} x̂_0 + √(1 − ᾱ_{t'} − σ²) ε̂ + σ z,
    σ = η √((1 − ᾱ_{t'})/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_{t'}),

deterministic for η = 0; η = 1 on every step is the ancestral sampler with σ_t² = β̃_t.

NCSN (Song & Ermon, 2019). Geometric ladder σ_1 > … > σ_L; x̃ = x + σ_i ε (the slides print
σ² ε). Loss (1/L) Σ_i σ_i² E ‖s(x̃, σ_i) + (x̃ − x)/σ_i²‖² = E ‖ε̂(x̃, c_i) − ε‖² with one
level per example, c_i = ln(σ_i/σ_L)/ln(σ_1/σ_L) (the VE SDE's time of σ_i). Annealed
Langevin dynamics from x ~ N(0, σ_1² I): for each level, `langevin_steps` steps
x ← x + α_i s(x, σ_i) + √(2 α_i) z with α_i = ε σ_i²/σ_L² (the slides print −σ_t z as the
noise term; Langevin dynamics needs +√(2α) z), then optionally one denoising step
x ← x + σ_L² s(x, σ_L) (Tweedie's formula).

Score SDEs: `generative.sde` (VP, sub-VP, VE; Euler–Maruyama, predictor–corrector, the
probability-flow ODE and its exact likelihood). A DDPM network is also a VP-SDE network
(c = t/T is the VP time t, β(t) = T β_t), so it samples with the ODE too.

Classifier guidance (Dhariwal & Nichol, 2021; Song et al., 2021): a noise-conditional
classifier p_φ(y | x_t, t), trained with cross-entropy on VP-perturbed labelled data,
steers the score: s(x, t | y) = s(x, t) + w ∇_x log p_φ(y | x, t) (w = 1 is Bayes' rule).

Networks: `TimeMLP` for flat data (sinusoidal embedding of 1000 c), `generative.nets.UNet`
for images. Images [0, 1] become y = 2 (k + u)/256 − 1, k = round(255 x) the 8-bit level and
u ~ U[0, 1) redrawn at every step (uniform dequantisation), so that the model is a density
whose bits/dim bound the discrete data's (`generative.sde.bits_per_dim`).

Family module contract: `make_experiment(config, workdir=None)`, `evaluate_state(config,
state, workdir)`, and the likelihood hooks of `generative likelihood`:
`log_likelihood(config, state, x, key) -> [n]` log-density in nats of the examples x as
`test_data(config, n)` returns them (2-D points: their density; images in [0, 1]: the density
of the dequantised 8-bit levels v = k + u on [0, 256)^D, so that −log p / (D ln 2) is in
bits/dim).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import pathlib
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from generative import sde as sde_lib
from generative.layers import Dense
from generative.nets import UNet, sinusoidal_embedding

__all__ = [
    "KINDS",
    "NETS",
    "DATASETS",
    "SAMPLERS",
    "VARIANCES",
    "DDPMSchedule",
    "linear_schedule",
    "q_sample",
    "ddpm_loss",
    "ancestral_sample",
    "ddim_sample",
    "geometric_sigmas",
    "ncsn_condition",
    "ncsn_loss",
    "annealed_langevin",
    "TimeMLP",
    "labelled_mixture",
    "guided_score",
    "dequantize",
    "build_network",
    "DiffusionData",
    "load_data",
    "make_experiment",
    "evaluate_state",
    "make_sampler",
    "sample",
    "test_data",
    "log_likelihood",
]

logger = logging.getLogger(__name__)

KINDS = ("ddpm", "ncsn", "sde")
NETS = ("mlp", "unet")
DATASETS = ("toy", "digits")
VARIANCES = ("beta", "posterior")
SAMPLERS = {
    "ddpm": ("ancestral", "ddim", "ode", "em", "pc"),
    "ncsn": ("langevin",),
    "sde": ("em", "pc", "ode"),
}

EpsFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x [n, ...], c [n]) -> [n, ...]


def _choice(what: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(map(str, choices))}")


def _per_example(c: jax.Array, x: jax.Array) -> jax.Array:
    c = jnp.asarray(c, x.dtype)
    return c.reshape(c.shape + (1,) * (x.ndim - c.ndim)) if c.ndim else c


def _sum_event(a: jax.Array) -> jax.Array:
    return a.reshape(a.shape[0], -1).sum(-1)


def _scan_path(step, x, xs, save_every: int):
    """lax.scan of `step(x, xs_i) -> x` over xs; with save_every > 0 also the state after
    every save_every-th step ([len(xs)/save_every, ...], the initial state not included)."""
    if save_every <= 0:
        x, _ = jax.lax.scan(lambda c, i: (step(c, i), None), x, xs)
        return x, None
    chunks = xs.reshape(-1, save_every, *xs.shape[1:])

    def outer(c, chunk):
        c, _ = jax.lax.scan(lambda cc, i: (step(cc, i), None), c, chunk)
        return c, c

    return jax.lax.scan(outer, x, chunks)


# ----------------------------------------------------------------------------- DDPM


class DDPMSchedule(NamedTuple):
    """β_t, α_t = 1 − β_t and ᾱ_t = Π_{s≤t} α_s for t = 1..T (index t − 1), each [T]."""

    betas: jax.Array
    alphas: jax.Array
    alpha_bars: jax.Array

    @property
    def T(self) -> int:
        return self.betas.shape[0]


def linear_schedule(
    num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, dtype=None
) -> DDPMSchedule:
    """DDPM's linear schedule (β from beta_start to beta_end in T steps), products in float64."""
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(f"the DDPM schedule needs 0 < beta_start <= beta_end < 1, got "
                         f"{beta_start}, {beta_end}")  # fmt: skip
    betas = np.linspace(beta_start, beta_end, int(num_timesteps), dtype=np.float64)
    alpha_bars = np.cumprod(1.0 - betas)
    dtype = dtype or jnp.zeros(()).dtype
    return DDPMSchedule(*(jnp.asarray(a, dtype) for a in (betas, 1.0 - betas, alpha_bars)))


def q_sample(schedule: DDPMSchedule, x0: jax.Array, t: jax.Array, noise: jax.Array) -> jax.Array:
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε, a draw of q(x_t | x_0). t [n] int in 1..T."""
    ab = _per_example(schedule.alpha_bars[t - 1], x0)
    return jnp.sqrt(ab) * x0 + jnp.sqrt(1.0 - ab) * noise


def ddpm_loss(eps_fn: EpsFn, schedule: DDPMSchedule, x0: jax.Array, key: jax.Array) -> jax.Array:
    """‖ε − ε̂(x_t, t/T)‖² summed over the event, t ~ U{1..T}, one t and ε per example: [n]."""
    kt, kn = jax.random.split(key)
    t = jax.random.randint(kt, (x0.shape[0],), 1, schedule.T + 1)
    noise = jax.random.normal(kn, x0.shape, x0.dtype)
    c = t.astype(x0.dtype) / schedule.T
    return _sum_event((eps_fn(q_sample(schedule, x0, t, noise), c) - noise) ** 2)


def ancestral_sample(
    eps_fn: EpsFn,
    schedule: DDPMSchedule,
    key: jax.Array,
    x_T: jax.Array,
    *,
    variance: str = "beta",
    save_every: int = 0,
):
    """DDPM ancestral sampling from x_T ~ N(0, I) (T network evaluations).

    x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) ε̂(x_t, t/T))/√α_t + σ_t z_t, z_t drawn from
    fold_in(key, t), σ_t² = β_t (`variance="beta"`) or β̃_t (`"posterior"`), no noise at t = 1.
    Returns (x_0 [n, ...], path or None: the state after every `save_every` steps)."""
    _choice("DDPM variance", variance, VARIANCES)
    n, big_t = x_T.shape[0], schedule.T
    ab_prev = jnp.concatenate([jnp.ones((1,), schedule.alpha_bars.dtype), schedule.alpha_bars])

    def step(x, t):
        beta, alpha, ab = schedule.betas[t - 1], schedule.alphas[t - 1], schedule.alpha_bars[t - 1]
        c = jnp.full((n,), t, x.dtype) / big_t
        mean = (x - beta / jnp.sqrt(1.0 - ab) * eps_fn(x, c)) / jnp.sqrt(alpha)
        var = beta if variance == "beta" else beta * (1.0 - ab_prev[t - 1]) / (1.0 - ab)
        z = jax.random.normal(jax.random.fold_in(key, t), x.shape, x.dtype)
        return mean + jnp.where(t > 1, jnp.sqrt(var), 0.0).astype(x.dtype) * z

    return _scan_path(step, x_T, jnp.arange(big_t, 0, -1), save_every)


def _ddim_times(big_t: int, num_steps: int) -> np.ndarray:
    """num_steps distinct times from T down to 1 (evenly spaced, rounded), then 0."""
    if not 1 <= num_steps <= big_t:
        raise ValueError(f"DDIM needs 1 <= steps <= T = {big_t}, got {num_steps}")
    ts = np.unique(np.round(np.linspace(1, big_t, num_steps)).astype(np.int32))[::-1]
    return np.concatenate([ts, [0]]).astype(np.int32)


def ddim_sample(
    eps_fn: EpsFn,
    schedule: DDPMSchedule,
    key: jax.Array,
    x_T: jax.Array,
    num_steps: int,
    *,
    eta: float = 0.0,
    clip: float | None = None,
    save_every: int = 0,
):
    """DDIM sampling on `num_steps` times from T down to 1 (one network evaluation each),
    ending at ᾱ_0 = 1 (module docstring); z drawn from fold_in(key, t) as in
    `ancestral_sample`, so η = 1 with num_steps = T reproduces it with σ_t² = β̃_t exactly.
    clip: x̂_0 clipped to [−clip, clip] (images). Returns (x_0, path or None)."""
    n = x_T.shape[0]
    ts = _ddim_times(schedule.T, num_steps)
    ab = jnp.concatenate([jnp.ones((1,), schedule.alpha_bars.dtype), schedule.alpha_bars])
    pairs = jnp.asarray(np.stack([ts[:-1], ts[1:]], 1))

    def step(x, pair):
        t, tp = pair[0], pair[1]
        a, ap = ab[t], ab[tp]
        eps = eps_fn(x, jnp.full((n,), t, x.dtype) / schedule.T)
        x0 = (x - jnp.sqrt(1.0 - a) * eps) / jnp.sqrt(a)
        if clip is not None:
            x0 = jnp.clip(x0, -clip, clip)
            eps = (x - jnp.sqrt(a) * x0) / jnp.sqrt(1.0 - a)
        sigma = eta * jnp.sqrt((1.0 - ap) / (1.0 - a)) * jnp.sqrt(1.0 - a / ap)
        z = jax.random.normal(jax.random.fold_in(key, t), x.shape, x.dtype)
        direction = jnp.sqrt(jnp.maximum(1.0 - ap - sigma**2, 0.0))
        return (jnp.sqrt(ap) * x0 + direction * eps + sigma * z).astype(x.dtype)

    return _scan_path(step, x_T, pairs, save_every)


# ----------------------------------------------------------------------------- NCSN


def geometric_sigmas(sigma_max: float, sigma_min: float, num_scales: int) -> np.ndarray:
    """[L] noise levels σ_1 = sigma_max > … > σ_L = sigma_min, a geometric sequence."""
    if not 0 < sigma_min < sigma_max or num_scales < 2:
        raise ValueError(f"the NCSN ladder needs 0 < sigma_min < sigma_max and >= 2 scales, got "
                         f"{sigma_min}, {sigma_max}, {num_scales}")  # fmt: skip
    return np.geomspace(sigma_max, sigma_min, int(num_scales))


def ncsn_condition(sigma, sigma_max: float, sigma_min: float):
    """c = ln(σ/σ_min)/ln(σ_max/σ_min) ∈ [0, 1]: 1 at the top of the ladder (the VE SDE time)."""
    return jnp.log(sigma / sigma_min) / jnp.log(sigma_max / sigma_min)


def ncsn_loss(eps_fn: EpsFn, sigmas, x0: jax.Array, key: jax.Array) -> jax.Array:
    """σ_i² ‖s(x̃, σ_i) + (x̃ − x)/σ_i²‖² = ‖ε̂(x̃, c_i) − ε‖², x̃ = x + σ_i ε, one level i
    uniform over the ladder per example: [n]."""
    sigmas = jnp.asarray(sigmas, x0.dtype)
    ki, kn = jax.random.split(key)
    i = jax.random.randint(ki, (x0.shape[0],), 0, sigmas.shape[0])
    sigma = sigmas[i]
    noise = jax.random.normal(kn, x0.shape, x0.dtype)
    x_noisy = x0 + _per_example(sigma, x0) * noise
    c = ncsn_condition(sigma, sigmas[0], sigmas[-1])
    return _sum_event((eps_fn(x_noisy, c) - noise) ** 2)


def annealed_langevin(
    eps_fn: EpsFn,
    sigmas,
    key: jax.Array,
    x_init: jax.Array,
    *,
    steps: int = 100,
    step_eps: float = 1e-5,
    denoise: bool = True,
    save_every: int = 0,
):
    """Annealed Langevin dynamics over the ladder (module docstring): L · steps network
    evaluations (+1 with `denoise`). x_init: e.g. σ_1 · N(0, I). Returns (x, path or None:
    the state after every `save_every` Langevin steps)."""
    lo, hi = float(sigmas[-1]), float(sigmas[0])
    sigmas = jnp.asarray(sigmas, x_init.dtype)
    levels = sigmas.shape[0]
    n = x_init.shape[0]

    def score(x, sigma):
        c = jnp.full((n,), ncsn_condition(sigma, hi, lo), x.dtype)
        return -eps_fn(x, c) / sigma

    def step(x, k):
        i = k // steps
        sigma = sigmas[i]
        alpha = step_eps * sigma**2 / lo**2
        z = jax.random.normal(jax.random.fold_in(key, k), x.shape, x.dtype)
        return x + alpha * score(x, sigma) + jnp.sqrt(2.0 * alpha) * z

    x, path = _scan_path(step, x_init, jnp.arange(levels * steps), save_every)
    if denoise:
        x = x + lo**2 * score(x, lo)
    return x, path


# ----------------------------------------------------------------------------- networks


class TimeMLP(nn.Module):
    """Noise-conditional MLP for flat data: (x [n, D], c [n]) -> [n, out_dim or D].

    e = SiLU(Dense(hidden)(sinusoidal_embedding(time_scale · c, embed_dim))); then `layers`
    hidden layers h ← SiLU(Dense(h) + Dense(e)) (the condition enters every layer) and a
    linear output layer."""

    hidden: int = 256
    layers: int = 3
    embed_dim: int = 64
    out_dim: int | None = None
    time_scale: float = 1000.0

    @nn.compact
    def __call__(self, x, c):
        if x.ndim != 2:
            raise ValueError(f"TimeMLP expects flat data [n, D], got shape {x.shape}")
        emb = sinusoidal_embedding(self.time_scale * jnp.asarray(c).reshape(-1), self.embed_dim)
        emb = nn.silu(Dense(self.hidden)(emb.astype(x.dtype)))
        h = x
        for _ in range(self.layers):
            h = nn.silu(Dense(self.hidden)(h) + Dense(self.hidden, use_bias=False)(emb))
        return Dense(self.out_dim or x.shape[-1])(h)


def build_network(config: ml_collections.ConfigDict, data_shape: tuple[int, ...]) -> nn.Module:
    """The ε-network of `config.model` for examples of `data_shape`."""
    m = config.model
    _choice("model.net", m.net, NETS)
    if m.net == "mlp":
        if len(data_shape) != 1:
            raise ValueError(f"model.net=mlp takes flat data, got examples of shape {data_shape}")
        return TimeMLP(int(m.hidden), int(m.layers), int(m.embed_dim), time_scale=_time_scale(m))
    if len(data_shape) != 3:
        raise ValueError(f"model.net=unet takes images [H, W, C], got shape {data_shape}")
    return UNet(
        nf=int(m.nf),
        mults=tuple(int(v) for v in m.mults),
        blocks=int(m.blocks),
        groups=int(m.groups),
        patch=int(m.patch),
        time_scale=_time_scale(m),
    )


def _time_scale(m) -> float:
    return float(m.get("time_scale", 1000.0))  # run folders written before the key: 1000


# ----------------------------------------------------------------------------- guidance


def labelled_mixture(name: str, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """(x [n, 2], component [n]) of a Gaussian-mixture toy (`generative.data.toy.MIXTURES`):
    the same draws as `sample_toy(name, key, n)`, with the component each came from."""
    from generative.data.toy import mixture

    centers, std = mixture(name)
    k1, k2 = jax.random.split(key)
    idx = jax.random.randint(k1, (n,), 0, centers.shape[0])
    return jnp.asarray(centers)[idx] + std * jax.random.normal(k2, (n, 2)), idx


def guided_score(score_fn, logits_fn, label: jax.Array, scale: float):
    """s(x, t | y) = s(x, t) + scale · ∇_x log softmax(logits(x, t))_y. label [n] int."""

    def log_prob(x, t):
        logp = jax.nn.log_softmax(logits_fn(x, t), axis=-1)
        return jnp.sum(jnp.take_along_axis(logp, label[:, None], axis=1))

    def score(x, t):
        return score_fn(x, t) + scale * jax.grad(log_prob)(x, t)

    return score


# ----------------------------------------------------------------------------- data


def dequantize(x: jax.Array, key: jax.Array | None, levels: int = 256) -> jax.Array:
    """Images in [0, 1] -> y = 2 (k + u)/levels − 1 ∈ [−1, 1), k = round(x (levels − 1)),
    u ~ U[0, 1) (u = ½ when key is None)."""
    k = jnp.round(x * (levels - 1))
    u = 0.5 if key is None else jax.random.uniform(key, x.shape, x.dtype)
    return 2.0 * (k + u) / levels - 1.0


class DiffusionData(NamedTuple):
    """Training/test data of a run: images [N, 28, 28, 1] in [0, 1]; toys: `train` None (each
    step samples its batch), `test` [n, 2]."""

    train: np.ndarray | None
    test: np.ndarray
    shape: tuple[int, ...]
    source: str


def _check_family(config) -> None:
    if config.get("family", None) != "diffusion":
        raise ValueError(
            f"config.family is {config.get('family', None)!r}; this module builds 'diffusion'"
        )


def load_data(config: ml_collections.ConfigDict) -> DiffusionData:
    """The run's data (`config.data.name`: toy or digits); the toy test set is drawn from a
    key of its own, independent of every training batch."""
    d = config.data
    _choice("data.name", d.name, DATASETS)
    if d.name == "digits":
        from generative.data.digits import load_digits

        n_font = int(d.num_font_digits) or None
        tr = load_digits("train", d.source, d.data_dir or None, n_font)
        te = load_digits("test", d.source, d.data_dir or None, n_font)
        return DiffusionData(
            tr.images[..., None], te.images[..., None], (28, 28, 1), f"{tr.source}; {te.source}"
        )
    from generative.data.toy import TOY_DATASETS, sample_toy

    _choice("data.toy", d.toy, tuple(TOY_DATASETS))
    key = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), 2**31 - 1)
    test = np.asarray(sample_toy(d.toy, key, int(config.eval.num_test)), np.float32)
    return DiffusionData(None, test, (2,), f"toy {d.toy} (generative.data.toy)")


def test_data(config: ml_collections.ConfigDict, n: int) -> np.ndarray:
    """n held-out examples as `log_likelihood` takes them (toys [n, 2]; digits [n, 28, 28, 1]
    in [0, 1])."""
    _check_family(config)
    data = load_data(config)
    if n > len(data.test):
        raise ValueError(f"{n} test examples asked, the run's test set has {len(data.test)}")
    return data.test[:n]


# ----------------------------------------------------------------------------- the model


class _Model(NamedTuple):
    """What a run's configuration fixes: the network(s), the noise process, the data shape."""

    kind: str
    net: nn.Module
    shape: tuple[int, ...]
    schedule: DDPMSchedule | None  # ddpm
    sigmas: np.ndarray | None  # ncsn
    sde: Any  # the SDE of the ODE/EM/PC samplers and the likelihood (ddpm: its VP limit)
    classifier: nn.Module | None
    num_classes: int


def _model(config, shape: tuple[int, ...]) -> _Model:
    kind = config.model.kind
    _choice("model.kind", kind, KINDS)
    net = build_network(config, shape)
    schedule = sigmas = sde = None
    if kind == "ddpm":
        d = config.ddpm
        schedule = linear_schedule(int(d.num_timesteps), float(d.beta_start), float(d.beta_end))
        big_t = int(d.num_timesteps)
        sde = sde_lib.VPSDE(big_t * float(d.beta_start), big_t * float(d.beta_end))
    elif kind == "ncsn":
        n = config.ncsn
        sigmas = geometric_sigmas(float(n.sigma_max), float(n.sigma_min), int(n.num_scales))
    else:
        s = config.sde
        sde = sde_lib.make_sde(
            s.name,
            beta_min=s.beta_min,
            beta_max=s.beta_max,
            sigma_min=s.sigma_min,
            sigma_max=s.sigma_max,
        )
    classifier, num_classes = None, 0
    if config.guidance.enabled:
        from generative.data.toy import MIXTURES

        if config.data.name != "toy" or config.data.toy not in MIXTURES:
            raise ValueError(
                f"classifier guidance needs a labelled Gaussian-mixture toy "
                f"({', '.join(MIXTURES)}), got data {config.data.name}/{config.data.toy}"
            )
        if sde is None or sde.name not in ("vp", "subvp"):
            raise ValueError("classifier guidance needs model.kind=sde with sde.name=vp or subvp")
        num_classes = len(MIXTURES[config.data.toy][0])
        g = config.guidance
        classifier = TimeMLP(int(g.hidden), int(g.layers), int(config.model.embed_dim),
                             out_dim=num_classes)  # fmt: skip
    return _Model(kind, net, tuple(shape), schedule, sigmas, sde, classifier, num_classes)


def _eps_fn(model: _Model, params) -> EpsFn:
    return functools.partial(model.net.apply, {"params": params["score"]})


def _logits_fn(model: _Model, params):
    return functools.partial(model.classifier.apply, {"params": params["classifier"]})


def _loss_terms(model: _Model, config, params, x0, key, labels=None) -> dict[str, jax.Array]:
    """Per-run training losses (batch means): `score` and, with guidance, `classifier`."""
    eps_fn = _eps_fn(model, params)
    k1, k2 = jax.random.split(key)
    if model.kind == "ddpm":
        score = ddpm_loss(eps_fn, model.schedule, x0, k1)
    elif model.kind == "ncsn":
        score = ncsn_loss(eps_fn, model.sigmas, x0, k1)
    else:
        score = sde_lib.dsm_loss(
            model.sde,
            eps_fn,
            x0,
            k1,
            eps=float(config.sde.train_eps),
            likelihood_weighting=bool(config.sde.likelihood_weighting),
        )
    out = {"score_loss": jnp.mean(score)}
    if model.classifier is not None:
        kt, kn = jax.random.split(k2)
        t = jax.random.uniform(kt, (x0.shape[0],), x0.dtype, float(config.sde.train_eps), 1.0)
        xt = model.sde.perturb(x0, t, jax.random.normal(kn, x0.shape, x0.dtype))
        logits = _logits_fn(model, params)(xt, t)
        logp = jax.nn.log_softmax(logits, axis=-1)
        out["classifier_loss"] = -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))
        out["classifier_accuracy"] = jnp.mean(jnp.argmax(logits, -1) == labels)
    return out


def make_experiment(config: ml_collections.ConfigDict, workdir=None):
    """The `Experiment` of a diffusion preset (`config.family == "diffusion"`). Toys: each
    step samples its batch (steps run in `lax.scan` chunks); digits: epoch batches of the
    training set, dequantised inside the step."""
    from generative.core.train import Experiment, TrainState, loss_step, make_optimizer
    from generative.vae import epoch_batches

    _check_family(config)
    data = load_data(config)
    model = _model(config, data.shape)
    tx = make_optimizer(config.optimizer, int(config.num_steps))
    batch_size = int(config.batch_size)
    logger.info("diffusion (%s) data: %s", config.model.kind, data.source)

    def init(key):
        k1, k2 = jax.random.split(key)
        x = jnp.zeros((1,) + data.shape, jnp.float32)
        c = jnp.zeros((1,), jnp.float32)
        params = {"score": model.net.init(k1, x, c)["params"]}
        if model.classifier is not None:
            params["classifier"] = model.classifier.init(k2, x, c)["params"]
        return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), None)

    def loss_fn(params, model_state, batch, key):
        kd, kl = jax.random.split(key)
        labels = None
        if batch is None:
            if model.classifier is not None:
                batch, labels = labelled_mixture(config.data.toy, kd, batch_size)
            else:
                from generative.data.toy import sample_toy

                batch = sample_toy(config.data.toy, kd, batch_size)
        else:
            batch = dequantize(batch, kd)
        terms = _loss_terms(model, config, params, batch, kl, labels)
        loss = terms["score_loss"] + terms.get("classifier_loss", 0.0)
        return loss, (terms, model_state)

    batch_fn = None
    if data.train is not None:
        indices = epoch_batches(len(data.train), batch_size, int(config.seed))
        batch_fn = lambda i: data.train[indices(i)]  # noqa: E731

    def finalize(state, wd):
        return evaluate_state(config, state, wd, data=data)

    return Experiment(init=init, step=loss_step(loss_fn, tx), batch_fn=batch_fn, finalize=finalize)


# ----------------------------------------------------------------------------- sampling


def _sampler_settings(config) -> dict:
    s = config.sample
    return dict(
        steps=int(s.steps),
        pc_steps=int(s.pc_steps),
        corrector_steps=int(s.corrector_steps),
        snr=float(s.snr),
        ddim_steps=int(s.ddim_steps),
        eta=float(s.eta),
        solver=s.ode_solver,
        rtol=float(s.ode_rtol),
        atol=float(s.ode_atol),
        ode_steps=int(s.ode_steps),
        ode_variable=str(s.get("ode_variable", "t")),
        ode_denoise=bool(s.get("ode_denoise", False)),
        eps=float(s.eps),
        variance=config.ddpm.variance,
        langevin_steps=int(config.ncsn.langevin_steps),
        step_eps=float(config.ncsn.step_eps),
        denoise=bool(config.ncsn.denoise),
    )


def _nfe(model: _Model, sampler: str, opts: dict) -> int | None:
    """Network evaluations of a fixed-cost sampler (None: adaptive, counted by the solver)."""
    if sampler == "ancestral":
        return model.schedule.T
    if sampler == "ddim":
        return len(_ddim_times(model.schedule.T, opts["ddim_steps"])) - 1
    if sampler == "em":
        return opts["steps"]
    if sampler == "pc":
        return opts["pc_steps"] * (1 + opts["corrector_steps"])
    if sampler == "langevin":
        return len(model.sigmas) * opts["langevin_steps"] + int(opts["denoise"])
    if opts["ode_steps"] > 0:
        return int(sde_lib.ode_function_evaluations(sde_lib.ode_solver(opts["solver"]),
                                                    opts["ode_steps"])) + int(opts["ode_denoise"])  # fmt: skip
    return None


def _draw(model: _Model, sampler: str, opts: dict, params, key, n: int, frames: int = 0,
          score_fn=None):  # fmt: skip
    """(samples [n, ...], path [k, n, ...] or None, nfe or None) of one sampler. Pure
    (jittable with `sampler`, `opts`, `n` and `frames` static). score_fn overrides the
    network's score (guidance)."""
    _choice(f"sampler for model.kind={model.kind}", sampler, SAMPLERS[model.kind])
    eps_fn = _eps_fn(model, params)
    shape = (n,) + model.shape
    k0, k1 = jax.random.split(key)
    nfe = None
    if sampler in ("ancestral", "ddim"):
        x_T = jax.random.normal(k0, shape)
        steps = model.schedule.T if sampler == "ancestral" else len(
            _ddim_times(model.schedule.T, opts["ddim_steps"])) - 1  # fmt: skip
        every = max(1, steps // frames) if frames else 0
        while every and steps % every:
            every -= 1
        if sampler == "ancestral":
            x, path = ancestral_sample(eps_fn, model.schedule, k1, x_T,
                                       variance=opts["variance"], save_every=every)  # fmt: skip
        else:
            x, path = ddim_sample(eps_fn, model.schedule, k1, x_T, opts["ddim_steps"],
                                  eta=opts["eta"], save_every=every)  # fmt: skip
        path = None if path is None else jnp.concatenate([x_T[None], path])
        return x, path, nfe
    if sampler == "langevin":
        sigmas = model.sigmas
        x0 = float(sigmas[0]) * jax.random.normal(k0, shape)
        total = len(sigmas) * opts["langevin_steps"]
        every = max(1, total // frames) if frames else 0
        while every and total % every:
            every -= 1
        x, path = annealed_langevin(eps_fn, sigmas, k1, x0, steps=opts["langevin_steps"],
                                    step_eps=opts["step_eps"], denoise=opts["denoise"],
                                    save_every=every)  # fmt: skip
        path = None if path is None else jnp.concatenate([x0[None], path, x[None]])
        return x, path, nfe
    sde = model.sde
    score = sde_lib.score_from_eps(sde, eps_fn) if score_fn is None else score_fn
    x_T = sde.prior_sample(k0, shape)
    if sampler == "em":
        return sde_lib.euler_maruyama(sde, score, k1, x_T, opts["steps"], opts["eps"]), None, nfe
    if sampler == "pc":
        x = sde_lib.predictor_corrector(sde, score, k1, x_T, opts["pc_steps"],
                                        corrector_steps=opts["corrector_steps"], snr=opts["snr"],
                                        eps=opts["eps"])  # fmt: skip
        return x, None, nfe
    out = sde_lib.ode_sample(sde, score, x_T, eps=opts["eps"], solver=opts["solver"],
                             rtol=opts["rtol"], atol=opts["atol"], steps=opts["ode_steps"],
                             save_every=frames, variable=opts["ode_variable"],
                             denoise=opts["ode_denoise"])  # fmt: skip
    return out.x, out.path, out.nfe


def make_sampler(config: ml_collections.ConfigDict, sampler: str, n: int, **overrides):
    """A jitted `(params, key) -> (samples [n, ...] in the data space, evaluations)` of a
    trained model's `sampler`, its settings from `config.sample` / `config.ncsn` /
    `config.ddpm.variance` updated by `overrides` (keys: steps, pc_steps, corrector_steps,
    snr, ddim_steps, eta, solver, rtol, atol, ode_steps, ode_variable, ode_denoise, eps, variance, langevin_steps,
    step_eps, denoise). evaluations: network evaluations ([] int; fixed-cost samplers count
    them ahead, the adaptive ODE from its solver steps)."""
    _check_family(config)
    data_shape = (2,) if config.data.name == "toy" else (28, 28, 1)
    model = _model(config, data_shape)
    opts = _sampler_settings(config)
    unknown = sorted(set(overrides) - set(opts))
    if unknown:
        raise ValueError(f"unknown sampler settings {', '.join(unknown)}; valid: {', '.join(opts)}")
    opts.update(overrides)
    _choice(f"sampler for model.kind={model.kind}", sampler, SAMPLERS[model.kind])
    fixed = _nfe(model, sampler, opts)

    @jax.jit
    def fn(params, key):
        x, _, nfe = _draw(model, sampler, opts, params, key, n)
        return _to_data(config, x), jnp.asarray(fixed if nfe is None else nfe)

    return fn


def sample(config: ml_collections.ConfigDict, state, key: jax.Array, n: int, sampler: str = ""):
    """n samples of a trained model in the data space (images in [0, 1]) with `sampler`
    (default: the first of `config.eval.samplers`). -> (samples, network evaluations)."""
    fn = make_sampler(config, sampler or _samplers(config)[0], n)
    x, nfe = fn(state.params, key)
    return np.asarray(x), int(nfe)


def _to_data(config, x):
    return jnp.clip((x + 1.0) / 2.0, 0.0, 1.0) if config.data.name == "digits" else x


def _samplers(config) -> list[str]:
    names = [s.strip() for s in config.eval.samplers.split(",") if s.strip()]
    if not names:
        raise ValueError("eval.samplers is empty; name at least one sampler")
    for s in names:
        _choice(f"sampler for model.kind={config.model.kind}", s, SAMPLERS[config.model.kind])
    return names


# ----------------------------------------------------------------------------- likelihood


def _likelihood_settings(config, dims: int) -> dict:
    e = config.eval
    method = e.nll_method
    if method == "auto":
        method = "exact" if dims <= 8 else "hutchinson"
    return dict(method=method, solver=e.nll_solver, rtol=float(e.nll_rtol),
                atol=float(e.nll_atol), eps=float(e.nll_eps))  # fmt: skip


def _log_density(model: _Model, params, y, key, opts):
    """log p(y) [n] of model-space data by the probability-flow ODE, and its evaluations."""
    score = sde_lib.score_from_eps(model.sde, _eps_fn(model, params))
    return sde_lib.log_likelihood(
        model.sde,
        score,
        y,
        eps=opts["eps"],
        method=opts["method"],
        key=key,
        solver=opts["solver"],
        rtol=opts["rtol"],
        atol=opts["atol"],
    )


def log_likelihood(config: ml_collections.ConfigDict, state, x, key: jax.Array):
    """[n] log-likelihood in nats of examples x as `test_data` returns them (see the module
    docstring): the probability-flow ODE of the run's SDE (DDPM: its VP limit) from
    eval.nll_eps to 1; images are dequantised with `key` (which also draws the Hutchinson
    probes). NCSN defines no SDE: a ValueError."""
    _check_family(config)
    if config.model.kind == "ncsn":
        raise ValueError("NCSN has no likelihood here (no SDE); use model.kind=ddpm or sde")
    x = jnp.asarray(x, jnp.float32)
    images = config.data.name == "digits"
    if images and x.ndim == 3:
        x = x[..., None]
    model = _model(config, tuple(x.shape[1:]))
    opts = _likelihood_settings(config, math.prod(x.shape[1:]))
    kq, kh = jax.random.split(key)
    fn = jax.jit(lambda p, y, k: _log_density(model, p, y, k, opts)[0])
    if not images:
        return np.asarray(fn(state.params, x, kh))
    dims = math.prod(x.shape[1:])
    logp = fn(state.params, dequantize(x, kq), kh)
    return np.asarray(logp + dims * math.log(2.0 / 256))


# ----------------------------------------------------------------------------- evaluation


def evaluate_state(config: ml_collections.ConfigDict, state, workdir, data=None) -> dict:
    """Samples, distances, likelihood and figures of a trained model, into `workdir`.

    eval.json: per sampler of `eval.samplers`, its network evaluations and seconds, and for
    2-D data the energy distance and Sinkhorn divergence (ε = eval.sinkhorn_epsilon) of
    eval.num_samples samples to eval.num_test held-out points (with the same distances
    between two held-out sets of that size, the floor for this sample size); the NLL by the
    probability-flow ODE on eval.nll_num test examples (nats; digits: bits/dim with uniform
    dequantisation), except for NCSN; for guidance, the fraction of samples of each class y
    nearest to its mode for each scale of `guidance.scales`. Figures: samples_<sampler>.png
    (scatter, or an image grid), samples_density.png (2-D), flow.gif (the probability-flow ODE
    carrying prior noise to data; Langevin dynamics for NCSN; `eval.gif_sampler`)."""
    from generative import metrics as m
    from generative import plots

    _check_family(config)
    t_start = time.perf_counter()
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = load_data(config) if data is None else data
    model = _model(config, data.shape)
    e = config.eval
    samplers = _samplers(config)
    opts = _sampler_settings(config)
    images = len(data.shape) == 3
    root = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), 17)
    n = int(e.num_samples)
    out: dict[str, Any] = {
        "family": "diffusion",
        "kind": config.model.kind,
        "step": int(jax.device_get(state.step)),
        "data": data.source,
    }
    if model.sde is not None:
        out["sde"] = model.sde.name
    test = data.test
    if not images:  # two independent data sets of the same sizes: the distances' floor
        from generative.data.toy import sample_toy

        other = sample_toy(config.data.toy, jax.random.fold_in(root, 99), n)
        ref = jnp.asarray(test)
        out["energy_floor"] = float(m.energy_distance(other, ref))
        if e.sinkhorn:
            out["sinkhorn_floor"] = float(
                m.sinkhorn_divergence(other, ref, float(e.sinkhorn_epsilon))
            )
    first = None
    for i, sampler in enumerate(samplers):
        key = jax.random.fold_in(root, i)
        fn = jax.jit(lambda p, k, s=sampler: _draw(model, s, opts, p, k, n))
        fn = fn.lower(state.params, key).compile()  # compiled ahead: the timing runs it only
        t0 = time.perf_counter()
        x, _, nfe = jax.block_until_ready(fn(state.params, key))
        seconds = time.perf_counter() - t0
        nfe = _nfe(model, sampler, opts) if nfe is None else int(nfe)
        x = np.asarray(_to_data(config, x))
        res = {"nfe": nfe, "seconds": seconds, "finite": bool(np.isfinite(x).all())}
        if images:
            plots.save_image_grid(workdir / f"samples_{sampler}.png", x[:64])
        else:
            xs = jnp.asarray(x)
            ref = jnp.asarray(test)
            res["energy"] = float(m.energy_distance(xs, ref))
            if e.sinkhorn:
                res["sinkhorn"] = float(m.sinkhorn_divergence(xs, ref, float(e.sinkhorn_epsilon)))
            extent = float(np.abs(test).max() * 1.3)
            plots.save_scatter(workdir / f"samples_{sampler}.png", x, test, extent=extent,
                               title=f"{config.model.kind} {sampler}, {data.source}")  # fmt: skip
            if first is None:
                plots.save_density(workdir / "samples_density.png", x, extent=extent,
                                   title=f"{config.model.kind} {sampler} samples")  # fmt: skip
        first = first or sampler
        out[sampler] = res
        logger.info("sampler %s: %s", sampler, _summary(res))
    out["flow_gif"] = _flow_gif(config, model, opts, state.params, data, workdir, root)
    if config.model.kind != "ncsn" and int(e.nll_num) > 0:
        out.update(_nll(config, model, state.params, data, jax.random.fold_in(root, 31)))
    if model.classifier is not None:
        out["guidance"] = _guidance_eval(config, model, opts, state.params, root, workdir)
    out["eval_seconds"] = time.perf_counter() - t_start
    (workdir / "eval.json").write_text(json.dumps(out, indent=2) + "\n")
    logger.info("diffusion eval (%s): %s", data.source, _summary(out))
    return out


def _summary(d: dict) -> str:
    return " ".join(f"{k}={v:.5g}" for k, v in d.items() if isinstance(v, float | int))


def _nll(config, model: _Model, params, data: DiffusionData, key) -> dict:
    e = config.eval
    num = min(int(e.nll_num), len(data.test))
    x = jnp.asarray(data.test[:num], jnp.float32)
    dims = math.prod(data.shape)
    opts = _likelihood_settings(config, dims)
    batch = max(1, min(num, int(e.nll_batch)))
    fn = jax.jit(lambda p, y, k: _log_density(model, p, y, k, opts))
    logps, evals = [], []
    t0 = time.perf_counter()
    for i in range(0, num - num % batch or num, batch):
        kb = jax.random.fold_in(key, i)
        kq, kh = jax.random.split(kb)
        xb = x[i : i + batch]
        y = dequantize(xb, kq) if len(data.shape) == 3 else xb
        lp, nfe = fn(params, y, kh)
        logps.append(np.asarray(lp))
        evals.append(int(nfe))
    logp = np.concatenate(logps)
    if len(data.shape) == 3:
        logp = logp + dims * math.log(2.0 / 256)
    nll = -logp
    out = {
        "nll_num": int(len(nll)),
        "nll_method": opts["method"],
        "nll_nats": float(nll.mean()),
        "nll_nats_stderr": float(nll.std(ddof=1) / math.sqrt(len(nll))) if len(nll) > 1 else 0.0,
        "nll_evaluations_per_batch": float(np.mean(evals)),
        "nll_seconds": time.perf_counter() - t0,
    }
    if len(data.shape) == 3:
        out["bits_per_dim"] = float(out["nll_nats"] / (dims * math.log(2)))
    elif config.data.toy == "checkerboard":
        out["nll_floor_nats"] = math.log(32.0)  # the checkerboard's entropy
    logger.info("NLL %.4f ± %.4f nats (%s, %d examples)", out["nll_nats"],
                out["nll_nats_stderr"], opts["method"], len(nll))  # fmt: skip
    return out


def _flow_gif(config, model: _Model, opts, params, data: DiffusionData, workdir, root):
    """flow.gif: eval.gif_frames frames of the way from prior noise to data, by
    eval.gif_sampler (auto: the probability-flow ODE; NCSN: annealed Langevin)."""
    from generative import plots

    frames = int(config.eval.gif_frames)
    if frames <= 0:
        return None
    n = int(config.eval.gif_samples)
    sampler = config.eval.gif_sampler
    if sampler == "auto":
        sampler = "langevin" if model.kind == "ncsn" else "ode"
    _choice(f"eval.gif_sampler for model.kind={model.kind}", sampler,
            tuple(s for s in SAMPLERS[model.kind] if s in ("ode", "ancestral", "ddim",
                                                           "langevin")))  # fmt: skip
    fn = jax.jit(lambda p, k: _draw(model, sampler, opts, p, k, n, frames=frames)[1])
    path = np.asarray(_to_data(config, fn(params, jax.random.fold_in(root, 77))))
    folder = workdir / "flow_frames"
    for old in folder.glob("*.npy"):
        old.unlink()
    for k, frame in enumerate(path):
        plots.save_snapshot(folder, k, frame)
    count = len(path)
    what = {"ode": "probability-flow ODE", "langevin": "annealed Langevin"}.get(sampler, sampler)
    if len(data.shape) == 3:
        render = lambda a, k: plots.image_grid_frame(a[:64])  # noqa: E731
    else:
        extent = float(np.abs(data.test).max() * 1.3)

        def render(a, k):
            t = 1.0 - k / max(count - 1, 1)
            return plots.scatter_frame(a, data.test, extent=extent,
                                       title=f"{what}, t = {t:.2f}")  # fmt: skip

    gif = plots.snapshots_gif(folder, workdir / "flow.gif", render, max_frames=count + 1)
    return None if gif is None else gif.name


def _guidance_eval(config, model: _Model, opts, params, root, workdir) -> dict:
    """Per guidance scale: the fraction of samples drawn for class y whose nearest mixture
    centre is y's (every class, eval.guided_per_class samples each), with the sampler
    `guidance.sampler`; guided_scale_<w>.png shows the samples of classes 0 and 1."""
    from generative import plots
    from generative.data.toy import mixture

    centers, _ = mixture(config.data.toy)
    k = model.num_classes
    per = int(config.eval.guided_per_class)
    labels = jnp.repeat(jnp.arange(k), per)
    sampler = config.guidance.sampler
    out = {}
    for j, w in enumerate(config.guidance.scales):
        w = float(w)

        def draw(p, key, w=w):
            score = sde_lib.score_from_eps(model.sde, _eps_fn(model, p))
            guided = guided_score(score, _logits_fn(model, p), labels, w)
            return _draw(model, sampler, opts, p, key, k * per, score_fn=guided)[0]

        x = np.asarray(jax.jit(draw)(params, jax.random.fold_in(root, 1000 + j)))
        nearest = np.argmin(((x[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
        out[f"scale_{w:g}"] = float(np.mean(nearest == np.asarray(labels)))
        shown = x[: 2 * per]
        plots.save_scatter(workdir / f"guided_scale_{w:g}.png", shown, centers,
                           extent=float(np.abs(centers).max() * 1.5),
                           title=f"guided samples of classes 0 and 1 (scale {w:g})")  # fmt: skip
        logger.info("guidance scale %g: %.3f of the samples in their class's mode", w,
                    out[f"scale_{w:g}"])  # fmt: skip
    return out
