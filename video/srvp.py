"""SRVP: a state-space VAE with residual (Euler) latent dynamics (Franceschi et al., ICML 2020).

Generative model: `y_1 ~ N(0, I)`, `z_{t+1} ~ p(z | y_t)` (learned prior),
`y_{t+1} = y_t + f(y_t, z_{t+1})` integrated with `n_euler_steps` Euler sub-steps of size
`dt = 1/n_euler_steps` (z held within the frame), `x_t ~ N(g(y_t, w), ν² I)` with a content
variable `w` computed deterministically from `nt_inf` frames.

The networks live in the flax module `SRVP`; the time loops are pure functions (`lax.scan`)
calling its methods through `apply`, and all randomness enters as explicit noise (`Noise`), so
each ELBO term can be recomputed by hand.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from generative.nets import MLP, DCGANDecoder, DCGANEncoder, VGGDecoder, VGGEncoder

__all__ = [
    "SRVPConfig",
    "SRVP",
    "frame_encoder",
    "frame_decoder",
    "Noise",
    "ELBOTerms",
    "gaussian_kl",
    "gaussian_nll",
    "sample_noise",
    "elbo",
    "init_variables",
    "condition",
    "encode_frames",
    "rollout_prior",
    "decode",
    "generate",
    "ARCHITECTURES",
    "DYNAMICS",
]

ARCHITECTURES = ("dcgan", "vgg")
DYNAMICS = ("residual", "mlp", "gru")

_conv_init = nn.initializers.normal(0.02)
# The reference applies its N(0, 0.02) init to every Conv and Linear layer, then re-initialises
# the dynamics MLP orthogonally; small prior/inference outputs at init keep the KL finite.
_linear_init = nn.initializers.normal(0.02)


def _bn_scale_init(key, shape, dtype=jnp.float32):
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _mlp(hidden: int, out: int, num_layers: int, kernel_init=_linear_init) -> MLP:
    """`num_layers` linear layers with ReLU between them, named dense0, dense1, ..."""
    features = [hidden] * (num_layers - 1) + [out]
    return MLP(features, kernel_init=kernel_init, layer_names="dense{}")


# The reference's 64×64 frame networks: batch norm (scale ~ N(1, 0.02)), no bias before a
# normalisation, the code normalised before its tanh; VGG with (2, 2, 3, 3) blocks per stage.
_VGG_BLOCKS = (2, 2, 3, 3)
_VGG_DECODER_STAGES = ((8, 8, 4), (4, 4, 2), (2, 1), (1,))


def frame_encoder(c: SRVPConfig) -> nn.Module:
    """SRVP's frame encoder: `apply(v, x [N, 64, 64, nc], train)` -> (code [N, nhx], skips)."""
    common = dict(norm="batch", norm_code=True, skips=True, kernel_init=_conv_init)
    common["scale_init"] = _bn_scale_init
    if c.archi == "dcgan":
        return DCGANEncoder(c.nhx, c.nf, **common)
    return VGGEncoder(c.nhx, c.nf, blocks=_VGG_BLOCKS, use_bias=False, **common)


def frame_decoder(c: SRVPConfig) -> nn.Module:
    """SRVP's frame decoder: `apply(v, [N, nw + ny], skips or None, train)` -> frames."""
    common = dict(norm="batch", kernel_init=_conv_init, scale_init=_bn_scale_init)
    if c.archi == "dcgan":
        return DCGANDecoder((64, 64, c.nc), c.nf, **common)
    return VGGDecoder(
        (64, 64, c.nc),
        c.nf,
        stages=_VGG_DECODER_STAGES,
        use_bias=False,
        out_transpose=True,
        **common,
    )


