"""Generative adversarial networks: one training step for every GAN loss, conditional GANs.

A generator G maps z ~ N(0, I) (and a class label y) to a sample; a discriminator (critic) D
maps a sample (and y) to one real output per sample, a logit or a critic value. With r = D(x)
on data and f = D(G(z)) on generated samples (σ the logistic function, means over the batch):

    loss             discriminator loss L_D                      generator loss L_G
    minimax          E softplus(−r) + E softplus(f)              −E softplus(f) = E log(1 − σ(f))
    non_saturating   E softplus(−r) + E softplus(f)              E softplus(−f) = −E log σ(f)
    lsgan            E (r − b)² + E (f − a)²                     E (f − c)²
    wgan             E f − E r   (weights clipped to [−c, c])    −E f
    wgan_gp          E f − E r + λ E (‖∇_x̂ D(x̂)‖ − 1)²           −E f
    hinge            E relu(1 − r) + E relu(1 + f)               −E f

−E softplus(−r) − E softplus(f) = E log σ(r) + E log(1 − σ(f)) is Goodfellow's value function
V(D, G) on D = σ(logit), maximised pointwise by the optimal discriminator
D*(x) = p(x) / (p(x) + q(x)) (`optimal_discriminator`), where V(D*, G) = −log 4 + 2 JSD(p‖q)
(`minimax_value`). LSGAN's labels (a, b, c) are those of Mao et al. (a for generated, b for
real data, c what G wants D to output for its samples; default 0, 1, 1), without their
factor ½. WGAN-GP's x̂ = ε x + (1 − ε) G(z), ε ~ U[0, 1] per sample, λ = 10.

Training alternates `n_critic` discriminator updates (each on a fresh real batch and fresh z)
with one generator update, all inside one pure, jittable, vmappable step (`train_step`).
Learning rates and Adam's β₁ are arrays inside the optimizer states (`optax.inject_hyperparams`)
so that `jax.vmap(init)(keys, lrs, b1s)` trains one model per seed with its own settings:

    init = functools.partial(gan.init_state, model)        # (key, lr, b1) -> TrainState
    states = jax.vmap(init)(keys, lrs, b1s)                 # keys [S, 2], lrs [S], b1s [S]
    states, metrics = jax.vmap(gan.train_step(model))(states, step_keys)

For 2-D data the step draws its real batches from its key (a toy name of
`generative.data.toy`, or any `sample(key, n)` callable); for images the real batches are the
step's `batch` argument ({"x": [n_critic·B, H, W, C] in [−1, 1], "y": [n_critic·B]}).

Networks (`build_model`): for 2-D data PacGAN's generator (4 hidden layers × 400, batch norm,
ReLU, 2-D latent, linear output) and a maxout discriminator (3 hidden layers of 200 units × 5
pieces, then a linear logit); for 28×28 digits the DCGAN decoder (its 32×32 output cropped to
28×28, tanh) and encoder (input padded to 32×32 with −1, unbounded output).

Conditional GANs (`num_classes` > 0): the label enters every network as a one-hot vector,
concatenated to z and, for the MLP discriminator, to x; the convolutional discriminator gets
it as K constant label planes concatenated to the image's channels. In the discriminator
updates the generated batch carries the labels of the real batch; in the generator update
labels are uniform. For the 2-D mixtures the label is the mixture component.

Batch norm statistics ("batch_stats") live in `TrainState.model_state`: the generator's are
updated in its own update, the discriminator's in its updates; sampling uses running averages.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from generative import nets
from generative.core.cpu_codegen import products_only_options
from generative.core.train import Experiment, TrainState

__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "GAN",
    "MLPGenerator",
    "MLPDiscriminator",
    "ConvGenerator",
    "ConvDiscriminator",
    "discriminator_loss",
    "generator_loss",
    "gradient_penalty",
    "clip_weights",
    "optimal_discriminator",
    "minimax_value",
    "make_optimizer",
    "build_model",
    "init_state",
    "train_step",
    "sample",
    "discriminate",
    "make_experiment",
    "evaluate_state",
]

logger = logging.getLogger(__name__)

LOSSES = ("minimax", "non_saturating", "lsgan", "wgan", "wgan_gp", "hinge")
OPTIMIZERS = ("adam", "rmsprop")
IMAGE_DATA = ("digits",)

PRNGKey = jax.Array


def _check_choice(what: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(choices)}")


# ----------------------------------------------------------------------------- losses


def discriminator_loss(
    loss: str, real: jax.Array, fake: jax.Array, lsgan_labels: Sequence[float] = (0.0, 1.0, 1.0)
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_D of `loss` from the discriminator's outputs on real [B] and generated [B] samples.

    Returns (L_D, terms) where terms = {"d_loss_real", "d_loss_fake"} are the two expectations
    (L_D = their sum; WGAN-GP's penalty is added by the training step). See the module table.
    """
    _check_choice("GAN loss", loss, LOSSES)
    if loss in ("minimax", "non_saturating"):
        lr, lf = jnp.mean(jax.nn.softplus(-real)), jnp.mean(jax.nn.softplus(fake))
    elif loss == "lsgan":
        a, b, _ = lsgan_labels
        lr, lf = jnp.mean((real - b) ** 2), jnp.mean((fake - a) ** 2)
    elif loss in ("wgan", "wgan_gp"):
        lr, lf = -jnp.mean(real), jnp.mean(fake)
    else:  # hinge
        lr, lf = jnp.mean(jax.nn.relu(1.0 - real)), jnp.mean(jax.nn.relu(1.0 + fake))
    return lr + lf, {"d_loss_real": lr, "d_loss_fake": lf}


