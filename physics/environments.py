"""Learning dynamics across environments: LEADS, One-Per-Env, One-For-All and CoDA.

Each environment e (physical parameters p_e) gives trajectories of ``dx/dt = F_e(x)``; the
models learn one vector field per environment, ``f_e``, integrated by diffrax (fixed-step RK4,
`physics.simulators.integrate`):

- ``leads`` (Yin et al., NeurIPS 2021): ``f_e = f + g_e`` with a network ``f`` shared by all
  environments and one network ``g_e`` per environment, and the penalty
  ``λ Σ_e Ω(g_e)`` that leaves in ``g_e`` only what ``f`` cannot share:
  ``Ω(g_e) = mean_{x ∈ observed states of e} ‖g_e(x)‖² / (‖x‖ + 1e-5)²`` (norms over the state's
  channels, i.e. per sample of LV and per grid point of Gray–Scott) ``+ c_lip Σ_layers σ(W_l^e)``,
  σ the largest singular value of each weight matrix of ``g_e`` (a convolution kernel
  [kh, kw, C_in, C_out] as a [kh·kw·C_in, C_out] matrix), estimated by power iteration
  with persistent vectors (``model_state`` of the training state), as in the reference.
  ``leads_no_min`` is the same model without the penalty.
- ``one_for_all``: one network ``f`` for every environment (``f_e = f``).
- ``one_per_env``: an independent network per environment (``f_e = f^{(e)}``).
- ``coda`` (Kirchmeyer et al., ICML 2022): a hypernetwork decodes low-dimensional contexts
  ``ξ_e ∈ R^d`` into the parameters of one network, ``θ_e = θ + W ξ_e`` (θ ∈ R^P the flattened
  parameters, W ∈ R^{P×d}, ξ_e initialised at 0), with the paper's regularisation
  ``λ_W Σ_i ‖W_{i,:}‖₂ + λ_ξ Σ_e ‖ξ_e‖²`` (an ℓ1/ℓ2 group norm over the rows of W and a
  squared ℓ2 norm of the contexts) and gradient clipping at global norm 1.

Every method keeps its parameters as ``{"common": ..., "env": ...}``: ``env`` leaves have a
leading environment axis, and all environments are integrated and differentiated in one
compiled program (`jax.vmap` over that axis); a training step is one Adam step on the sum of
the trajectory losses of every environment.

Training (all methods): the trajectory MSE of every training trajectory of every environment,
integrated from its first observation, with the references' teacher forcing: at each
observation k ≥ 1 the integration restarts from the observed state with probability
``ε_j = decay^(1 + ⌊j / every⌋)`` at step j (one draw per environment and observation, shared
by the trajectories of an environment), so that training moves from one-interval predictions
to whole trajectories. Test trajectories are always integrated from their first state.

Adaptation to new environments (`adapt`): the common part is frozen and only new
per-environment parameters are fitted: contexts ξ (CoDA) or new networks ``g_e`` (LEADS, with
its penalty); One-For-All is not adapted (its single f is evaluated on the new environments).

Systems (`make_problem`, simulated by `physics.simulators`, nothing downloads):

- ``lv``: Lotka–Volterra ``ẋ = αx − βxy``, ``ẏ = δxy − γy``, β = δ = 0.5 and 10 environments
  (α, γ); initial states uniform in [1, 2]², the same draws in every environment (as in the
  reference, which seeds by trajectory index); 20 observations t = 0, 0.5, …, 9.5; one training
  and 32 test trajectories per environment. Network: MLP 2 → 64 → 64 → 64 → 2, swish.
- ``gs``: Gray–Scott on a periodic 32×32 grid, dx = 1, 9-point Laplacian, D_u = 0.2097,
  D_v = 0.105, three environments (F, k); initial state u = 0.95, v = 0.05 with three random
  3×3 squares where u = 0, v = 1; observations t = 0, 40, …, 360 (10 points); one training and
  32 test trajectories per environment. Network: four periodic 3×3 convolutions, swish,
  output × 1e-3.
- CoDA's study (`coda_problems`): Lotka–Volterra with α = γ = 0.5, training environments
  (β, δ) ∈ {0.5, 0.75, 1}² with 4 trajectories each, new environments (β, δ) ∈ {0.625, 1.125}²
  with one trajectory each; 32 test trajectories per environment everywhere.

The learned fields use RK4 with one step per observation interval (the references' torchdiffeq
``rk4`` on the observation grid), ground truth fine-step RK4 (LV dt = 0.005, GS dt = 0.5).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import logging
import pathlib
import time
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.flatten_util import ravel_pytree

from generative.nets import MLP
from physics import simulators as sim
from physics.aphynity import ConvAugmentation

logger = logging.getLogger(__name__)

__all__ = [
    "SYSTEMS",
    "METHODS",
    "PUBLISHED",
    "LV_ENVIRONMENTS",
    "GS_ENVIRONMENTS",
    "CODA_TRAIN_ENVIRONMENTS",
    "CODA_ADAPT_ENVIRONMENTS",
    "EnvProblem",
    "lotka_volterra_problem",
    "gray_scott_problem",
    "make_problem",
    "coda_problems",
    "make_network",
    "MultiEnvModel",
    "teacher_forcing_epsilon",
    "restart_masks",
    "objective",
    "make_experiment",
    "fit",
    "adapt",
    "predict",
    "evaluate",
    "run_benchmark",
]

SYSTEMS = ("lv", "gs")
METHODS = ("leads", "leads_no_min", "one_per_env", "one_for_all", "coda")
# test MSE mean ± std of the LEADS paper (Table 1)
PUBLISHED = {("lv", "leads"): (1.16e-3, 0.99e-3), ("gs", "leads"): (2.08e-3, 2.88e-3)}

LV_ENVIRONMENTS = (  # (α, γ); β = δ = 0.5
    (0.5, 0.5),
    (0.25, 0.5),
    (0.75, 0.5),
    (1.0, 0.5),
    (0.5, 0.25),
    (0.5, 0.75),
    (0.5, 1.0),
    (0.25, 0.25),
    (0.75, 0.75),
    (1.0, 1.0),
)
GS_ENVIRONMENTS = ((0.037, 0.060), (0.030, 0.062), (0.039, 0.058))  # (F, k)
CODA_TRAIN_ENVIRONMENTS = tuple((b, d) for b in (0.5, 0.75, 1.0) for d in (0.5, 0.75, 1.0))
CODA_ADAPT_ENVIRONMENTS = tuple((b, d) for b in (0.625, 1.125) for d in (0.625, 1.125))


def _choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; valid choices: {list(choices)}")


# ----------------------------------------------------------------------------- problems


@dataclasses.dataclass(frozen=True)
class EnvProblem:
    """Trajectories of several environments of one system."""

    system: str  # "lv" or "gs"
    env_params: np.ndarray  # [E, P] physical parameters of each environment
    param_names: tuple[str, ...]  # the P names
    train: np.ndarray  # [E, N, T, *state]
    test: np.ndarray  # [E, M, T, *state]
    ts: np.ndarray  # [T] observation times

    @property
    def num_envs(self) -> int:
        return self.train.shape[0]

    @property
    def state_shape(self) -> tuple[int, ...]:
        return self.train.shape[3:]


def lotka_volterra_problem(
    env_params,
    *,
    num_train: int = 1,
    num_test: int = 32,
    seed: int = 0,
    horizon: float = 10.0,
    dt_obs: float = 0.5,
    sim_dt: float = 0.005,
) -> EnvProblem:
    """env_params: [E, 4] rows (α, β, γ, δ). Initial states uniform in [1, 2]², the same in
    every environment; observations at ``arange(0, horizon, dt_obs)``."""
    p = np.asarray(env_params, np.float64).reshape(-1, 4)
    rng = np.random.default_rng(seed)
    y0 = rng.uniform(1.0, 2.0, (num_train + num_test, 2)).astype(np.float32)
    ts = np.arange(0.0, horizon - 1e-9, dt_obs)

    def one(a, b, g, d):
        return sim.simulate_lotka_volterra(y0, ts, alpha=a, beta=b, gamma=g, delta=d, dt=sim_dt)

    pf = jnp.asarray(p, jnp.float32)
    ys = jax.jit(jax.vmap(one))(pf[:, 0], pf[:, 1], pf[:, 2], pf[:, 3])  # [E, T, N, 2]
    data = np.moveaxis(np.asarray(ys), 1, 2)
    return EnvProblem(
        "lv",
        p,
        ("alpha", "beta", "gamma", "delta"),
        data[:, :num_train],
        data[:, num_train:],
        ts.astype(np.float32),
    )


def gray_scott_problem(
    env_params=GS_ENVIRONMENTS,
    *,
    num_train: int = 1,
    num_test: int = 32,
    seed: int = 0,
    size: int = 32,
    horizon: float = 400.0,
    dt_obs: float = 40.0,
    sim_dt: float = 0.5,
    d_u: float = 0.2097,
    d_v: float = 0.105,
    n_block: int = 3,
) -> EnvProblem:
    """env_params: [E, 2] rows (F, k). Initial states `simulators.gray_scott_blocks`, the same
    in every environment; observations at ``arange(0, horizon, dt_obs)``."""
    p = np.asarray(env_params, np.float64).reshape(-1, 2)
    rng = np.random.default_rng(seed)
    y0 = sim.gray_scott_blocks(rng, num_train + num_test, size, n_block)
    ts = np.arange(0.0, horizon - 1e-9, dt_obs)

    def one(feed, kill):
        return sim.simulate_gray_scott(y0, ts, d_u=d_u, d_v=d_v, feed=feed, kill=kill, dt=sim_dt)

    pf = jnp.asarray(p, jnp.float32)
    ys = jax.jit(jax.vmap(one))(pf[:, 0], pf[:, 1])  # [E, T, N, 2, H, W]
    data = np.moveaxis(np.asarray(ys), 1, 2)
    return EnvProblem(
        "gs", p, ("F", "k"), data[:, :num_train], data[:, num_train:], ts.astype(np.float32)
    )


def make_problem(
    system: str, *, num_train: int = 1, num_test: int = 32, seed: int = 0, size: int = 32
) -> EnvProblem:
    """The LEADS benchmark of ``system`` ('lv': 10 environments, 'gs': 3)."""
    _choice("system", system, SYSTEMS)
    if system == "lv":
        envs = [(a, 0.5, g, 0.5) for a, g in LV_ENVIRONMENTS]
        return lotka_volterra_problem(envs, num_train=num_train, num_test=num_test, seed=seed)
    return gray_scott_problem(num_train=num_train, num_test=num_test, seed=seed, size=size)


def coda_problems(
    *, num_train: int = 4, adapt_num_train: int = 1, num_test: int = 32, seed: int = 0
) -> tuple[EnvProblem, EnvProblem]:
    """CoDA's Lotka–Volterra study: (training environments, new environments)."""
    train = [(0.5, b, 0.5, d) for b, d in CODA_TRAIN_ENVIRONMENTS]
    new = [(0.5, b, 0.5, d) for b, d in CODA_ADAPT_ENVIRONMENTS]
    return (
        lotka_volterra_problem(train, num_train=num_train, num_test=num_test, seed=seed),
        lotka_volterra_problem(new, num_train=adapt_num_train, num_test=num_test, seed=seed + 1),
    )


