"""Adversarially learned inference (ALI) / bidirectional GAN (BiGAN).

An encoder G_z(x) gives q(z | x) = N(μ(x), σ²(x) I), sampled by reparameterisation
ẑ = μ(x) + σ(x) ⊙ ε, ε ~ N(0, I) (σ = softplus of the encoder's second output half); a decoder
G_x(z) maps z ~ p(z) = N(0, I) to x̃; a discriminator D(x, z) (a logit) tells encoder pairs
(x, ẑ) from decoder pairs (x̃, z). With r = D(x, ẑ), f = D(x̃, z), ρ = σ(logit) (seed 003,
Algorithm 1; means over the batch):

    L_d = −E log ρ(r) − E log(1 − ρ(f)) = E softplus(−r) + E softplus(f)
    L_g = −E log(1 − ρ(r)) − E log ρ(f) = E softplus(r) + E softplus(−f)   (encoder + decoder)

L_g is the non-saturating generator loss of eq. 4.4 (same fixed points as the value function,
stronger gradients when D saturates). At the optimal discriminator
D*(x, z) = q(x, z) / (q(x, z) + p(x, z)) the generator minimises JSD(q(x, z) ‖ p(x, z)).
Conditional ALI (eq. 4.7): the label y enters all three networks (one-hot, as for
`generative.gan`'s conditional networks).

Training alternates one discriminator update and one update of the encoder and decoder
together, inside one pure, jittable, vmappable step (`train_step`) with the optimizer
hyper-parameters in the state, exactly as `generative.gan`:

    states = jax.vmap(functools.partial(ali.init_state, model))(keys, lrs, b1s)
    states, metrics = jax.vmap(ali.train_step(model))(states, step_keys)

Networks (`build_model`): 2-D data: encoder and decoder are PacGAN's generator MLP (4 × 400,
batch norm, ReLU; the encoder outputs (μ, s)), the discriminator a maxout x-branch and z-branch
(one maxout layer of 200 units × 5 pieces each) and a joint maxout MLP (2 layers of 200 × 5,
linear logit) on their concatenation; digits: DCGAN encoder (padded to 32×32, unbounded code
of 2·latent) and decoder (cropped to 28×28, tanh), the discriminator's x-branch a DCGAN encoder
with an unbounded feature code, its z-branch and joint part as for 2-D data.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import pathlib
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from generative import gan, nets
from generative.core.cpu_codegen import products_only_options
from generative.core.train import Experiment, TrainState

__all__ = [
    "ALI",
    "MLPEncoder",
    "ConvEncoder",
    "JointDiscriminator",
    "discriminator_loss",
    "generator_loss",
    "forward",
    "build_model",
    "init_state",
    "train_step",
    "encode",
    "decode",
    "sample",
    "reconstruct",
    "make_experiment",
    "evaluate_state",
]

logger = logging.getLogger(__name__)

PRNGKey = jax.Array


# ----------------------------------------------------------------------------- networks


def _gaussian(h, latent_dim: int):
    """[N, 2·latent] -> (μ, σ) with σ = softplus(second half)."""
    return h[:, :latent_dim], jax.nn.softplus(h[:, latent_dim:])


class MLPEncoder(nn.Module):
    """x [N, D] (+ y) -> (μ, σ) [N, latent]: `nets.MLP` (batch norm between layers)."""

    latent_dim: int = 2
    hidden: Sequence[int] = (400, 400, 400, 400)
    norm: str | None = "batch"
    num_classes: int = 0

    @nn.compact
    def __call__(self, x, y=None, train: bool = False):
        h = gan._with_label(x.reshape(x.shape[0], -1), y, self.num_classes)
        mlp = nets.MLP(tuple(self.hidden) + (2 * self.latent_dim,), norm=self.norm)
        return _gaussian(mlp(h, train=train), self.latent_dim)


class ConvEncoder(nn.Module):
    """images [N, H, H, C] (+ y, as label planes) -> (μ, σ): `nets.DCGANEncoder` on the
    frames padded to a power-of-two size, unbounded code of 2·latent."""

    latent_dim: int = 64
    nf: int = 64
    norm: str = "batch"
    num_classes: int = 0

    @nn.compact
    def __call__(self, x, y=None, train: bool = False):
        x = gan._label_planes(gan._pad_frames(x), y, self.num_classes)
        enc = nets.DCGANEncoder(2 * self.latent_dim, self.nf, self.norm, code_activation="none")
        return _gaussian(enc(x, train=train), self.latent_dim)


class JointDiscriminator(nn.Module):
    """D(x, z) (+ y) -> logits [N]: an x-branch, a z-branch and a joint maxout MLP.

    x-branch: 2-D x: maxout layers `x_hidden`; images: a DCGAN encoder to x_hidden[-1] features
    (unbounded, then LeakyReLU 0.2). z-branch: maxout layers `z_hidden`. Joint: maxout layers
    `joint_hidden` and a linear logit on [x-features, z-features, one-hot y].
    """

    x_hidden: Sequence[int] = (200,)
    z_hidden: Sequence[int] = (200,)
    joint_hidden: Sequence[int] = (200, 200)
    pieces: int = 5
    conv: bool = False
    nf: int = 64
    norm: str = "batch"
    num_classes: int = 0

    @nn.compact
    def __call__(self, x, z, y=None, train: bool = False):
        if self.conv:
            enc = nets.DCGANEncoder(self.x_hidden[-1], self.nf, self.norm, code_activation="none")
            hx = nn.leaky_relu(enc(gan._pad_frames(x), train=train), 0.2)
        else:
            hx = nets.MaxoutMLP(tuple(self.x_hidden), self.pieces, linear_output=False)(x)
        hz = nets.MaxoutMLP(tuple(self.z_hidden), self.pieces, linear_output=False)(z)
        h = gan._with_label(jnp.concatenate([hx, hz], axis=-1), y, self.num_classes)
        return nets.MaxoutMLP(tuple(self.joint_hidden) + (1,), self.pieces)(h)[:, 0]


# ----------------------------------------------------------------------------- the model


@dataclasses.dataclass(frozen=True, eq=False)
class ALI:
    """ALI and its training settings (the data fields as in `generative.gan.GAN`).

    encoder: (x, y, train) -> (μ, σ); decoder: (z, y, train) -> x; discriminator:
    (x, z, y, train) -> [N]. One discriminator update per generator update (n_critic = 1).
    """

    encoder: nn.Module
    decoder: nn.Module
    discriminator: nn.Module
    latent_dim: int
    data_shape: tuple[int, ...]
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
    n_critic: int = dataclasses.field(default=1, init=False)

    def __post_init__(self):
        gan._check_choice("optimizer", self.optimizer, gan.OPTIMIZERS)


def discriminator_loss(r: jax.Array, f: jax.Array) -> jax.Array:
    """L_d = −E log σ(r) − E log(1 − σ(f)) from the logits on encoder pairs r and decoder
    pairs f."""
    return jnp.mean(jax.nn.softplus(-r)) + jnp.mean(jax.nn.softplus(f))


def generator_loss(r: jax.Array, f: jax.Array) -> jax.Array:
    """L_g = −E log(1 − σ(r)) − E log σ(f) (non-saturating, encoder and decoder)."""
    return jnp.mean(jax.nn.softplus(r)) + jnp.mean(jax.nn.softplus(-f))


def forward(model: ALI, params, collections, x, y, eps, z, train: bool = True):
    """Discriminator logits on the encoder pairs (x, μ(x) + σ(x) ε) and the decoder pairs
    (G_x(z), z): -> (r [B], f [B], updated collections {"g": {"enc", "dec"}, "d"})."""
    g, cg = params["g"], collections["g"]
    (mu, sigma), c_enc = gan.apply_module(model.encoder, g["enc"], cg["enc"], x, y, train=train)
    z_hat = mu + sigma * eps
    x_tilde, c_dec = gan.apply_module(model.decoder, g["dec"], cg["dec"], z, y, train=train)
    disc, pd = model.discriminator, params["d"]
    r, c_d = gan.apply_module(disc, pd, collections["d"], x, z_hat, y, train=train)
    f, c_d = gan.apply_module(disc, pd, c_d, x_tilde, z, y, train=train)
    return r, f, {"g": {"enc": c_enc, "dec": c_dec}, "d": c_d}


def init_state(model: ALI, key: PRNGKey, lr=None, b1=None, *, lr_d=None) -> TrainState:
    """TrainState(step 0, params {"g": {"enc", "dec"}, "d"}, opt_state {"g", "d"},
    model_state (batch statistics) of the same structure); lr, lr_d, b1 as in
    `generative.gan.init_state` (may be traced)."""
    lr = model.lr if lr is None else lr
    lr_d = lr if lr_d is None else lr_d
    b1 = model.b1 if b1 is None else b1
    ke, kx, kd = jax.random.split(key, 3)
    n = 2
    x = jnp.zeros((n,) + tuple(model.data_shape))
    z = jnp.zeros((n, model.latent_dim))
    y = jnp.zeros((n,), jnp.int32) if model.num_classes else None
    pe, ce = gan.init_module(model.encoder, ke, x, y)
    px, cx = gan.init_module(model.decoder, kx, z, y)
    pd, cd = gan.init_module(model.discriminator, kd, x, z, y)
    pg = {"enc": pe, "dec": px}
    og = gan._optimizer(model, lr, b1).init(pg)
    od = gan._optimizer(model, lr_d, b1).init(pd)
    return TrainState(
        jnp.zeros((), jnp.int32),
        {"g": pg, "d": pd},
        {"g": og, "d": od},
        {"g": {"enc": ce, "dec": cx}, "d": cd},
    )


def train_step(model: ALI) -> Callable:
    """step(state, key, batch=None) -> (state, metrics): one discriminator update, then one
    update of encoder and decoder against the updated discriminator (pure; jit and vmap it).

    metrics: d_loss = d_loss_real + d_loss_fake (its two expectations), g_loss, d_real / d_fake
    (mean logits on encoder / decoder pairs, at the discriminator update), d_accuracy (fraction
    of both kinds of pairs classified right).
    """
    tx_g, tx_d = gan._optimizer(model), gan._optimizer(model)
    b, latent = model.batch_size, model.latent_dim
    draw = gan.step_sampler(model)

    def step(state: TrainState, key: PRNGKey, batch=None):
        params, colls = state.params, state.model_state
        k_data, k_noise = jax.random.split(key)
        xs, ys = gan.real_batches(model, draw, k_data, batch)
        x, y = xs[0], None if ys is None else ys[0]
        # ε and z of the discriminator update, then of the generator update (one draw)
        noise = jax.random.normal(k_noise, (4, b, latent), x.dtype)
        eps, z = noise[0], noise[1]

        def d_loss_fn(pd):
            r, f, c = forward(model, {**params, "d": pd}, colls, x, y, eps, z)
            return discriminator_loss(r, f), (r, f, c["d"])

        (d_loss, (r, f, c_d)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(params["d"])
        updates, od = tx_d.update(grads, state.opt_state["d"], params["d"])
        pd = optax.apply_updates(params["d"], updates)
        colls = {**colls, "d": c_d}

        eps, z = noise[2], noise[3]

        def g_loss_fn(pg):
            r, f, c = forward(model, {"g": pg, "d": pd}, colls, x, y, eps, z)
            return generator_loss(r, f), c["g"]

        (g_loss, c_g), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(params["g"])
        updates, og = tx_g.update(grads, state.opt_state["g"], params["g"])
        pg = optax.apply_updates(params["g"], updates)
        new = TrainState(
            state.step + 1, {"g": pg, "d": pd}, {"g": og, "d": od}, {"g": c_g, "d": c_d}
        )
        accuracy = 0.5 * (jnp.mean(r > 0) + jnp.mean(f < 0))
        metrics = {
            "d_loss": d_loss,
            "d_loss_real": jnp.mean(jax.nn.softplus(-r)),  # −E log σ(r), encoder pairs
            "d_loss_fake": jnp.mean(jax.nn.softplus(f)),  # −E log(1 − σ(f)), decoder pairs
            "g_loss": g_loss,
            "d_real": jnp.mean(r),
            "d_fake": jnp.mean(f),
            "d_accuracy": accuracy,
        }
        return new, metrics

    return step


def _part(state, *path):
    """(params, collections) of a sub-network from a TrainState or a params tree."""
    if hasattr(state, "params"):
        p, c = state.params, state.model_state or {}
        for k in path:
            p, c = p[k], c.get(k, {})
        return p, c
    p = state
    for k in path:
        p = p[k]
    return p, {}


def encode(model: ALI, state, x: jax.Array, key: PRNGKey | None = None, labels=None):
    """z = μ(x) + σ(x) ε with ε ~ N(0, I) from `key`, or μ(x) when key is None; [N, latent]."""
    params, coll = _part(state, "g", "enc")
    (mu, sigma), _ = gan.apply_module(model.encoder, params, coll, x, labels, train=False)
    if key is None:
        return mu
    return mu + sigma * jax.random.normal(key, mu.shape, mu.dtype)


def decode(model: ALI, state, z: jax.Array, labels=None) -> jax.Array:
    """G_x(z): [N, latent] -> [N, *data_shape] (images in [−1, 1])."""
    params, coll = _part(state, "g", "dec")
    return gan.apply_module(model.decoder, params, coll, z, labels, train=False)[0]


def sample(model: ALI, state, key: PRNGKey, n: int, labels=None) -> jax.Array:
    """n samples G_x(z), z ~ N(0, I); labels uniform from `key` for a conditional model."""
    z = jax.random.normal(key, (n, model.latent_dim))
    if model.num_classes and labels is None:
        labels = gan.uniform_int(jax.random.fold_in(key, 1), (n,), model.num_classes)
    return decode(model, state, z, labels)


def reconstruct(model: ALI, state, x: jax.Array, labels=None) -> jax.Array:
    """G_x(μ(x)): the decoding of the encoder's mean."""
    return decode(model, state, encode(model, state, x, None, labels), labels)