def generator_loss(
    loss: str, fake: jax.Array, lsgan_labels: Sequence[float] = (0.0, 1.0, 1.0)
) -> jax.Array:
    """L_G of `loss` from the discriminator's outputs on generated samples [B]."""
    _check_choice("GAN loss", loss, LOSSES)
    if loss == "minimax":
        return -jnp.mean(jax.nn.softplus(fake))  # E log(1 − σ(f))
    if loss == "non_saturating":
        return jnp.mean(jax.nn.softplus(-fake))  # −E log σ(f)
    if loss == "lsgan":
        return jnp.mean((fake - lsgan_labels[2]) ** 2)
    return -jnp.mean(fake)  # wgan, wgan_gp, hinge


def gradient_penalty(
    critic: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array, eps: jax.Array
) -> jax.Array:
    """E (‖∇_x̂ critic(x̂)‖₂ − 1)² at x̂ = ε real + (1 − ε) fake.

    critic: [B, ...] -> [B] (each output depends on its own sample only); real, fake [B, ...];
    eps [B], one mixing weight per sample (U[0, 1] in training). The norm is over all non-batch
    axes.
    """
    eps = eps.reshape((real.shape[0],) + (1,) * (real.ndim - 1)).astype(real.dtype)
    x_hat = eps * real + (1.0 - eps) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(x_hat)
    norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1) + 1e-12)
    return jnp.mean((norms - 1.0) ** 2)


def clip_weights(params: Any, c: float) -> Any:
    """Every parameter clipped to [−c, c] (WGAN's Lipschitz constraint)."""
    return jax.tree_util.tree_map(lambda w: jnp.clip(w, -c, c), params)


def optimal_discriminator(p: jax.Array, q: jax.Array) -> jax.Array:
    """D*(x) = p(x) / (p(x) + q(x)) from the data density p and generator density q at x."""
    return p / (p + q)


def minimax_value(
    d_real: jax.Array,
    d_fake: jax.Array,
    w_real: jax.Array | None = None,
    w_fake: jax.Array | None = None,
) -> jax.Array:
    """Goodfellow's value function V(D, G) = E_p log D(x) + E_q log(1 − D(x)).

    d_real: D (a probability) at data samples, d_fake at generated samples. Without weights
    the expectations are means; with weights they are Σ w log D, Σ w log(1 − D), e.g.
    quadrature weights w = p(x_i) Δx on a grid (then d_real and d_fake are D on the grid).
    """
    lr, lf = jnp.log(d_real), jnp.log1p(-d_fake)
    er = jnp.mean(lr) if w_real is None else jnp.sum(w_real * lr)
    ef = jnp.mean(lf) if w_fake is None else jnp.sum(w_fake * lf)
    return er + ef


# ----------------------------------------------------------------------------- networks


def _one_hot(y, num_classes: int, dtype):
    return jax.nn.one_hot(y, num_classes, dtype=dtype)


def _with_label(h, y, num_classes: int):
    """[N, D] -> [N, D + K] with the one-hot label appended (unchanged when unconditional)."""
    if not num_classes:
        return h
    if y is None:
        raise ValueError(f"this network is conditional ({num_classes} classes): pass labels y")
    return jnp.concatenate([h, _one_hot(y, num_classes, h.dtype)], axis=-1)