# ----------------------------------------------------------------------------- models


def make_network(system: str, hidden: int = 64, scale: float | None = None) -> nn.Module:
    """The references' networks: LV an MLP 2 → h → h → h → 2 (swish); GS four periodic 3×3
    convolutions 2 → h → h → h → 2 (swish), output × ``scale`` (default 1e-3).

    The GS convolutions take `generative.layers.Conv`'s im2col form on CPU (the
    `ConvAugmentation` default): inside the vmapped RK4 scan of a training step it is 2.6×
    (h = 16) to 7× (h = 64) faster than the default CPU form
    (`benchmarks/environments_bench.py --gs-forms`); GPU/TPU run flax's convolution either
    way."""
    _choice("system", system, SYSTEMS)
    if system == "lv":
        return MLP((hidden, hidden, hidden, 2), activation="swish")
    return ConvAugmentation(
        hidden, depth=4, activation="swish", scale=1e-3 if scale is None else scale
    )


def _kernels(tree) -> dict[str, jax.Array]:
    """The weight matrices of a network: 'path' -> kernel [..., C_in, C_out]."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {
        "_".join(str(getattr(k, "key", k)) for k in p): x
        for p, x in leaves
        if str(getattr(p[-1], "key", "")) == "kernel"
    }


def _unit(x, axis=-1):
    return x / (jnp.linalg.norm(x, axis=axis, keepdims=True) + 1e-12)


def _spectral_norms(kernels: dict, vectors: dict, iterations: int):
    """Σ over the kernels of one network of their largest singular value (power iteration from
    the persistent ``vectors`` {path: (u [rows], v [C_out])}) -> (Σσ [], new vectors).
    σ = uᵀ W v with u, v held constant, so its gradient is u vᵀ."""
    total, new = 0.0, {}
    for name, w in kernels.items():
        m = w.reshape(-1, w.shape[-1])  # [rows, C_out]
        u, v = vectors[name]
        ms = jax.lax.stop_gradient(m)
        for _ in range(iterations):
            v = _unit(ms.T @ u)
            u = _unit(ms @ v)
        total = total + u @ (m @ v)
        new[name] = (u, v)
    return total, new


@dataclasses.dataclass(frozen=True)
class MultiEnvModel:
    """The per-environment vector fields of one of `METHODS` on ``num_envs`` environments.

    ``net`` maps a batch of states [B, *state] to [B, *state]; ``example`` is one state
    [*state] (initialisation shapes). Parameters: ``{"common": ..., "env": ...}`` (see the
    module docstring); ``env`` leaves are [E, ...].
    """

    method: str
    net: nn.Module
    num_envs: int
    example: tuple[int, ...]  # the state shape
    init_gain: float = 0.05
    context_dim: int = 2

    def __post_init__(self):
        _choice("method", self.method, METHODS)

    @property
    def has_common(self) -> bool:
        return self.method != "one_per_env"

    @property
    def has_env(self) -> bool:
        return self.method != "one_for_all"

    @property
    def penalised(self) -> bool:
        return self.method == "leads"

    @functools.cached_property
    def _layout(self):
        """(unravel: flat [P] -> network variables, kernel mask [P] bool), from shapes only."""
        x = jax.ShapeDtypeStruct((1,) + tuple(self.example), jnp.float32)
        key = jax.ShapeDtypeStruct((2,), jnp.uint32)
        shapes = jax.eval_shape(self.net.init, key, x)
        with jax.ensure_compile_time_eval():
            zeros = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), shapes)
            unravel = ravel_pytree(zeros)[1]
        leaves = jax.tree_util.tree_flatten_with_path(shapes)[0]
        kernel = np.concatenate(
            [np.full(a.size, str(getattr(p[-1], "key", "")) == "kernel") for p, a in leaves]
        )
        return unravel, kernel

    @property
    def num_normals(self) -> int:
        """How many standard normal draws `from_normal` consumes."""
        p = self._layout[1].size
        if self.method == "coda":
            return p + p * self.context_dim
        return p * (int(self.has_common) + self.num_envs * int(self.has_env))

    def _net_from_normal(self, z):
        """The references' 'normal' initialisation: kernels N(0, gain²), biases 0."""
        unravel, kernel = self._layout
        return unravel(jnp.where(jnp.asarray(kernel), self.init_gain * z, 0.0))

    def from_normal(self, z) -> dict:
        """Parameters from ``num_normals`` standard normal draws z (one random draw for the whole
        initialisation keeps its compilation short). CoDA: θ from the 'normal' initialisation,
        W uniform in ±1/√d (torch's nn.Linear(d, P) default, from z through the normal CDF),
        contexts 0."""
        p = self._layout[1].size
        if self.method == "coda":
            theta = ravel_pytree(self._net_from_normal(z[:p]))[0]
            bound = 1.0 / np.sqrt(self.context_dim)
            u = jax.scipy.special.ndtr(z[p:].reshape(p, self.context_dim))
            context = jnp.zeros((self.num_envs, self.context_dim), theta.dtype)
            w = bound * (2.0 * u - 1.0)
            return {"common": {"theta": theta, "W": w}, "env": {"context": context}}
        common, env, i = {}, {}, 0
        if self.has_common:
            common, i = self._net_from_normal(z[:p]), p
        if self.has_env:
            env = jax.vmap(self._net_from_normal)(z[i:].reshape(self.num_envs, p))
        return {"common": common, "env": env}

    def init(self, key) -> dict:
        return self.from_normal(jax.random.normal(key, (self.num_normals,), jnp.float32))

    def env_params(self, common, env):
        """CoDA: the network parameters θ + W ξ_e of one environment."""
        return self._layout[0](common["theta"] + common["W"] @ env["context"])

    def field(self, common, env, x):
        """f_e(x) for one environment (``env``: its slice of the per-environment parameters);
        x [B, *state] -> [B, *state]."""
        if self.method == "coda":
            return self.net.apply(self.env_params(common, env), x)
        out = self.net.apply(common, x) if self.has_common else 0.0
        if self.has_env:
            out = out + self.net.apply(env, x)
        return out

    def residual(self, env, x):
        """g_e(x) (LEADS): x [B, *state] -> [B, *state]."""
        return self.net.apply(env, x)

    def num_vector_normals(self, env) -> int:
        """How many normal draws `vectors_from_normal` consumes (0 without the penalty)."""
        if not self.penalised:
            return 0
        sizes = [int(np.prod(w.shape[1:])) + w.shape[-1] for w in _kernels(env).values()]
        return self.num_envs * sum(sizes)

    def vectors_from_normal(self, z, env) -> dict | None:
        """Power-iteration vectors {kernel: (u [E, rows], v [E, C_out])} of every g_e (LEADS:
        unit vectors from normal draws z), else None."""
        if not self.penalised:
            return None
        z = z.reshape(self.num_envs, -1)
        out, i = {}, 0
        for name, w in _kernels(env).items():
            r, c = int(np.prod(w.shape[1:-1])), w.shape[-1]
            out[name] = (_unit(z[:, i : i + r]), _unit(z[:, i + r : i + r + c]))
            i += r + c
        return out


