"""VQ-VAE (van den Oord et al., 2017): a convolutional autoencoder with a vector-quantised
bottleneck.

Encoder: x [N, H, W, C] -> z_e [N, H/4, W/4, D] (two 4×4 stride-2 convolutions, residual
3×3 blocks, a 1×1 projection to D). Codebook e [K, D]. Quantisation: each grid vector goes to
its nearest code, k(j) = argmin_i ‖z_e,j − e_i‖², z_q,j = e_k(j). Decoder: z_q -> x̂ [N, H, W,
C] (mirror of the encoder, two 4×4 stride-2 transposed convolutions, linear output). All
layers are `generative.layers.Conv` / `ConvTranspose`.

Straight-through estimator: the decoder receives z_e + sg(z_q − z_e), equal to z_q in the
forward pass and with Jacobian I with respect to z_e in the backward pass (the gradient with
respect to z_q is copied to z_e). Loss, with sg = stop-gradient and ‖·‖² averaged over all
elements:

    L = ‖x − x̂‖²  +  ‖sg[z_e] − e‖²  +  β ‖z_e − sg[e]‖²     (β = 0.25)
        reconstruction   codebook        commitment

The codebook term trains only the codebook, the commitment term only the encoder. With
`model.codebook_update="ema"` the codebook term is dropped and the codebook is instead an exponential
moving average of the encoder outputs assigned to each code (decay γ):

    N_i ← γ N_i + (1 − γ) n_i,   m_i ← γ m_i + (1 − γ) Σ_{j: k(j) = i} z_e,j,
    Ñ_i = (N_i + ε) / (n + K ε) · n   (Laplace smoothing, n = Σ_i N_i),   e_i = m_i / Ñ_i,

where n_i counts the batch's vectors assigned to code i. N, m and e live in
`TrainState.model_state` (`{"codebook", "cluster_size", "embed_sum"}`), updated by each step.

Code usage: perplexity exp(−Σ_i p_i log p_i) of the code frequencies p over a batch or the
test set, between 1 (one code used) and K (uniform usage).

Family module contract: `make_experiment(config)`, `evaluate_state(config, state, workdir)`.
"""

from __future__ import annotations

import json
import logging
import pathlib
import time
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from generative.layers import Conv, ConvTranspose

__all__ = [
    "UPDATES",
    "CODEBOOK_INITS",
    "init_codebook",
    "DATASETS",
    "nearest_code",
    "quantize",
    "codebook_loss",
    "commitment_loss",
    "code_counts",
    "code_perplexity",
    "ema_init",
    "ema_update",
    "VQVAE",
    "build_model",
    "forward",
    "vqvae_loss",
    "make_experiment",
    "evaluate_state",
]

logger = logging.getLogger(__name__)

UPDATES = ("ema", "loss")
CODEBOOK_INITS = ("data", "normal")
DATASETS = ("digits", "cifar10")

sg = jax.lax.stop_gradient


