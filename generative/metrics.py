"""Distances between empirical distributions: Sinkhorn divergence, energy distance, MMD, modes."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "sinkhorn_divergence",
    "exact_ot_cost",
    "energy_distance",
    "mmd2",
    "mode_coverage",
]


def _pairwise_sq(x: jax.Array, y: jax.Array) -> jax.Array:
    """[n, m] squared Euclidean distances."""
    return (jnp.sum(x * x, -1)[:, None] + jnp.sum(y * y, -1)[None, :] - 2.0 * x @ y.T).clip(0.0)


def sinkhorn_divergence(
    x: jax.Array,
    y: jax.Array,
    epsilon: float = 0.1,
    *,
    max_iterations: int = 2000,
    threshold: float = 1e-3,
) -> jax.Array:
    """Debiased Sinkhorn divergence between uniform clouds `x` [n, d] and `y` [m, d].

    Cost ½‖x − y‖² (as geomloss with p = 2), entropic regularisation `epsilon` on that cost,
    reached by ε-annealing (geometric decay from a large value) with ott-jax. As ε → 0 it
    tends to the exact optimal-transport cost ½W₂²; at ε = 0.1 on the 8-Gaussian setting it
    is within 0.1 % of it (see tests). Much smaller ε (the paper's 1e-6) does not converge
    in float32.
    """
    from ott.geometry import epsilon_scheduler, pointcloud
    from ott.tools import sinkhorn_divergence as sd

    x = x.reshape(x.shape[0], -1)
    y = y.reshape(y.shape[0], -1)
    # ott's point-cloud cost is ‖x − y‖²: doubling ε and halving the result gives ½‖x − y‖².
    scale = jnp.maximum(jnp.max(_pairwise_sq(x[:256], y[:256])), 4.0 * epsilon)
    eps = epsilon_scheduler.Epsilon(
        target=2.0 * epsilon, init=jax.lax.stop_gradient(scale), decay=0.9
    )
    with jax.numpy_rank_promotion("allow"):  # ott-jax relies on implicit rank promotion
        value, _ = sd.sinkhorn_divergence(
            pointcloud.PointCloud,
            x,
            y,
            epsilon=eps,
            static_b=False,
            solve_kwargs=dict(max_iterations=max_iterations, threshold=threshold),
        )
    return 0.5 * value


def exact_ot_cost(x: np.ndarray, y: np.ndarray) -> float:
    """Exact ½W₂² between two uniform clouds of the same size (assignment problem, scipy)."""
    from scipy.optimize import linear_sum_assignment

    x = np.asarray(x, np.float64).reshape(len(x), -1)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    if len(x) != len(y):
        raise ValueError(f"exact_ot_cost needs clouds of equal size, got {len(x)} and {len(y)}")
    cost = ((x[:, None] - y[None]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    return float(0.5 * cost[rows, cols].mean())


def energy_distance(x: jax.Array, y: jax.Array) -> jax.Array:
    """2E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖ (V-statistic, includes the zero diagonal)."""
    x = x.reshape(x.shape[0], -1)
    y = y.reshape(y.shape[0], -1)

    def mean_dist(a, b):
        return jnp.mean(jnp.sqrt(_pairwise_sq(a, b) + 1e-30))

    return 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)


def mmd2(kernel: Callable[[jax.Array, jax.Array], jax.Array], x: jax.Array, y: jax.Array):
    """Biased (V-statistic) MMD² = E k(x,x') + E k(y,y') − 2 E k(x,y) for any kernel."""
    return jnp.mean(kernel(x, x)) + jnp.mean(kernel(y, y)) - 2 * jnp.mean(kernel(x, y))


def mode_coverage(
    x: jax.Array, centers: jax.Array, std: float, *, threshold_std: float = 3.0
) -> dict[str, jax.Array]:
    """Modes of an isotropic mixture reached by the samples `x`.

    Each sample is assigned to its most responsible component (the nearest centre, for equal
    weights and variances). A mode counts as covered if at least one sample is assigned to it
    (seed 003's rule); `high_quality` is the fraction of samples within `threshold_std`
    standard deviations of their centre.
    """
    d2 = _pairwise_sq(x.reshape(x.shape[0], -1), centers)
    nearest = jnp.argmin(d2, axis=1)
    counts = jnp.zeros(centers.shape[0], jnp.int32).at[nearest].add(1)
    close = jnp.sqrt(jnp.min(d2, axis=1)) <= threshold_std * std
    return {"modes": jnp.sum(counts > 0), "high_quality": jnp.mean(close)}
