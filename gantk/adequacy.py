"""Adequacy of the infinite-width model (paper Fig. 1): finite widths trained by SGD vs ∞.

A few fakes and reals; for each width the finite discriminator (same stax architecture, NTK
parameterisation, antisymmetric so that f_0 = 0) is trained by SGD for round(t/lr) steps
(`gantk.finite`), and the generator loss c(f_t(x)) it defines on a grid is compared with the
infinite-width one, c(k(x, X) u(t)) (`gantk.dynamics`), at the same time t = steps · lr.

- 1-D (`data.dim = 1`): one panel per loss, c(f_t) of every width against the ∞ curve.
- 2-D (`data.dim = 2`): per loss, heat maps of each width and of ∞, and |finite − ∞|.

Outputs in the work dir: `adequacy.png`, `curves.csv` (loss, width, x…, c; the first seed of
each width and the infinite-width values), `errors.csv` (max over the grid of
|c_finite − c_∞| per loss and width, mean and spread over `n_seeds` networks) and
`config.json`.

gantk adequacy --config adequacy_1d --workdir runs/adequacy_1d
gantk adequacy --config adequacy_2d --workdir runs/adequacy_2d
"""

from __future__ import annotations

import csv
import logging
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gantk import dynamics
from gantk.finite import make_finite_discriminator, num_sgd_steps
from gantk.kernels import make_kernel
from generative.core import config as config_lib

logger = logging.getLogger(__name__)

__all__ = ["adequacy_points", "adequacy_grid", "infinite_generator_loss", "run_adequacy"]


def adequacy_points(config: ml_collections.ConfigDict, dtype) -> tuple[jax.Array, jax.Array]:
    """fakes [N, d] ~ N(fake_center e_1, std² I), reals [M, d] ~ N(real_center e_1, std² I)."""
    dc = config.data
    d = int(dc.dim)
    key = jax.random.PRNGKey(config.seed)
    e1 = jnp.zeros((1, d), dtype).at[0, 0].set(1.0)  # [1, d]
    fakes = dc.fake_center * e1 + dc.std * jax.random.normal(
        jax.random.fold_in(key, 1), (dc.n_fake, d), dtype
    )
    reals = dc.real_center * e1 + dc.std * jax.random.normal(
        jax.random.fold_in(key, 2), (dc.n_real, d), dtype
    )
    return fakes, reals


def adequacy_grid(dim: int, extent: float, size: int, dtype) -> jax.Array:
    """[size^dim, dim] points of [−extent, extent]^dim (x varies fastest in 2-D)."""
    xs = jnp.linspace(-extent, extent, size, dtype=dtype)
    if dim == 1:
        return xs[:, None]
    gx, gy = jnp.meshgrid(xs, xs, indexing="xy")
    return jnp.stack([gx.ravel(), gy.ravel()], 1)


def infinite_generator_loss(
    config: ml_collections.ConfigDict,
    loss_name: str,
    fakes: jax.Array,
    reals: jax.Array,
    grid: jax.Array,
    t: float,
) -> jax.Array:
    """c(f_t(x)) [G] of the infinite-width discriminator, f_t(x) = k(x, X) u(t)."""
    k = make_kernel(config.kernel)
    gan = dynamics.gan_loss(loss_name, config.loss.generator_target)
    X = jnp.concatenate([fakes, reals])
    u = dynamics.dual_coefficients(
        loss_name,
        k(X, X),
        fakes.shape[0],
        reals.shape[0],
        t,
        method=config.loss.method,
        generator_target=config.loss.generator_target,
        dtype=fakes.dtype,
    )
    return gan.c(k(grid, X) @ u)


def _finite_generator_losses(config, width, fakes, reals, grid) -> jax.Array:
    """c(f_t(x)) [n_losses, n_seeds, G] of `n_seeds` SGD-trained networks of one width, for
    every loss of `loss.names` (each seed's network is the same initialisation for all
    losses); one compilation."""
    kcfg = ml_collections.ConfigDict(config.kernel.to_dict())
    kcfg.width = int(width)
    discs = [
        make_finite_discriminator(
            kcfg,
            loss=name,
            t=float(config.loss.t),
            lr=float(config.optimizer.lr),
            antisymmetric=bool(config.discriminator.antisymmetric),
            momentum=float(config.optimizer.momentum),
            generator_target=config.loss.generator_target,
        )
        for name in config.loss.names
    ]
    in_shape = (-1, fakes.shape[1])

    def one(key):  # [n_losses, G]
        out = []
        for disc in discs:
            state = disc.train(disc.init(key, in_shape, fakes.dtype), fakes, reals)
            out.append(disc.loss.c(disc.apply(state.params, grid)))
        return jnp.stack(out)

    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), int(width))
    keys = jax.random.split(key, int(config.n_seeds))
    return jnp.swapaxes(jax.jit(jax.vmap(one))(keys), 0, 1)


