import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from video import metrics


def test_psnr_closed_form():
    x = np.zeros((2, 3, 8, 8, 1), np.float32)
    y = x + np.array([0.1, 0.01, 0.5], np.float32)[None, :, None, None, None]
    np.testing.assert_allclose(
        np.asarray(metrics.psnr(x, y)),
        np.broadcast_to([20.0, 40.0, 10 * np.log10(4)], (2, 3)),
        rtol=1e-5,
    )
    # random frames: the MSE is over height, width and channels of each frame
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(2, 3, 8, 8, 3)).astype(np.float32)
    b = rng.uniform(size=a.shape).astype(np.float32)
    ref = [
        [peak_signal_noise_ratio(a[i, t], b[i, t], data_range=1.0) for t in range(3)]
        for i in range(2)
    ]
    np.testing.assert_allclose(np.asarray(metrics.psnr(a, b)), ref, rtol=1e-5)


@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_matches_skimage(channels):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 32, 40, channels)).astype(np.float32)
    y = np.clip(x + 0.2 * rng.normal(size=x.shape), 0, 1).astype(np.float32)
    y[1] = x[1]  # identical frames: SSIM 1
    ours = np.asarray(metrics.ssim(jnp.asarray(x), jnp.asarray(y)))
    ref = [
        structural_similarity(
            x[i],
            y[i],
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=-1,
        )
        for i in range(3)
    ]
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    assert ours[1] == pytest.approx(1.0, abs=1e-6)


def test_ssim_rejects_small_or_mismatched_frames():
    small = jnp.zeros((2, 8, 16, 1))
    with pytest.raises(ValueError, match="8×16 px are smaller than the 11×11 window"):
        metrics.ssim(small, small)
    # an 11-px frame is the smallest valid one (a single window)
    assert metrics.ssim(jnp.ones((1, 11, 11, 1)), jnp.ones((1, 11, 11, 1))).shape == (1,)
    with pytest.raises(ValueError, match="same shape"):
        metrics.ssim(jnp.zeros((2, 16, 16, 1)), jnp.zeros((2, 16, 16, 3)))


def test_best_of_n_protocol():
    # scores [S=3, N=2, T=2]: video 0 best sample by mean is 2, video 1 is 0
    s = np.array([[[1.0, 1.0], [5.0, 3.0]], [[0.0, 3.0], [1.0, 1.0]], [[2.0, 2.5], [0.0, 0.0]]])
    r = metrics.best_of_n(s, higher_is_better=True)
    np.testing.assert_array_equal(r.best_sample, [2, 0])
    np.testing.assert_allclose(r.per_video, [2.25, 4.0])
    np.testing.assert_allclose(r.per_frame, [3.5, 2.75])
    assert r.mean == pytest.approx(3.125)
    assert r.ci95 == pytest.approx(1.96 * np.std([2.25, 4.0]) / np.sqrt(2))
    low = metrics.best_of_n(s, higher_is_better=False)
    np.testing.assert_array_equal(low.best_sample, [0, 2])


def test_frechet_distance_vs_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(150, 6)) * 2 + 1
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = ((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert metrics.frechet_distance(a, b) == pytest.approx(ref, rel=1e-8)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert metrics.frechet_distance(a, b) == pytest.approx(metrics.frechet_distance(b, a))
    with pytest.raises(ValueError, match="equal D"):
        metrics.frechet_distance(a, b[:, :3])


def _exact_moments(rng, n, mean, var):
    """n samples whose sample mean is `mean` and sample covariance diag(var), exactly (up to
    rounding): whitened Gaussian draws, scaled."""
    z = rng.normal(size=(n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return mean + z * np.sqrt(var)


def test_frechet_distance_diagonal_gaussians_closed_form():
    """Commuting (diagonal) covariances: d = ‖μ1 − μ2‖² + Σ_i (√a_i − √b_i)², one variance 0."""
    rng = np.random.default_rng(1)
    m1, m2 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 1.0, 0.0, -0.5])
    v1, v2 = np.array([1.0, 4.0, 0.0, 2.25]), np.array([9.0, 1.0, 0.25, 2.25])
    a, b = _exact_moments(rng, 50, m1, v1), _exact_moments(rng, 80, m2, v2)
    expected = ((m1 - m2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert expected == pytest.approx(6.0 + 4.0 + 1.0 + 0.25)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_fewer_samples_than_dimensions():
    """N < D (as for FVD on few videos): singular covariances. The nonzero eigenvalues of
    Σ1 Σ2 are those of (A Bᵀ)(A Bᵀ)ᵀ / ((N1 − 1)(N2 − 1)) for centred A, B, so
    tr (Σ1 Σ2)^{1/2} is the nuclear norm of A Bᵀ over √((N1 − 1)(N2 − 1))."""
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(5, 40)), 0.5 * rng.normal(size=(7, 40)) + 0.3
    ac, bc = a - a.mean(0), b - b.mean(0)
    k = (len(a) - 1) * (len(b) - 1)
    cross = np.linalg.svd(ac @ bc.T, compute_uv=False).sum() / np.sqrt(k)
    expected = (
        ((a.mean(0) - b.mean(0)) ** 2).sum()
        + (ac**2).sum() / (len(a) - 1)
        + (bc**2).sum() / (len(b) - 1)
        - 2 * cross
    )
    # the square roots of the ~1e-16 rounding residues left in the null space cost ~1e-8
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-7)


def test_repeat_last_frame_and_black_baselines_closed_form():
    from video import evaluation

    values = np.array([0.0, 0.1, 0.2, 0.4, 0.7], np.float32)  # frame t is constant values[t]
    videos = jnp.asarray(np.broadcast_to(values[None, :, None, None, None], (2, 5, 16, 16, 1)))
    s = evaluation.last_frame_baseline(videos, nt_cond=2, horizon=3)
    expected = 10 * np.log10(1 / (values[2:] - values[1]) ** 2)
    np.testing.assert_allclose(
        np.asarray(s["psnr"])[0], np.broadcast_to(expected, (2, 3)), rtol=1e-4
    )
    b = evaluation.last_frame_baseline(videos, nt_cond=2, horizon=3, blank=True)
    np.testing.assert_allclose(
        np.asarray(b["psnr"])[0, 0], 10 * np.log10(1 / values[2:] ** 2), rtol=1e-4
    )