def _label_planes(x, y, num_classes: int):
    """[N, H, W, C] -> [N, H, W, C + K]: the one-hot label as K constant planes."""
    if not num_classes:
        return x
    if y is None:
        raise ValueError(f"this network is conditional ({num_classes} classes): pass labels y")
    planes = _one_hot(y, num_classes, x.dtype)[:, None, None, :]
    return jnp.concatenate([x, jnp.broadcast_to(planes, x.shape[:3] + (num_classes,))], axis=-1)


class MLPGenerator(nn.Module):
    """z [N, latent] (+ y [N]) -> x [N, out_dim]: `nets.MLP` with batch norm (`norm`), linear
    output (PacGAN: hidden (400,)·4, ReLU, batch norm)."""

    out_dim: int = 2
    hidden: Sequence[int] = (400, 400, 400, 400)
    norm: str | None = "batch"
    activation: str = "relu"
    num_classes: int = 0

    @nn.compact
    def __call__(self, z, y=None, train: bool = False):
        h = _with_label(z, y, self.num_classes)
        mlp = nets.MLP(tuple(self.hidden) + (self.out_dim,), self.activation, norm=self.norm)
        return mlp(h, train=train)


class MLPDiscriminator(nn.Module):
    """x [N, D] (+ y [N]) -> [N]: `nets.MaxoutMLP` (PacGAN: 3 hidden layers of 200 units × 5
    pieces, then a linear output)."""

    hidden: Sequence[int] = (200, 200, 200)
    pieces: int = 5
    num_classes: int = 0

    @nn.compact
    def __call__(self, x, y=None, train: bool = False):
        h = _with_label(x.reshape(x.shape[0], -1), y, self.num_classes)
        return nets.MaxoutMLP(tuple(self.hidden) + (1,), self.pieces)(h)[:, 0]


class ConvGenerator(nn.Module):
    """z [N, latent] (+ y) -> images [N, H, H, C] in [−1, 1]: `nets.DCGANDecoder` (batch norm,
    tanh) at the next power-of-two size >= H, centre-cropped to H (28 from 32)."""

    out_shape: tuple[int, int, int] = (28, 28, 1)
    nf: int = 64
    norm: str = "batch"
    num_classes: int = 0

    @nn.compact
    def __call__(self, z, y=None, train: bool = False):
        h, w, c = self.out_shape
        size = _frame_size(h)
        dec = nets.DCGANDecoder((size, size, c), self.nf, self.norm, output_activation="tanh")
        x = dec(_with_label(z, y, self.num_classes), train=train)
        top = (size - h) // 2
        return x[:, top : top + h, top : top + w]


class ConvDiscriminator(nn.Module):
    """images [N, H, H, C] (+ y) -> [N]: padded with −1 to the next power-of-two size,
    label planes appended, `nets.DCGANEncoder` with an unbounded 1-D code."""

    nf: int = 64
    norm: str = "batch"
    num_classes: int = 0
    out_dim: int = 1

    @nn.compact
    def __call__(self, x, y=None, train: bool = False):
        x = _pad_frames(x)
        x = _label_planes(x, y, self.num_classes)
        code = nets.DCGANEncoder(self.out_dim, self.nf, self.norm, code_activation="none")(
            x, train=train
        )
        return code[:, 0] if self.out_dim == 1 else code


def _frame_size(h: int) -> int:
    return max(8, 2 ** math.ceil(math.log2(h)))


def _pad_frames(x):
    """[N, H, H, C] -> [N, S, S, C], S the next power of two, padded with −1 (black)."""
    pad = _frame_size(x.shape[1]) - x.shape[1]
    if pad == 0:
        return x
    lo = pad // 2
    return jnp.pad(x, ((0, 0), (lo, pad - lo), (lo, pad - lo), (0, 0)), constant_values=-1.0)


# ----------------------------------------------------------------------------- the model


@dataclasses.dataclass(frozen=True, eq=False)
class GAN:
    """A GAN and its training settings (everything a step needs besides the state).

    generator: module (z [N, latent_dim], y, train) -> x [N, *data_shape];
    discriminator: module (x, y, train) -> [N]. data: a toy name of `generative.data.toy`, a
    callable sample(key, n) -> x or (x, y), or None (real batches passed to the step).
    train_size > 0: the real data are a fixed set of that many points (point i drawn from
    fold_in(PRNGKey(data_seed), i)), batches drawn uniformly from it; 0: fresh samples.
    lr and b1 are the defaults of `init_state`; rmsprop ignores b1 (decay rmsprop_decay).
    """

    generator: nn.Module
    discriminator: nn.Module
    latent_dim: int
    data_shape: tuple[int, ...]
    loss: str = "non_saturating"
    lsgan_labels: tuple[float, float, float] = (0.0, 1.0, 1.0)
    n_critic: int = 1
    clip: float = 0.0
    gp_weight: float = 10.0
    batch_size: int = 100
    optimizer: str = "adam"
    lr: float = 1e-4
    b1: float = 0.5
    b2: float = 0.999
    rmsprop_decay: float = 0.99
    num_classes: int = 0
    data: str | Callable | None = None
    train_size: int = 0
    data_seed: int = 0

    def __post_init__(self):
        _check_choice("GAN loss", self.loss, LOSSES)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.n_critic < 1:
            raise ValueError(f"n_critic must be a positive integer, got {self.n_critic}")
        if len(self.lsgan_labels) != 3:
            raise ValueError(f"lsgan_labels must be (a, b, c), got {self.lsgan_labels}")