def _validate(config: ml_collections.ConfigDict) -> None:
    for name in config.loss.names:
        if name not in dynamics.LOSSES:
            raise ValueError(f"unknown loss '{name}'; valid: {', '.join(dynamics.LOSSES)}")
    if not config.loss.names:
        raise ValueError(f"loss.names is empty; valid: {', '.join(dynamics.LOSSES)}")
    if config.loss.method not in dynamics.METHODS:
        raise ValueError(
            f"unknown loss.method '{config.loss.method}'; valid: {', '.join(dynamics.METHODS)}"
        )
    if int(config.data.dim) not in (1, 2):
        raise ValueError(f"unknown data.dim {config.data.dim}; valid: 1, 2")
    if not config.widths or any(int(w) <= 0 for w in config.widths):
        raise ValueError(f"widths must be positive integers, got {tuple(config.widths)}")
    if config.n_seeds < 1:
        raise ValueError(f"n_seeds must be >= 1, got {config.n_seeds}")
    if config.optimizer.name != "sgd":
        raise ValueError(f"unknown optimizer.name '{config.optimizer.name}'; valid: sgd")


def run_adequacy(config: ml_collections.ConfigDict, workdir: str | pathlib.Path) -> dict:
    """Train every width, compare with ∞, write the figure and CSVs; returns the error table."""
    _validate(config)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config_lib.save(config, workdir)
    dtype = jnp.float64 if config.dtype == "float64" else jnp.float32
    dim = int(config.data.dim)
    fakes, reals = adequacy_points(config, dtype)
    grid = adequacy_grid(dim, float(config.plot.extent), int(config.plot.grid_size), dtype)
    steps = num_sgd_steps(float(config.loss.t), float(config.optimizer.lr))
    t = steps * float(config.optimizer.lr)  # the time SGD actually reaches

    curves: dict[str, dict] = {}  # loss -> {width | "inf": c [G]}
    for name in config.loss.names:
        c_inf = infinite_generator_loss(config, name, fakes, reals, grid, t)
        curves[name] = {"inf": np.asarray(c_inf)}
    errors: list[dict] = []
    for width in config.widths:
        c_all = np.asarray(_finite_generator_losses(config, width, fakes, reals, grid))
        for name, c_fin in zip(config.loss.names, c_all):  # c_fin [n_seeds, G]
            if not np.all(np.isfinite(c_fin)):
                raise FloatingPointError(
                    f"{name}, width {width}: non-finite discriminator; lower optimizer.lr"
                )
            err = np.max(np.abs(c_fin - curves[name]["inf"][None]), axis=1)  # [n_seeds]
            curves[name][int(width)] = c_fin[0]
            errors.append(
                dict(
                    loss=name,
                    width=int(width),
                    max_abs_error_mean=float(err.mean()),
                    max_abs_error_std=float(err.std()),
                    max_abs_error_first=float(err[0]),
                    n_seeds=int(config.n_seeds),
                    sgd_steps=steps,
                    t=t,
                )
            )
            if config.progress:
                logger.info(
                    "adequacy %s width %d: max |c_finite − c_∞| = %.4g ± %.2g (%d seeds, %d steps)",
                    name,
                    width,
                    err.mean(),
                    err.std(),
                    config.n_seeds,
                    steps,
                )
    errors.sort(key=lambda e: (list(config.loss.names).index(e["loss"]), e["width"]))

    grid_np, fakes_np, reals_np = np.asarray(grid), np.asarray(fakes), np.asarray(reals)
    _write_csvs(workdir, curves, errors, grid_np)
    if dim == 1:
        _plot_1d(workdir / "adequacy.png", config, curves, errors, grid_np, fakes_np, reals_np, t)
    else:
        _plot_2d(workdir / "adequacy.png", config, curves, errors, grid_np, fakes_np, reals_np, t)
    return {"errors": errors, "figure": str(workdir / "adequacy.png")}


