"""SRVP training, evaluation and latent-space exploration on the shared core.

`train_and_evaluate(config, workdir)` trains with `generative.core.train.run` (checkpoints,
resume, data parallelism, NaN stop, CSV/TensorBoard), `evaluate(config, workdir)` runs the paper
protocol on the latest checkpoint, `explore(config, workdir)` writes the latent-space GIFs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from generative.core import train as core
from generative.core.cpu_codegen import xla_convolutions_options
from generative.data.moving_mnist import MovingMNIST
from video import evaluation, srvp

logger = logging.getLogger(__name__)

__all__ = [
    "DATASETS",
    "srvp_loss",
    "init_state",
    "train_step",
    "model_config",
    "make_data",
    "make_experiment",
    "train_and_evaluate",
    "evaluate",
    "explore",
    "restore_variables",
]

DATASETS = ("smmnist", "dmmnist", "kth", "human", "bair")
_DATA_STREAM = 0x5EED  # data keys are fold_in(PRNGKey(seed + _DATA_STREAM), step)


def model_config(config: ml_collections.ConfigDict) -> srvp.SRVPConfig:
    fields = {f.name for f in dataclasses.fields(srvp.SRVPConfig)}
    return srvp.SRVPConfig(**{k: v for k, v in config.model.to_dict().items() if k in fields})


class _MovingMNIST:
    """The shared Moving MNIST source at this config's batch size and sequence length."""

    def __init__(self, config, stochastic: bool):
        self._cfg = config
        self._mm = MovingMNIST(
            stochastic,
            jax.random.PRNGKey(config.seed + _DATA_STREAM),
            config.digits,
            config.data_dir or None,
            config.num_font_digits or None,
        )
        self.source = self._mm.source

    def batch(self, step: int) -> np.ndarray:
        return self._mm.batch(step, self._cfg.batch_size, self._cfg.seq_len)

    def test_videos(self, num_videos: int, num_frames: int, seed: int) -> np.ndarray:
        return self._mm.test_videos(num_videos, num_frames, seed)


class _OnDisk:
    def __init__(self, config):
        from video import data

        self._cfg = config
        c = config
        if c.dataset == "bair":
            self._train = lambda: data.bair(c.data_dir or None, "train", c.seq_len)
            self._test = lambda n: data.bair(c.data_dir or None, "test", n)
        else:
            loader = data.kth if c.dataset == "kth" else data.human36m
            self._train = lambda: loader(c.data_dir or None, "train", c.seq_len, c.frame_stride)
            self._test = lambda n: loader(c.data_dir or None, "test", n, c.frame_stride)
        self.train_set = self._train()  # fails now, with the path, when the data are missing
        self.source = f"{c.dataset} from {c.data_dir or 'the default tensorflow-datasets dir'}"

    def batch(self, step: int) -> np.ndarray:
        return self.train_set.batch(self._cfg.seed, step, self._cfg.batch_size)

    def test_videos(self, num_videos: int, num_frames: int, seed: int) -> np.ndarray:
        return self._test(num_frames).test_clips(num_videos, seed)


def make_data(config):
    if config.dataset not in DATASETS:
        raise ValueError(
            f"unknown dataset '{config.dataset}'; valid choices: {', '.join(DATASETS)}"
        )
    if config.dataset in ("smmnist", "dmmnist"):
        return _MovingMNIST(config, stochastic=config.dataset == "smmnist")
    return _OnDisk(config)


def _check(config):
    if config.seq_len <= config.model.nt_inf or config.nt_cond < config.model.nt_inf:
        raise ValueError(
            f"seq_len ({config.seq_len}) must exceed and nt_cond ({config.nt_cond}) "
            f"must be at least model.nt_inf ({config.model.nt_inf})"
        )


def srvp_loss(cfg: srvp.SRVPConfig):
    """The training objective as `loss(params, batch_stats, batch, key) -> (loss, (terms,
    new_batch_stats))`: the negative ELBO of videos `batch` [B, T, 64, 64, nc] with fresh
    noise from `key`, the terms (nll, kl_y, kl_z, residual_norm, mse) as a dict."""

    def loss(params, batch_stats, batch, key):
        noise = srvp.sample_noise(cfg, key, batch.shape[0], batch.shape[1])
        terms, new_stats = srvp.elbo(
            cfg, {"params": params, "batch_stats": batch_stats}, batch, noise, train=True
        )
        aux = {
            "nll": terms.nll,
            "kl_y": terms.kl_y,
            "kl_z": terms.kl_z,
            "residual_norm": terms.residual_norm,
            "mse": terms.mse,
        }
        return terms.loss, (aux, new_stats)

    return loss