# ----------------------------------------------------------------------------- from configs


def build_model(config: ml_collections.ConfigDict) -> ALI:
    """The ALI of an `ali_*` preset."""
    m, k = config.model, gan.num_classes(config)
    shape = gan.data_shape(config)
    if gan.check_kind(config) == "mlp":
        norm = None if m.g_norm == "none" else m.g_norm
        enc = MLPEncoder(m.latent_dim, tuple(m.g_hidden), norm, num_classes=k)
        dec = gan.MLPGenerator(shape[0], tuple(m.g_hidden), norm, num_classes=k)
        disc = JointDiscriminator(
            tuple(m.x_hidden), tuple(m.z_hidden), tuple(m.d_hidden), m.d_pieces, num_classes=k
        )
    else:
        enc = ConvEncoder(m.latent_dim, m.nf, m.g_norm, num_classes=k)
        dec = gan.ConvGenerator(shape, m.nf, m.g_norm, num_classes=k)
        disc = JointDiscriminator(
            tuple(m.x_hidden),
            tuple(m.z_hidden),
            tuple(m.d_hidden),
            m.d_pieces,
            conv=True,
            nf=m.nf,
            norm=m.d_norm,
            num_classes=k,
        )
    o = config.optimizer
    image = gan.is_image(config)
    return ALI(
        enc,
        dec,
        disc,
        latent_dim=m.latent_dim,
        data_shape=shape,
        batch_size=config.batch_size,
        optimizer=o.name,
        lr=o.lr,
        b1=o.b1,
        b2=o.b2,
        num_classes=k,
        data=None if image else config.data.name,
        train_size=0 if image else config.data.train_size,
        data_seed=config.data.seed,
    )


