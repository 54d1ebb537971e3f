"""Physics-informed neural networks (Raissi, Perdikaris & Karniadakis 2019) for viscous Burgers.

Problem: ``u_t + u u_x − ν u_xx = 0`` on ``x ∈ [−1, 1]``, ``t ∈ [0, t_max]``, with
``u(0, x) = −sin(πx)`` and ``u(t, ±1) = 0`` (``ν = 0.01/π``, ``t_max = 0.99`` in the paper).
A network ``u_θ(t, x)`` (inputs scaled to ``[−1, 1]²``; ``depth`` tanh layers of ``width`` and a
linear output: `generative.nets.MLP`, Glorot-normal weights, zero biases) minimises

    L(θ) = mean_i (u_θ(t_i, x_i) − u_i)²  +  mean_j r_θ(t_j, x_j)²,
    r_θ = ∂_t u_θ + u_θ ∂_x u_θ − ν ∂_xx u_θ,

over ``num_boundary`` initial/boundary points ``(t_i, x_i, u_i)`` (drawn without replacement
from the 256 initial points ``x = linspace(−1, 1, 256)`` and the 2 × 100 boundary points at
``t = linspace(0, t_max, 100)``, as in the paper) and ``num_collocation`` Latin-hypercube
points ``(t_j, x_j)`` to which the initial/boundary points are appended (as in the paper).

Derivatives of the network at N points (the network acts point by point, so one directional
derivative of the batch function with an all-ones tangent gives every point's derivative):
- ``"forward"``: ``u_t`` by one ``jax.jvp`` in t; ``u_x, u_xx`` by a ``jax.jvp`` of a ``jax.jvp``
  in x;
- ``"taylor"``: Taylor-mode ``jax.experimental.jet``: ``u, u_x, u_xx`` by one second-order jet in
  x and ``u_t`` by a first-order jet in t.
Both give the same numbers (tests/physics/test_pinn.py); ``forward`` is the default because it
was the faster one for this network (figures in docs/pinn.md).

Training: Adam (``num_steps`` full-batch steps with the ``optimizer`` group) in
``WORKDIR/adam``, then L-BFGS (``optax.lbfgs`` with its zoom line search, ``pinn.lbfgs_steps``
iterations) in ``WORKDIR/lbfgs``; both phases run through the shared loop
(`generative.core.train.run`: checkpoints, resume, metrics.csv, stop on a non-finite value), the
L-BFGS phase starting from the Adam phase's final parameters. The error is the relative L2
error ``‖u_θ − u‖₂ / ‖u‖₂`` on the 256 × 100 grid of the exact solution
(`physics.burgers.cole_hopf`). ``pinn.dtype = "float64"`` runs everything in double precision.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import pathlib
import time
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from generative import nets
from physics import burgers

__all__ = [
    "DERIVATIVES",
    "DTYPES",
    "Problem",
    "make_net",
    "init_params",
    "network_fn",
    "derivatives",
    "derivatives_forward",
    "derivatives_taylor",
    "residual",
    "pinn_loss",
    "latin_hypercube",
    "make_problem",
    "relative_l2",
    "make_experiment",
    "make_lbfgs_experiment",
    "run_pinn",
]

logger = logging.getLogger(__name__)

DERIVATIVES = ("forward", "taylor")
LINESEARCH_STEPS = 20  # evaluations of one L-BFGS line search at most (optax's default)
DTYPES = ("float32", "float64")

# (t, x) -> u for arrays t, x of one shape [N]; must act point by point.
PointFn = Callable[[jax.Array, jax.Array], jax.Array]


def _choice(name: str, value, valid) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(valid)}")


# ----------------------------------------------------------------------------- network


def make_net(width: int = 20, depth: int = 8) -> nets.MLP:
    """``depth`` tanh layers of ``width`` then a linear output: [N, 2] -> [N, 1]."""
    if width < 1 or depth < 1:
        raise ValueError(f"width and depth must be >= 1, got width={width}, depth={depth}")
    return nets.MLP(
        (width,) * depth + (1,), activation="tanh", kernel_init=nn.initializers.glorot_normal()
    )


def network_fn(model: nn.Module, params, t_max: float) -> PointFn:
    """``u_θ(t, x)`` for t, x: [N] -> [N], inputs mapped from ``[0, t_max] × [−1, 1]`` to
    ``[−1, 1]²``."""

    def u(t, x):
        inputs = jnp.stack([2.0 * t / t_max - 1.0, x], axis=-1)
        return model.apply(params, inputs)[..., 0]

    return u


# ----------------------------------------------------------------------------- derivatives


def derivatives_forward(u_fn: PointFn, t, x):
    """(u, u_t, u_x, u_xx), each [N], by forward-mode autodiff (nested ``jax.jvp``)."""
    one = jnp.ones_like(x)
    _, u_t = jax.jvp(lambda s: u_fn(s, x), (t,), (one,))

    def first(y):
        return jax.jvp(lambda s: u_fn(t, s), (y,), (one,))

    (u, u_x), (_, u_xx) = jax.jvp(first, (x,), (one,))
    return u, u_t, u_x, u_xx


def derivatives_taylor(u_fn: PointFn, t, x):
    """(u, u_t, u_x, u_xx), each [N], by Taylor-mode autodiff (``jax.experimental.jet``)."""
    from jax.experimental import jet

    one, zero = jnp.ones_like(x), jnp.zeros_like(x)
    _, (u_t,) = jet.jet(lambda s: u_fn(s, x), (t,), ((one,),))
    u, (u_x, u_xx) = jet.jet(lambda s: u_fn(t, s), (x,), ((one, zero),))
    return u, u_t, u_x, u_xx


def derivatives(u_fn: PointFn, t, x, mode: str = "forward"):
    """(u, u_t, u_x, u_xx) with ``mode`` in DERIVATIVES."""
    _choice("derivative mode", mode, DERIVATIVES)
    fn = derivatives_forward if mode == "forward" else derivatives_taylor
    return fn(u_fn, t, x)


def residual(u_fn: PointFn, t, x, nu: float, mode: str = "forward"):
    """Burgers residual ``u_t + u u_x − ν u_xx`` of ``u_fn`` at t, x: [N] -> [N]."""
    u, u_t, u_x, u_xx = derivatives(u_fn, t, x, mode)
    return u_t + u * u_x - nu * u_xx


def pinn_loss(u_fn: PointFn, problem: Problem, mode: str = "forward"):
    """(loss, {"loss_u", "loss_f"}): data misfit on the initial/boundary points plus the mean
    squared residual on the collocation points."""
    loss_u = jnp.mean((u_fn(problem.t_b, problem.x_b) - problem.u_b) ** 2)
    loss_f = jnp.mean(residual(u_fn, problem.t_f, problem.x_f, problem.nu, mode) ** 2)
    return loss_u + loss_f, {"loss_u": loss_u, "loss_f": loss_f}


# ----------------------------------------------------------------------------- data


def latin_hypercube(key, n: int, lower, upper) -> jax.Array:
    """n points [n, d] in the box [lower, upper] (each [d]): in every dimension, each of the n
    equal slices holds exactly one point (uniform inside its slice)."""
    lower, upper = jnp.asarray(lower), jnp.asarray(upper)
    d = lower.shape[0]
    k_perm, k_u = jax.random.split(key)
    slices = jnp.argsort(jax.random.uniform(k_perm, (n, d)), axis=0)  # a permutation per column
    u = (slices + jax.random.uniform(k_u, (n, d), dtype=lower.dtype)) / n
    return lower[None, :] + u * (upper - lower)[None, :]


_lhs = jax.jit(latin_hypercube, static_argnums=1)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _choose(key, n: int, k: int):
    return jax.random.choice(key, n, (k,), replace=False)


@dataclasses.dataclass(frozen=True)
class Problem:
    """Training points and the exact solution on the evaluation grid.

    t_b, x_b, u_b: [num_boundary] initial/boundary points and values; t_f, x_f:
    [num_collocation + num_boundary] residual points; grid_t [Nt], grid_x [Nx], grid_u
    [Nt, Nx] the exact solution (float64 numpy); nu, t_max floats.
    """

    t_b: jax.Array
    x_b: jax.Array
    u_b: jax.Array
    t_f: jax.Array
    x_f: jax.Array
    grid_t: np.ndarray
    grid_x: np.ndarray
    grid_u: np.ndarray
    nu: float
    t_max: float


@functools.lru_cache(maxsize=4)
def _reference(nu: float, t_max: float, num_x: int, num_t: int):
    """(grid_t [num_t], grid_x [num_x], u [num_t, num_x]) of the exact solution (read-only)."""
    grid_x = np.linspace(-1.0, 1.0, num_x)
    grid_t = np.linspace(0.0, t_max, num_t)
    grid_u = burgers.cole_hopf(grid_x[None, :], grid_t[:, None], nu, burgers.sine_potential)
    for a in (grid_t, grid_x, grid_u):
        a.flags.writeable = False
    return grid_t, grid_x, grid_u


def make_problem(
    key,
    *,
    num_boundary: int = 100,
    num_collocation: int = 10000,
    nu: float = burgers.RAISSI_NU,
    t_max: float = 0.99,
    num_x: int = 256,
    num_t: int = 100,
    dtype=jnp.float32,
) -> Problem:
    """The Raissi et al. (2019) Burgers problem (see the module docstring)."""
    if not (isinstance(num_boundary, int) and 1 <= num_boundary <= num_x + 2 * num_t):
        raise ValueError(
            f"num_boundary must be an integer in [1, {num_x + 2 * num_t}] (the initial and "
            f"boundary grid points), got {num_boundary!r}"
        )
    if not (isinstance(num_collocation, int) and num_collocation >= 1):
        raise ValueError(f"num_collocation must be a positive integer, got {num_collocation!r}")
    if not nu > 0 or not t_max > 0:
        raise ValueError(f"nu and t_max must be > 0, got nu={nu}, t_max={t_max}")
    grid_t, grid_x, grid_u = _reference(float(nu), float(t_max), int(num_x), int(num_t))
    # candidates: (t = 0, x_k, −sin πx_k), (t_k, −1, 0), (t_k, 1, 0)
    cand_t = np.concatenate([np.zeros(num_x), grid_t, grid_t])
    cand_x = np.concatenate([grid_x, -np.ones(num_t), np.ones(num_t)])
    cand_u = np.concatenate([-np.sin(np.pi * grid_x), np.zeros(2 * num_t)])
    cand_u[np.abs(cand_u) < 1e-15] = 0.0
    k_b, k_f = jax.random.split(key)
    idx = np.asarray(_choose(k_b, cand_t.shape[0], num_boundary))
    f = _lhs(k_f, num_collocation, jnp.array([0.0, -1.0]), jnp.array([t_max, 1.0]))
    f = np.asarray(f, np.float64)
    t_f = np.concatenate([f[:, 0], cand_t[idx]])
    x_f = np.concatenate([f[:, 1], cand_x[idx]])

    def cast(a):
        return jnp.asarray(a, dtype)

    return Problem(
        cast(cand_t[idx]),
        cast(cand_x[idx]),
        cast(cand_u[idx]),
        cast(t_f),
        cast(x_f),
        grid_t,
        grid_x,
        grid_u,
        float(nu),
        float(t_max),
    )


def predict_grid(u_fn: PointFn, problem: Problem, dtype=jnp.float32) -> np.ndarray:
    """The network on the evaluation grid: [Nt, Nx] float64 numpy."""
    tt, xx = np.meshgrid(problem.grid_t, problem.grid_x, indexing="ij")
    out = u_fn(jnp.asarray(tt.ravel(), dtype), jnp.asarray(xx.ravel(), dtype))
    return np.asarray(out, np.float64).reshape(tt.shape)


def relative_l2(pred, exact) -> float:
    """``‖pred − exact‖₂ / ‖exact‖₂`` over all entries."""
    pred, exact = np.asarray(pred, np.float64), np.asarray(exact, np.float64)
    return float(np.linalg.norm(pred - exact) / np.linalg.norm(exact))


# ----------------------------------------------------------------------------- training


def _dtype(config) -> jnp.dtype:
    _choice("pinn.dtype", config.pinn.dtype, DTYPES)
    return jnp.float64 if config.pinn.dtype == "float64" else jnp.float32


def _problem_from_config(config) -> Problem:
    p = config.pinn
    return make_problem(
        jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), 1),
        num_boundary=int(p.num_boundary),
        num_collocation=int(p.num_collocation),
        nu=float(p.nu),
        t_max=float(p.t_max),
        dtype=_dtype(config),
    )


def init_params(model, key, dtype):
    params = model.init(key, jnp.zeros((1, 2), dtype))
    return jax.tree_util.tree_map(lambda a: a.astype(dtype), params)


def _evaluator(model, problem: Problem, config, dtype):
    """(step, state) -> {"rel_l2", "loss_u", "loss_f"} at logging steps."""
    mode = config.pinn.derivatives

    @jax.jit
    def losses(params):
        return pinn_loss(network_fn(model, params, problem.t_max), problem, mode)[1]

    @jax.jit
    def grid(params):
        tt, xx = np.meshgrid(problem.grid_t, problem.grid_x, indexing="ij")
        u_fn = network_fn(model, params, problem.t_max)
        return u_fn(jnp.asarray(tt.ravel(), dtype), jnp.asarray(xx.ravel(), dtype))

    def evaluate(step, state):
        pred = np.asarray(grid(state.params), np.float64).reshape(problem.grid_u.shape)
        aux = jax.device_get(losses(state.params))
        return {
            "rel_l2": relative_l2(pred, problem.grid_u),
            **{k: float(v) for k, v in aux.items()},
        }

    return evaluate


def make_experiment(
    config: ml_collections.ConfigDict, problem: Problem | None = None, evaluate=None
):
    """The Adam phase as an `Experiment` of the shared loop: (experiment, model, problem).
    ``evaluate`` (default: relative L2 and both loss terms at logging steps) may be shared."""
    from generative.core.train import Experiment, TrainState, loss_step, make_optimizer

    dtype = _dtype(config)
    _choice("pinn.derivatives", config.pinn.derivatives, DERIVATIVES)
    problem = _problem_from_config(config) if problem is None else problem
    model = make_net(int(config.pinn.width), int(config.pinn.depth))
    tx = make_optimizer(config.optimizer, int(config.num_steps))
    mode = config.pinn.derivatives

    def init(key):
        params = init_params(model, key, dtype)
        return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), None)

    def loss_fn(params, model_state, batch, key):
        loss, aux = pinn_loss(network_fn(model, params, problem.t_max), problem, mode)
        return loss, (aux, model_state)

    experiment = Experiment(
        init=init,
        step=loss_step(loss_fn, tx),
        evaluate=evaluate or _evaluator(model, problem, config, dtype),
    )
    return experiment, model, problem


def make_lbfgs_experiment(
    config: ml_collections.ConfigDict, start_params, problem: Problem | None = None, evaluate=None
):
    """The L-BFGS phase (``optax.lbfgs``, zoom line search of at most ``LINESEARCH_STEPS``
    evaluations, memory ``pinn.lbfgs_memory``) from ``start_params`` as an `Experiment`:
    (experiment, model, problem). One step is one L-BFGS iteration. Once
    ``pinn.lbfgs_patience`` consecutive line searches have needed at least half of their
    evaluations (a healthy iteration needs one or two; many mean that the loss differences are
    at the rounding level of its dtype), the iterations stop: the remaining steps leave the
    state unchanged (``model_state = {"failures", "done"}``)."""
    from generative.core.train import Experiment, TrainState

    dtype = _dtype(config)
    problem = _problem_from_config(config) if problem is None else problem
    model = make_net(int(config.pinn.width), int(config.pinn.depth))
    mode = config.pinn.derivatives
    patience = int(config.pinn.lbfgs_patience)
    tx = optax.lbfgs(
        memory_size=int(config.pinn.lbfgs_memory),
        linesearch=optax.scale_by_zoom_linesearch(
            max_linesearch_steps=LINESEARCH_STEPS, initial_guess_strategy="one"
        ),
    )
    start_params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), start_params)

    def loss(params):
        return pinn_loss(network_fn(model, params, problem.t_max), problem, mode)[0]

    value_and_grad = optax.value_and_grad_from_state(loss)

    def init(key):
        # strongly typed leaves (the line search starts some weakly typed): the chunk of steps
        # then compiles once, not again when its outputs come back as inputs
        opt_state = jax.tree_util.tree_map(lambda a: jnp.asarray(a, a.dtype), tx.init(start_params))
        stop = {"failures": jnp.zeros((), jnp.int32), "done": jnp.zeros((), bool)}
        return TrainState(jnp.zeros((), jnp.int32), start_params, opt_state, stop)

    def iterate(state):
        value, grad = value_and_grad(state.params, state=state.opt_state)
        updates, opt_state = tx.update(
            grad, state.opt_state, state.params, value=value, grad=grad, value_fn=loss
        )
        params = optax.apply_updates(state.params, updates)
        evals = optax.tree.get(opt_state, "num_linesearch_steps")
        hard = evals >= LINESEARCH_STEPS // 2
        failures = jnp.where(hard, state.model_state["failures"] + 1, 0)
        stop = {"failures": failures, "done": failures >= patience}
        metrics = {
            "loss": value,
            "grad_norm": optax.global_norm(grad),
            "linesearch_steps": evals.astype(value.dtype),
        }
        return TrainState(state.step + 1, params, opt_state, stop), metrics

    def idle(state):
        value = optax.tree.get(state.opt_state, "value")
        metrics = {
            "loss": value,
            "grad_norm": optax.global_norm(optax.tree.get(state.opt_state, "grad")),
            "linesearch_steps": jnp.zeros((), value.dtype),
        }
        return state._replace(step=state.step + 1), metrics

    def step(state, batch, key):
        return jax.lax.cond(state.model_state["done"], idle, iterate, state)

    experiment = Experiment(
        init=init, step=step, evaluate=evaluate or _evaluator(model, problem, config, dtype)
    )
    return experiment, model, problem


def _phase_config(config, phase: str):
    """The config of one phase's run: ``num_steps`` is that phase's step count; the L-BFGS
    phase records the Adam steps it starts from (a resumed L-BFGS run refuses other ones)."""
    c = ml_collections.ConfigDict(config.to_dict())
    adam_steps, lbfgs_steps = int(config.num_steps), int(config.pinn.lbfgs_steps)
    c.pinn.lbfgs_steps = 0  # phase-independent: each run's length is its num_steps
    if phase == "lbfgs":
        c.num_steps = lbfgs_steps
        c.pinn.after_adam_steps = adam_steps
    return c


# ----------------------------------------------------------------------------- outputs


def _figures(workdir: pathlib.Path, problem: Problem, pred: np.ndarray) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    err = np.abs(pred - problem.grid_u)
    fig = Figure(figsize=(8, 3.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(
        np.maximum(err.T, 1e-8),
        origin="lower",
        aspect="auto",
        extent=(problem.grid_t[0], problem.grid_t[-1], problem.grid_x[0], problem.grid_x[-1]),
        norm=LogNorm(vmin=max(err.max() * 1e-4, 1e-8), vmax=max(err.max(), 1e-7)),
        cmap="viridis",
    )
    fig.colorbar(im, ax=ax, label="|u − u_exact|")
    ax.set_xlabel("t")
    ax.set_ylabel("x")
    ax.set_title(f"PINN error, relative L2 {relative_l2(pred, problem.grid_u):.3e}")
    fig.tight_layout()
    fig.savefig(workdir / "pinn_error.png")

    fig = Figure(figsize=(10, 3.2), dpi=110)
    FigureCanvasAgg(fig)
    for k, tv in enumerate((0.25, 0.5, 0.75)):
        i = int(np.argmin(np.abs(problem.grid_t - tv)))
        ax = fig.add_subplot(1, 3, k + 1)
        ax.plot(problem.grid_x, problem.grid_u[i], "b-", lw=2.5, label="exact")
        ax.plot(problem.grid_x, pred[i], "r--", lw=1.5, label="PINN")
        ax.set_title(f"t = {problem.grid_t[i]:.2f}")
        ax.set_xlabel("x")
        ax.set_ylim(-1.1, 1.1)
        if k == 0:
            ax.set_ylabel("u(t, x)")
            ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(workdir / "pinn_snapshots.png")
    return ["pinn_error.png", "pinn_snapshots.png"]


def _markdown(summary: dict) -> str:
    lines = [
        "| phase | steps | relative L2 | loss | wall (s, this command) |",
        "| --- | --- | --- | --- | --- |",
        f"| Adam | {summary['adam_steps']} | {summary['rel_l2_adam']:.3e} | "
        f"{summary['loss_adam']:.3e} | {summary['seconds_adam']:.1f} |",
        f"| + L-BFGS | {summary['lbfgs_steps']}{' (stopped: stalled)' if summary['lbfgs_stopped'] else ''} | {summary['rel_l2']:.3e} | "
        f"{summary['loss']:.3e} | {summary['seconds_lbfgs']:.1f} |",
        "",
        f"Published (Raissi et al. 2019, L-BFGS to convergence): relative L2 "
        f"{summary['published_rel_l2']:.1e}. Derivatives: {summary['derivatives']}, "
        f"{summary['dtype']}; {summary['num_collocation']} collocation and "
        f"{summary['num_boundary']} initial/boundary points; "
        f"{summary['depth']} × {summary['width']} tanh.",
    ]
    return "\n".join(lines) + "\n"


def run_pinn(config: ml_collections.ConfigDict, workdir) -> dict:
    """``physics pinn``: Adam then L-BFGS, each a resumable run of the shared loop in
    ``WORKDIR/adam`` and ``WORKDIR/lbfgs``; writes pinn.json, pinn.md, pinn_error.png (|u − u_ref|
    over (t, x)) and pinn_snapshots.png (t = 0.25, 0.5, 0.75); returns the summary."""
    from generative.core import sharding
    from generative.core.train import run

    workdir = pathlib.Path(workdir)
    dtype = _dtype(config)
    _choice("pinn.derivatives", config.pinn.derivatives, DERIVATIVES)
    x64 = jax.enable_x64(True) if dtype == jnp.float64 else contextlib.nullcontext()
    mesh = sharding.data_mesh(jax.devices()[:1])  # full batch, one device
    with x64:
        problem = _problem_from_config(config)
        t0 = time.perf_counter()
        experiment, model, _ = make_experiment(config, problem)
        state = run(experiment, _phase_config(config, "adam"), workdir / "adam", mesh=mesh)
        seconds_adam = time.perf_counter() - t0
        adam_eval = experiment.evaluate(int(state.step), state)

        t0 = time.perf_counter()
        lbfgs_config = _phase_config(config, "lbfgs")
        if lbfgs_config.num_steps > 0:
            experiment2, _, _ = make_lbfgs_experiment(
                lbfgs_config, state.params, problem, experiment.evaluate
            )
            state = run(experiment2, lbfgs_config, workdir / "lbfgs", mesh=mesh)
        seconds_lbfgs = time.perf_counter() - t0
        stopped = lbfgs_config.num_steps > 0 and bool(state.model_state["done"])
        final = experiment.evaluate(int(state.step), state)
        pred = predict_grid(network_fn(model, state.params, problem.t_max), problem, dtype)

    p = config.pinn
    summary = {
        "rel_l2": final["rel_l2"],
        "loss": final["loss_u"] + final["loss_f"],
        "loss_u": final["loss_u"],
        "loss_f": final["loss_f"],
        "rel_l2_adam": adam_eval["rel_l2"],
        "loss_adam": adam_eval["loss_u"] + adam_eval["loss_f"],
        "adam_steps": int(config.num_steps),
        "lbfgs_steps": int(p.lbfgs_steps),
        "lbfgs_stopped": stopped,  # the line searches stalled: the last iterations were idle
        "seconds_adam": seconds_adam,
        "seconds_lbfgs": seconds_lbfgs,
        "max_abs_error": float(np.abs(pred - problem.grid_u).max()),
        "published_rel_l2": 6.7e-4,
        "derivatives": p.derivatives,
        "dtype": p.dtype,
        "nu": float(p.nu),
        "t_max": float(p.t_max),
        "num_collocation": int(p.num_collocation),
        "num_boundary": int(p.num_boundary),
        "width": int(p.width),
        "depth": int(p.depth),
        "seed": int(config.seed),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    np.save(workdir / "pinn_prediction.npy", pred)
    summary["figures"] = _figures(workdir, problem, pred)
    (workdir / "pinn.json").write_text(json.dumps(summary, indent=2) + "\n")
    (workdir / "pinn.md").write_text(_markdown(summary))
    logger.info(
        "relative L2 %.3e after %d Adam (%.3e) and %d L-BFGS steps (published 6.7e-4)",
        summary["rel_l2"],
        summary["adam_steps"],
        summary["rel_l2_adam"],
        summary["lbfgs_steps"],
    )
    return summary