# ----------------------------------------------------------------------------- integration


def _rollout_one(
    model: MultiEnvModel, common, env, obs, ts, steps_per_obs: int, restart, unroll: bool = False
):
    """One environment: obs [B, T, *state] (only obs[:, 0] without restarts), ts [T],
    restart [T-1] bool or None -> predictions [B, T, *state]. The interval [t_k, t_{k+1}] starts
    from the observation when restart[k] (k ≥ 1), else from the prediction. ``unroll``: on CPU,
    the loop over intervals written out (`lax.scan`'s ``unroll``); other backends keep the loop
    (`lax.platform_dependent`, only the platform's branch is compiled)."""

    def vector_field(t, y, args):
        del t
        return model.field(args[0], args[1], y)

    def interval(y, k):
        if restart is not None:
            y = jnp.where(restart[k], obs[:, k], y)
        y1 = sim.fixed_steps(vector_field, y, ts[k], ts[k + 1], steps_per_obs, (common, env))
        return y1, y1

    def intervals(x0, written_out: bool):
        return jax.lax.scan(interval, x0, jnp.arange(ts.shape[0] - 1), unroll=written_out)[1]

    x0 = obs[:, 0]
    if unroll:  # CPU only: other backends compile the loop
        ys = jax.lax.platform_dependent(
            x0, cpu=lambda x: intervals(x, True), default=lambda x: intervals(x, False)
        )
    else:
        ys = intervals(x0, False)
    return jnp.moveaxis(jnp.concatenate([x0[None], ys], 0), 0, 1)


