"""Figures written next to a run's metrics: image grids, 2-D scatter and density plots, and
training animations assembled from sample snapshots saved at logging steps.

Snapshots are files (`<workdir>/snapshots/<step>.npy`), so an animation covers the whole run
even when it was resumed. Everything here runs on the host with matplotlib's Agg backend.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import numpy as np

__all__ = [
    "image_grid",
    "save_image_grid",
    "scatter_frame",
    "image_grid_frame",
    "save_scatter",
    "save_density",
    "save_density_grid",
    "save_snapshot",
    "load_snapshots",
    "snapshots_gif",
]


def image_grid(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """[n, H, W, C] images -> one [rows·H, columns·W, C] image (the last partial row dropped
    when there is at least one full row)."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"image_grid expects images [n, H, W, C], got shape {images.shape}")
    n, h, w, c = images.shape
    columns = max(1, min(columns, n))
    rows = max(1, n // columns)
    grid = images[: rows * columns].reshape(rows, columns, h, w, c)
    return grid.transpose(0, 2, 1, 3, 4).reshape(rows * h, columns * w, c)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """[H, W, C] in [0, 1] -> [H, W, 3] uint8 (grey repeated)."""
    image = np.clip(np.asarray(image, np.float64), 0.0, 1.0)
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, -1)
    return (image * 255 + 0.5).astype(np.uint8)


def image_grid_frame(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """[n, H, W, C] images in [0, 1] -> an [H', W', 3] uint8 grid."""
    return _to_uint8(image_grid(images, columns))


def save_image_grid(path, images: np.ndarray, columns: int = 8) -> pathlib.Path:
    """Write [n, H, W, C] images in [0, 1] as one PNG grid."""
    import imageio.v2 as imageio

    path = pathlib.Path(path)
    imageio.imwrite(path, image_grid_frame(images, columns))
    return path


def _figure(size: float = 4.0, dpi: int = 100):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size, size), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _extent(samples: np.ndarray, data: np.ndarray | None, extent: float | None) -> float:
    if extent is not None:
        return float(extent)
    pts = samples if data is None else np.concatenate([samples, data])
    finite = pts[np.isfinite(pts).all(1)]
    return float(np.abs(finite).max() * 1.1) if len(finite) else 1.0


def _scatter(fig, samples, data, extent, title):
    ax = fig.add_subplot(1, 1, 1)
    if data is not None:
        ax.scatter(data[:, 0], data[:, 1], s=2, c="tab:green", alpha=0.5, label="data")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:purple", alpha=0.6, label="samples")
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7, markerscale=4)
    fig.tight_layout()


def scatter_frame(
    samples: np.ndarray, data: np.ndarray | None = None, extent: float | None = None, title=""
) -> np.ndarray:
    """2-D samples (and data) as an [H, W, 3] uint8 picture."""
    samples = np.asarray(samples, np.float64)
    data = None if data is None else np.asarray(data, np.float64)
    fig = _figure(4.0, 80)
    _scatter(fig, samples, data, _extent(samples, data, extent), title)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def save_scatter(
    path, samples: np.ndarray, data: np.ndarray | None = None, extent: float | None = None, title=""
) -> pathlib.Path:
    """Write a scatter plot of 2-D samples over the data."""
    samples = np.asarray(samples, np.float64)
    data = None if data is None else np.asarray(data, np.float64)
    fig = _figure(5.0, 120)
    _scatter(fig, samples, data, _extent(samples, data, extent), title)
    path = pathlib.Path(path)
    fig.savefig(path)
    return path


def save_density(
    path, samples: np.ndarray, extent: float | None = None, bins: int = 100, title=""
) -> pathlib.Path:
    """Write a 2-D histogram (log density scale) of samples on [−extent, extent]²."""
    from matplotlib.colors import LogNorm

    samples = np.asarray(samples, np.float64)
    extent = _extent(samples, None, extent)
    fig = _figure(5.0, 120)
    ax = fig.add_subplot(1, 1, 1)
    edges = np.linspace(-extent, extent, bins + 1)
    hist, _, _ = np.histogram2d(samples[:, 0], samples[:, 1], bins=(edges, edges), density=True)
    positive = hist[hist > 0]
    norm = LogNorm(positive.min(), positive.max()) if positive.size else None
    ax.imshow(
        np.where(hist.T > 0, hist.T, np.nan),
        extent=(-extent, extent, -extent, extent),
        origin="lower",
        cmap="magma",
        norm=norm,
        interpolation="nearest",
    )
    ax.set_facecolor("black")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path)
    return path


def save_snapshot(workdir, step: int, array) -> pathlib.Path:
    """Save `array` as `<workdir>/snapshots/<step>.npy` (a frame of the training animation)."""
    folder = pathlib.Path(workdir) / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{int(step):09d}.npy"
    np.save(path, np.asarray(array))
    return path


def load_snapshots(workdir, max_frames: int | None = None) -> list[tuple[int, np.ndarray]]:
    """(step, array) of the saved snapshots in step order, evenly thinned to `max_frames`."""
    files = sorted((pathlib.Path(workdir) / "snapshots").glob("*.npy"))
    if max_frames is not None and len(files) > max_frames:
        idx = np.unique(np.linspace(0, len(files) - 1, max_frames).round().astype(int))
        files = [files[i] for i in idx]
    return [(int(f.stem), np.load(f)) for f in files]


def snapshots_gif(
    workdir,
    path,
    render: Callable[[np.ndarray, int], np.ndarray],
    max_frames: int = 60,
    duration: float = 0.15,
) -> pathlib.Path | None:
    """Write an animated GIF of `render(array, step)` over the saved snapshots (None if there
    are none)."""
    import imageio.v2 as imageio

    frames = [render(a, s) for s, a in load_snapshots(workdir, max_frames)]
    if not frames:
        return None
    path = pathlib.Path(path)
    imageio.mimsave(path, frames, duration=duration, loop=0)
    return path


def save_density_grid(
    path, density: np.ndarray, extent: float, title: str = "", log: bool = False
) -> pathlib.Path:
    """Write a density given on a regular grid over [−extent, extent]²: density [G, G] with
    row i at y_i and column j at x_j (both ascending, cell centres), e.g. exp(log p) of a
    model; `log=True` shows log density."""
    density = np.asarray(density, np.float64)
    if density.ndim != 2:
        raise ValueError(f"save_density_grid expects a [G, G] array, got shape {density.shape}")
    fig = _figure(5.0, 120)
    ax = fig.add_subplot(1, 1, 1)
    shown = np.log(np.maximum(density, 1e-300)) if log else density
    ax.imshow(
        shown,
        extent=(-extent, extent, -extent, extent),
        origin="lower",
        cmap="magma",
        interpolation="nearest",
    )
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = pathlib.Path(path)
    fig.savefig(path)
    return path
