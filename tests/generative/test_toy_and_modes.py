"""2-D toys and the distribution metrics of the generative families, against exact answers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from generative import metrics
from generative.data import toy


def _uniform_mixture_quantiles(pieces, n):
    """n quantile points (midpoint rule) of a mixture of uniforms [(weight, lo, hi), ...]."""
    counts = [round(w * n) for w, _, _ in pieces]
    return np.concatenate(
        [lo + (hi - lo) * (np.arange(c) + 0.5) / c for c, (_, lo, hi) in zip(counts, pieces)]
    )


def test_wasserstein_1_of_the_slide_example_is_3():
    # ¼𝟙[1,2] + ¼𝟙[3,4] + ½𝟙[9,10] against ½𝟙[5,7] (the course's example): on the quantile
    # functions the first quarter of the mass moves 3.75 on average, the second 2.25, the
    # last half 3: ¼·3.75 + ¼·2.25 + ½·3 = 3.
    with jax.enable_x64(True):
        p = _uniform_mixture_quantiles([(0.25, 1, 2), (0.25, 3, 4), (0.5, 9, 10)], 40_000)
        q = _uniform_mixture_quantiles([(1.0, 5, 7)], 30_000)
        w1 = float(metrics.wasserstein_1d(jnp.asarray(p), jnp.asarray(q)))
    assert w1 == pytest.approx(3.0, abs=1e-4)


def test_wasserstein_1_equals_scipy_for_unequal_sizes():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=37), rng.gamma(2.0, size=53)
    with jax.enable_x64(True):
        ours = float(metrics.wasserstein_1d(jnp.asarray(a), jnp.asarray(b)))
    assert ours == pytest.approx(scipy.stats.wasserstein_distance(a, b), rel=1e-12)


@pytest.mark.parametrize("name, modes", [("grid", 25), ("ring", 8)])
def test_true_samples_cover_every_mode_at_the_chi2_quality(name, modes):
    n = 20_000
    x = toy.sample_toy(name, jax.random.PRNGKey(1), n)
    out = {k: float(v) for k, v in metrics.mode_coverage(x, *toy.mixture(name)).items()}
    assert out["modes"] == out["modes_high_quality"] == modes
    # P(‖ε‖ ≤ 3σ) for a 2-D Gaussian is 1 − e^{−9/2}; binomial standard error over n samples
    p = 1 - math.exp(-4.5)
    assert abs(out["high_quality"] - p) < 5 * math.sqrt(p * (1 - p) / n)
    # the multinomial histogram is near uniform: reverse KL ≈ (M − 1) / (2 n) ≪ 0.01
    assert 0 <= out["reverse_kl"] < 0.01


def test_samples_of_one_mode_count_one_mode_and_log_m_reverse_kl():
    centers, std = toy.mixture("grid")
    x = centers[7][None] + std * jax.random.normal(jax.random.PRNGKey(2), (2500, 2))
    out = metrics.mode_coverage(x, centers, std)
    assert int(out["modes"]) == int(out["modes_high_quality"]) == 1
    assert float(out["reverse_kl"]) == pytest.approx(math.log(25), rel=1e-6)


def test_far_samples_are_assigned_but_not_high_quality():
    centers, std = toy.mixture("ring")
    # one sample at each centre pushed out radially by 5σ: assigned to its mode, not close
    x = jnp.asarray(centers) * (1 + 5 * std)
    out = metrics.mode_coverage(x, centers, std)
    assert int(out["modes"]) == 8 and int(out["modes_high_quality"]) == 0
    assert float(out["high_quality"]) == 0.0 and math.isnan(float(out["reverse_kl"]))


def test_checkerboard_is_uniform_on_eight_squares():
    x = np.asarray(toy.checkerboard(jax.random.PRNGKey(3), 80_000), np.float64)
    assert np.all(np.abs(x) <= 4)
    cells = np.floor((x + 4) / 2).astype(int)  # column, row in 0..3
    dark = (cells[:, 0] + cells[:, 1]) % 2
    assert np.all(dark == dark[0])  # one colour of the board only
    counts = np.bincount(cells[:, 1] * 4 + cells[:, 0], minlength=16)
    occupied = counts[counts > 0]
    assert len(occupied) == 8
    # chi-square test of uniformity over the 8 squares
    assert scipy.stats.chisquare(occupied).pvalue > 1e-3
    # uniform inside a square: the offsets' mean is 1 (±5 standard errors of U(0, 2))
    offsets = x + 4 - 2 * cells
    assert np.all(np.abs(offsets.mean(0) - 1) < 5 * (2 / math.sqrt(12)) / math.sqrt(len(x)))


def test_unknown_toy_and_non_mixture_names():
    with pytest.raises(ValueError, match="valid: .*checkerboard"):
        toy.sample_toy("circles", jax.random.PRNGKey(0), 3)
    with pytest.raises(ValueError, match="mixtures: .*ring"):
        toy.mixture("two_moons")


def test_non_finite_samples_reach_no_mode():
    centers, std = toy.mixture("ring")
    x = jnp.concatenate([jnp.asarray(centers[:2]), jnp.full((3, 2), jnp.nan)])
    out = metrics.mode_coverage(x, centers, std)
    assert int(out["modes"]) == int(out["modes_high_quality"]) == 2
    assert float(out["high_quality"]) == pytest.approx(2 / 5)
    assert float(out["reverse_kl"]) == pytest.approx(math.log(4), rel=1e-6)