def make_optimizer(name: str, lr, b1, b2: float = 0.999, rmsprop_decay: float = 0.99):
    """Adam or RMSProp with the learning rate (and Adam's β₁) held in the optimizer state.

    `optax.inject_hyperparams` stores the numeric hyper-parameters in the state at `init`, and
    `update` reads them from there: lr and b1 may be traced (vmapped over seeds).
    """
    _check_choice("optimizer", name, OPTIMIZERS)
    if name == "adam":
        return optax.inject_hyperparams(optax.adam)(learning_rate=lr, b1=b1, b2=b2)
    return optax.inject_hyperparams(optax.rmsprop)(learning_rate=lr, decay=rmsprop_decay)


def _optimizer(model, lr=0.0, b1=0.0):
    return make_optimizer(model.optimizer, lr, b1, model.b2, model.rmsprop_decay)


def apply_module(module: nn.Module, params, collections: dict, *args, train: bool):
    """module.apply with `collections` (e.g. batch_stats) -> (output, updated collections)."""
    variables = {"params": params, **collections}
    if train and collections:
        out, new = module.apply(variables, *args, train=True, mutable=list(collections))
        return out, {**collections, **new}
    return module.apply(variables, *args, train=train), collections


def init_module(module: nn.Module, key, *args):
    variables = module.init(key, *args, train=False)
    params = variables["params"]
    return params, {k: v for k, v in variables.items() if k != "params"}


def _dummy_labels(model, n: int):
    return jnp.zeros((n,), jnp.int32) if model.num_classes else None


def init_state(model: GAN, key: PRNGKey, lr=None, b1=None, *, lr_d=None) -> TrainState:
    """TrainState(step 0, params {"g", "d"}, opt_state {"g", "d"}, model_state {"g", "d"}).

    lr: both learning rates (the discriminator's is `lr_d` when given); b1: Adam's β₁; None
    takes the model's value. All three may be traced arrays (`jax.vmap` over seeds).
    """
    lr = model.lr if lr is None else lr
    lr_d = lr if lr_d is None else lr_d
    b1 = model.b1 if b1 is None else b1
    kg, kd = jax.random.split(key)
    n = 2
    z = jnp.zeros((n, model.latent_dim))
    y = _dummy_labels(model, n)
    pg, sg = init_module(model.generator, kg, z, y)
    pd, sd = init_module(model.discriminator, kd, jnp.zeros((n,) + tuple(model.data_shape)), y)
    og = _optimizer(model, lr, b1).init(pg)
    od = _optimizer(model, lr_d, b1).init(pd)
    return TrainState(
        jnp.zeros((), jnp.int32), {"g": pg, "d": pd}, {"g": og, "d": od}, {"g": sg, "d": sd}
    )


# ----------------------------------------------------------------------------- data


def uniform_int(key: PRNGKey, shape, m: int) -> jax.Array:
    """Integers uniform in {0, …, m − 1} as ⌊m U⌋ (one random draw; `jax.random.randint`
    makes three, and every draw is a loop that XLA compiles separately on CPU)."""
    return from_uniform(jax.random.uniform(key, shape), m)


def from_uniform(u: jax.Array, m: int) -> jax.Array:
    """⌊m u⌋ clipped to {0, …, m − 1}, u in [0, 1)."""
    return jnp.clip(jnp.floor(u * m).astype(jnp.int32), 0, m - 1)


def _labelled_mixture(name: str) -> Callable:
    from generative.data import toy

    if name not in toy.MIXTURES:
        valid = ", ".join(toy.MIXTURES)
        raise ValueError(f"conditional 2-D data must be a Gaussian mixture ({valid}), got {name!r}")
    centers, std = toy.MIXTURES[name]
    centers = jnp.asarray(centers)

    def draw(key, n):
        k1, k2 = jax.random.split(key)
        y = uniform_int(k1, (n,), centers.shape[0])
        return centers[y] + std * jax.random.normal(k2, (n, centers.shape[1])), y

    return draw