def predict(model: MultiEnvModel, params, x0, ts, steps_per_obs: int = 1):
    """Trajectories of every environment from their initial states: x0 [E, B, *state],
    ts [T] -> [E, B, T, *state] (RK4, ``steps_per_obs`` steps per observation interval)."""
    obs = x0[:, :, None]
    return jax.vmap(
        lambda env, o: _rollout_one(model, params["common"], env, o, ts, steps_per_obs, None)
    )(params["env"], obs)


_predict = jax.jit(predict, static_argnums=(0, 4))


def teacher_forcing_epsilon(step, decay: float, every: int):
    """ε_j = decay^(1 + ⌊j / every⌋) (0 when decay = 0: no restarts)."""
    if decay <= 0:
        return jnp.zeros((), jnp.float32)
    return jnp.asarray(decay, jnp.float32) ** (1 + step // every).astype(jnp.float32)


def restart_masks(key, eps, num_envs: int, num_obs: int):
    """[E, T-1] bool: restart at observation k with probability ε (k = 0 always)."""
    m = jax.random.bernoulli(key, eps, (num_envs, num_obs - 1))
    return m.at[:, 0].set(True)


def objective(
    model: MultiEnvModel, params, vectors, obs, ts, key, eps, hp
) -> tuple[jax.Array, tuple[dict, dict | None]]:
    """Training loss of every environment at once. obs [E, N, T, *state]; ``hp`` the method's
    settings (steps_per_obs, lambda_inv, factor_lip, power_iterations, lambda_w,
    lambda_context). Returns (loss, (metrics, new power-iteration vectors))."""
    restarts = restart_masks(key, eps, obs.shape[0], obs.shape[2])
    steps_per_obs = int(hp["steps_per_obs"])
    # Fields on grids (convolutions), one RK4 step per interval: on CPU the training step is
    # about 11 % faster with the intervals written out (Gray–Scott, widths 16 and 64); the MLP
    # fields of Lotka–Volterra are about 12 % slower that way, and keep the loop.
    unroll = len(model.example) > 1 and steps_per_obs == 1
    pred = jax.vmap(
        lambda env, o, r: _rollout_one(
            model, params["common"], env, o, ts, steps_per_obs, r, unroll
        )
    )(params["env"], obs, restarts)
    l_traj = jnp.mean((pred - obs) ** 2)
    loss, metrics, new_vectors = l_traj, {"l_traj": l_traj, "epsilon": eps}, vectors
    if model.penalised and hp["lambda_inv"] > 0:
        state_nd = len(model.example)
        states = obs.reshape(obs.shape[:1] + (-1,) + obs.shape[3:])  # [E, N·T, *state]
        ch = -state_nd  # the channel axis of a state

        def norm_term(env, x):
            g = model.residual(env, x)
            ratio = jnp.sum(g**2, ch) / (jnp.sqrt(jnp.sum(x**2, ch)) + 1e-5) ** 2
            return jnp.mean(ratio)

        norm = jnp.sum(jax.vmap(norm_term)(params["env"], states))
        sigmas, new_vectors = jax.vmap(
            lambda env, vec: _spectral_norms(_kernels(env), vec, int(hp["power_iterations"]))
        )(params["env"], vectors)
        lip = jnp.sum(sigmas)
        loss = loss + hp["lambda_inv"] * (norm + hp["factor_lip"] * lip)
        metrics.update(g_norm=norm, g_lip=lip)
    if model.method == "coda":
        w, context = params["common"]["W"], params["env"]["context"]
        reg_w = jnp.sum(jnp.linalg.norm(w, axis=1))
        reg_c = jnp.sum(context**2)
        loss = loss + hp["lambda_w"] * reg_w + hp["lambda_context"] * reg_c
        metrics.update(reg_w=reg_w, reg_context=reg_c)
    return loss, (metrics, new_vectors)


# ----------------------------------------------------------------------------- training


def _hp(sub: ml_collections.ConfigDict) -> dict:
    keys = ("steps_per_obs", "lambda_inv", "factor_lip", "power_iterations")
    out = {k: sub.get(k, 0) for k in keys}
    out.update(lambda_w=sub.get("lambda_w", 0.0), lambda_context=sub.get("lambda_context", 0.0))
    out["steps_per_obs"] = max(1, int(out["steps_per_obs"]))
    return out


def make_experiment(
    model: MultiEnvModel,
    problem: EnvProblem,
    config: ml_collections.ConfigDict,
    *,
    frozen_common=None,
):
    """One training (or, with ``frozen_common``, adaptation) run as an `Experiment` of the
    shared loop. ``config``: the loop's keys (num_steps, optimizer, ...) and ``env`` with the
    method's settings (see `objective`) and ``tf_decay`` / ``tf_every`` (teacher forcing).

    The state's params are the trained parameters: everything, or with ``frozen_common`` only
    ``{"env": ...}`` (the common part is a constant of the step). Its ``model_state`` holds the
    power-iteration vectors of LEADS (None otherwise). Each step uses every training trajectory
    of every environment (the step draws only its teacher-forcing restarts from its key)."""
    from generative.core.train import Experiment, TrainState, loss_step, make_optimizer

    sub = config.env
    hp = _hp(sub)
    decay, every = float(sub.tf_decay), max(1, int(sub.tf_every))
    if frozen_common is not None and model.method == "one_for_all":
        raise ValueError("one_for_all has no per-environment parameters to adapt")
    tx = make_optimizer(config.optimizer, int(config.num_steps))
    obs = jnp.asarray(problem.train)
    test = jnp.asarray(problem.test)
    ts = jnp.asarray(problem.ts)

    def full(params):
        if frozen_common is None:
            return params
        return {"common": frozen_common, "env": params["env"]}

    env_shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0))["env"]
    n_params, n_vectors = model.num_normals, model.num_vector_normals(env_shapes)

    def init(key):  # one random draw
        z = jax.random.normal(key, (n_params + n_vectors,), jnp.float32)
        params = model.from_normal(z[:n_params])
        if frozen_common is not None:
            params = {"env": params["env"]}
        vectors = model.vectors_from_normal(z[n_params:], params["env"])
        return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), vectors)

    @jax.jit
    def step(state, batch, key):
        del batch  # every training trajectory, every step
        eps = teacher_forcing_epsilon(state.step, decay, every)

        def loss_fn(params, vectors, batch, key):
            return objective(model, full(params), vectors, obs, ts, key, eps, hp)

        return loss_step(loss_fn, tx)(state, None, key)

    def evaluate_fn(step, state):  # the program of `evaluate`, compiled once
        del step
        pred = _predict(model, full(state.params), test[:, :, 0], ts, hp["steps_per_obs"])
        return {"test_mse": float(np.mean((np.asarray(pred) - np.asarray(test)) ** 2))}

    return Experiment(init=init, step=step, evaluate=evaluate_fn), full


