"""Variational autoencoders: ELBO with the reparameterisation trick, and the IWAE bound.

Model. Prior p(z) = N(0, I_L); encoder q(z|x) = N(μ(x), diag σ²(x)) (the network outputs μ
and log σ²); decoder p(x|z) either

- Bernoulli with logits ℓ(z): log p(x|z) = Σ_d x_d ℓ_d − softplus(ℓ_d). Grey images in [0, 1]
  are dynamically binarised by default (x_d ~ Bernoulli(grey level), redrawn at every step;
  the test set binarised once from the seed), so the decoder is a proper likelihood of
  binary images and the NLL is in nats per binary image. With `data.binarize=False` the same
  formula is the binary cross-entropy on grey levels, which is not a normalised density of
  x: its "NLL" is then a training score only.
- Gaussian with mean m(z) and one standard deviation σ shared by all dimensions, either
  learned (a scalar parameter `log_sigma`, initialised at `model.sigma`) or fixed at
  `model.sigma`: log p(x|z) = −½ Σ_d [log 2π + 2 log σ + (x_d − m_d)² / σ²]. Its NLL is a
  density on the continuous data space (for images in [0, 1]^D it may be negative and is not
  comparable with the Bernoulli figures).

Bounds. With z = μ + σ ⊙ ε, ε ~ N(0, I) (reparameterisation),

    ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)),
    KL = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²)       (analytic; ≥ 0),

estimated with one sample of z per example for training (loss = −mean ELBO = recon + kl).
The importance-weighted bound with k samples z_i ~ q(z|x),

    IWAE_k(x) = log (1/k) Σ_i w_i,   log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x),

is computed as logsumexp(log w) − log k (stable); ELBO = IWAE_1 ≤ IWAE_k ≤ IWAE_{k+1} ≤
log p(x) in expectation, so −IWAE_k is the reported negative log-likelihood (nats, and
bits/dim = nats / (D ln 2)).

Networks. `model.net="mlp"`: `generative.nets.MLP` encoder (D → hidden^layers → 2L) and
decoder (L → hidden^layers → D) on flattened data (2-D toys or images). `model.net="conv"`:
`generative.nets.DCGANEncoder` (out_dim = `model.hidden`, tanh code) followed by two Dense
heads for μ and log σ², and `generative.nets.DCGANDecoder` (linear output) from z; both with
group normalisation (stateless: a test likelihood does not depend on the batch). 28×28
images are zero-padded to 32×32 at the encoder and the decoder's 32×32 output is cropped to
the central 28×28.

Family module contract: `make_experiment(config)`, `evaluate_state(config, state, workdir)`.
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

from generative.layers import Dense
from generative.nets import MLP, DCGANDecoder, DCGANEncoder

__all__ = [
    "DECODERS",
    "NETS",
    "DATASETS",
    "SIGMA_MODES",
    "gaussian_kl",
    "log_normal_diag",
    "log_standard_normal",
    "reparameterize",
    "bernoulli_log_likelihood",
    "gaussian_log_likelihood",
    "elbo",
    "iwae_log_weights",
    "iwae_bound",
    "log_mean_exp",
    "bits_per_dim",
    "VAE",
    "VAEData",
    "load_data",
    "epoch_batches",
    "build_model",
    "make_experiment",
    "evaluate_state",
]

logger = logging.getLogger(__name__)

DECODERS = ("bernoulli", "gaussian")
NETS = ("mlp", "conv")
DATASETS = ("digits", "cifar10", "celeb_a", "toy")
CELEBA_TRAIN_IMAGES = 20000  # CelebA images for training (the rest of the loaded set: test)
SIGMA_MODES = ("learned", "fixed")

_LOG_2PI = math.log(2 * math.pi)

EncodeFn = Callable[[jax.Array], tuple[jax.Array, jax.Array]]  # x [N, ...] -> μ, log σ² [N, L]
LogLikFn = Callable[[jax.Array, jax.Array], jax.Array]  # (z [N, L], x [N, ...]) -> [N]


def _choice(what: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(choices)}")


def _sum_event(a: jax.Array) -> jax.Array:
    """[N, ...] -> [N], the sum over all axes but the first."""
    return a.reshape(a.shape[0], -1).sum(-1)


# ----------------------------------------------------------------------------- densities


def gaussian_kl(mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(μ, diag σ²) ‖ N(0, I)) = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²). [..., L] -> [...]."""
    return -0.5 * jnp.sum(1.0 + logvar - mu**2 - jnp.exp(logvar), axis=-1)