def data_sampler(model) -> Callable[[PRNGKey, int], tuple[jax.Array, jax.Array | None]]:
    """sample(key, n) -> (x [n, ...], labels [n] or None) for the model's 2-D data.

    With train_size > 0 the training set, sample(PRNGKey(data_seed), train_size), is drawn
    once (here) and batches are drawn from it uniformly with replacement."""
    src = model.data
    if src is None:
        raise ValueError("the model has no data sampler (data=None): pass real batches to the step")
    if callable(src):
        base = src
    elif model.num_classes:
        base = _labelled_mixture(src)
    else:
        from generative.data import toy

        _check_choice("toy data set", src, tuple(toy.TOY_DATASETS))
        base = functools.partial(toy.sample_toy, src)

    def pair(key, n):
        out = base(key, n)
        return out if isinstance(out, tuple) else (out, None)

    if not model.train_size:
        return pair
    with jax.ensure_compile_time_eval():  # computed once, a constant of the traced step
        key = jax.random.PRNGKey(model.data_seed)
        x_set, y_set = jax.jit(pair, static_argnums=1)(key, model.train_size)

    def finite(key, n):
        idx = uniform_int(key, (n,), model.train_size)
        return x_set[idx], None if y_set is None else y_set[idx]

    return finite


def real_batches(model, draw, key, batch):
    """n_critic real batches: from the step's `batch` ([n_critic·B, ...] split in order) or
    drawn by `draw` (`data_sampler`) from `key`; -> (xs [n_critic, B, ...], ys or None)."""
    n, b = model.n_critic, model.batch_size
    if batch is None:
        if draw is None:
            raise ValueError("the model has no data (data=None): pass real batches to the step")
        x, y = draw(key, n * b)
    else:
        x, y = (batch["x"], batch.get("y")) if isinstance(batch, dict) else (batch, None)
    if x.shape[0] != n * b:
        raise ValueError(
            f"the step needs n_critic·batch_size = {n * b} real samples per batch, got {x.shape[0]}"
        )
    x = x.reshape((n, b) + x.shape[1:])
    y = None if y is None or not model.num_classes else y.reshape(n, b)
    return x, y


def step_sampler(model):
    """`data_sampler(model)` for 2-D data, None when the data come as batches."""
    return None if model.data is None else data_sampler(model)


# ----------------------------------------------------------------------------- training


def train_step(model: GAN) -> Callable:
    """step(state, key, batch=None) -> (state, metrics): n_critic discriminator updates, then
    one generator update (pure; jit and vmap it).

    metrics (scalars): d_loss (the last discriminator update's loss, WGAN-GP's penalty
    included), d_loss_real, d_loss_fake, d_real / d_fake (mean discriminator outputs on the
    real / generated batch of that update), gp (WGAN-GP), g_loss.
    """
    tx_g, tx_d = _optimizer(model), _optimizer(model)
    gen, disc = model.generator, model.discriminator
    b, n = model.batch_size, model.n_critic
    draw = step_sampler(model)
    uniforms = model.loss == "wgan_gp" or bool(model.num_classes)

    def step(state: TrainState, key: PRNGKey, batch=None):
        pg, pd = state.params["g"], state.params["d"]
        og, od = state.opt_state["g"], state.opt_state["d"]
        sg, sd = state.model_state["g"], state.model_state["d"]
        # few random draws: each is a loop that XLA compiles separately on CPU
        k_data, k_z, k_u = jax.random.split(key, 3)
        xs, ys = real_batches(model, draw, k_data, batch)
        zs = jax.random.normal(k_z, (n + 1, b, model.latent_dim), xs.dtype)
        us = jax.random.uniform(k_u, (n + 1, b), xs.dtype) if uniforms else jnp.zeros((n + 1, b))

        def d_update(carry, inputs):
            pd, od, sd = carry
            x, y, z, u = inputs
            fake, _ = apply_module(gen, pg, sg, z, y, train=True)
            fake = jax.lax.stop_gradient(fake)

            def loss_fn(pd):
                r, s = apply_module(disc, pd, sd, x, y, train=True)
                f, s = apply_module(disc, pd, s, fake, y, train=True)
                loss, terms = discriminator_loss(model.loss, r, f, model.lsgan_labels)
                terms = {**terms, "d_real": jnp.mean(r), "d_fake": jnp.mean(f)}
                if model.loss == "wgan_gp":
                    critic = lambda xx: apply_module(disc, pd, s, xx, y, train=True)[0]
                    gp = gradient_penalty(critic, x, fake, u)
                    loss = loss + model.gp_weight * gp
                    terms["gp"] = gp
                return loss, (terms, s)

            (loss, (terms, sd)), grads = jax.value_and_grad(loss_fn, has_aux=True)(pd)
            updates, od = tx_d.update(grads, od, pd)
            pd = optax.apply_updates(pd, updates)
            if model.clip > 0:
                pd = clip_weights(pd, model.clip)
            return (pd, od, sd), {"d_loss": loss, **terms}

        inputs = (xs, ys, zs[:n], us[:n])
        (pd, od, sd), d_metrics = jax.lax.scan(d_update, (pd, od, sd), inputs)
        d_metrics = {k: v[-1] for k, v in d_metrics.items()}

        z = zs[n]
        y = from_uniform(us[n], model.num_classes) if model.num_classes else None

        def g_loss_fn(pg):
            fake, s = apply_module(gen, pg, sg, z, y, train=True)
            f, _ = apply_module(disc, pd, sd, fake, y, train=True)
            return generator_loss(model.loss, f, model.lsgan_labels), s

        (g_loss, sg), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(pg)
        updates, og = tx_g.update(grads, og, pg)
        pg = optax.apply_updates(pg, updates)
        new = TrainState(state.step + 1, {"g": pg, "d": pd}, {"g": og, "d": od}, {"g": sg, "d": sd})
        return new, {**d_metrics, "g_loss": g_loss}

    return step