def _run_config(config, sub, num_steps: int, lr: float, grad_clip: float, method: str):
    from generative.core.config import base_config

    c = base_config()
    c.seed = int(config.seed)
    c.num_steps = int(num_steps)
    for key in ("log_every", "checkpoint_every", "keep_checkpoints", "progress"):
        c[key] = config[key]
    c.optimizer.lr = float(lr)
    c.optimizer.grad_clip = float(grad_clip)
    # the step count is the loop's num_steps (which may grow on resume), not a model setting
    c.env = ml_collections.ConfigDict({k: v for k, v in sub.to_dict().items() if k != "steps"})
    c.env.method = method
    c.lock()
    return c


def fit(model: MultiEnvModel, problem: EnvProblem, config, workdir, *, frozen_common=None):
    """Trains with the shared loop (`generative.core.train.run`: resume, checkpoints,
    metrics.csv, NaN stop) in ``workdir``; returns the full parameters."""
    from generative.core import sharding
    from generative.core.train import run

    experiment, full = make_experiment(model, problem, config, frozen_common=frozen_common)
    state = run(experiment, config, workdir, mesh=sharding.data_mesh(jax.devices()[:1]))
    return full(state.params)


def adapt(
    model: MultiEnvModel, trained_params, new_problem: EnvProblem, config, workdir
) -> tuple[MultiEnvModel, dict]:
    """Fits new per-environment parameters on ``new_problem`` with the common part of
    ``trained_params`` frozen (contexts for CoDA, networks g_e for LEADS); One-For-All is
    returned unchanged. Returns (model on the new environments, its parameters)."""
    new_model = dataclasses.replace(model, num_envs=new_problem.num_envs)
    if not model.has_env:
        return new_model, trained_params
    if not model.has_common:
        raise ValueError("one_per_env has no common part to transfer to new environments")
    params = fit(new_model, new_problem, config, workdir, frozen_common=trained_params["common"])
    return new_model, params


