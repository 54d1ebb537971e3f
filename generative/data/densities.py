"""2-D densities defined by images, built offline.

An image's darkness defines a mixture with one Gaussian per pixel on [−1, 1]² (the paper's
"Density" and "AB" sets). The reference toolkit downloaded its PNGs; here the glyphs are
rendered with the DejaVu Sans font that matplotlib ships, and the smooth pair is procedural.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["IMAGE_PAIRS", "glyph_image", "smooth_pair", "image_pair", "sample_image_density"]

IMAGE_SIZE = 64


@functools.lru_cache(maxsize=16)
def glyph_image(char: str, size: int = IMAGE_SIZE) -> np.ndarray:
    """[size, size] darkness in [0, 1] of `char` in DejaVu Sans Bold, centred."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1), dpi=size)
    canvas = FigureCanvasAgg(fig)
    fig.text(
        0.5, 0.5, char, fontsize=0.8 * size, fontfamily="DejaVu Sans", fontweight="bold",
        ha="center", va="center",
    )  # fmt: skip
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba(), dtype=np.float64)
    return 1.0 - rgba[..., :3].mean(-1) / 255.0


@functools.lru_cache(maxsize=4)
def smooth_pair(size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Two smooth procedural densities: a thick ring, and two blobs joined by a soft bar."""
    c = (np.arange(size) + 0.5) / size * 2 - 1
    x, y = np.meshgrid(c, -c, indexing="xy")
    r = np.hypot(x, y)
    ring = np.exp(-((r - 0.6) ** 2) / (2 * 0.12**2))
    blobs = np.exp(-((x + 0.5) ** 2 + (y - 0.3) ** 2) / (2 * 0.15**2)) + np.exp(
        -((x - 0.5) ** 2 + (y + 0.3) ** 2) / (2 * 0.15**2)
    )
    bar = 0.5 * np.exp(-((y + 0.6 * x) ** 2) / (2 * 0.08**2)) * (np.abs(x) < 0.5)
    return ring / ring.max(), (blobs + bar) / (blobs + bar).max()


def image_pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(source image, target image) of a named pair."""
    if name == "ab":
        return glyph_image("A"), glyph_image("B")
    if name == "density":
        return smooth_pair()
    raise ValueError(f"unknown image density pair '{name}'; valid: {', '.join(IMAGE_PAIRS)}")


IMAGE_PAIRS = ("ab", "density")


def sample_image_density(key: jax.Array, image: np.ndarray, n: int) -> jax.Array:
    """[n, 2] samples on [−1, 1]²: a pixel drawn ∝ darkness, then N(centre, (pixel/2)²)."""
    image = np.asarray(image, np.float64)
    h, w = image.shape
    probs = image.ravel() / image.sum()
    k1, k2 = jax.random.split(key)
    idx = jax.random.choice(k1, h * w, (n,), p=jnp.asarray(probs))
    rows, cols = idx // w, idx % w
    centres = jnp.stack([(cols + 0.5) / w * 2 - 1, 1 - (rows + 0.5) / h * 2], axis=1)
    return centres + (1.0 / w) * jax.random.normal(k2, (n, 2))