@dataclasses.dataclass(frozen=True)
class SRVPConfig:
    nc: int = 1  # image channels
    nf: int = 64  # base width of the frame encoder/decoder
    nhx: int = 128  # frame encoding size
    ny: int = 20  # state y
    nz: int = 20  # innovation z
    nw: int = 256  # content w
    nt_inf: int = 5  # frames for q(y_1) and w
    nh_inf: int = 256  # width of q(y_1), q(z) LSTM
    nlayers_inf: int = 3
    nh_res: int = 512  # width of the prior and the dynamics MLPs
    nlayers_res: int = 4
    archi: str = "dcgan"  # dcgan | vgg
    skipco: bool = False  # encoder -> decoder skip connections
    res_gain: float = 1.41  # orthogonal init gain of f
    dynamics: str = "residual"  # residual | mlp (non-residual ablation) | gru (ablation)
    stochastic: bool = True  # False: no z (deterministic ablation)
    n_euler_steps: int = 1
    obs_scale: float = 1.0  # ν, the observation standard deviation
    beta_y: float = 1.0
    beta_z: float = 2.0
    l2_res: float = 1.0  # λ_res, weight of Σ ‖dt·f‖₂

    def __post_init__(self):
        if self.archi not in ARCHITECTURES:
            raise ValueError(
                f"unknown archi '{self.archi}'; valid choices: {', '.join(ARCHITECTURES)}"
            )
        if self.dynamics not in DYNAMICS:
            raise ValueError(
                f"unknown dynamics '{self.dynamics}'; valid choices: {', '.join(DYNAMICS)}"
            )
        if self.dynamics != "residual" and self.n_euler_steps != 1:
            raise ValueError(
                f"n_euler_steps={self.n_euler_steps} needs dynamics='residual' "
                f"(got '{self.dynamics}')"
            )
        if self.n_euler_steps < 1:
            raise ValueError(f"n_euler_steps must be >= 1, got {self.n_euler_steps}")

    @property
    def dt(self) -> float:
        return 1.0 / self.n_euler_steps


def _gaussian_params(raw):
    mu, s = jnp.split(raw, 2, axis=-1)
    return mu, nn.softplus(s) + 1e-8


