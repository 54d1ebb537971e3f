"""Training and evaluation of the separation-of-variables model on the shared core loop.

``train_and_evaluate(config, workdir)`` builds the model from ``config.model`` /
``config.dynamics``, streams windows of ``cond_frames + pred_frames`` frames, trains with
``generative.core.train.run`` (resume, checkpoints, CSV/TensorBoard, NaN stop) and at the end
writes ``results.json`` / ``results.csv``: MSE (and PSNR/SSIM for images) per forecast horizon
on the test windows, and for Moving MNIST the content-swap scores (best over the two digit
permutations). The "without S" ablation is the same run with ``model.use_content=False``.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from generative import nets
from generative.core.cpu_codegen import xla_convolutions_options
from generative.core.train import TrainState, loss_step
from generative.data.digits import load_digits
from generative.data.moving_mnist import MovingMNIST, render, trajectories
from generative.metrics import psnr, ssim
from physics import data as data_lib
from physics import separation as M
from physics.losses import LossWeights, separation_loss

logger = logging.getLogger(__name__)

__all__ = [
    "build_encoder",
    "build_decoder",
    "build_model",
    "make_data",
    "make_experiment",
    "init_state",
    "train_step",
    "predict",
    "forecast_metrics",
    "train_and_evaluate",
    "evaluate",
]


# ----------------------------------------------------------------------------- registries


def build_encoder(
    name: str,
    out_dim: int,
    *,
    hidden: int = 1200,
    num_layers: int = 3,
    gain: float = 0.71,
    nf: int = 64,
    channels: int | None = None,
) -> M.nn.Module:
    """Encoder by name; ``out_dim`` is a vector size, or channels for ``conv_skip``."""
    if name == "mlp":
        return M.MLPEncoder(out_dim, hidden=hidden, num_layers=num_layers, gain=gain)
    if name == "dcgan":
        return nets.DCGANEncoder(out_dim, nf, norm="group")
    if name == "vgg":
        return nets.VGGEncoder(out_dim, nf, norm="group")
    if name == "resnet":
        return M.ResNetEncoder(out_dim, nf=nf)
    if name == "conv_skip":
        return M.ConvSkipEncoder(out_dim, nf=nf)
    raise ValueError(f"unknown encoder {name!r}; valid choices: {list(M.ENCODERS)}")


def build_decoder(
    name: str,
    frame_shape,
    *,
    hidden: int = 1200,
    num_layers: int = 4,
    gain: float = 0.71,
    nf: int = 64,
    channels: int | None = None,
    output_activation: str | None = None,
) -> M.nn.Module:
    frame_shape = tuple(frame_shape)
    if name == "mlp":
        return M.MLPDecoder(
            frame_shape,
            hidden=hidden,
            num_layers=num_layers,
            gain=gain,
            output_activation=output_activation or "none",
        )
    if name == "dcgan":
        return nets.DCGANDecoder(
            frame_shape, nf, norm="group", output_activation=output_activation or "sigmoid"
        )
    if name == "vgg":
        return nets.VGGDecoder(
            frame_shape, nf, norm="group", output_activation=output_activation or "sigmoid"
        )
    if name == "conv_skip":
        return M.ConvSkipDecoder(frame_shape, nf=nf, output_activation=output_activation or "none")
    raise ValueError(f"unknown decoder {name!r}; valid choices: {list(M.DECODERS)}")


def build_model(config: ml_collections.ConfigDict, frame_shape) -> M.SeparationModel:
    m, d = config.model, config.dynamics
    enc = functools.partial(
        build_encoder, m.encoder, hidden=m.enc_hidden, num_layers=m.enc_layers, gain=m.gain, nf=m.nf
    )
    decoder = build_decoder(
        m.decoder,
        frame_shape,
        hidden=m.dec_hidden,
        num_layers=m.dec_layers,
        gain=m.gain,
        nf=m.nf,
        output_activation=m.output_activation or None,
    )
    if m.encoder == "conv_skip":
        field = M.ConvVectorField(hidden=d.hidden)
    else:
        field = M.MLPVectorField(hidden=d.hidden, gain=m.gain, activation=d.activation)
    dynamics = M.TemporalDynamics(
        field,
        kind=d.kind,
        n_blocks=d.n_blocks,
        solver=d.solver,
        dt=d.dt,
        adjoint=d.adjoint,
        rtol=d.rtol,
        atol=d.atol,
    )
    return M.SeparationModel(
        enc(m.content_dim),
        enc(m.dynamic_dim),
        decoder,
        dynamics,
        mixing=m.mixing,
        use_content=m.use_content,
    )


# ----------------------------------------------------------------------------- data


def _moving_mnist(config) -> MovingMNIST:
    """Deterministic 2-digit Moving MNIST (`generative.data.moving_mnist`)."""
    return MovingMNIST(
        False,
        jax.random.PRNGKey(config.seed + 1),
        config.digits_source,
        config.data_dir or None,
        config.num_font_digits or None,
    )


def make_data(config: ml_collections.ConfigDict):
    """-> (train batch function ``step -> [B, L, ...]``, test windows ``[N, L_eval, ...]``, frame shape)."""
    length = config.cond_frames + config.pred_frames
    eval_length = config.cond_frames + config.eval_pred_frames
    name = config.dataset
    if name == "mmnist":
        mm = _moving_mnist(config)
        test = mm.test_videos(config.eval_windows, eval_length)
        return (lambda step: mm.batch(step, config.batch_size, length)), test, (64, 64, 1)
    kwargs = {}
    if name in ("waveeq", "waveeq100"):
        kwargs = dict(
            num_sequences=config.num_sequences,
            num_train=config.num_train,
            size=config.grid_size,
            num_frames=config.sim_frames,
        )
    elif name == "sst":
        kwargs = dict(seq_len=max(length, eval_length))
    splits = data_lib.load_dataset(name, config.data_dir or None, **kwargs)
    sampler = data_lib.WindowSampler(splits["train"], length, seed=config.seed)
    test_sampler = data_lib.WindowSampler(splits["test"], eval_length)
    test = test_sampler.fixed_windows(config.eval_stride)[: config.eval_windows]
    return (lambda step: sampler.batch(step, config.batch_size)), test, splits["train"].shape[2:]


# ----------------------------------------------------------------------------- metrics


def forecast_metrics(pred, target, images: bool) -> dict[str, np.ndarray]:
    """pred, target: [N, P, *frame] -> per-horizon curves [P] (mse; psnr/ssim for images)."""
    axes = tuple(range(2, pred.ndim))
    out = {"mse": np.asarray(jnp.mean((pred - target) ** 2, axis=axes).mean(0))}
    if images:
        clipped = jnp.clip(pred, 0.0, 1.0)
        out["psnr"] = np.asarray(psnr(clipped, target).mean(0))
        out["ssim"] = np.asarray(ssim(clipped, target).mean(0))
    return out


def _predict_windows(model, params, windows, cond: int, batch: int):
    """Forecast frames cond..L-1 of each window [N, L, ...] -> [N, L - cond, ...]."""
    length = windows.shape[1]
    fn = jax.jit(lambda p, w: model.predict(p, w[:, :cond], length)[:, cond:])
    outs = []
    for i in range(0, len(windows), batch):
        chunk = windows[i : i + batch]
        n = len(chunk)
        if n < batch:  # one compiled shape
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, 0)])
        outs.append(np.asarray(fn(params, jnp.asarray(chunk, jnp.float32)))[:n])
    return np.concatenate(outs)


def _swap_scores(model, params, config, batch: int) -> dict[str, float]:
    """Moving MNIST content swap: digits of video a, motion of video b; the ground truth renders
    a's digits on b's trajectories; best over the two digit permutations."""
    n, length, cond = batch, config.cond_frames + config.eval_pred_frames, config.cond_frames
    test = load_digits(
        "test", config.digits_source, config.data_dir or None, config.num_font_digits or None
    )
    digits = jnp.asarray(test.images)
    key = jax.random.PRNGKey(1234)
    k1, k2 = jax.random.split(key)
    idx = jax.random.randint(k1, (2, n, 2), 0, digits.shape[0])  # [video a/b, N, 2 digits]
    keys = jax.random.split(k2, 2 * n * 2).reshape(2, n, 2, -1)  # [video a/b, N, digit, key]
    traj = jax.vmap(jax.vmap(jax.vmap(lambda k: trajectories(k, length, False))))(keys).positions
    # traj: [2, N, 2 digits, L, 2]
    vids = jax.vmap(jax.vmap(render))(digits[idx], traj)[..., None]  # [2, N, L, 64, 64, 1]
    swapped = model.swap(params, vids[0, :, :cond], vids[1, :, :cond], length)[:, cond:]
    swapped = jnp.clip(swapped, 0, 1)
    best = {}
    for perm in ((0, 1), (1, 0)):
        truth = jax.vmap(render)(digits[idx[0]][:, perm], traj[1])[..., None][:, cond:]
        for name, fn in (("psnr", psnr), ("ssim", ssim)):
            s = np.asarray(fn(swapped, truth))  # [N, P]
            best[name] = s if name not in best else np.maximum(best[name], s)
    out = {}
    for name, s in best.items():
        for h in sorted({min(10, s.shape[1]), s.shape[1]}):
            out[f"swap_{name}_t+{h}"] = float(s[:, h - 1].mean())
    return out


# ----------------------------------------------------------------------------- experiment


def _weights(config) -> LossWeights:
    return LossWeights(pred=config.loss.pred, ae=config.loss.ae, s=config.loss.s, t=config.loss.t)


def init_state(model: M.SeparationModel, optimizer, example, key) -> TrainState:
    """A fresh training state: `model.init(key, example)` (example: a window [B, τ, ...]) and
    the optimizer's state."""
    params = model.init(key, example)
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params), None)