def _split_state(state, part: str):
    """(params, collections) of network `part` from a TrainState or a {"g", "d"} params tree."""
    if hasattr(state, "params"):
        return state.params[part], (state.model_state or {}).get(part, {})
    return state[part], {}


def sample(model: GAN, state, key: PRNGKey, n: int, labels=None) -> jax.Array:
    """n generated samples [n, *data_shape] (images in [−1, 1]); running batch statistics.

    state: a TrainState or a params tree {"g", "d"}. labels [n] for a conditional model
    (default: uniform, from fold_in(key, 1))."""
    params, coll = _split_state(state, "g")
    z = jax.random.normal(key, (n, model.latent_dim))
    if model.num_classes and labels is None:
        labels = uniform_int(jax.random.fold_in(key, 1), (n,), model.num_classes)
    return apply_module(model.generator, params, coll, z, labels, train=False)[0]


def discriminate(model: GAN, state, x: jax.Array, labels=None) -> jax.Array:
    """Discriminator outputs [N] (logits / critic values) with running batch statistics."""
    params, coll = _split_state(state, "d")
    return apply_module(model.discriminator, params, coll, x, labels, train=False)[0]


# ----------------------------------------------------------------------------- from configs


def is_image(config) -> bool:
    return config.data.name in IMAGE_DATA


def num_classes(config) -> int:
    """Number of label classes of a conditional config (0 when unconditional)."""
    if not config.get("conditional", False):
        return 0
    if is_image(config):
        return 10
    from generative.data import toy

    if config.data.name not in toy.MIXTURES:
        valid = ", ".join(toy.MIXTURES)
        raise ValueError(
            f"conditional=True needs labelled data (digits or a mixture: {valid}), "
            f"got data.name={config.data.name!r}"
        )
    return int(toy.MIXTURES[config.data.name][0].shape[0])


def data_shape(config) -> tuple[int, ...]:
    return (28, 28, 1) if is_image(config) else (2,)


def check_kind(config) -> str:
    kind = config.model.kind
    _check_choice("model.kind", kind, ("mlp", "dcgan"))
    if (kind == "dcgan") != is_image(config):
        raise ValueError(
            f"model.kind={kind!r} does not fit data.name={config.data.name!r}: "
            "dcgan for digits, mlp for 2-D data"
        )
    return kind