class SRVP(nn.Module):
    """All SRVP networks; the time loops are in the pure functions below."""

    cfg: SRVPConfig

    def setup(self):
        c = self.cfg
        self.encoder = frame_encoder(c)
        self.decoder = frame_decoder(c)
        self.w_in = nn.Dense(c.nw, kernel_init=_linear_init)
        self.w_out = nn.Dense(c.nw, kernel_init=_linear_init)
        self.q_y = _mlp(c.nh_inf, 2 * c.ny, c.nlayers_inf)
        if c.stochastic:
            self.q_z_lstm = nn.RNN(nn.OptimizedLSTMCell(c.nh_inf))
            self.q_z_out = nn.Dense(2 * c.nz, kernel_init=_linear_init)
            self.p_z = _mlp(c.nh_res, 2 * c.nz, c.nlayers_res)
        if c.dynamics == "gru":
            self.gru = nn.GRUCell(c.ny)
        else:
            self.f = _mlp(c.nh_res, c.ny, c.nlayers_res, nn.initializers.orthogonal(c.res_gain))

    def encode(self, x, train: bool):
        """x [B, T, 64, 64, nc] -> encodings [B, T, nhx], skips (list of [B, T, h, w, c])."""
        b, t = x.shape[:2]
        if x.shape[2:4] != (64, 64):
            raise ValueError(f"frames must be 64×64, got {x.shape[2:4]}")
        h, skips = self.encoder(x.reshape((b * t,) + x.shape[2:]), train)
        return h.reshape(b, t, -1), [s.reshape((b, t) + s.shape[1:]) for s in skips]

    def content(self, h):
        """w from frame encodings h [B, k, nhx] (permutation invariant) -> [B, nw]."""
        return jnp.tanh(self.w_out(nn.relu(self.w_in(h)).sum(1)))

    def infer_y1(self, h):
        """q(y_1 | x_{1:nt_inf}) from h [B, nt_inf, nhx] -> mean, std [B, ny]."""
        return _gaussian_params(self.q_y(h.reshape(h.shape[0], -1)))

    def infer_z(self, h):
        """q(z_t | x_{1:t}) for every t from h [B, T, nhx] -> mean, std [B, T, nz]."""
        zeros = jnp.zeros((h.shape[0], self.cfg.nh_inf), h.dtype)  # the carry in h's dtype
        return _gaussian_params(self.q_z_out(self.q_z_lstm(h, initial_carry=(zeros, zeros))))

    def prior_z(self, y):
        """p(z_{t+1} | y_t): y [B, ny] -> mean, std [B, nz]."""
        return _gaussian_params(self.p_z(y))

    def dynamics(self, y, z, dt):
        """One update of y [B, ny] with z [B, nz] (nz may be 0) -> (new y, increment)."""
        if self.cfg.dynamics == "gru":
            new, _ = self.gru(y, z if z.shape[-1] else jnp.zeros_like(y))
            return new, new - y
        out = self.f(jnp.concatenate([y, z], -1))
        if self.cfg.dynamics == "mlp":
            return out, out - y
        return y + dt * out, dt * out

    def decode(self, y, w, skips, train: bool):
        """y [B, T, ny], w [B, nw], skips (list of [B, h, w, c]) -> frames [B, T, 64, 64, nc].
        The skips' share of the decoder is computed once per video, not per frame."""
        b, t = y.shape[:2]
        v = jnp.concatenate([jnp.broadcast_to(w[:, None], (b, t, w.shape[-1])), y], -1)
        out = self.decoder(v.reshape(b * t, -1), list(skips) if self.cfg.skipco else None, train)
        return out.reshape((b, t) + out.shape[1:])

    def init_all(self, x):
        """Touches every network once (for `init`). x: [B, T, 64, 64, nc]."""
        c = self.cfg
        h, skips = self.encode(x, train=True)
        w = self.content(h[:, : c.nt_inf])
        mu, _ = self.infer_y1(h[:, : c.nt_inf])
        z = jnp.zeros(mu.shape[:1] + (c.nz if c.stochastic else 0,))
        if c.stochastic:
            self.infer_z(h)
            self.prior_z(mu)
        y, _ = self.dynamics(mu, z, c.dt)
        return self.decode(y[:, None], w, [s[:, 0] for s in skips], train=True)


def init_variables(cfg: SRVPConfig, key, seq_len: int = 2):
    """{'params', 'batch_stats'} of SRVP (uses a [1, T, 64, 64, nc] dummy input). Jittable.

    The parameters are drawn from an RBG key derived from `key`: with threefry keys XLA on CPU
    compiles one random generator per parameter tensor and the init takes twice as long to
    compile.
    """
    x = jnp.zeros((1, max(seq_len, cfg.nt_inf), 64, 64, cfg.nc))
    rbg = jax.random.wrap_key_data(jnp.tile(jax.random.key_data(key), 2), impl="rbg")
    return SRVP(cfg).init(rbg, x, method=SRVP.init_all)


# --------------------------------------------------------------------------- distributions
def gaussian_kl(mu_q, std_q, mu_p, std_p):
    """KL(N(mu_q, std_q²) ‖ N(mu_p, std_p²)) elementwise."""
    return jnp.log(std_p) - jnp.log(std_q) + (std_q**2 + (mu_q - mu_p) ** 2) / (2 * std_p**2) - 0.5


def gaussian_nll(x, mean, std):
    """-log N(x | mean, std²) elementwise."""
    return 0.5 * ((x - mean) / std) ** 2 + jnp.log(std) + 0.5 * math.log(2 * math.pi)