def init_state(
    cfg: srvp.SRVPConfig, optimizer: optax.GradientTransformation, key, seq_len: int = 2
) -> core.TrainState:
    """A fresh training state: SRVP's variables (`init_variables`) and the optimizer's state."""
    v = srvp.init_variables(cfg, key, seq_len)
    return core.TrainState(
        jnp.zeros((), jnp.int32), v["params"], optimizer.init(v["params"]), v["batch_stats"]
    )


def train_step(cfg: srvp.SRVPConfig, optimizer: optax.GradientTransformation):
    """`step(state, batch, key) -> (state, metrics)`: one optimizer step on the negative ELBO
    (`srvp_loss`), batch statistics updated; jit it (the run loop does)."""
    return core.loss_step(srvp_loss(cfg), optimizer)


def make_experiment(config, data=None) -> tuple[core.Experiment, Any]:
    """The SRVP Experiment for the core loop, and its data source."""
    _check(config)
    cfg = model_config(config)
    data = make_data(config) if data is None else data
    tx = core.make_optimizer(config.optimizer, int(config.num_steps))
    seq_len = int(config.seq_len)

    init = functools.partial(init_state, cfg, tx, seq_len=seq_len)

    evaluate_fn = None
    ec = config.eval
    if ec.log_videos > 0:
        val, val_key = None, jax.random.PRNGKey(ec.seed + 1)

        def evaluate_fn(step, state):
            nonlocal val
            if val is None:
                val = data.test_videos(ec.log_videos, config.nt_cond + ec.horizon, ec.seed + 1)
            s, _ = evaluation.sample_and_score(
                cfg,
                _variables(state),
                jnp.asarray(val),
                val_key,
                config.nt_cond,
                ec.horizon,
                ec.log_samples,
            )
            return {f"val_{k}": float(np.asarray(v).mean(-1).max(0).mean()) for k, v in s.items()}

    finalize = None
    if ec.at_end:

        def finalize(state, workdir):
            return _run_evaluation(config, _variables(state), pathlib.Path(workdir), data)

    return core.Experiment(
        init=init,
        step=train_step(cfg, tx),
        batch_fn=data.batch,
        evaluate=evaluate_fn,
        finalize=finalize,
        compiler_options=xla_convolutions_options,  # measured faster on CPU (Intel)
    ), data


def _variables(state) -> dict:
    return {"params": state.params, "batch_stats": state.model_state}


def train_and_evaluate(config, workdir):
    """Train (resuming from `workdir` by default); evaluate at the end if `eval.at_end`."""
    experiment, data = make_experiment(config)
    logger.info("data: %s", data.source)
    t0 = time.perf_counter()
    state = core.run(experiment, config, workdir)
    logger.info("trained %d steps in %.1f s", int(state.step), time.perf_counter() - t0)
    return state


def restore_variables(config, workdir) -> dict:
    """Model variables of the latest checkpoint in `workdir/checkpoints`."""
    from generative.core.checkpoint import Checkpointer  # orbax: imported when needed

    experiment, _ = make_experiment(config, data=_NoData())
    ckpt = Checkpointer(pathlib.Path(workdir) / "checkpoints")
    if ckpt.latest_step() is None:
        ckpt.close()
        raise FileNotFoundError(
            f"no checkpoint in {pathlib.Path(workdir) / 'checkpoints'}; "
            f"train first with `video train --workdir {workdir}`"
        )
    abstract = jax.eval_shape(experiment.init, jax.random.PRNGKey(0))
    state = ckpt.restore(abstract)
    ckpt.close()
    return _variables(state)


class _NoData:
    source = "none"
    batch = None


def _perceptual_weights(config):
    from video import perceptual

    ec = config.eval
    lp = perceptual.load_lpips_params(ec.lpips_weights) if ec.lpips_weights else None
    i3d = perceptual.load_i3d_variables(ec.i3d_weights) if ec.i3d_weights else None
    return lp, i3d


