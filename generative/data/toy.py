"""2-D toy distributions: Gaussian mixtures (8 on a circle, 25 on a grid) and friends."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = [
    "eight_gaussians_centers",
    "grid_gaussians_centers",
    "sample_mixture",
    "eight_gaussians",
    "twenty_five_gaussians",
    "two_moons",
    "standard_normal",
    "TOY_DATASETS",
    "sample_toy",
]


def eight_gaussians_centers(radius: float = 5.0) -> jax.Array:
    """[8, 2] centres on a circle."""
    angles = 2 * math.pi * jnp.arange(8) / 8
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


TOY_DATASETS = {
    "eight_gaussians": eight_gaussians,
    "twenty_five_gaussians": twenty_five_gaussians,
    "two_moons": two_moons,
    "standard_normal": standard_normal,
}


def sample_toy(name: str, key: jax.Array, n: int) -> jax.Array:
    if name not in TOY_DATASETS:
        raise ValueError(f"unknown toy dataset '{name}'; valid: {', '.join(TOY_DATASETS)}")
    return TOY_DATASETS[name](key, n)