def train_step(
    model: M.SeparationModel,
    optimizer,
    cond_frames: int,
    weights: LossWeights | None = None,
):
    """`step(state, batch, key) -> (state, metrics)`: one optimizer step on
    `separation_loss` of sequences `batch` [B, L, ...] (the first `cond_frames` condition);
    jit it (the run loop does)."""

    weights = LossWeights() if weights is None else weights

    def loss_fn(params, model_state, batch, key):
        loss, terms = separation_loss(model, params, batch, key, cond_frames, weights)
        return loss, (terms, model_state)

    return loss_step(loss_fn, optimizer)


def predict(model: M.SeparationModel, params, windows, cond_frames: int, batch_size: int = 16):
    """Forecasts of frames cond_frames..L-1 of each window [N, L, ...] -> [N, L - cond_frames,
    ...] (host arrays, in batches of `batch_size`, one compiled shape)."""
    return _predict_windows(model, params, np.asarray(windows), cond_frames, batch_size)


def make_experiment(config: ml_collections.ConfigDict):
    """-> (Experiment, model, test windows)."""
    from generative.core.train import Experiment, make_optimizer

    batch_fn, test, frame_shape = make_data(config)
    model = build_model(config, frame_shape)
    tx = make_optimizer(config.optimizer, config.num_steps)
    example = jnp.zeros((1, config.cond_frames) + tuple(frame_shape), jnp.float32)
    weights = _weights(config)
    images = len(frame_shape) == 3 and config.dataset != "waveeq"

    init = functools.partial(init_state, model, tx, example)

    small_eval = test[: config.log_eval_windows]

    def evaluate_(step, state):
        if not config.log_eval_windows:
            return {}
        pred = _predict_windows(
            model,
            state.params,
            small_eval,
            config.cond_frames,
            min(config.eval_batch, len(small_eval)),
        )
        mse = forecast_metrics(pred, small_eval[:, config.cond_frames :], False)["mse"]
        return {"eval_mse_mean": float(mse.mean()), "eval_mse_last": float(mse[-1])}

    def finalize(state, workdir):
        return write_results(config, model, state.params, test, workdir, images)

    exp = Experiment(
        init=init,
        step=train_step(model, tx, config.cond_frames, weights),
        batch_fn=batch_fn,
        evaluate=evaluate_,
        finalize=finalize,
        compiler_options=xla_convolutions_options,  # measured faster on CPU (Intel)
    )
    return exp, model, test