def log_normal_diag(z: jax.Array, mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """log N(z; μ, diag σ²) = −½ Σ_j [log 2π + log σ_j² + (z_j − μ_j)² / σ_j²]. [..., L] -> [...]."""
    return -0.5 * jnp.sum(_LOG_2PI + logvar + (z - mu) ** 2 * jnp.exp(-logvar), axis=-1)


def log_standard_normal(z: jax.Array) -> jax.Array:
    """log N(z; 0, I). [..., L] -> [...]."""
    return -0.5 * jnp.sum(_LOG_2PI + z**2, axis=-1)


def reparameterize(key: jax.Array, mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """z = μ + σ ⊙ ε, ε ~ N(0, I) (differentiable in μ and log σ²)."""
    eps = jax.random.normal(key, mu.shape, mu.dtype)
    return mu + jnp.exp(0.5 * logvar) * eps


def bernoulli_log_likelihood(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Σ_d x_d ℓ_d − softplus(ℓ_d) = Σ_d log Bernoulli(x_d; sigmoid(ℓ_d)) for x ∈ {0, 1}
    (the negative binary cross-entropy for grey x ∈ [0, 1]). [N, ...] -> [N]."""
    return _sum_event(x * logits - jax.nn.softplus(logits))


def gaussian_log_likelihood(x: jax.Array, mean: jax.Array, log_sigma: jax.Array) -> jax.Array:
    """Σ_d log N(x_d; m_d, σ²) with a scalar (or broadcastable) log σ. [N, ...] -> [N]."""
    z = (x - mean) * jnp.exp(-log_sigma)
    return _sum_event(-0.5 * (_LOG_2PI + z**2) - log_sigma)


# ----------------------------------------------------------------------------- bounds


def elbo(encode: EncodeFn, log_likelihood: LogLikFn, x: jax.Array, key: jax.Array):
    """One-sample ELBO estimate per example with the analytic KL.

    Returns a dict of [N] arrays: `elbo` = log p(x|z) − KL, `recon` = −log p(x|z) (z from
    the reparameterisation trick), `kl` = KL(q(z|x) ‖ p(z))."""
    mu, logvar = encode(x)
    z = reparameterize(key, mu, logvar)
    ll = log_likelihood(z, x)
    kl = gaussian_kl(mu, logvar)
    return {"elbo": ll - kl, "recon": -ll, "kl": kl}


def iwae_log_weights(
    encode: EncodeFn,
    log_likelihood: LogLikFn,
    x: jax.Array,
    key: jax.Array,
    k: int,
    chunk: int | None = None,
) -> jax.Array:
    """log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x), z_i ~ q(z|x), i < k: [k, N].

    The encoder runs once; the k samples are decoded `chunk` at a time (vectorised within a
    chunk, sequential over chunks: memory ∝ chunk · N)."""
    mu, logvar = encode(x)
    keys = jax.random.split(key, k)

    def one(kk):
        z = reparameterize(kk, mu, logvar)
        return log_likelihood(z, x) + log_standard_normal(z) - log_normal_diag(z, mu, logvar)

    return jax.lax.map(one, keys, batch_size=min(k, chunk or k))


def iwae_bound(
    encode: EncodeFn,
    log_likelihood: LogLikFn,
    x: jax.Array,
    key: jax.Array,
    k: int,
    chunk: int | None = None,
) -> jax.Array:
    """IWAE_k(x) = logsumexp_i(log w_i) − log k per example: [N] (k = 1: the ELBO estimate
    with a Monte Carlo KL)."""
    return log_mean_exp(iwae_log_weights(encode, log_likelihood, x, key, k, chunk), axis=0)


def log_mean_exp(a: jax.Array, axis: int = 0) -> jax.Array:
    """log (1/k) Σ_i exp(a_i) over `axis` (k = its length), stable for any magnitude:
    m + log mean exp(a − m) with m = max a."""
    return jax.nn.logsumexp(a, axis=axis) - math.log(a.shape[axis])


def bits_per_dim(nll_nats, dims: int):
    """Negative log-likelihood in nats per example -> bits per dimension."""
    return nll_nats / (dims * math.log(2.0))


# ----------------------------------------------------------------------------- the model


def _conv_size(shape: tuple[int, ...]) -> int:
    """The DCGAN frame side for images `shape` = (H, W, C): 32 for 28×28, else H itself when
    it is a power of two >= 8; a ValueError otherwise."""
    if len(shape) != 3 or shape[0] != shape[1]:
        raise ValueError(f"the conv VAE needs square images (H, W, C), got data shape {shape}")
    size = shape[0]
    if size == 28:
        return 32
    if size < 8 or size & (size - 1):
        raise ValueError(
            f"the conv VAE takes 28×28 images or a power-of-two side >= 8 (e.g. 32×32), "
            f"got {size}×{size}"
        )
    return size


class VAE(nn.Module):
    """Gaussian encoder and Bernoulli/Gaussian decoder (see the module docstring).

    data_shape: one example's shape, (D,) for flat data or (H, W, C) for images.
    encode: x [N, *data_shape] -> (μ, log σ²) [N, L]; decode: z [N, L] -> logits (Bernoulli)
    or mean (Gaussian) [N, *data_shape]; log_likelihood: (z, x) -> log p(x|z) [N].
    """

    data_shape: tuple[int, ...]
    latent_dim: int = 16
    net: str = "conv"
    hidden: int = 256
    layers: int = 2
    nf: int = 32
    decoder: str = "bernoulli"
    sigma_mode: str = "learned"
    sigma: float = 0.1

    def setup(self):
        _choice("model.net", self.net, NETS)
        _choice("model.decoder", self.decoder, DECODERS)
        _choice("model.sigma_mode", self.sigma_mode, SIGMA_MODES)
        dims = int(np.prod(self.data_shape))
        if self.net == "mlp":
            self.enc = MLP([self.hidden] * self.layers + [2 * self.latent_dim], "relu")
            self.dec = MLP([self.hidden] * self.layers + [dims], "relu")
        else:
            size = _conv_size(tuple(self.data_shape))
            self.enc = DCGANEncoder(out_dim=self.hidden, nf=self.nf, norm="group")
            self.mu_head = Dense(self.latent_dim)
            self.logvar_head = Dense(self.latent_dim)
            out = (size, size, self.data_shape[-1])
            self.dec = DCGANDecoder(out, nf=self.nf, norm="group", output_activation="none")
        if self.decoder == "gaussian" and self.sigma_mode == "learned":
            init = math.log(self.sigma)
            self.log_sigma_param = self.param("log_sigma", nn.initializers.constant(init), ())

    def _pad(self) -> int:
        return (_conv_size(tuple(self.data_shape)) - self.data_shape[0]) // 2

    def encode(self, x):
        if x.shape[1:] != tuple(self.data_shape):
            raise ValueError(
                f"VAE built for examples of shape {tuple(self.data_shape)}, got {x.shape[1:]}"
            )
        if self.net == "mlp":
            h = self.enc(x.reshape(x.shape[0], -1))
            return h[:, : self.latent_dim], h[:, self.latent_dim :]
        p = self._pad()
        if p:
            x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        h = self.enc(x)
        return self.mu_head(h), self.logvar_head(h)

    def decode(self, z):
        if self.net == "mlp":
            return self.dec(z).reshape((z.shape[0],) + tuple(self.data_shape))
        out = self.dec(z)
        p = self._pad()
        return out[:, p : out.shape[1] - p, p : out.shape[2] - p] if p else out

    def log_sigma(self):
        """log σ of the Gaussian decoder ([] scalar)."""
        if self.sigma_mode == "learned":
            return self.log_sigma_param
        return jnp.asarray(math.log(self.sigma), jnp.float32)

    def log_likelihood(self, z, x):
        out = self.decode(z)
        if self.decoder == "bernoulli":
            return bernoulli_log_likelihood(out, x)
        return gaussian_log_likelihood(x, out, self.log_sigma())

    def mean(self, z):
        """E[x|z]: sigmoid(logits) or the Gaussian mean. [N, L] -> [N, *data_shape]."""
        out = self.decode(z)
        return jax.nn.sigmoid(out) if self.decoder == "bernoulli" else out

    def __call__(self, x, z):
        """Runs every submodule once (for `init`): (μ, log σ², log p(x|z))."""
        mu, logvar = self.encode(x)
        return mu, logvar, self.log_likelihood(z, x)


def _fns(model: VAE, params) -> tuple[EncodeFn, LogLikFn]:
    variables = {"params": params}
    encode = functools.partial(model.apply, variables, method=VAE.encode)
    loglik = functools.partial(model.apply, variables, method=VAE.log_likelihood)
    return encode, loglik


def build_model(config: ml_collections.ConfigDict, data_shape: tuple[int, ...]) -> VAE:
    """The VAE of `config.model` for examples of `data_shape` (ValueError on bad options)."""
    m = config.model
    _choice("model.net", m.net, NETS)
    _choice("model.decoder", m.decoder, DECODERS)
    _choice("model.sigma_mode", m.sigma_mode, SIGMA_MODES)
    if m.net == "conv":
        _conv_size(tuple(data_shape))
    return VAE(
        data_shape=tuple(int(d) for d in data_shape),
        latent_dim=int(m.latent_dim),
        net=m.net,
        hidden=int(m.hidden),
        layers=int(m.layers),
        nf=int(m.nf),
        decoder=m.decoder,
        sigma_mode=m.sigma_mode,
        sigma=float(m.sigma),
    )


# ----------------------------------------------------------------------------- data


class VAEData(NamedTuple):
    """Training/test data of a run. Images [N, H, W, C] float32 in [0, 1]; toys: `train` is
    None (each step samples its batch), `test` [n, 2]."""

    train: np.ndarray | None
    test: np.ndarray
    test_labels: np.ndarray | None
    shape: tuple[int, ...]
    source: str


def _check_family(config: ml_collections.ConfigDict, family: str) -> None:
    got = config.get("family", None)
    if got != family:
        raise ValueError(f"config.family is {got!r}; this module builds family {family!r}")


def load_data(config: ml_collections.ConfigDict) -> VAEData:
    """The run's data (`config.data.name`: digits, cifar10, celeb_a or toy). CelebA: the
    140×140 centre crops at 32×32 of CELEBA_TRAIN_IMAGES + eval.num_test random training
    images, the last eval.num_test held out for evaluation."""
    d = config.data
    _choice("data.name", d.name, DATASETS)
    data_dir = d.data_dir or None
    if d.name == "digits":
        from generative.data.digits import load_digits

        n_font = int(d.num_font_digits) or None
        tr = load_digits("train", d.source, data_dir, n_font)
        te = load_digits("test", d.source, data_dir, n_font)
        source = f"{tr.source}; test: {te.source}"
        return VAEData(tr.images[..., None], te.images[..., None], te.labels, (28, 28, 1), source)
    if d.name == "cifar10":
        from generative.data.images import cifar10_images

        tr, te = cifar10_images("train", data_dir), cifar10_images("test", data_dir)
        return VAEData(tr.images, te.images, te.labels, (32, 32, 3), f"{tr.source}; {te.source}")
    if d.name == "celeb_a":
        from generative.data.images import load_images

        n_test = int(config.eval.num_test)
        n = CELEBA_TRAIN_IMAGES + n_test
        imgs = load_images("celeb_a", n, seed=int(config.seed), size=32, data_dir=data_dir)
        x = (imgs.images + 1.0) / 2.0  # [n, 32, 32, 3] in [0, 1]
        labels = np.zeros(n_test, np.int32)  # no classes
        return VAEData(x[:-n_test], x[-n_test:], labels, (32, 32, 3), imgs.source)
    from generative.data.toy import TOY_DATASETS, sample_toy

    _choice("data.toy", d.toy, tuple(TOY_DATASETS))
    key = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), 2**31 - 1)
    test = np.asarray(sample_toy(d.toy, key, int(config.eval.num_test)), np.float32)
    return VAEData(None, test, None, (2,), f"toy {d.toy} (generative.data.toy)")


def epoch_batches(n: int, batch_size: int, seed: int) -> Callable[[int], np.ndarray]:
    """index -> the example indices of batch `index`: epoch e = index // (n // batch_size)
    walks a permutation of range(n) drawn from (seed, e); the last partial batch is dropped."""
    per_epoch = n // batch_size
    if per_epoch < 1:
        raise ValueError(f"batch_size {batch_size} exceeds the {n} training examples")

    @functools.lru_cache(maxsize=2)
    def perm(epoch: int) -> np.ndarray:
        return np.random.default_rng([seed, epoch]).permutation(n)

    def indices(index: int) -> np.ndarray:
        epoch, j = divmod(int(index), per_epoch)
        return perm(epoch)[j * batch_size : (j + 1) * batch_size]

    return indices


def _binarize(config) -> bool:
    return config.model.decoder == "bernoulli" and bool(config.data.binarize)


def _eval_images(config, data: VAEData, n: int) -> np.ndarray:
    """The first n test examples, binarised once from the seed when the run binarises."""
    x = data.test[:n]
    if _binarize(config):
        rng = np.random.default_rng([int(config.seed), 7])
        x = (rng.uniform(size=x.shape) < x).astype(np.float32)
    return x


def _normal(seed: int, salt: int, shape: tuple[int, ...]) -> np.ndarray:
    """Fixed standard normal draws (latents of the sample figures) from (seed, salt)."""
    return np.random.default_rng([seed, salt]).standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------- experiment


def make_experiment(config: ml_collections.ConfigDict, workdir=None):
    """The `Experiment` of a VAE preset (`config.family == "vae"`). With `workdir`, the
    logging-step evaluation also saves a sample snapshot there (for `training.gif`)."""
    from generative.core.train import Experiment, TrainState, loss_step, make_optimizer

    _check_family(config, "vae")
    if config.data.name == "toy" and config.model.decoder != "gaussian":
        raise ValueError("data.name=toy needs model.decoder=gaussian (the toys are continuous)")
    data = load_data(config)
    model = build_model(config, data.shape)
    tx = make_optimizer(config.optimizer, int(config.num_steps))
    batch_size = int(config.batch_size)
    binarize = _binarize(config)
    logger.info("VAE data: %s", data.source)

    def init(key):
        x = jnp.zeros((1,) + data.shape, jnp.float32)
        z = jnp.zeros((1, model.latent_dim), jnp.float32)
        params = model.init(key, x, z)["params"]
        return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), None)

    def loss_fn(params, model_state, batch, key):
        kd, kz = jax.random.split(key)
        if batch is None:  # toy data: the step samples its own batch
            from generative.data.toy import sample_toy

            batch = sample_toy(config.data.toy, kd, batch_size)
        elif binarize:
            batch = jax.random.bernoulli(kd, batch).astype(batch.dtype)
        encode, loglik = _fns(model, params)
        terms = elbo(encode, loglik, batch, kz)
        aux = {k: jnp.mean(v) for k, v in terms.items()}
        if model.decoder == "gaussian":
            aux["sigma"] = jnp.exp(model.apply({"params": params}, method=VAE.log_sigma))
        return -aux["elbo"], (aux, model_state)

    batch_fn = None
    if data.train is not None:
        indices = epoch_batches(len(data.train), batch_size, int(config.seed))
        batch_fn = lambda i: data.train[indices(i)]  # noqa: E731

    n_log = min(int(config.eval.log_num_test), len(data.test))
    log_x = jnp.asarray(_eval_images(config, data, max(n_log, 1)))
    log_key = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), 11)
    z_fixed = jnp.asarray(_normal(int(config.seed), 11, (_num_snapshot(data), model.latent_dim)))

    @jax.jit
    def log_fn(params):
        """(test ELBO on the first log_num_test test examples, samples at fixed latents)."""
        encode, loglik = _fns(model, params)
        test_elbo = jnp.mean(elbo(encode, loglik, log_x, log_key)["elbo"])
        return test_elbo, _sample(model, params, z_fixed, log_key)

    def evaluate(step, state):
        if not n_log and workdir is None:
            return {}
        test_elbo, samples = log_fn(state.params)
        if workdir is not None:
            from generative.plots import save_snapshot

            save_snapshot(workdir, step, samples)
        return {"test_elbo": float(test_elbo)} if n_log else {}

    def finalize(state, wd):
        return evaluate_state(config, state, wd, data=data)

    return Experiment(
        init=init,
        step=loss_step(loss_fn, tx),
        batch_fn=batch_fn,
        evaluate=evaluate,
        finalize=finalize,
    )


def _num_snapshot(data: VAEData) -> int:
    return 1000 if len(data.shape) == 1 else 64


def _sample(model: VAE, params, z, key):
    """Samples shown for z ~ p(z): images as E[x|z] (clipped to [0, 1]); flat data as
    x ~ p(x|z) (with the decoder's noise)."""
    mean = model.apply({"params": params}, z, method=VAE.mean)
    if len(model.data_shape) == 3:
        return jnp.clip(mean, 0.0, 1.0)
    if model.decoder == "gaussian":
        log_sigma = model.apply({"params": params}, method=VAE.log_sigma)
        return mean + jnp.exp(log_sigma) * jax.random.normal(key, mean.shape)
    return jax.random.bernoulli(key, mean).astype(mean.dtype)


def evaluate_state(config: ml_collections.ConfigDict, state, workdir, data: VAEData | None = None):
    """Test metrics and figures of a trained VAE, written into `workdir`.

    eval.json: `nll_nats` = −mean IWAE_k over `eval.num_test` test examples (k =
    `eval.iwae_k`), `nll_bits_per_dim`, `elbo` (mean of the same log-weights: an unbiased
    ELBO estimate), `kl`, `recon_mse` (of E[x|z = μ(x)]); for digits the classifier Fréchet
    distance of `eval.frechet_num` samples (and of as many training digits, for scale) to
    test digits (features of a small classifier trained by `generative.classifier`, NOT
    Inception FID). Figures: samples.png and reconstructions.png (images) or
    samples_scatter.png and samples_density.png (2-D), training.gif when snapshots were saved.
    """
    from generative import plots

    _check_family(config, "vae")
    t0 = time.perf_counter()
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = load_data(config) if data is None else data
    model = build_model(config, data.shape)
    params = state.params
    e = config.eval
    k, n = int(e.iwae_k), min(int(e.num_test), len(data.test))
    x = _eval_images(config, data, n)
    dims = int(np.prod(data.shape))
    root = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), 13)
    batch = max(1, min(n, int(e.batch)))
    chunk = max(1, int(e.decode_chunk) // batch)
    images = len(data.shape) == 3
    pad = (-n) % batch
    xp = np.concatenate([x, np.repeat(x[-1:], pad, 0)]) if pad else x
    calls = len(xp) // batch
    n_samples = max(64, int(e.frechet_num)) if images else 2000
    per_call = -(-n_samples // calls)  # samples decoded in each call (one compiled program)
    z_all = _normal(int(config.seed), 13, (per_call * calls, model.latent_dim))

    @jax.jit
    def stats(params, xb, zb, key):
        """Per example of xb: IWAE_k, mean log-weight, KL, reconstruction MSE; the
        reconstructions E[x|z = μ(x)] of xb; samples for the latents zb."""
        encode, loglik = _fns(model, params)
        lw = iwae_log_weights(encode, loglik, xb, key, k, chunk)
        mu, logvar = encode(xb)
        recon = model.apply({"params": params}, mu, method=VAE.mean)
        mse = jnp.mean((recon - xb).reshape(xb.shape[0], -1) ** 2, axis=1)
        scores = jnp.stack([log_mean_exp(lw, 0), lw.mean(0), gaussian_kl(mu, logvar), mse])
        return scores, recon, _sample(model, params, zb, jax.random.fold_in(key, 1))

    scores, recon, samples = [], None, []
    for i in range(calls):
        out = stats(
            params,
            jnp.asarray(xp[i * batch : (i + 1) * batch]),
            jnp.asarray(z_all[i * per_call : (i + 1) * per_call]),
            jax.random.fold_in(root, i),
        )
        scores.append(np.asarray(out[0]))
        recon = np.asarray(out[1]) if recon is None else recon
        samples.append(np.asarray(out[2]))
    samples = np.concatenate(samples)[:n_samples]
    scores = np.concatenate(scores, axis=1)[:, :n]
    nll = -float(scores[0].mean())
    metrics: dict[str, Any] = {
        "family": "vae",
        "step": int(jax.device_get(state.step)),
        "data": data.source,
        "decoder": config.model.decoder,
        "binarized": _binarize(config),
        "num_test": n,
        "iwae_k": k,
        "nll_nats": nll,
        "nll_nats_stderr": float(scores[0].std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
        "nll_bits_per_dim": bits_per_dim(nll, dims),
        "elbo": float(scores[1].mean()),
        "kl": float(scores[2].mean()),
        "recon_mse": float(scores[3].mean()),
    }
    if model.decoder == "gaussian":
        metrics["sigma"] = float(np.exp(model.apply({"params": params}, method=VAE.log_sigma)))
    if images:
        plots.save_image_grid(workdir / "samples.png", samples[:64])
        m = min(32, batch, n)
        recon = np.clip(recon[:m], 0, 1)
        pairs = np.stack([x[:m], recon], 1).reshape((2 * m,) + data.shape)
        plots.save_image_grid(workdir / "reconstructions.png", pairs, columns=16)
        if config.data.name == "digits" and int(e.frechet_num) > 0:
            metrics.update(_frechet(config, data, samples[: int(e.frechet_num)]))
    else:
        title = f"VAE samples, {data.source}"
        plots.save_scatter(workdir / "samples_scatter.png", samples, data.test, title=title)
        plots.save_density(workdir / "samples_density.png", samples, title="VAE samples")
    gif = plots.snapshots_gif(workdir, workdir / "training.gif", _renderer(data))
    if gif is not None:
        metrics["training_gif"] = gif.name
    metrics["eval_seconds"] = time.perf_counter() - t0
    (workdir / "eval.json").write_text(json.dumps(metrics, indent=2) + "\n")
    logger.info(
        "VAE eval (%s): NLL %.3f nats (%.4f bits/dim, IWAE k=%d, %d test examples), ELBO %.3f",
        data.source,
        nll,
        metrics["nll_bits_per_dim"],
        k,
        n,
        metrics["elbo"],
    )
    return metrics


def _frechet(config, data: VAEData, samples: np.ndarray) -> dict:
    """Classifier Fréchet distances of samples and of training digits to test digits."""
    from generative import classifier

    e, d = config.eval, config.data
    params = classifier.load_or_train(
        source=d.source,
        data_dir=d.data_dir or None,
        num_font_digits=int(d.num_font_digits) or None,
        steps=int(e.classifier_steps),
        seed=int(config.seed),
        cache_dir=e.cache_dir or None,
    )
    n = len(samples)
    reference = data.test[:n]
    train = data.train[:n] if data.train is not None else None
    out = {
        "frechet_num": n,
        "classifier_frechet": classifier.classifier_frechet(samples, reference, params),
    }
    if train is not None:
        out["classifier_frechet_train_digits"] = classifier.classifier_frechet(
            train, reference, params
        )
    return out


def _renderer(data: VAEData):
    from generative import plots

    if len(data.shape) == 3:
        return lambda a, step: plots.image_grid_frame(a)
    return lambda a, step: plots.scatter_frame(a, data.test, title=f"step {step}")
