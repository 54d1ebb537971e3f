"""The one training loop every package uses.

An `Experiment` is a handful of pure functions (state init, one step, optional host-side
batches, evaluation and final outputs); `run` drives it: resume from the run folder, jitted
steps with donated state, `lax.scan` between logging points when data are made inside the
step, explicit keys `fold_in(PRNGKey(seed), step)`, metrics fetched once per logging step
into CSV and TensorBoard, a progress bar, orbax checkpoints, and a stop on the first
non-finite loss or state that names the step and the quantity and keeps the last good
checkpoint. A run resumes from the newest checkpoint that restores (see
`Checkpointer.restore`); messages go to `logging` (the command line prints them). Because every
step depends only on (state, step index, seed), a run killed at any point and restarted with
the same command ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from generative import layers
from generative.core import config as config_lib
from generative.core import cpu_codegen
from generative.core import sharding as sharding_lib
from generative.core.metric_writers import MetricWriter

__all__ = [
    "TrainState",
    "Experiment",
    "NonFiniteError",
    "make_schedule",
    "make_optimizer",
    "loss_step",
    "tree_is_finite",
    "run",
]

logger = logging.getLogger(__name__)

PRNGKey = jax.Array
Metrics = dict[str, jax.Array]


class NonFiniteError(FloatingPointError):
    """A NaN/Inf appeared in a loss, metric or the state; the message is one line."""


class TrainState(NamedTuple):
    """State of an optax-trained model."""

    step: jax.Array  # [] int32, number of updates applied
    params: Any  # model parameters pytree
    opt_state: Any  # optax state pytree
    model_state: Any = None  # non-trained collections (e.g. batch_stats), or None


@dataclasses.dataclass(frozen=True)
class Experiment:
    """What `run` needs; every callable is pure except `batch_fn`, `evaluate`, `finalize`.

    init:      key -> state (a pytree with a `.step` [] int32 field, e.g. `TrainState`).
    step:      (state, batch, key) -> (new_state, scalar metrics). Must advance `state.step`.
    batch_fn:  host-side step index -> batch (numpy pytree, leading axis = global batch,
               split over devices); deterministic in the index. None: `batch` is None and the
               step makes its own data from the key (then chunks of steps run in `lax.scan`).
    state_sharding: mesh -> sharding pytree (or one sharding) for the state; None: replicated.
    evaluate:  (step, state) -> extra scalar metrics, at logging steps (and at step 0).
    finalize:  (state, workdir) -> summary dict, after the last step (figures, tables ...).
    compiler_options: () -> per-program XLA options of the compiled training step (e.g.
               `generative.core.cpu_codegen.products_only_options`), asked for when the run
               compiles; None: XLA's defaults. With XLA's own convolutions
               (`cpu_codegen.xla_convolutions_options`) the step is traced under
               `generative.layers.xla_kernel_gradients`.
    """

    init: Callable[[PRNGKey], Any]
    step: Callable[[Any, Any, PRNGKey], tuple[Any, Metrics]]
    batch_fn: Callable[[int], Any] | None = None
    state_sharding: Callable[[jax.sharding.Mesh], Any] | None = None
    evaluate: Callable[[int, Any], dict[str, float]] | None = None
    finalize: Callable[[Any, pathlib.Path], dict] | None = None
    compiler_options: Callable[[], dict] | None = None


# ----------------------------------------------------------------------------- optimisers


def make_schedule(opt: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    lr = float(opt.lr)
    name = opt.schedule
    if name == "constant":
        return optax.constant_schedule(lr)
    if name == "constant_then_linear_decay":
        decay = int(opt.decay_steps) or max(1, num_steps // 10)
        burnin = max(0, num_steps - decay)
        return optax.join_schedules(
            [optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, decay)], [burnin]
        )
    if name == "cosine":
        return optax.cosine_decay_schedule(lr, max(1, num_steps))
    if name == "warmup_cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, lr, max(1, int(opt.warmup_steps)), max(2, num_steps)
        )
    valid = ", ".join(config_lib.SCHEDULES)
    raise config_lib.ConfigError(f"unknown optimizer.schedule '{name}'; valid: {valid}")


def make_optimizer(opt: ml_collections.ConfigDict, num_steps: int) -> optax.GradientTransformation:
    """Optimizer from the `optimizer` config group (see `config.base_config`)."""
    lr = make_schedule(opt, num_steps)
    name = opt.name
    if name == "adam":
        tx = optax.adam(lr, b1=opt.b1, b2=opt.b2)
    elif name == "adamw":
        tx = optax.adamw(lr, b1=opt.b1, b2=opt.b2, weight_decay=opt.weight_decay)
    elif name == "sgd":
        tx = optax.sgd(lr, momentum=opt.momentum or None)
    elif name == "rmsprop":
        tx = optax.rmsprop(lr, momentum=opt.momentum)
    else:
        valid = ", ".join(config_lib.OPTIMIZERS)
        raise config_lib.ConfigError(f"unknown optimizer.name '{name}'; valid: {valid}")
    if opt.grad_clip and opt.grad_clip > 0:
        tx = optax.chain(optax.clip_by_global_norm(float(opt.grad_clip)), tx)
    return tx


def loss_step(
    loss_fn: Callable[..., tuple[jax.Array, tuple[Metrics, Any]]],
    tx: optax.GradientTransformation,
) -> Callable[[TrainState, Any, PRNGKey], tuple[TrainState, Metrics]]:
    """An `Experiment.step` from `loss_fn(params, model_state, batch, key) ->
    (loss, (aux_metrics, new_model_state))`; adds loss and gradient/parameter/update norms."""

    def step(state: TrainState, batch: Any, key: PRNGKey):
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (aux, model_state)), grads = grad_fn(state.params, state.model_state, batch, key)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            "loss": loss,
            "grad_norm": optax.global_norm(grads),
            "param_norm": optax.global_norm(params),
            "update_norm": optax.global_norm(updates),
            **aux,
        }
        new = TrainState(state.step + 1, params, opt_state, model_state)
        return new, metrics

    return step


def tree_is_finite(tree: Any) -> jax.Array:
    """Whether every inexact element of the pytree is finite ([] bool; True without any).

    x · 0 is 0 for a finite x and NaN for ±inf or NaN, so one sum per leaf decides it (no
    overflow: the sum of zeros stays zero), without a boolean array per leaf."""
    sums = [
        jnp.sum(x * jnp.zeros((), x.dtype))
        for x in map(jnp.asarray, jax.tree_util.tree_leaves(tree))
        if jnp.issubdtype(x.dtype, jnp.inexact)
    ]
    if not sums:
        return jnp.array(True)
    return jnp.all(jnp.isfinite(jnp.stack(sums)))


# ----------------------------------------------------------------------------- the loop


def _state_shardings(experiment: Experiment, abstract: Any, mesh) -> Any:
    if experiment.state_sharding is None:
        rep = sharding_lib.replicated(mesh)
        return jax.tree_util.tree_map(lambda _: rep, abstract)
    s = experiment.state_sharding(mesh)
    if isinstance(s, jax.sharding.Sharding):
        return jax.tree_util.tree_map(lambda _: s, abstract)
    return s


def _first_nonfinite(metrics: dict[str, np.ndarray], first_step: int) -> tuple[int, str] | None:
    """(step, quantity) of the earliest non-finite value in stacked per-step metrics."""
    worst = None
    for name, values in metrics.items():
        values = np.asarray(values).reshape(len(values), -1)
        bad = ~np.isfinite(values).all(axis=1)
        if name == "_state_finite":
            bad = ~values.astype(bool).all(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            if worst is None or i < worst[0]:
                worst = (i, "state (parameters)" if name == "_state_finite" else name)
    if worst is None:
        return None
    return first_step + worst[0] + 1, worst[1]


def run(
    experiment: Experiment,
    config: ml_collections.ConfigDict,
    workdir: str | pathlib.Path,
    *,
    mesh: jax.sharding.Mesh | None = None,
) -> Any:
    """Train `experiment` for `config.num_steps` steps in `workdir`; returns the final state."""
    from generative.core.checkpoint import Checkpointer  # orbax: imported when a run starts

    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config_lib.save_or_check(config, workdir)
    mesh = sharding_lib.data_mesh() if mesh is None else mesh
    root_key = jax.random.PRNGKey(int(config.seed))
    num_steps, log_every = int(config.num_steps), int(config.log_every)

    abstract = jax.eval_shape(experiment.init, root_key)
    shardings = _state_shardings(experiment, abstract, mesh)
    ckpt = Checkpointer(workdir / "checkpoints", keep=int(config.get("keep_checkpoints", 3)))
    if ckpt.all_steps():
        target = jax.tree_util.tree_map(
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings
        )
        # the newest checkpoint that restores; newer unrestorable ones are moved aside (kept)
        state = ckpt.restore(target, set_aside=True)
        logger.info("resumed from %s", ckpt.directory / str(int(jax.device_get(state.step))))
    else:
        state = jax.jit(experiment.init, out_shardings=shardings)(root_key)
    start = int(jax.device_get(state.step))

    options = experiment.compiler_options() if experiment.compiler_options else None
    xla_kgrad = cpu_codegen.uses_xla_convolutions(options)

    def one_step(state, batch):
        key = jax.random.fold_in(root_key, state.step)
        with layers.xla_kernel_gradients(xla_kgrad):  # the form its compile options want
            new, metrics = experiment.step(state, batch, key)
        metrics = dict(metrics)
        metrics["_state_finite"] = tree_is_finite(new)
        return new, metrics

    if experiment.batch_fn is None:

        def chunk(state, n):
            return jax.lax.scan(lambda s, _: one_step(s, None), state, None, length=n)

        scan_fn = jax.jit(
            chunk,
            static_argnums=1,
            donate_argnums=0,
            out_shardings=(shardings, None),
            compiler_options=options,
        )

        def chunk_fn(state, n, first):
            return scan_fn(state, n)
    else:
        step_fn = jax.jit(
            one_step,
            donate_argnums=0,
            out_shardings=(shardings, None),
            compiler_options=options,
        )

        def chunk_fn(state, n, first):
            collected = []
            for i in range(first, first + n):
                batch = sharding_lib.shard_batch(experiment.batch_fn(i), mesh)
                state, m = step_fn(state, batch)
                collected.append(m)
            return state, jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *collected)

    writer = MetricWriter(workdir, start_step=start)
    progress = None
    if config.get("progress", True):
        from tqdm.auto import tqdm

        progress = tqdm(total=num_steps, initial=start, unit="step", dynamic_ncols=True)

    def log(step: int, values: dict[str, float]) -> None:
        if experiment.evaluate is not None:
            values = {**values, **experiment.evaluate(step, state)}
        writer.write(step, values)
        if progress is not None:
            progress.set_postfix({k: f"{v:.4g}" for k, v in list(values.items())[:4]})

    try:
        if start == 0 and experiment.evaluate is not None:
            log(0, {})
        step = start
        while step < num_steps:
            n = min(log_every - step % log_every, num_steps - step)
            t0 = time.perf_counter()
            state, metrics = chunk_fn(state, n, step)
            metrics = jax.device_get(metrics)  # the one host transfer of this chunk
            bad = _first_nonfinite(metrics, step)
            if bad is not None:
                last = ckpt.latest_step()
                kept = "none" if last is None else f"step {last} in {ckpt.directory}"
                raise NonFiniteError(
                    f"non-finite {bad[1]} at step {bad[0]}; stopped, last good checkpoint: {kept}"
                )
            step += n
            values = {k: float(np.asarray(v)[-1]) for k, v in metrics.items() if k[0] != "_"}
            values["steps_per_sec"] = n / max(time.perf_counter() - t0, 1e-9)
            log(step, values)
            if progress is not None:
                progress.update(n)
            if step % int(config.checkpoint_every) == 0 or step == num_steps:
                ckpt.save(step, state)
    finally:
        ckpt.close()
        writer.close()
        if progress is not None:
            progress.close()

    if experiment.finalize is not None:
        experiment.finalize(state, workdir)
    return state