def build_model(config: ml_collections.ConfigDict) -> GAN:
    """The GAN of a `gan_*` preset."""
    m, k = config.model, num_classes(config)
    if check_kind(config) == "mlp":
        norm = None if m.g_norm == "none" else m.g_norm
        gen = MLPGenerator(2, tuple(m.g_hidden), norm, num_classes=k)
        disc = MLPDiscriminator(tuple(m.d_hidden), m.d_pieces, num_classes=k)
    else:
        gen = ConvGenerator(data_shape(config), m.nf, m.g_norm, num_classes=k)
        disc = ConvDiscriminator(m.nf, m.d_norm, num_classes=k)
    o = config.optimizer
    return GAN(
        gen,
        disc,
        latent_dim=m.latent_dim,
        data_shape=data_shape(config),
        loss=config.loss,
        lsgan_labels=tuple(float(v) for v in config.lsgan_labels),
        n_critic=config.n_critic,
        clip=config.clip,
        gp_weight=config.gp_weight,
        batch_size=config.batch_size,
        optimizer=o.name,
        lr=o.lr,
        b1=o.b1,
        b2=o.b2,
        num_classes=k,
        data=None if is_image(config) else config.data.name,
        train_size=0 if is_image(config) else config.data.train_size,
        data_seed=config.data.seed,
    )


def load_digit_set(config):
    """The training digits of an image preset (`generative.data.digits.load_digits`)."""
    from generative.data.digits import load_digits

    d = config.data
    digits = load_digits("train", d.source, d.data_dir or None, d.num_font_digits or None)
    logger.info("digits: %d images from %s", len(digits.images), digits.source)
    return digits


def digit_batches(config, per_step: int) -> Callable[[int], dict]:
    """batch_fn(i) -> {"x": [per_step, 28, 28, 1] in [−1, 1], "y": [per_step] int32}, the
    digits drawn uniformly with numpy's generator seeded by (seed, i). The digits load now, so
    that a data set that is not prepared stops the run before anything is written."""
    d = load_digit_set(config)

    def batch_fn(i: int) -> dict:
        rng = np.random.default_rng([int(config.seed), int(i)])
        idx = rng.integers(0, len(d.images), per_step)
        x = d.images[idx][..., None].astype(np.float32) * 2.0 - 1.0
        return {"x": x, "y": d.labels[idx].astype(np.int32)}

    return batch_fn


def mixture_of(config):
    from generative.data import toy

    return toy.MIXTURES.get(config.data.name)


def plot_extent(config) -> float | None:
    mix = mixture_of(config)
    if mix is None:
        return None
    return float(np.abs(mix[0]).max()) * 1.25 + 0.25


def eval_key(config) -> PRNGKey:
    """The fixed key of a run's evaluation samples (independent of the training keys)."""
    return jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), 2**31 - 1)


def snapshot_evaluator(
    config, sample_fn: Callable, workdir, scalar_fn: Callable | None = None
) -> Callable:
    """Experiment.evaluate: samples from a fixed key each logging step, their cheap mode
    metrics (2-D mixtures), and a snapshot for the training GIF when `workdir` is given.

    sample_fn(state, key, n) -> samples; scalar_fn(state) -> extra metrics or None."""
    from generative import metrics as mlib

    image = is_image(config)
    n = int(config.eval.snapshot_samples)
    mix = None if image else mixture_of(config)

    @jax.jit
    def samples_and_modes(state):
        x = sample_fn(state, eval_key(config), n)
        if mix is None:
            return x, {}
        cov = mlib.mode_coverage(x, jnp.asarray(mix[0]), mix[1])
        return x, {"eval_modes": cov["modes"], "eval_high_quality": cov["high_quality"]}

    def evaluate(step: int, state) -> dict[str, float]:
        x, cov = samples_and_modes(state)
        out = {k: float(v) for k, v in cov.items()}
        if scalar_fn is not None:
            out.update({k: float(v) for k, v in scalar_fn(state).items()})
        if workdir is not None:
            from generative import plots

            snap = (np.asarray(x) + 1.0) / 2.0 if image else np.asarray(x)
            plots.save_snapshot(workdir, step, snap)
        return out

    return evaluate


def make_experiment(config: ml_collections.ConfigDict, workdir=None) -> Experiment:
    """The training run of a `gan_*` preset; `workdir` (optional) receives the sample
    snapshots of the training GIF at logging steps."""
    model = build_model(config)
    step = train_step(model)
    batch_fn = None
    if is_image(config):
        batch_fn = digit_batches(config, model.n_critic * model.batch_size)

    def sample_fn(state, key, n):
        return sample(model, state, key, n)

    return Experiment(
        init=lambda key: init_state(model, key),
        step=lambda state, batch, key: step(state, key, batch),
        batch_fn=batch_fn,
        evaluate=snapshot_evaluator(config, sample_fn, workdir),
        finalize=lambda state, wd: evaluate_state(config, state, wd),
        compiler_options=None if is_image(config) else products_only_options,
    )