def _choice(what: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {', '.join(choices)}")


# ----------------------------------------------------------------------------- quantisation


def nearest_code(z: jax.Array, codebook: jax.Array) -> jax.Array:
    """Index of the nearest code (squared Euclidean) of each vector. z [..., D], codebook
    [K, D] -> [...] int32 (ties: the lowest index)."""
    flat = z.reshape(-1, z.shape[-1])
    d = (
        jnp.sum(flat**2, axis=1)[:, None]
        - 2.0 * flat @ codebook.T
        + jnp.sum(codebook**2, axis=1)[None, :]
    )
    return jnp.argmin(d, axis=1).astype(jnp.int32).reshape(z.shape[:-1])


def quantize(z_e: jax.Array, codebook: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(z_st, z_q, idx): z_q = codebook[idx] the nearest codes, z_st = z_e + sg(z_q − z_e)
    (value z_q, Jacobian I with respect to z_e and 0 with respect to the codebook)."""
    idx = nearest_code(z_e, codebook)
    z_q = codebook[idx]
    return z_e + sg(z_q - z_e), z_q, idx


def codebook_loss(z_e: jax.Array, z_q: jax.Array) -> jax.Array:
    """mean (sg[z_e] − z_q)²: moves the codes towards the encoder outputs."""
    return jnp.mean((sg(z_e) - z_q) ** 2)


def commitment_loss(z_e: jax.Array, z_q: jax.Array) -> jax.Array:
    """mean (z_e − sg[z_q])²: keeps the encoder outputs near their codes."""
    return jnp.mean((z_e - sg(z_q)) ** 2)


def code_counts(idx: jax.Array, num_codes: int) -> jax.Array:
    """[K] float32 number of occurrences of each code in `idx` (any shape)."""
    return jnp.zeros((num_codes,), jnp.float32).at[idx.reshape(-1)].add(1.0)


def code_perplexity(idx: jax.Array, num_codes: int) -> jax.Array:
    """exp(−Σ_i p_i log p_i) of the code frequencies p in `idx` (0 log 0 = 0): in [1, K]."""
    counts = code_counts(idx, num_codes)
    p = counts / jnp.sum(counts)
    return jnp.exp(-jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)))


def ema_init(codebook: jax.Array) -> dict[str, jax.Array]:
    """EMA statistics consistent with `codebook`: N_i = 1, m_i = e_i."""
    k = codebook.shape[0]
    return {
        "codebook": codebook,
        "cluster_size": jnp.ones((k,), codebook.dtype),
        "embed_sum": codebook,
    }


def ema_update(
    state: dict[str, jax.Array],
    z_e: jax.Array,
    idx: jax.Array,
    decay: float,
    epsilon: float = 1e-5,
) -> dict[str, jax.Array]:
    """One EMA step of the codebook (module docstring) from encoder outputs z_e [..., D] and
    their codes idx [...]; no gradient flows through it."""
    z = sg(z_e).reshape(-1, z_e.shape[-1])
    k = state["codebook"].shape[0]
    onehot = jax.nn.one_hot(idx.reshape(-1), k, dtype=z.dtype)  # [M, K]
    counts = onehot.sum(0)
    sums = onehot.T @ z  # [K, D]
    size = decay * state["cluster_size"] + (1.0 - decay) * counts
    embed_sum = decay * state["embed_sum"] + (1.0 - decay) * sums
    n = jnp.sum(size)
    smoothed = (size + epsilon) / (n + k * epsilon) * n
    return {
        "codebook": embed_sum / smoothed[:, None],
        "cluster_size": size,
        "embed_sum": embed_sum,
    }


# ----------------------------------------------------------------------------- the model


class _Residual(nn.Module):
    """h + Conv1×1(ReLU(Conv3×3(ReLU(h))))."""

    hidden: int

    @nn.compact
    def __call__(self, h):
        r = Conv(self.hidden, (3, 3), padding="SAME")(nn.relu(h))
        r = Conv(h.shape[-1], (1, 1))(nn.relu(r))
        return h + r


class VQVAE(nn.Module):
    """Encoder and decoder of the VQ-VAE (the codebook is held outside, see `make_experiment`).

    encode: x [N, H, W, C] -> z_e [N, H/4, W/4, embed_dim]; decode: z [N, H/4, W/4,
    embed_dim] -> x̂ [N, H, W, C] (linear output). H and W must be multiples of 4.
    """

    channels: int = 1
    embed_dim: int = 16
    nf: int = 32
    num_residual: int = 1

    def setup(self):
        w = 2 * self.nf
        self.enc1 = Conv(self.nf, (4, 4), (2, 2), padding=((1, 1), (1, 1)))
        self.enc2 = Conv(w, (4, 4), (2, 2), padding=((1, 1), (1, 1)))
        self.enc_res = [_Residual(self.nf) for _ in range(self.num_residual)]
        self.enc_out = Conv(self.embed_dim, (1, 1))
        self.dec_in = Conv(w, (3, 3), padding="SAME")
        self.dec_res = [_Residual(self.nf) for _ in range(self.num_residual)]
        self.dec1 = ConvTranspose(self.nf, (4, 4), (2, 2), padding="SAME")
        self.dec2 = ConvTranspose(self.channels, (4, 4), (2, 2), padding="SAME")

    def encode(self, x):
        if x.ndim != 4 or x.shape[1] % 4 or x.shape[2] % 4 or x.shape[3] != self.channels:
            raise ValueError(
                f"the VQ-VAE takes images [N, H, W, {self.channels}] with H and W multiples of 4,"
                f" got shape {x.shape}"
            )
        h = nn.relu(self.enc1(x))
        h = self.enc2(h)
        for block in self.enc_res:
            h = block(h)
        return self.enc_out(nn.relu(h))

    def decode(self, z):
        h = self.dec_in(z)
        for block in self.dec_res:
            h = block(h)
        h = nn.relu(self.dec1(nn.relu(h)))
        return self.dec2(h)

    def __call__(self, x):
        return self.decode(self.encode(x))


def build_model(config: ml_collections.ConfigDict, data_shape: tuple[int, ...]) -> VQVAE:
    m = config.model
    _choice("model.codebook_update", m.codebook_update, UPDATES)
    _choice("model.codebook_init", m.codebook_init, CODEBOOK_INITS)
    if len(data_shape) != 3 or data_shape[0] % 4 or data_shape[1] % 4:
        raise ValueError(
            f"the VQ-VAE takes images (H, W, C) with H and W multiples of 4, got {data_shape}"
        )
    return VQVAE(
        channels=int(data_shape[-1]),
        embed_dim=int(m.embed_dim),
        nf=int(m.nf),
        num_residual=int(m.num_residual),
    )


def init_codebook(key, how: str, num_codes: int, dim: int, z_e: jax.Array) -> jax.Array:
    """[K, D] initial codes: "data", K distinct encoder output vectors of z_e [..., D] (drawn
    with `key`; with replacement when z_e has fewer than K vectors), so that every code starts
    inside the cloud of encoder outputs; "normal", N(0, 1) vectors."""
    _choice("model.codebook_init", how, CODEBOOK_INITS)
    if how == "normal":
        return jax.random.normal(key, (num_codes, dim))
    flat = z_e.reshape(-1, z_e.shape[-1])
    pick = jax.random.choice(key, flat.shape[0], (num_codes,), replace=flat.shape[0] < num_codes)
    return flat[pick]


def _codebook(params, model_state):
    return params["codebook"] if model_state is None else model_state["codebook"]


def forward(model: VQVAE, params, model_state, x):
    """-> dict: x_hat (decoded from the straight-through codes), z_e, z_q, idx."""
    z_e = model.apply({"params": params["net"]}, x, method=VQVAE.encode)
    z_st, z_q, idx = quantize(z_e, _codebook(params, model_state))
    x_hat = model.apply({"params": params["net"]}, z_st, method=VQVAE.decode)
    return {"x_hat": x_hat, "z_e": z_e, "z_q": z_q, "idx": idx}


def vqvae_loss(model: VQVAE, params, model_state, x, beta: float, update: str, decay: float,
               epsilon: float):  # fmt: skip
    """(loss, (metrics, new model_state)) of one batch (the `loss_step` contract)."""
    out = forward(model, params, model_state, x)
    recon = jnp.mean((out["x_hat"] - x) ** 2)
    commit = commitment_loss(out["z_e"], out["z_q"])
    num_codes = _codebook(params, model_state).shape[0]
    metrics = {
        "recon": recon,
        "commitment": commit,
        "perplexity": code_perplexity(out["idx"], num_codes),
    }
    if update == "loss":
        cb = codebook_loss(out["z_e"], out["z_q"])
        metrics["codebook"] = cb
        return recon + cb + beta * commit, (metrics, model_state)
    new_state = ema_update(model_state, out["z_e"], out["idx"], decay, epsilon)
    return recon + beta * commit, (metrics, new_state)


# ----------------------------------------------------------------------------- experiment


def _load(config):
    from generative import vae

    _choice("data.name", config.data.name, DATASETS)
    return vae.load_data(config)


def make_experiment(config: ml_collections.ConfigDict, workdir=None):
    """The `Experiment` of a VQ-VAE preset (`config.family == "vqvae"`). With `workdir`, the
    logging-step evaluation also saves a reconstruction snapshot there (`training.gif`)."""
    from generative import vae
    from generative.core.train import Experiment, TrainState, loss_step, make_optimizer

    vae._check_family(config, "vqvae")
    data = _load(config)
    model = build_model(config, data.shape)
    m = config.model
    update, beta = m.codebook_update, float(m.beta)
    tx = make_optimizer(config.optimizer, int(config.num_steps))
    logger.info("VQ-VAE data: %s", data.source)

    init_images = jnp.asarray(data.train[: int(m.init_images)])

    def init(key):
        k1, k2 = jax.random.split(key)
        net = model.init(k1, init_images[:1])["params"]
        codebook = init_codebook(
            k2, m.codebook_init, int(m.num_codes), int(m.embed_dim),
            model.apply({"params": net}, init_images, method=VQVAE.encode),
        )  # fmt: skip
        if update == "loss":
            params, model_state = {"net": net, "codebook": codebook}, None
        else:
            params, model_state = {"net": net}, ema_init(codebook)
        return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), model_state)

    def loss_fn(params, model_state, batch, key):
        del key
        return vqvae_loss(
            model, params, model_state, batch, beta, update, float(m.decay), float(m.epsilon)
        )

    indices = vae.epoch_batches(len(data.train), int(config.batch_size), int(config.seed))

    def batch_fn(i):
        return data.train[indices(i)]

    n_log = min(int(config.eval.log_num_test), len(data.test))
    log_x = jnp.asarray(data.test[:n_log])
    shown = jnp.asarray(data.test[:32])

    @jax.jit
    def log_metrics(params, model_state):
        out = forward(model, params, model_state, log_x)
        num_codes = _codebook(params, model_state).shape[0]
        return {
            "test_recon": jnp.mean((out["x_hat"] - log_x) ** 2),
            "test_perplexity": code_perplexity(out["idx"], num_codes),
        }

    @jax.jit
    def snapshot(params, model_state):
        x_hat = forward(model, params, model_state, shown)["x_hat"]
        return jnp.stack([shown, jnp.clip(x_hat, 0, 1)], 1).reshape((-1,) + shown.shape[1:])

    def evaluate(step, state):
        out = {}
        if n_log:
            out = {k: float(v) for k, v in log_metrics(state.params, state.model_state).items()}
        if workdir is not None:
            from generative.plots import save_snapshot

            save_snapshot(workdir, step, snapshot(state.params, state.model_state))
        return out

    def finalize(state, wd):
        return evaluate_state(config, state, wd, data=data)

    return Experiment(
        init=init,
        step=loss_step(loss_fn, tx),
        batch_fn=batch_fn,
        evaluate=evaluate,
        finalize=finalize,
    )


def evaluate_state(config: ml_collections.ConfigDict, state, workdir, data=None) -> dict:
    """Test metrics and figures of a trained VQ-VAE, written into `workdir`.

    eval.json: `recon_mse` and `psnr` (per image, averaged) over `eval.num_test` test
    images, the code `perplexity` over all their grid positions and `codes_used`; for digits
    the classifier Fréchet distance of the reconstructions to the test digits (no prior over
    codes is learned here, so there are no samples; features of a classifier trained by
    `generative.classifier`, NOT Inception FID). Figures: reconstructions.png (pairs of test
    image, reconstruction), training.gif when snapshots were saved.
    """
    from generative import plots, vae
    from generative.metrics import psnr

    vae._check_family(config, "vqvae")
    t0 = time.perf_counter()
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = _load(config) if data is None else data
    model = build_model(config, data.shape)
    e = config.eval
    n = min(int(e.num_test), len(data.test))
    x = data.test[:n]
    batch = max(1, min(n, int(e.batch)))
    num_codes = int(config.model.num_codes)

    @jax.jit
    def stats(params, model_state, xb):
        out = forward(model, params, model_state, xb)
        mse = jnp.mean((out["x_hat"] - xb).reshape(xb.shape[0], -1) ** 2, axis=1)
        x_hat = jnp.clip(out["x_hat"], 0, 1)
        return mse, psnr(x_hat, xb), out["idx"].reshape(xb.shape[0], -1), x_hat

    mses, psnrs, codes, recons = [], [], [], []
    pad = (-n) % batch
    xp = np.concatenate([x, np.repeat(x[-1:], pad, 0)]) if pad else x
    for i in range(0, len(xp), batch):
        mse, p, idx, xh = stats(state.params, state.model_state, jnp.asarray(xp[i : i + batch]))
        mses.append(np.asarray(mse))
        psnrs.append(np.asarray(p))
        codes.append(np.asarray(idx))
        recons.append(np.asarray(xh))
    mse, p = np.concatenate(mses)[:n], np.concatenate(psnrs)[:n]
    idx, recon = np.concatenate(codes)[:n], np.concatenate(recons)[:n]
    counts = np.bincount(idx.reshape(-1), minlength=num_codes)
    metrics: dict[str, Any] = {
        "family": "vqvae",
        "step": int(jax.device_get(state.step)),
        "data": data.source,
        "update": config.model.codebook_update,
        "num_test": n,
        "recon_mse": float(mse.mean()),
        "psnr": float(p.mean()),
        "perplexity": float(code_perplexity(jnp.asarray(idx), num_codes)),
        "codes_used": int((counts > 0).sum()),
        "num_codes": num_codes,
        "grid": [data.shape[0] // 4, data.shape[1] // 4],
    }
    m = min(32, n)
    pairs = np.stack([x[:m], recon[:m]], 1).reshape((2 * m,) + data.shape)
    plots.save_image_grid(workdir / "reconstructions.png", pairs, columns=16)
    if config.data.name == "digits" and int(e.frechet_num) > 0:
        nf = min(int(e.frechet_num), n)
        metrics.update(vae._frechet(config, data, recon[:nf]))
        metrics["frechet_of"] = "reconstructions of test digits"
    gif = plots.snapshots_gif(workdir, workdir / "training.gif", vae._renderer(data))
    if gif is not None:
        metrics["training_gif"] = gif.name
    metrics["eval_seconds"] = time.perf_counter() - t0
    (workdir / "eval.json").write_text(json.dumps(metrics, indent=2) + "\n")
    logger.info(
        "VQ-VAE eval (%s): recon MSE %.5f, PSNR %.2f dB, code perplexity %.1f of %d (%d used)",
        data.source,
        metrics["recon_mse"],
        metrics["psnr"],
        metrics["perplexity"],
        num_codes,
        metrics["codes_used"],
    )
    return metrics
