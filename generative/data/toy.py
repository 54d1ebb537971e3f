"""2-D toy distributions: Gaussian mixtures (8 on a circle, 25 on a grid) and friends.

`grid` and `ring` are the mode-coverage benchmarks of the ALI / VEEGAN / PacGAN papers: 25
Gaussians with means {−4, −2, 0, 2, 4}² and σ = 0.05, and 8 Gaussians on the unit circle with
σ = 0.01. `MIXTURES[name]` gives (centres, σ) of every mixture, for the mode metrics. All
samplers are pure functions of a key, so they run inside compiled training steps.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "eight_gaussians_centers",
    "grid_gaussians_centers",
    "sample_mixture",
    "eight_gaussians",
    "twenty_five_gaussians",
    "two_moons",
    "standard_normal",
    "ring",
    "grid",
    "checkerboard",
    "swiss_roll",
    "MIXTURES",
    "mixture",
    "TOY_DATASETS",
    "sample_toy",
]


def eight_gaussians_centers(radius: float = 5.0, modes: int = 8) -> jax.Array:
    """[modes, 2] centres evenly spaced on a circle, the first on the positive x axis."""
    angles = 2 * math.pi * jnp.arange(modes) / modes
    return radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1)


def grid_gaussians_centers(size: int = 5, spacing: float = 2.0) -> jax.Array:
    """[size², 2] centres on a centred square grid."""
    coords = (jnp.arange(size) - (size - 1) / 2) * spacing
    gx, gy = jnp.meshgrid(coords, coords, indexing="ij")
    return jnp.stack([gx.ravel(), gy.ravel()], axis=1)


def sample_mixture(key: jax.Array, n: int, centers: jax.Array, std: float) -> jax.Array:
    """[n, d] samples of an equal-weight isotropic Gaussian mixture."""
    k1, k2 = jax.random.split(key)
    idx = jax.random.randint(k1, (n,), 0, centers.shape[0])
    return centers[idx] + std * jax.random.normal(k2, (n, centers.shape[1]))


def eight_gaussians(key, n: int, radius: float = 5.0, std: float = 0.5) -> jax.Array:
    return sample_mixture(key, n, eight_gaussians_centers(radius), std)


def twenty_five_gaussians(key, n: int, spacing: float = 2.0, std: float = 0.05) -> jax.Array:
    return sample_mixture(key, n, grid_gaussians_centers(5, spacing), std)


def two_moons(key, n: int, noise: float = 0.05) -> jax.Array:
    k1, k2, k3 = jax.random.split(key, 3)
    t = jax.random.uniform(k1, (n,)) * math.pi
    upper = jax.random.bernoulli(k2, 0.5, (n,))
    x = jnp.where(upper, jnp.cos(t), 1 - jnp.cos(t))
    y = jnp.where(upper, jnp.sin(t), 0.5 - jnp.sin(t))
    return jnp.stack([x, y], 1) + noise * jax.random.normal(k3, (n, 2))


def standard_normal(key, n: int, dim: int = 2) -> jax.Array:
    return jax.random.normal(key, (n, dim))


def ring(key, n: int) -> jax.Array:
    """8 Gaussians on the unit circle, σ = 0.01 (VEEGAN / PacGAN "2D-ring")."""
    return sample_mixture(key, n, eight_gaussians_centers(1.0), 0.01)


def grid(key, n: int) -> jax.Array:
    """25 Gaussians, means {−4, −2, 0, 2, 4}², σ = 0.05 (ALI / VEEGAN / PacGAN "2D-grid")."""
    return sample_mixture(key, n, grid_gaussians_centers(5, 2.0), 0.05)


def checkerboard(key, n: int) -> jax.Array:
    """Uniform on the 8 dark squares (side 2) of a 4×4 checkerboard over [−4, 4]².

    The density is 1/32 on its support, so its entropy is ln 32 = 3.4657 nats."""
    k1, k2 = jax.random.split(key)
    cell = jax.random.randint(k1, (n,), 0, 8)
    row = cell // 2
    col = 2 * (cell % 2) + (row % 2)  # alternate columns from row to row
    corner = jnp.stack([col, row], 1).astype(jnp.float32) * 2.0 - 4.0
    return corner + 2.0 * jax.random.uniform(k2, (n, 2))


def swiss_roll(key, n: int, noise: float = 0.25) -> jax.Array:
    """2-D swiss roll: t ~ U(1.5π, 4.5π), (t cos t, t sin t) / 2 plus Gaussian noise."""
    k1, k2 = jax.random.split(key)
    t = 1.5 * math.pi * (1 + 2 * jax.random.uniform(k1, (n,)))
    x = jnp.stack([t * jnp.cos(t), t * jnp.sin(t)], 1) / 2.0
    return x + noise * jax.random.normal(k2, (n, 2))


TOY_DATASETS = {
    "eight_gaussians": eight_gaussians,
    "twenty_five_gaussians": twenty_five_gaussians,
    "two_moons": two_moons,
    "standard_normal": standard_normal,
    "ring": ring,
    "grid": grid,
    "checkerboard": checkerboard,
    "swiss_roll": swiss_roll,
}


def _circle(radius: float, modes: int = 8) -> np.ndarray:
    a = 2 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(a), np.sin(a)], 1)


def _square_grid(size: int, spacing: float) -> np.ndarray:
    c = (np.arange(size) - (size - 1) / 2) * spacing
    gx, gy = np.meshgrid(c, c, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel()], 1)


# (centres [M, 2] numpy float32, σ) of the isotropic equal-weight mixtures, for the mode
# metrics; the same centres as the samplers above use.
MIXTURES: dict[str, tuple[np.ndarray, float]] = {
    "eight_gaussians": (_circle(5.0).astype(np.float32), 0.5),
    "twenty_five_gaussians": (_square_grid(5, 2.0).astype(np.float32), 0.05),
    "ring": (_circle(1.0).astype(np.float32), 0.01),
    "grid": (_square_grid(5, 2.0).astype(np.float32), 0.05),
}


def mixture(name: str) -> tuple[np.ndarray, float]:
    """(centres [M, 2], σ) of a mixture toy, for `generative.metrics.mode_coverage`."""
    if name not in MIXTURES:
        raise ValueError(f"'{name}' is not a Gaussian mixture; mixtures: {', '.join(MIXTURES)}")
    return MIXTURES[name]


def sample_toy(name: str, key: jax.Array, n: int) -> jax.Array:
    """[n, 2] samples of the toy distribution `name` (one of `TOY_DATASETS`)."""
    if name not in TOY_DATASETS:
        raise ValueError(f"unknown toy dataset '{name}'; valid: {', '.join(TOY_DATASETS)}")
    return TOY_DATASETS[name](key, n)