def evaluate_toy_samples(config, x, workdir, extra_figures: Callable | None = None) -> dict:
    """Metrics and figures of 2-D samples x [N, 2] against fresh data samples."""
    from generative import metrics as mlib
    from generative import plots
    from generative.data import toy

    workdir = pathlib.Path(workdir)
    e = config.eval
    m = min(int(e.distance_samples), x.shape[0])
    mix = mixture_of(config)
    from gantk import ntk_mmd, relu_mlp_kernel

    ntk = functools.partial(relu_mlp_kernel, depth=3, W_std=1.0, b_std=1.0, kind="ntk")

    @jax.jit
    def compute(x):  # one compiled program (op by op, each operation would compile alone)
        data = toy.sample_toy(config.data.name, jax.random.fold_in(eval_key(config), 1), len(x))
        out = {
            "energy": mlib.energy_distance(x[:m], data[:m]),
            # MMD² of the infinite-width NTK of a 3-layer ReLU network (gantk's closed form)
            "ntk_mmd": ntk_mmd(ntk, x[:m], data[:m]),
        }
        if mix is not None:
            out.update(mlib.mode_coverage(x, jnp.asarray(mix[0]), mix[1]))
        return data, out

    data, out = compute(x)
    out = {k: float(v) for k, v in out.items()}
    if mix is not None:
        out["num_modes"] = int(mix[0].shape[0])
    if e.sinkhorn:
        eps = float(e.sinkhorn_epsilon)
        out["sinkhorn"] = float(mlib.sinkhorn_divergence(x[:m], data[:m], eps))
    extent = plot_extent(config)
    xs, ds = np.asarray(x), np.asarray(data)
    title = f"{config.family} {config.data.name}"
    plots.save_scatter(workdir / "samples.png", xs, ds, extent, title=title)
    plots.save_density(
        workdir / "density.png", xs, extent or float(np.abs(ds).max()) * 1.1, title=title
    )
    frame_data = ds[: int(e.snapshot_samples)]
    plots.snapshots_gif(
        workdir,
        workdir / "training.gif",
        lambda a, s: plots.scatter_frame(a, frame_data, extent, f"step {s}"),
    )
    if extra_figures is not None:
        extra_figures(workdir)
    return out


def evaluate_image_samples(config, x, workdir) -> dict:
    """Metrics and figures of image samples x [N, H, W, C] in [−1, 1]: a sample grid (one
    column per class for a conditional model), the energy distance to training digits."""
    from generative import metrics as mlib
    from generative import plots

    workdir = pathlib.Path(workdir)
    images = (np.asarray(x) + 1.0) / 2.0
    digits = load_digit_set(config)
    m = min(int(config.eval.distance_samples), len(images), len(digits.images))
    rng = np.random.default_rng(int(config.seed))
    ref = digits.images[rng.choice(len(digits.images), m, replace=False)]
    out = {"energy": float(mlib.energy_distance(jnp.asarray(images[:m]), jnp.asarray(ref)))}
    columns = 10 if config.get("conditional", False) else 8
    plots.save_image_grid(workdir / "samples.png", images[: columns * 8], columns=columns)
    plots.snapshots_gif(workdir, workdir / "training.gif", lambda a, s: plots.image_grid_frame(a))
    return out


def write_metrics(workdir, metrics: dict) -> dict:
    path = pathlib.Path(workdir) / "eval.json"
    path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    logger.info("evaluation: %s", ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return metrics


def eval_labels(config, n: int):
    if not config.get("conditional", False):
        return None
    k = num_classes(config)
    columns = 10 if is_image(config) else k
    return jnp.arange(n, dtype=jnp.int32) % columns


def evaluate_state(config: ml_collections.ConfigDict, state, workdir) -> dict:
    """eval.json (metrics) and figures of a trained GAN in `workdir`; returns the metrics.

    2-D: eval.num_samples samples from a fixed key; mode coverage ("modes", "high_quality",
    and the other keys of `generative.metrics.mode_coverage`) for mixtures, Sinkhorn
    divergence, energy distance and NTK-MMD (3-layer ReLU NTK) to as many data samples (first
    eval.distance_samples); samples.png, density.png, training.gif. Digits: samples.png, training.gif, the energy
    distance to training digits."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    model = build_model(config)
    n = int(config.eval.num_samples)
    labels = eval_labels(config, n)
    x = jax.jit(lambda s, k: sample(model, s, k, n, labels))(state, eval_key(config))
    if is_image(config):
        out = evaluate_image_samples(config, x, workdir)
    else:
        out = evaluate_toy_samples(config, x, workdir)
    out["step"] = int(jax.device_get(state.step))
    return write_metrics(workdir, out)