def write_results(config, model, params, test, workdir, images: bool) -> dict:
    workdir = pathlib.Path(workdir)
    t = time.perf_counter()
    cond = config.cond_frames
    pred = _predict_windows(model, params, test, cond, min(config.eval_batch, len(test)))
    curves = forecast_metrics(jnp.asarray(pred), jnp.asarray(test[:, cond:]), images)
    horizon = test.shape[1] - cond
    summary = {
        "dataset": config.dataset,
        "use_content": bool(config.model.use_content),
        "num_test_windows": int(len(test)),
        "horizon": horizon,
    }
    for name, curve in curves.items():
        summary[f"{name}_t+{horizon}"] = float(curve[-1])
        summary[f"{name}_mean_1..{horizon}"] = float(curve.mean())
    if config.dataset == "mmnist" and config.model.use_content:
        summary.update(_swap_scores(model, params, config, min(config.eval_batch, 64)))
    summary["eval_seconds"] = time.perf_counter() - t
    (workdir / "results.json").write_text(json.dumps(summary, indent=2))
    with open(workdir / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["horizon"] + list(curves))
        for h in range(horizon):
            w.writerow([h + 1] + [f"{curves[k][h]:.6g}" for k in curves])
    logger.info("%s", json.dumps(summary))
    return summary


def train_and_evaluate(config: ml_collections.ConfigDict, workdir) -> None:
    from generative.core.train import run

    exp, _, _ = make_experiment(config)
    run(exp, config, workdir)


def evaluate(config: ml_collections.ConfigDict, workdir) -> None:
    """Evaluates the latest checkpoint in ``workdir`` (fails if there is none)."""
    from generative.core.checkpoint import Checkpointer

    workdir = pathlib.Path(workdir)
    exp, model, test = make_experiment(config)
    ckpt = Checkpointer(workdir / "checkpoints", keep=int(config.keep_checkpoints))
    step = ckpt.latest_step()
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {workdir / 'checkpoints'}; train first")
    abstract = jax.eval_shape(exp.init, jax.random.PRNGKey(0))
    state = ckpt.restore(abstract, step)
    ckpt.close()
    images = len(test.shape) == 5 and config.dataset != "waveeq"
    write_results(config, model, state.params, test, workdir, images)
