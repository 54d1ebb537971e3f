"""Gradient field of the single-point discriminator (paper Figs. 6-7).

For every point x of a grid of [−2, 2] × [0, 2] the infinite-width discriminator is trained
(dual coefficients, `gantk.dynamics`) on the single fake {x} against the single real y
(default (1, 0)) for time t, and the arrow

    −∇_z c(f_t(z)) at z = x,      f_t(z) = k(z, [x; y]) u(t)

is drawn: the direction in which the generator would move that fake. The gradient is taken
through the evaluation point only (the trained discriminator, X = [x; y] and u, is held
fixed, as in the particle flow). At z = x the ReLU NTK has a cusp (its angle term); the
symmetric subgradient ½∇ k(x, x) is used there (`kernels.kernel_matvec(self_rows=True)`),
which is the limit of central finite differences.

`pad_dim > 2` embeds the plane in R^pad_dim by zero padding. Zero coordinates change no inner
product, but the NTK-parameterised first layer divides by the fan-in: for the stax kernels
k_D(pad x, pad y) = k_2(s x, s y) with s = √(2/D), so the field in dimension D is
s · field_2(s x; s y) — as if the picture were zoomed out by 1/s. A kernel of ‖x − y‖ alone
is unchanged by padding.

The whole grid is one vmapped, jitted function. Outputs: `field.png`, `field.csv` (x0, x1,
c, −∂c/∂x0, −∂c/∂x1) and `config.json`.

gantk field --config field:relu --workdir runs/field_relu
gantk field --config field:relu_nobias --workdir runs/field_relu_nobias
"""

from __future__ import annotations

import csv
import logging
import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gantk import dynamics
from gantk.kernels import KernelFn, kernel_matvec, make_kernel
from generative.core import config as config_lib

logger = logging.getLogger(__name__)

__all__ = ["field_grid", "pad_points", "generator_field", "run_field"]


def field_grid(
    config: ml_collections.ConfigDict, dtype
) -> tuple[np.ndarray, np.ndarray, jax.Array]:
    """(xs [nx], ys [ny], points [ny·nx, 2]) of the field's grid (x varies fastest)."""
    fc = config.field
    xs = np.linspace(*map(float, fc.x_range), int(fc.nx))
    ys = np.linspace(*map(float, fc.y_range), int(fc.ny))
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    return xs, ys, jnp.asarray(np.stack([gx.ravel(), gy.ravel()], 1), dtype)


def pad_points(points: jax.Array, pad_dim: int) -> jax.Array:
    """[n, d] -> [n, max(d, pad_dim)] by appending zero coordinates."""
    extra = max(0, int(pad_dim) - points.shape[-1])
    if extra == 0:
        return points
    return jnp.concatenate([points, jnp.zeros((points.shape[0], extra), points.dtype)], 1)


def generator_field(
    k: KernelFn,
    loss_name: str,
    t: float,
    real: jax.Array,
    *,
    method: str = "auto",
    generator_target: str = "zero",
) -> Callable[[jax.Array], tuple[jax.Array, jax.Array]]:
    """fakes [G, D] -> (c(f_t(x)) [G], −∇_x c(f_t(x)) [G, D]), one discriminator per fake.

    Discriminator g trained on ({x_g}, {real}) for time t; jitted and vmapped over the grid.
    """
    gan = dynamics.gan_loss(loss_name, generator_target)
    if method not in dynamics.METHODS:
        raise ValueError(f"unknown loss.method '{method}'; valid: {', '.join(dynamics.METHODS)}")

    def at(x: jax.Array) -> tuple[jax.Array, jax.Array]:  # x [D]
        X = jnp.stack([x, real.astype(x.dtype)])  # [2, D] = [fake; real]
        u = dynamics.dual_coefficients(
            loss_name,
            k(X, X),
            1,
            1,
            t,
            method=method,
            generator_target=generator_target,
            dtype=x.dtype,
        )
        X, u = jax.lax.stop_gradient(X), jax.lax.stop_gradient(u)

        def c_at(z):  # the discriminator is fixed; z is only the evaluation point (= X[0])
            return gan.c(kernel_matvec(k, z[None], X, u, block_size=2, self_rows=True)[0])

        value, grad = jax.value_and_grad(c_at)(x)
        return value, -grad

    return jax.jit(jax.vmap(at))