def evaluate(model: MultiEnvModel, params, problem: EnvProblem, steps_per_obs: int = 1) -> dict:
    """Test scores of whole trajectories integrated from the first state.

    ``mse`` / ``mse_std``: mean and standard deviation over the test-trajectory indices of the
    MSE averaged over environments (the LEADS reference's figure); ``mse_env``: per
    environment; ``mape``: mean |x̂ − x| / |x| in %."""
    test = jnp.asarray(problem.test)
    pred = _predict(model, params, test[:, :, 0], jnp.asarray(problem.ts), steps_per_obs)
    pred, test = np.asarray(pred, np.float64), np.asarray(test, np.float64)
    err = (pred - test) ** 2
    per = err.reshape(err.shape[:2] + (-1,)).mean(-1)  # [E, M]
    by_index = per.mean(0)  # [M]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.abs(pred - test) / np.abs(test)
    return {
        "mse": float(by_index.mean()),
        "mse_std": float(by_index.std(ddof=1)) if by_index.size > 1 else 0.0,
        "mse_env": [float(x) for x in per.mean(1)],
        "mape": float(100 * np.nanmean(np.where(np.isfinite(rel), rel, np.nan))),
        "finite": bool(np.isfinite(pred).all()),
        "pred": pred,
    }


# ----------------------------------------------------------------------------- figures


