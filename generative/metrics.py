"""Metrics shared by the packages.

Frames: PSNR = 10 log10(1 / MSE) per frame (MSE over pixels and channels), SSIM with an 11×11
Gaussian window (σ = 1.5), valid filtering, k1 = 0.01, k2 = 0.03, data range 1 — equal to
`skimage.metrics.structural_similarity(gaussian_weights=True, use_sample_covariance=False,
data_range=1, channel_axis=-1)`. Features: the Fréchet distance (FID / FVD). Distributions:
Sinkhorn divergence, exact OT cost, energy distance, MMD, 1-D Wasserstein-1, mode coverage.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "psnr",
    "ssim",
    "gaussian_window",
    "frechet_distance",
    "sinkhorn_divergence",
    "exact_ot_cost",
    "energy_distance",
    "mmd2",
    "wasserstein_1d",
    "mode_coverage",
]


# ----------------------------------------------------------------------------- frames


def psnr(x, y):
    """PSNR per frame. x, y: [..., H, W, C] in [0, 1] -> [...]."""
    mse = jnp.mean((x - y) ** 2, axis=(-3, -2, -1))
    return 10.0 * jnp.log10(1.0 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5):
    """Normalised separable Gaussian window, [size]."""
    r = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
    g = jnp.exp(-0.5 * (r / sigma) ** 2)
    return g / g.sum()


def _band(n: int, g):
    """[n, n-K+1] matrix M with (a @ M)[j] = Σ_i g[i] a[j + i] (valid filtering as a product)."""
    k = g.shape[0]
    m = n - k + 1
    d = jnp.arange(n)[:, None] - jnp.arange(m)[None, :]  # tap index of input row, output col
    return jnp.where((d >= 0) & (d < k), g[jnp.clip(d, 0, k - 1)], 0.0)


def _filter_valid(x, g):
    """Separable valid filtering of x [N, H, W] with window g [K] -> [N, H-K+1, W-K+1].

    Each pass is one 2-D matrix product with a banded matrix (full float32 precision, also
    on GPU/TPU where the default would round to TF32/bf16): on CPU SSIM runs 2.2× faster than
    with the sum of K shifted slices this replaces."""
    n, h, w = x.shape
    gw, gh = _band(w, g), _band(h, g)
    dot = lambda a, b: jnp.dot(a, b, precision=lax.Precision.HIGHEST)
    a = dot(x.reshape(n * h, w), gw).reshape(n, h, -1)  # [N, H, W']
    a = jnp.swapaxes(a, 1, 2).reshape(-1, h)  # [N·W', H]
    b = dot(a, gh).reshape(n, gw.shape[1], gh.shape[1])  # [N, W', H']
    return jnp.swapaxes(b, 1, 2)


def ssim(
    x,
    y,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
    data_range: float = 1.0,
):
    """Mean SSIM per frame (channels averaged). x, y: [..., H, W, C] -> [...]."""
    if x.ndim < 3 or x.shape != y.shape:
        raise ValueError(
            f"ssim needs two frame arrays of the same shape [..., H, W, C], got {x.shape} and "
            f"{y.shape}"
        )
    lead = x.shape[:-3]
    h, w, c = x.shape[-3:]
    if min(h, w) < win_size:
        raise ValueError(
            f"ssim: frames of {h}×{w} px are smaller than the {win_size}×{win_size} window "
            f"(valid filtering); use frames of at least {win_size} px or a smaller win_size"
        )
    to_maps = lambda a: jnp.moveaxis(a.reshape((-1, h, w, c)), -1, 1).reshape(-1, h, w)
    xs, ys = to_maps(x.astype(jnp.float32)), to_maps(y.astype(jnp.float32))  # [N·C, H, W]
    g = gaussian_window(win_size, sigma)
    maps = jnp.concatenate([xs, ys, xs * xs, ys * ys, xs * ys])  # one product per pass
    mx, my, sxx, syy, sxy = jnp.split(_filter_valid(maps, g), 5)
    vx = sxx - mx * mx
    vy = syy - my * my
    cxy = sxy - mx * my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return s.reshape(lead + (c, -1)).mean(axis=(-2, -1))


def frechet_distance(feats1, feats2) -> float:
    """Fréchet distance between Gaussians fitted to features [N, D] (float64 on the host).

    ‖μ1 − μ2‖² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^{1/2}), with tr (Σ1 Σ2)^{1/2} computed as
    tr (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}, a symmetric PSD root (eigh), stable for singular Σ.
    """
    a, b = np.asarray(feats1, np.float64), np.asarray(feats2, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be [N, D] with equal D, got {a.shape} and {b.shape}")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1 = np.cov(a, rowvar=False).reshape(a.shape[1], a.shape[1])
    s2 = np.cov(b, rowvar=False).reshape(b.shape[1], b.shape[1])

    def psd_sqrt(m):
        w, v = np.linalg.eigh((m + m.T) / 2)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    r1 = psd_sqrt(s1)
    tr_cross = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_cross)


# ----------------------------------------------------------------------------- distributions


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


def wasserstein_1d(x: jax.Array, y: jax.Array) -> jax.Array:
    """Exact Wasserstein-1 distance between the empirical distributions of 1-D samples.

    W1 = ∫₀¹ |F⁻¹(u) − G⁻¹(u)| du with the step quantile functions of the two samples: the
    integrand is constant between consecutive breakpoints k/n, k/m, so the integral is a
    finite sum (for n = m it is the mean absolute difference of the sorted samples)."""
    x, y = jnp.sort(jnp.ravel(x)), jnp.sort(jnp.ravel(y))
    n, m = x.shape[0], y.shape[0]
    dtype = jnp.result_type(x, y, jnp.float32)
    u = jnp.sort(jnp.concatenate([jnp.arange(1, n + 1) / n, jnp.arange(1, m + 1) / m]))
    u = u.astype(dtype)
    widths = jnp.diff(jnp.concatenate([jnp.zeros(1, dtype), u]))
    mid = u - widths / 2  # inside each interval: no ambiguity at the breakpoints
    qx = x[jnp.clip(jnp.ceil(mid * n).astype(jnp.int32) - 1, 0, n - 1)]
    qy = y[jnp.clip(jnp.ceil(mid * m).astype(jnp.int32) - 1, 0, m - 1)]
    return jnp.sum(widths * jnp.abs(qx - qy))


def mode_coverage(
    x: jax.Array, centers: jax.Array, std: float, *, threshold_std: float = 3.0
) -> dict[str, jax.Array]:
    """Modes of an isotropic equal-weight mixture reached by the samples `x` [n, d].

    Every sample is assigned to its nearest centre (its most responsible component, for
    equal weights and variances); it is of high quality if it lies within `threshold_std`
    standard deviations of that centre. Returns
      modes:              centres assigned at least one sample (the ALI paper's count, seed 003);
      modes_high_quality: centres that are the nearest centre of at least one high-quality
                          sample (VEEGAN / PacGAN's count);
      high_quality:       the fraction of high-quality samples (true samples of a 2-D mixture
                          give 1 − e^{−4.5} = 0.98889 for 3σ);
      reverse_kl:         KL(p̂ ‖ uniform) = Σ p̂ log(M p̂) of the histogram p̂ of the
                          high-quality samples over the M modes (PacGAN); NaN without any
                          high-quality sample.
    A sample with a non-finite coordinate (a diverged model) is assigned to no mode and is not
    of high quality.
    """
    x = x.reshape(x.shape[0], -1)
    centers = jnp.asarray(centers, x.dtype)
    finite = jnp.all(jnp.isfinite(x), axis=1)
    d2 = _pairwise_sq(jnp.where(finite[:, None], x, 0.0), centers)
    nearest = jnp.argmin(d2, axis=1)
    close = finite & (jnp.sqrt(jnp.min(d2, axis=1)) <= threshold_std * std)
    m = centers.shape[0]
    counts = jnp.zeros(m, jnp.int32).at[nearest].add(finite.astype(jnp.int32))
    good = jnp.zeros(m, jnp.int32).at[nearest].add(close.astype(jnp.int32))
    total = jnp.sum(good)
    p = good / jnp.maximum(total, 1)
    kl = jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p * m, 1.0)), 0.0))
    return {
        "modes": jnp.sum(counts > 0),
        "modes_high_quality": jnp.sum(good > 0),
        "high_quality": jnp.mean(close),
        "reverse_kl": jnp.where(total > 0, kl, jnp.nan),
    }