# --------------------------------------------------------------------------- training: ELBO
def l2_norm(v):
    """‖v‖₂ over the last axis with gradient 0 (a subgradient) at v = 0, where the plain
    `sqrt(sum(v²))` has a NaN gradient; f's output is exactly 0 whenever all its last hidden
    ReLUs are off (biases start at 0), which narrow dynamics MLPs hit within a step."""
    sq = jnp.sum(v * v, -1)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


class Noise(NamedTuple):
    """Every random draw of one training forward pass."""

    eps_y: jax.Array  # [B, ny] standard normal for y_1
    eps_z: jax.Array  # [B, T-1, nz] standard normal for z_{2:T}
    content_idx: jax.Array  # [B, nt_inf] int32 distinct frames that give w
    skip_idx: jax.Array  # [B] int32 frame whose encoder features feed the decoder skips


def sample_noise(cfg: SRVPConfig, key, batch_size: int, seq_len: int) -> Noise:
    k_y, k_z, k_c, k_s = jax.random.split(key, 4)
    nz = cfg.nz if cfg.stochastic else 0
    perm = jax.vmap(lambda k: jax.random.permutation(k, seq_len)[: cfg.nt_inf])
    return Noise(
        jax.random.normal(k_y, (batch_size, cfg.ny)),
        jax.random.normal(k_z, (batch_size, seq_len - 1, nz)),
        perm(jax.random.split(k_c, batch_size)).astype(jnp.int32),
        jax.random.randint(k_s, (batch_size,), 0, seq_len),
    )


class ELBOTerms(NamedTuple):
    loss: jax.Array  # [] (nll + β_y kl_y + β_z kl_z + λ_res residual_norm), all per video
    nll: jax.Array  # [] Σ_{pixels, frames} −log N(x | x̂, ν²) / B
    kl_y: jax.Array  # [] Σ KL(q(y_1) ‖ N(0, I)) / B
    kl_z: jax.Array  # [] Σ_t KL(q(z_t) ‖ p(z_t | y_{t−1})) / B
    residual_norm: jax.Array  # [] Σ_steps ‖dt·f‖₂ / B
    mse: jax.Array  # [] mean squared reconstruction error per pixel
    x_hat: jax.Array  # [B, T, 64, 64, nc] reconstructions
    y: jax.Array  # [B, T, ny] integer-time states


def _take_frames(a, idx):
    """a [B, T, ...], idx [B, k] -> [B, k, ...]."""
    return jax.vmap(lambda ai, ii: ai[ii])(a, idx)


