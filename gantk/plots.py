"""Pictures of a flow: targets, particles, heat map of c(f_t), arrows of −∇c; animation."""

from __future__ import annotations

import pathlib

import numpy as np

__all__ = ["grid_points", "draw_frame", "flow_outputs"]


def grid_points(extent: float, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xs [size], ys [size], points [size², 2]) covering [−extent, extent]²."""
    xs = np.linspace(-extent, extent, size)
    gx, gy = np.meshgrid(xs, xs, indexing="xy")
    return xs, xs, np.stack([gx.ravel(), gy.ravel()], 1)


def draw_frame(
    ax, flow, particles: np.ndarray, title: str, extent: float, size: int, disc_params=()
) -> None:
    """Targets, particles and (unless `disc_params` is None) the heat map and arrows."""
    import jax.numpy as jnp

    xs, ys, pts = grid_points(extent, size)
    if disc_params is not None:
        values, neg_grad = flow._field(
            jnp.asarray(pts, flow.dtype), jnp.asarray(particles, flow.dtype), disc_params
        )
        values = np.asarray(values).reshape(size, size)
        neg_grad = np.asarray(neg_grad).reshape(size, size, 2)
        ax.imshow(
            values,
            extent=(xs[0], xs[-1], ys[0], ys[-1]),
            origin="lower",
            cmap="coolwarm",
            alpha=0.85,
            interpolation="bilinear",
        )
        q = max(1, size // 16)
        ax.quiver(
            xs[::q], ys[::q], neg_grad[::q, ::q, 0], neg_grad[::q, ::q, 1],
            color="k", alpha=0.6, width=0.003,
        )  # fmt: skip
    t = np.asarray(flow.targets)
    ax.scatter(t[:, 0], t[:, 1], s=4, c="tab:green", label="targets", alpha=0.7)
    ax.scatter(particles[:, 0], particles[:, 1], s=4, c="tab:purple", label="particles", alpha=0.8)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def flow_outputs(flow, state, workdir: pathlib.Path) -> dict:
    """Write `final.png` and `flow.gif` (from the saved trajectory) into `workdir`."""
    import imageio.v2 as imageio
    import jax
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ev = flow.config.eval
    if flow.image_shape is not None:
        return image_outputs(flow, state, workdir)
    extent, size = float(ev.extent), int(ev.grid_size)
    final = np.asarray(jax.device_get(state.particles))
    step = int(jax.device_get(state.step))
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    params = jax.device_get(state.discriminator.params) if flow.finite else ()
    draw_frame(ax, flow, final, f"step {step}: heat map c(f_t), arrows −∇c", extent, size, params)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(workdir / "final.png")
    plt.close(fig)

    files = sorted((workdir / "trajectory").glob("*.npy"))
    if len(files) > ev.max_frames:
        idx = np.unique(np.linspace(0, len(files) - 1, int(ev.max_frames)).round().astype(int))
        files = [files[i] for i in idx]
    frames = []
    for f in files:
        fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
        # finite width: the discriminator of past steps is not stored, so particles only
        frame_params = None if flow.finite else ()
        draw_frame(ax, flow, np.load(f), f"step {int(f.stem)}", extent, size, frame_params)
        fig.tight_layout()
        fig.canvas.draw()
        frames.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
        plt.close(fig)
    if frames:
        imageio.mimsave(workdir / "flow.gif", frames, duration=0.15, loop=0)
    return {"figure": str(workdir / "final.png"), "animation": str(workdir / "flow.gif")}


def _points_grid(points: np.ndarray, image_shape, columns: int = 8) -> np.ndarray:
    """[n, D] points in [−1, 1] -> one [rows·H, columns·W, C] image in [0, 1]."""
    from generative.plots import image_grid

    h, w, c = image_shape
    n = (len(points) // columns) * columns or len(points)
    imgs = np.clip((np.asarray(points[:n]).reshape(n, h, w, c) + 1) / 2, 0, 1)
    return image_grid(imgs, columns)


def image_outputs(flow, state, workdir: pathlib.Path) -> dict:
    """Image flows: `images.png` (64 particles and 16 targets) and `flow.gif` of the grids."""
    import imageio.v2 as imageio
    import jax

    final = np.asarray(jax.device_get(state.particles))
    to_uint8 = lambda g: (np.repeat(g, 3, -1) if g.shape[-1] == 1 else g) * 255

    grid = _points_grid(final[:64], flow.image_shape)
    targets = _points_grid(np.asarray(flow.targets)[:16], flow.image_shape)
    imageio.imwrite(workdir / "images.png", to_uint8(grid).astype(np.uint8))
    imageio.imwrite(workdir / "targets.png", to_uint8(targets).astype(np.uint8))
    files = sorted((workdir / "trajectory").glob("*.npy"))
    if len(files) > flow.config.eval.max_frames:
        idx = np.linspace(0, len(files) - 1, int(flow.config.eval.max_frames)).round().astype(int)
        files = [files[i] for i in np.unique(idx)]
    frames = [
        to_uint8(_points_grid(np.load(f)[:64], flow.image_shape)).astype(np.uint8) for f in files
    ]
    if frames:
        imageio.mimsave(workdir / "flow.gif", frames, duration=0.2, loop=0)
    return {"figure": str(workdir / "images.png"), "animation": str(workdir / "flow.gif")}