def _validate(config: ml_collections.ConfigDict) -> None:
    if config.loss.name not in dynamics.LOSSES:
        raise ValueError(f"unknown loss '{config.loss.name}'; valid: {', '.join(dynamics.LOSSES)}")
    if config.pad_dim != 0 and config.pad_dim < 2:
        raise ValueError(f"pad_dim must be 0 (no padding) or >= 2, got {config.pad_dim}")
    if len(config.field.real) != 2:
        raise ValueError(f"field.real must be a 2-D point, got {tuple(config.field.real)}")
    if config.field.nx < 2 or config.field.ny < 2:
        raise ValueError(
            f"field.nx and field.ny must be >= 2, got {config.field.nx}, {config.field.ny}"
        )


def run_field(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Compute the field on the grid, write `field.png`, `field.csv`; returns the arrays."""
    _validate(config)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config_lib.save(config, workdir)
    dtype = jnp.float64 if config.dtype == "float64" else jnp.float32
    xs, ys, points = field_grid(config, dtype)  # points [G, 2]
    dim = max(2, int(config.pad_dim))
    real = pad_points(jnp.asarray([config.field.real], dtype), dim)[0]  # [D]
    field = generator_field(
        make_kernel(config.kernel),
        config.loss.name,
        float(config.loss.t),
        real,
        method=config.loss.method,
        generator_target=config.loss.generator_target,
    )
    values, neg_grad = jax.device_get(field(pad_points(points, dim)))  # [G], [G, D]
    values, neg_grad = np.asarray(values), np.asarray(neg_grad)
    if not (np.all(np.isfinite(values)) and np.all(np.isfinite(neg_grad))):
        raise FloatingPointError("non-finite generator-loss gradient on the grid")
    pts = np.asarray(points)
    with open(workdir / "field.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["x0", "x1", "c", "neg_grad0", "neg_grad1"])
        for p, v, g in zip(pts, values, neg_grad):
            w.writerow([f"{p[0]:.6g}", f"{p[1]:.6g}", f"{v:.8g}", f"{g[0]:.8g}", f"{g[1]:.8g}"])
    _plot(workdir / "field.png", config, xs, ys, values, neg_grad[:, :2], dim)
    if config.progress:
        norms = np.linalg.norm(neg_grad, axis=1)
        logger.info(
            "field: %d points in R^%d, |∇c| from %.3g to %.3g",
            len(pts),
            dim,
            norms.min(),
            norms.max(),
        )
    return {
        "points": pts,
        "values": values,
        "neg_grad": neg_grad,
        "figure": str(workdir / "field.png"),
    }


def _plot(path, config, xs, ys, values, neg_grad, dim) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nx, ny = len(xs), len(ys)
    fig, ax = plt.subplots(figsize=(7.2, 4.2), dpi=130)
    im = ax.imshow(
        values.reshape(ny, nx),
        extent=(xs[0], xs[-1], ys[0], ys[-1]),
        origin="lower",
        cmap="coolwarm",
        alpha=0.55,
        interpolation="bilinear",
        aspect="equal",
    )
    fig.colorbar(im, ax=ax, shrink=0.8, label="c(f_t(x)), discriminator trained on {x} vs y")
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    ax.quiver(
        gx.ravel(),
        gy.ravel(),
        neg_grad[:, 0],
        neg_grad[:, 1],
        angles="xy",
        color="k",
        width=0.0035,
        pivot="tail",
    )
    real = config.field.real
    ax.scatter(
        [real[0]],
        [real[1]],
        140,
        c="tab:red",
        marker="x",
        linewidths=2.5,
        label=f"real point y = ({real[0]:g}, {real[1]:g})",
        zorder=5,
    )
    ax.set_xlim(xs[0] - 0.15, xs[-1] + 0.15)
    ax.set_ylim(ys[0] - 0.15, ys[-1] + 0.15)
    ax.set_xlabel("x₁ (the single fake point x = (x₁, x₂))")
    ax.set_ylabel("x₂")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8, frameon=False)
    kcfg = config.kernel
    kind = kcfg.kind or ("nngp" if kcfg.architecture == "rbf" else "ntk")
    where = f"in R^{dim} (zero padding)" if dim > 2 else "in R²"
    ax.set_title(
        f"Arrows −∇c(f_t(x)): {config.loss.name.upper()}, t = {config.loss.t:g}, "
        f"{kcfg.architecture} {kind.upper()}, {where}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