def _write_csvs(workdir: pathlib.Path, curves, errors, grid: np.ndarray) -> None:
    coords = [f"x{i}" for i in range(grid.shape[1])]
    with open(workdir / "curves.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["loss", "width", *coords, "c"])
        for name, by_width in curves.items():
            for width, values in by_width.items():
                for p, v in zip(grid, values):
                    w.writerow([name, width, *(f"{a:.6g}" for a in p), f"{v:.8g}"])
    with open(workdir / "errors.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(errors[0]))
        w.writeheader()
        w.writerows(errors)


_C_LABEL = {
    "ipm": "c(f) = f",
    "lsgan": "c(f) = f²",
    "vanilla": "c(f) = −log σ(f)",
    "hinge": "c(f) = −f",
}


def _c_label(config, name: str) -> str:
    if name == "lsgan" and config.loss.generator_target == "one":
        return "c(f) = (f − 1)²"
    return _C_LABEL[name]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_1d(path, config, curves, errors, grid, fakes, reals, t) -> None:
    plt = _plt()
    names = list(curves)
    fig, axes = plt.subplots(1, len(names), figsize=(5.6 * len(names), 3.9), dpi=130, squeeze=False)
    x = grid[:, 0]
    widths = [int(w) for w in config.widths]
    colors = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(widths)))
    markers = [">", "P", "s", "D", "o", "^", "v", "<"]
    err = {(e["loss"], e["width"]): e for e in errors}
    for ax, name in zip(axes[0], names):
        for i, w in enumerate(widths):
            e = err[(name, w)]
            ax.plot(
                x,
                curves[name][w],
                color=colors[i],
                marker=markers[i % len(markers)],
                markevery=max(1, len(x) // 10),
                markersize=5,
                lw=1.4,
                label=f"{w}  (max err {e['max_abs_error_mean']:.2g})",
            )
        ax.plot(x, curves[name]["inf"], color="k", lw=2.2, ls="--", label="∞")
        lo, hi = ax.get_ylim()
        base = lo - 0.06 * (hi - lo)
        ax.scatter(
            fakes[:, 0],
            np.full(len(fakes), base),
            70,
            c="tab:blue",
            marker="^",
            label="fake points",
            zorder=5,
            clip_on=False,
        )
        ax.scatter(
            reals[:, 0],
            np.full(len(reals), base),
            70,
            c="tab:red",
            marker="v",
            label="real points",
            zorder=5,
            clip_on=False,
        )
        ax.set_ylim(base - 0.04 * (hi - lo), hi)
        ax.grid(ls="--", alpha=0.5)
        ax.set_xlabel("x")
        ax.set_ylabel("generator loss c(f_t(x))")
        ax.set_title(f"{name.upper()}: {_c_label(config, name)}, t = {t:g}", fontsize=10)
        ax.legend(title="width (mean over seeds)", fontsize=7, title_fontsize=7, loc="best")
    fig.suptitle(
        f"Finite widths (SGD, lr {config.optimizer.lr:g}, antisymmetric init) vs infinite width — "
        f"{config.kernel.architecture} network, depth {config.kernel.depth}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_2d(path, config, curves, errors, grid, fakes, reals, t) -> None:
    plt = _plt()
    names = list(curves)
    widths = [int(w) for w in config.widths]
    ncol = len(widths) + 2
    size = int(config.plot.grid_size)
    ext = float(config.plot.extent)
    fig, axes = plt.subplots(
        len(names), ncol, figsize=(4.1 * ncol, 3.7 * len(names)), dpi=120, squeeze=False
    )
    err = {(e["loss"], e["width"]): e for e in errors}
    for row, name in zip(axes, names):
        maps = [curves[name][w] for w in widths] + [curves[name]["inf"]]
        vmin = min(float(m.min()) for m in maps)
        vmax = max(float(m.max()) for m in maps)
        titles = [f"width {w}" for w in widths] + ["width ∞ (NTK)"]
        for ax, m, title in zip(row, maps, titles):
            im = ax.imshow(
                m.reshape(size, size),
                extent=(-ext, ext, -ext, ext),
                origin="lower",
                cmap="coolwarm",
                vmin=vmin,
                vmax=vmax,
                interpolation="bilinear",
            )
            ax.set_title(f"{name.upper()} c(f_t): {title}", fontsize=9)
        fig.colorbar(im, ax=row[: ncol - 1].tolist(), shrink=0.85, label=_c_label(config, name))
        diff = np.abs(curves[name][widths[-1]] - curves[name]["inf"])
        im = row[-1].imshow(
            diff.reshape(size, size),
            extent=(-ext, ext, -ext, ext),
            origin="lower",
            cmap="magma",
            interpolation="bilinear",
        )
        e = err[(name, widths[-1])]["max_abs_error_first"]
        row[-1].set_title(f"|width {widths[-1]} − ∞| (max {e:.2g})", fontsize=9)
        fig.colorbar(im, ax=row[-1], shrink=0.85)
        for ax in row:
            ax.scatter(
                fakes[:, 0],
                fakes[:, 1],
                18,
                c="tab:blue",
                marker="^",
                edgecolors="w",
                linewidths=0.5,
                label="fake points",
            )
            ax.scatter(
                reals[:, 0],
                reals[:, 1],
                18,
                c="tab:red",
                marker="v",
                edgecolors="w",
                linewidths=0.5,
                label="real points",
            )
            ax.set_xlim(-ext, ext)
            ax.set_ylim(-ext, ext)
            ax.set_xlabel("x₁")
        row[0].set_ylabel("x₂")
        row[0].legend(loc="lower left", fontsize=7)
    fig.suptitle(
        f"Generator loss of SGD-trained finite discriminators vs infinite width, t = {t:g}"
        f" ({config.kernel.architecture}, depth {config.kernel.depth}, lr {config.optimizer.lr:g})",
        fontsize=10,
    )
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