def make_experiment(config: ml_collections.ConfigDict, workdir=None) -> Experiment:
    """The training run of an `ali_*` preset; `workdir` (optional) receives the sample
    snapshots of the training GIF at logging steps."""
    model = build_model(config)
    step = train_step(model)
    batch_fn = gan.digit_batches(config, model.batch_size) if gan.is_image(config) else None

    def sample_fn(state, key, n):
        return sample(model, state, key, n)

    return Experiment(
        init=lambda key: init_state(model, key),
        step=lambda state, batch, key: step(state, key, batch),
        batch_fn=batch_fn,
        evaluate=gan.snapshot_evaluator(config, sample_fn, workdir),
        finalize=lambda state, wd: evaluate_state(config, state, wd),
        compiler_options=None if gan.is_image(config) else products_only_options,
    )


def evaluate_state(config: ml_collections.ConfigDict, state, workdir) -> dict:
    """eval.json and figures of a trained ALI in `workdir`; returns the metrics.

    As `generative.gan.evaluate_state`, plus "recon_mse" (mean ‖x − G_x(μ(x))‖² per sample on
    data) and, for 2-D data, latent.png (encoder means of data over prior samples)."""
    from generative import plots

    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    model = build_model(config)
    n = int(config.eval.num_samples)
    key = gan.eval_key(config)
    labels = gan.eval_labels(config, n)
    x = jax.jit(lambda s, k: sample(model, s, k, n, labels))(state, key)
    if gan.is_image(config):
        out = gan.evaluate_image_samples(config, x, workdir)
        digits = gan.load_digit_set(config)
        m = min(n, len(digits.images))
        data = jnp.asarray(digits.images[:m, ..., None] * 2.0 - 1.0)
        data_labels = jnp.asarray(digits.labels[:m]) if model.num_classes else None
        latent_fig = None
    else:
        draw = gan.data_sampler(dataclasses.replace(model, train_size=0))
        data, data_labels = jax.jit(draw, static_argnums=1)(jax.random.fold_in(key, 3), n)

        def latent_fig(wd):
            zs = np.asarray(encode(model, state, data, None, data_labels))
            prior = np.random.default_rng(int(config.seed)).normal(size=zs.shape)
            if zs.shape[1] == 2:
                plots.save_scatter(
                    wd / "latent.png",
                    zs,
                    prior,
                    None,
                    title="encoder means E[z|x] over prior samples",
                )

        out = gan.evaluate_toy_samples(config, x, workdir, latent_fig)
    rec = jax.jit(functools.partial(reconstruct, model))(state, data, data_labels)
    err = jnp.sum((rec - data).reshape(data.shape[0], -1) ** 2, axis=1)
    out["recon_mse"] = float(jnp.mean(err))
    out["step"] = int(jax.device_get(state.step))
    return gan.write_metrics(workdir, out)