def elbo(cfg: SRVPConfig, variables, x, noise: Noise, train: bool = True):
    """The SRVP loss on videos x [B, T, 64, 64, nc] with the given noise.

    The whole sequence goes through the posterior. Returns (ELBOTerms, new batch_stats).
    """
    model = SRVP(cfg)
    params, bstats = variables["params"], variables.get("batch_stats", {})
    b, t = x.shape[:2]
    mut = ["batch_stats"] if train else False

    def call(method, *args, **kw):
        nonlocal bstats
        out = model.apply(
            {"params": params, "batch_stats": bstats}, *args, method=method, mutable=mut, **kw
        )
        if train:
            out, upd = out
            bstats = upd["batch_stats"]
        return out

    h, skips = call(SRVP.encode, x, train=train)  # [B, T, nhx]
    mu_y, std_y = call(SRVP.infer_y1, h[:, : cfg.nt_inf])  # [B, ny]
    y1 = mu_y + std_y * noise.eps_y
    w = call(SRVP.content, _take_frames(h, noise.content_idx))  # [B, nw]
    if cfg.stochastic:
        mu_q, std_q = call(SRVP.infer_z, h)
        mu_q, std_q = mu_q[:, 1:], std_q[:, 1:]  # q(z_t | x_{1:t}), t = 2..T: [B, T-1, nz]
        z = mu_q + std_q * noise.eps_z
    else:
        z = jnp.zeros((b, t - 1, 0))
    apply = lambda method, *a: model.apply({"params": params}, *a, method=method)

    def frame_step(y, z_next):
        prior = apply(SRVP.prior_z, y) if cfg.stochastic else (jnp.zeros((b, 0)),) * 2

        def euler(yy, _):
            yy, inc = apply(SRVP.dynamics, yy, z_next, cfg.dt)
            return yy, l2_norm(inc)  # ‖dt·f‖₂ per video

        y_next, norms = jax.lax.scan(euler, y, None, length=cfg.n_euler_steps)
        return y_next, (y_next, prior, norms.sum(0))

    _, (ys, (mu_p, std_p), norms) = jax.lax.scan(frame_step, y1, jnp.swapaxes(z, 0, 1))
    ys = jnp.concatenate([y1[:, None], jnp.swapaxes(ys, 0, 1)], 1)  # [B, T, ny]
    skip = [_take_frames(s, noise.skip_idx[:, None])[:, 0] for s in skips] if cfg.skipco else []
    x_hat = call(SRVP.decode, ys, w, skip, train=train)

    nll = gaussian_nll(x, x_hat, cfg.obs_scale).sum() / b
    kl_y = gaussian_kl(mu_y, std_y, 0.0, 1.0).sum() / b
    if cfg.stochastic:
        mu_p, std_p = jnp.swapaxes(mu_p, 0, 1), jnp.swapaxes(std_p, 0, 1)  # [B, T-1, nz]
        kl_z = gaussian_kl(mu_q, std_q, mu_p, std_p).sum() / b
    else:
        kl_z = jnp.zeros(())
    residual = norms.sum() / b if cfg.dynamics == "residual" else jnp.zeros(())
    loss = nll + cfg.beta_y * kl_y + cfg.beta_z * kl_z + cfg.l2_res * residual
    mse = jnp.mean((x - x_hat) ** 2)
    return ELBOTerms(loss, nll, kl_y, kl_z, residual, mse, x_hat, ys), bstats


# --------------------------------------------------------------------------- inference
class Conditioning(NamedTuple):
    y: jax.Array  # [B, nt_cond, ny] posterior states of the conditioning frames
    w: jax.Array  # [B, nw] content from the last nt_inf conditioning frames
    skips: list  # list of [B, h, w, c] from the last conditioning frame ([] without skips)


def encode_frames(cfg: SRVPConfig, variables, x):
    """Eval-mode frame encodings of x [B, T, 64, 64, nc] -> (h [B, T, nhx], skips)."""
    return SRVP(cfg).apply(variables, x, train=False, method=SRVP.encode)


def condition(cfg: SRVPConfig, variables, x_cond, key, encodings=None) -> Conditioning:
    """Posterior over the conditioning frames x_cond [B, nt_cond, 64, 64, nc] (eval mode).

    `encodings`: `encode_frames(cfg, variables, x_cond)` when already computed (they do not
    depend on the key, so several samples share them)."""
    model = SRVP(cfg)
    apply = lambda method, *a, **kw: model.apply(variables, *a, method=method, **kw)
    b, t = x_cond.shape[:2]
    if t < cfg.nt_inf:
        raise ValueError(f"need at least nt_inf={cfg.nt_inf} conditioning frames, got {t}")
    h, skips = encodings if encodings is not None else encode_frames(cfg, variables, x_cond)
    k_y, k_z = jax.random.split(key)
    mu_y, std_y = apply(SRVP.infer_y1, h[:, : cfg.nt_inf])
    y = mu_y + std_y * jax.random.normal(k_y, mu_y.shape)
    w = apply(SRVP.content, h[:, t - cfg.nt_inf :])
    if cfg.stochastic:
        mu_q, std_q = apply(SRVP.infer_z, h)
        z = mu_q[:, 1:] + std_q[:, 1:] * jax.random.normal(k_z, mu_q[:, 1:].shape)
    else:
        z = jnp.zeros((b, t - 1, 0))

    def frame_step(y, z_next):
        def euler(yy, _):
            return apply(SRVP.dynamics, yy, z_next, cfg.dt)[0], None

        y, _ = jax.lax.scan(euler, y, None, length=cfg.n_euler_steps)
        return y, y

    _, ys = jax.lax.scan(frame_step, y, jnp.swapaxes(z, 0, 1))
    ys = jnp.concatenate([y[:, None], jnp.swapaxes(ys, 0, 1)], 1)
    skip = [s[:, -1] for s in skips] if cfg.skipco else []
    return Conditioning(ys, w, skip)