def _run_evaluation(config, variables, workdir: pathlib.Path, data) -> dict:
    ec = config.eval
    cfg = model_config(config)
    lpips_params, i3d = _perceptual_weights(config)
    t0 = time.perf_counter()
    videos = data.test_videos(ec.num_videos, config.nt_cond + ec.horizon, ec.seed)
    result = evaluation.evaluate_videos(
        cfg,
        variables,
        videos,
        config.nt_cond,
        ec.horizon,
        ec.n_samples,
        ec.batch_size,
        jax.random.PRNGKey(ec.seed),
        lpips_params,
        i3d,
        ec.num_gifs,
        sample_chunk=ec.sample_chunk or None,
        progress=bool(config.progress),
    )
    seconds = time.perf_counter() - t0
    summary = evaluation.write_results(
        result,
        workdir / "eval",
        f"SRVP ({config.dataset})",
        {"horizon": ec.horizon, "nt_cond": config.nt_cond},
    )
    summary["eval_seconds"] = seconds
    summary["data"] = data.source
    (workdir / "eval" / "summary.json").write_text(json.dumps(summary, indent=2))
    for line in (workdir / "eval" / "results.md").read_text().splitlines():
        logger.info("%s", line)
    if lpips_params is None or i3d is None:
        logger.info(
            "LPIPS/FVD skipped: set eval.lpips_weights / eval.i3d_weights to converted weights"
        )
    return summary


def evaluate(config, workdir):
    """`video eval`: the paper protocol on the latest checkpoint of `workdir`."""
    workdir = pathlib.Path(workdir)
    variables = restore_variables(config, workdir)
    data = make_data(config)
    logger.info("data: %s", data.source)
    return _run_evaluation(config, variables, workdir, data)


def explore(config, workdir):
    """`video explore`: GIFs of generation at double frame rate, content swap, interpolation."""
    workdir = pathlib.Path(workdir)
    out = workdir / "explore"
    out.mkdir(parents=True, exist_ok=True)
    variables = restore_variables(config, workdir)
    cfg = model_config(config)
    data = make_data(config)
    ec, nt = config.eval, config.nt_cond
    horizon = ec.horizon
    videos = jnp.asarray(data.test_videos(2, nt + horizon, ec.seed))  # [2, T, H, W, C]
    key = jax.random.PRNGKey(ec.seed)
    k_c, k_p = jax.random.split(key)

    @jax.jit
    def run(variables, videos):
        c = srvp.condition(cfg, variables, videos[:, :nt], k_c)
        eps = jax.random.normal(k_p, (horizon, 2, cfg.nz if cfg.stochastic else 0))
        y = srvp.rollout_prior(cfg, variables, c.y[:, -1], None, horizon, z_noise=eps)
        normal = srvp.decode(cfg, variables, jnp.concatenate([c.y, y], 1), c.w, c.skips)
        # twice the frame rate: half the Euler step, every intermediate state decoded
        y2 = srvp.rollout_prior(
            cfg, variables, c.y[:, -1], None, horizon, dt=cfg.dt / 2, frame_rate=2, z_noise=eps
        )
        fast = srvp.decode(cfg, variables, y2, c.w, c.skips)
        # content swap: dynamics of video 0 with content (and skips) of video 1, and vice versa
        ys = jnp.concatenate([c.y, y], 1)
        swap = srvp.decode(cfg, variables, ys, c.w[::-1], [s[::-1] for s in c.skips])
        # interpolation of the dynamics: y_0 of video 0 -> video 1, same prior noise
        alphas = jnp.linspace(0.0, 1.0, 5)
        y_mix = (1 - alphas)[:, None] * c.y[0, -1][None] + alphas[:, None] * c.y[1, -1][None]
        eps_mix = jnp.broadcast_to(eps[:, :1], (horizon, 5, eps.shape[-1]))
        ym = srvp.rollout_prior(cfg, variables, y_mix, None, horizon, z_noise=eps_mix)
        w0 = jnp.broadcast_to(c.w[:1], (5, c.w.shape[-1]))
        sk0 = [jnp.broadcast_to(s[:1], (5,) + s.shape[1:]) for s in c.skips]
        interp = srvp.decode(cfg, variables, ym, w0, sk0)
        return [jnp.clip(a, 0, 1) for a in (normal, fast, swap, interp)]

    normal, fast, swap, interp = run(variables, videos)
    files = {}
    # frame rate: normal-rate frames repeated twice next to the double-rate generation
    slow = jnp.repeat(normal[:, nt:], 2, axis=1)
    files["frame_rate"] = jnp.stack([slow[0], fast[0]])
    files["content_swap"] = jnp.stack([videos[0], videos[1], swap[0], swap[1]])
    files["interpolation"] = interp
    for name, vids in files.items():
        evaluation.write_gif(out / f"{name}.gif", np.asarray(vids))
    logger.info("explore GIFs in %s: %s", out, ", ".join(f"{n}.gif" for n in files))
    return {n: str(out / f"{n}.gif") for n in files}