def _save_lv_portraits(path, problem: EnvProblem, preds: dict[str, np.ndarray], n_traj=2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = problem.num_envs
    cols = min(5, e)
    rows = -(-e // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.8 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i in range(rows * cols):
        ax = axes[i // cols][i % cols]
        if i >= e:
            ax.axis("off")
            continue
        for j in range(min(n_traj, problem.test.shape[1])):
            t = problem.test[i, j]
            ax.plot(t[:, 0], t[:, 1], "k-", lw=1.5, label="true" if j == 0 else None)
            for c, (name, p) in zip(colors, preds.items()):
                ax.plot(
                    p[i, j, :, 0],
                    p[i, j, :, 1],
                    "--",
                    color=c,
                    lw=1,
                    label=name if j == 0 else None,
                )
        names = problem.param_names
        ax.set_title(
            ", ".join(f"{n[0]}={v:g}" for n, v in zip(names, problem.env_params[i])), fontsize=8
        )
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.supxlabel("prey x")
    fig.supylabel("predator y")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _save_gs_fields(path, problem: EnvProblem, preds: dict[str, np.ndarray]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = problem.num_envs
    rows = 1 + len(preds)
    fig, axes = plt.subplots(rows, e, figsize=(2.4 * e, 2.4 * rows), squeeze=False)
    for i in range(e):
        images = [("true", problem.test[i, 0, -1, 1])]
        images += [(n, p[i, 0, -1, 1]) for n, p in preds.items()]
        for r, (name, img) in enumerate(images):
            ax = axes[r][i]
            ax.imshow(img, vmin=0, vmax=0.6, cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(name, fontsize=8)
        f, k = problem.env_params[i]
        axes[0][i].set_title(f"F={f:g}, k={k:g}: v(t={problem.ts[-1]:g})", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ----------------------------------------------------------------------------- the command


def _names(text: str, valid: Sequence[str], what: str) -> list[str]:
    out = [x.strip() for x in text.split(",") if x.strip()]
    for x in out:
        _choice(what, x, valid)
    return out


def _build(system: str, method: str, num_envs: int, sub, state_shape, *, coda=None):
    scale = float(sub.scale) if "scale" in sub else None
    net = make_network(system, int(sub.hidden), scale)
    if method == "coda":
        return MultiEnvModel(
            method, net, num_envs, state_shape, float(coda.init_gain), int(coda.context_dim)
        )
    return MultiEnvModel(method, net, num_envs, state_shape, float(sub.init_gain))


def _fmt(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return "diverged"
    exp = int(np.floor(np.log10(abs(mean)))) if mean else 0
    return f"{mean / 10**exp:.3g} ± {std / 10**exp:.3g}e{exp}"


def _write_csv(path, rows):
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)


def run_benchmark(config, workdir) -> dict:
    """``physics environments``: every (system, method) pair of ``environments.systems`` ×
    ``environments.methods`` trained in ``workdir/<system>/<method>``, then CoDA's study
    (``environments.coda_methods``; empty: skipped) in ``workdir/coda/<method>/{train,adapt}``.
    Each run resumes or reuses its folder. Writes environments.csv / environments.md (test
    MSE mean ± std beside the published figures), coda.csv, and the figures
    ``<system>_trajectories.png`` and ``coda_adaptation.png``."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    e = config.environments
    systems = _names(e.systems, SYSTEMS, "system")
    methods = _names(e.methods, [m for m in METHODS if m != "coda"], "method")
    coda_methods = _names(e.coda_methods, ("coda", "leads", "one_for_all"), "CoDA-study method")
    rows = []
    for system in systems:
        sub = e[system]
        kwargs = {"size": int(sub.size)} if "size" in sub else {}
        problem = make_problem(
            system,
            num_train=int(sub.num_train),
            num_test=int(e.num_test),
            seed=config.seed,
            **kwargs,
        )
        preds = {}
        for method in methods:
            t0 = time.perf_counter()
            model = _build(system, method, problem.num_envs, sub, problem.state_shape)
            rc = _run_config(config, sub, sub.steps, sub.lr, 0.0, method)
            params = fit(model, problem, rc, workdir / system / method)
            res = evaluate(model, params, problem, int(sub.steps_per_obs))
            preds[method] = res.pop("pred")
            pub = PUBLISHED.get((system, method), (float("nan"), float("nan")))
            row = {
                "system": system,
                "method": method,
                "steps": int(sub.steps),
                "test_mse": res["mse"],
                "test_mse_std": res["mse_std"],
                "test_mape_pct": res["mape"],
                "published_mse": pub[0],
                "published_mse_std": pub[1],
                "seconds": time.perf_counter() - t0,
                **{f"mse_env{i}": v for i, v in enumerate(res["mse_env"])},
            }
            (workdir / system / method / "results.json").write_text(
                json.dumps(row, indent=2) + "\n"
            )
            logger.info("%s", json.dumps({k: row[k] for k in list(row)[:7]}))
            rows.append(row)
        if preds:
            if system == "lv":
                _save_lv_portraits(workdir / "lv_trajectories.png", problem, preds)
            else:
                _save_gs_fields(workdir / "gs_trajectories.png", problem, preds)
    coda_rows = _run_coda(config, workdir, coda_methods) if coda_methods else []
    if rows:
        _write_csv(workdir / "environments.csv", rows)
    if coda_rows:
        _write_csv(workdir / "coda.csv", coda_rows)
    lines = _markdown(rows, systems, methods, coda_rows)
    (workdir / "environments.md").write_text("\n".join(lines) + "\n")
    for line in lines:
        logger.info("%s", line)
    return {"rows": rows, "coda": coda_rows}


def _markdown(rows, systems, methods, coda_rows) -> list[str]:
    lines = []
    if rows:
        names = {"lv": "Lotka–Volterra", "gs": "Gray–Scott"}
        head = "| method | " + " | ".join(
            f"{names[s]} test MSE | {names[s]} published" for s in systems
        )
        lines += [head + " |", "| --- |" + " --- | --- |" * len(systems)]
        by = {(r["system"], r["method"]): r for r in rows}
        for m in methods:
            cells = []
            for s in systems:
                r = by[(s, m)]
                pub = PUBLISHED.get((s, m))
                cells.append(_fmt(r["test_mse"], r["test_mse_std"]))
                cells.append(_fmt(*pub) if pub else "—")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if coda_rows:
        if lines:
            lines.append("")
        lines += [
            "| method (CoDA study, LV) | in-domain MSE | in-domain MAPE % | "
            "adaptation MSE | adaptation MAPE % | adaptation |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for r in coda_rows:
            lines.append(
                f"| {r['method']} | {_fmt(r['in_mse'], r['in_mse_std'])} | {r['in_mape_pct']:.3g} | "
                f"{_fmt(r['adapt_mse'], r['adapt_mse_std'])} | {r['adapt_mape_pct']:.3g} | "
                f"{r['adaptation']} |"
            )
    return lines


def _run_coda(config, workdir: pathlib.Path, methods: list[str]) -> list[dict]:
    e = config.environments
    c, lv = e.coda, e.lv
    train_problem, new_problem = coda_problems(
        num_train=int(c.num_train),
        adapt_num_train=int(c.adapt_num_train),
        num_test=int(e.num_test),
        seed=config.seed,
    )
    rows, preds = [], {}
    for method in methods:
        t0 = time.perf_counter()
        sub = ml_collections.ConfigDict(lv.to_dict())
        sub.update(
            steps=int(c.steps),
            tf_decay=float(c.tf_decay),
            tf_every=int(c.tf_every),
            lambda_w=float(c.lambda_w),
            lambda_context=float(c.lambda_context),
        )
        clip = float(c.grad_clip) if method == "coda" else 0.0
        model = _build("lv", method, train_problem.num_envs, sub, train_problem.state_shape, coda=c)
        run_dir = workdir / "coda" / method
        rc = _run_config(config, sub, c.steps, c.lr, clip, method)
        params = fit(model, train_problem, rc, run_dir / "train")
        res_in = evaluate(model, params, train_problem)
        res_in.pop("pred")
        sub.update(tf_decay=float(c.adapt_tf_decay), tf_every=int(c.adapt_tf_every))
        rc = _run_config(config, sub, c.adapt_steps, c.adapt_lr, 0.0, method)
        new_model, new_params = adapt(model, params, new_problem, rc, run_dir / "adapt")
        res_new = evaluate(new_model, new_params, new_problem)
        preds[method] = res_new.pop("pred")
        what = {"coda": "contexts ξ", "leads": "new g_e", "one_for_all": "none"}[method]
        row = {
            "method": method,
            "steps": int(c.steps),
            "adapt_steps": int(c.adapt_steps) if model.has_env else 0,
            "adaptation": what,
            "in_mse": res_in["mse"],
            "in_mse_std": res_in["mse_std"],
            "in_mape_pct": res_in["mape"],
            "adapt_mse": res_new["mse"],
            "adapt_mse_std": res_new["mse_std"],
            "adapt_mape_pct": res_new["mape"],
            "seconds": time.perf_counter() - t0,
        }
        if method == "coda":
            row["contexts"] = json.dumps(np.asarray(params["env"]["context"]).round(4).tolist())
            row["adapted_contexts"] = json.dumps(
                np.asarray(new_params["env"]["context"]).round(4).tolist()
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "results.json").write_text(json.dumps(row, indent=2) + "\n")
        logger.info("%s", json.dumps({k: row[k] for k in list(row)[:10]}))
        rows.append(row)
    if preds:
        _save_lv_portraits(workdir / "coda_adaptation.png", new_problem, preds)
    return rows