def rollout_prior(
    cfg: SRVPConfig,
    variables,
    y0,
    key,
    horizon: int,
    dt: float | None = None,
    frame_rate: int = 1,
    z_noise=None,
):
    """Generate states after y0 [B, ny] with prior samples, for `horizon` time units.

    Integer-time frames: each unit draws z ~ p(z | y) once and integrates with Euler steps of
    size `dt` (default: the training dt). `frame_rate` > 1 also returns intermediate states
    (every 1/frame_rate units; needs 1/(dt·frame_rate) integer). `z_noise` [horizon, B, nz]
    overrides the standard normal draws. Returns states [B, horizon · frame_rate, ny].
    """
    dt = cfg.dt if dt is None else dt
    n_sub = round(1.0 / dt)
    if abs(n_sub * dt - 1.0) > 1e-6 or n_sub % frame_rate:
        raise ValueError(
            f"dt={dt} must divide 1 and give a multiple of frame_rate={frame_rate} steps per frame"
        )
    model = SRVP(cfg)
    apply = lambda method, *a: model.apply({"params": variables["params"]}, *a, method=method)
    b = y0.shape[0]
    nz = cfg.nz if cfg.stochastic else 0
    if z_noise is None:
        z_noise = jax.random.normal(key, (horizon, b, nz))

    def frame_step(y, eps):
        if cfg.stochastic:
            mu, std = apply(SRVP.prior_z, y)
            z = mu + std * eps
        else:
            z = jnp.zeros((b, 0))

        def euler(yy, _):
            return apply(SRVP.dynamics, yy, z, dt)[0], None

        def sub_frame(yy, _):
            yy, _ = jax.lax.scan(euler, yy, None, length=n_sub // frame_rate)
            return yy, yy

        y, ys = jax.lax.scan(sub_frame, y, None, length=frame_rate)
        return y, ys  # ys: [frame_rate, B, ny]

    _, ys = jax.lax.scan(frame_step, y0, z_noise)  # [horizon, frame_rate, B, ny]
    return jnp.moveaxis(ys.reshape((-1, b, cfg.ny)), 0, 1)


def decode(cfg: SRVPConfig, variables, y, w, skips):
    """Frames [B, T, 64, 64, nc] from states y [B, T, ny] (eval mode)."""
    return SRVP(cfg).apply(variables, y, w, skips, train=False, method=SRVP.decode)


def generate(
    cfg: SRVPConfig,
    variables,
    x_cond,
    key,
    horizon: int,
    dt: float | None = None,
    frame_rate: int = 1,
    encodings=None,
    with_conditioning: bool = True,
):
    """Condition on x_cond [B, nt_cond, ...] then predict `horizon` frames with the prior.

    Returns frames [B, nt_cond + horizon·frame_rate, 64, 64, nc] clamped to [0, 1]
    (conditioning reconstructions first; only the predicted ones when `with_conditioning` is
    False). `encodings`: see `condition`.
    """
    k_c, k_p = jax.random.split(key)
    c = condition(cfg, variables, x_cond, k_c, encodings)
    y_pred = rollout_prior(cfg, variables, c.y[:, -1], k_p, horizon, dt, frame_rate)
    y = jnp.concatenate([c.y, y_pred], 1) if with_conditioning else y_pred
    return jnp.clip(decode(cfg, variables, y, c.w, c.skips), 0.0, 1.0)
