"""The functional API (`import gantk`) against independent numpy/scipy answers."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

import gantk

N, M, D = 7, 5, 2
GAMMA = 0.3


def gauss(a, b):
    """A smooth kernel exp(−γ‖a − b‖²) in JAX (b=None: b = a)."""
    b = a if b is None else b
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    d2 = jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :] - 2 * a @ b.T
    return jnp.exp(-GAMMA * d2)


def gauss_np(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.exp(-GAMMA * ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def _clouds(seed=0, n=N, m=M):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D))
    y = rng.normal(size=(m, D)) + np.array([1.5, -0.5])
    z = rng.normal(size=(4, D)) * 1.5
    return x, y, z


def _weights(n, m):
    return np.r_[np.full(n, 1 / n), np.full(m, -1 / m)]


def test_lsgan_discriminator_equals_matrix_exponential():
    """du/dt = 2W(y − K u), u(0) = 0 (LSGAN, f_0 = 0): u(t) from expm of the augmented
    affine system [[−2WK, 2Wy], [0, 0]], then f_t(z) = k(z, X) u(t)."""
    x, y, z = _clouds()
    X = np.concatenate([x, y])
    K = gauss_np(X, X)
    Wd = np.diag(np.abs(_weights(N, M)))
    labels = np.r_[-np.ones(N), np.ones(M)]
    t = 0.8
    A = np.zeros((N + M + 1, N + M + 1))
    A[:-1, :-1] = -2 * Wd @ K
    A[:-1, -1] = 2 * Wd @ labels
    u = scipy.linalg.expm(t * A)[:-1, -1]
    f_exact = gauss_np(z, X) @ u
    # the LSGAN closed form of the spec at the training points
    np.testing.assert_allclose(K @ u, (np.eye(N + M) - scipy.linalg.expm(-2 * t * K @ Wd)) @ labels)
    with jax.enable_x64(True):
        for method in ("auto", "eigen"):  # Lanczos, eigendecomposition
            f = gantk.discriminator(gauss, x, y, "lsgan", t, z, method=method)
            np.testing.assert_allclose(f, f_exact, rtol=1e-7, atol=1e-10, err_msg=method)
        disc = gantk.discriminator(gauss, x, y, "lsgan", t)
        np.testing.assert_allclose(disc.coefficients, u, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(disc(z), f_exact, rtol=1e-7, atol=1e-10)
        # dual_coefficients on a plain kernel matrix
        u2 = gantk.dual_coefficients("lsgan", jnp.asarray(K), N, M, t, method="eigen")
        np.testing.assert_allclose(u2, u, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("loss", ["vanilla", "hinge"])
def test_nonlinear_discriminator_equals_numpy_rk4(loss):
    """The dual ODE du/dt = g(K u) integrated by a numpy RK4 with g written out by hand."""
    x, y, z = _clouds(1)
    X = np.concatenate([x, y])
    K = gauss_np(X, X)
    sig = lambda f: 1 / (1 + np.exp(-f))
    if loss == "vanilla":  # a = log(1 − σ), b = −log σ: a' = −σ, −b' = 1 − σ
        g = lambda f: np.r_[-sig(f[:N]) / N, (1 - sig(f[N:])) / M]
    else:  # a = −relu(1 + f), b = relu(1 − f): a' = −[f > −1], −b' = [f < 1]
        g = lambda f: np.r_[-(f[:N] > -1.0).astype(float) / N, (f[N:] < 1.0).astype(float) / M]
    t, steps = 1.5, 3000
    h, u = t / steps, np.zeros(N + M)
    for _ in range(steps):
        k1 = g(K @ u)
        k2 = g(K @ (u + h / 2 * k1))
        k3 = g(K @ (u + h / 2 * k2))
        k4 = g(K @ (u + h * k3))
        u = u + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    # hinge: g jumps where f crosses ±1, so both integrators are first-order there
    tol = 1e-8 if loss == "vanilla" else 2e-3
    with jax.enable_x64(True):
        f = gantk.discriminator(gauss, x, y, loss, t, z, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(f, gauss_np(z, X) @ u, rtol=tol, atol=tol * 1e-2)


def test_ipm_discriminator_and_ntk_mmd():
    """IPM: f_t(z) = t(mean k(z, x) − mean k(z, y)); L(f_t) = t · MMD²; MMD² = wᵀKw."""
    x, y, z = _clouds(2)
    t = 2.5
    with jax.enable_x64(True):
        f = np.asarray(gantk.discriminator(gauss, x, y, "ipm", t, z))
        np.testing.assert_allclose(
            f, t * (gauss_np(z, x).mean(1) - gauss_np(z, y).mean(1)), rtol=1e-12
        )
        X = np.concatenate([x, y])
        w = _weights(N, M)
        mmd2 = float(gantk.ntk_mmd(gauss, x, y))
        np.testing.assert_allclose(mmd2, w @ gauss_np(X, X) @ w, rtol=1e-12)
        # with the ReLU NTK: the RKHS form wᵀKw and the IPM objective relation
        k = gantk.stax_kernel("relu", depth=2)
        K = np.asarray(jax.jit(k)(jnp.asarray(X), jnp.asarray(X)))
        mmd2 = float(gantk.ntk_mmd(k, x, y))
        np.testing.assert_allclose(mmd2, w @ K @ w, rtol=1e-10)
        disc = gantk.discriminator(k, x, y, "ipm", t)
        objective = gantk.discriminator_objective(gantk.gan_loss("ipm"), disc(x), disc(y))
        np.testing.assert_allclose(float(objective), t * mmd2, rtol=1e-10)


_C = {  # generator per-point losses, written out
    "ipm": lambda f: f,
    "lsgan": lambda f: f**2,
    "vanilla": lambda f: np.log1p(np.exp(-f)),
}


def _central_gradient(disc, loss, x, h):
    """∇C(x) [N, D] by central differences, C(z) = mean c(disc(z)); every perturbed cloud
    x ± h e_(i, j) evaluated in one call."""
    n = x.shape[0]
    eye = np.eye(n * D).reshape(n * D, n, D)
    clouds = np.concatenate([x + h * eye, x - h * eye])  # [2 n D, n, D]
    f = np.asarray(disc(jnp.asarray(clouds.reshape(-1, D)))).reshape(2 * n * D, n)
    C = _C[loss](f).mean(1)
    return ((C[: n * D] - C[n * D :]) / (2 * h)).reshape(n, D)


@pytest.mark.parametrize("loss", ["ipm", "lsgan"])
def test_flow_steps_are_finite_difference_gradient_steps(loss):
    """x_{k+1} = x_k − η ∇C(x_k), C(z) = mean c(f_t(z)) with f_t trained on (x_k, target) and
    held fixed: the gradient by central differences of the returned discriminator."""
    x0, y, _ = _clouds(3)
    eta, t, h = 0.7, 1.2, 1e-5
    with jax.enable_x64(True):
        traj = gantk.particle_flow(gauss, x0, y, loss, eta, t, 2)
        assert traj.particles.shape == (3, N, D) and traj.gen_loss.shape == (2,)
        x = x0
        for k in range(2):  # the discriminator is retrained on the moved particles
            disc = gantk.discriminator(gauss, x, y, loss, t)
            np.testing.assert_allclose(traj.gen_loss[k], _C[loss](np.asarray(disc(x))).mean())
            x = x - eta * _central_gradient(disc, loss, x, h)
            np.testing.assert_allclose(traj.particles[k + 1], x, rtol=1e-8, atol=1e-9)
        if loss == "ipm":  # only every second state kept
            chunked = gantk.particle_flow(gauss, x0, y, loss, eta, t, 2, save_every=2)
            np.testing.assert_allclose(chunked.particles, traj.particles[::2], rtol=1e-12)


def test_relu_flow_step_uses_the_symmetric_subgradient_at_the_cusp():
    """The ReLU NTK has a cusp at z = x_i; its central difference tends to the symmetric
    subgradient ½∇k(x, x) with an O(h) error: Richardson's 2D(h/2) − D(h) removes it."""
    x, y, _ = _clouds(4)
    eta, t = 0.5, 1.0
    with jax.enable_x64(True):
        k = gantk.stax_kernel("relu", depth=2)
        loss = "lsgan"  # the fused k(x, X) pass; the blocked IPM pass equals it (test_flow)
        x1 = gantk.particle_flow(k, x, y, loss, eta, t, 1, method="eigen").particles[1]
        disc = gantk.discriminator(k, x, y, loss, t, method="eigen")
        coarse, fine = (_central_gradient(disc, loss, x, h) for h in (1e-4, 5e-5))
        np.testing.assert_allclose(x1, x - eta * (2 * fine - coarse), rtol=1e-6, atol=1e-8)


def test_bad_input_gives_one_line_errors():
    x, y, z = _clouds()
    K = jnp.eye(N + M)
    with pytest.raises(ValueError, match="unknown GAN loss 'wgan'; valid: ipm, lsgan, vanilla"):
        gantk.discriminator(gauss, x, y, "wgan")
    with pytest.raises(ValueError, match="unknown GAN loss 'wgan'; valid: ipm, lsgan"):
        gantk.particle_flow(gauss, x, y, "wgan")
    with pytest.raises(ValueError, match=r"points of different shapes: x_fake \(2,\), x_real \(3,"):
        gantk.discriminator(gauss, x, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"points of different shapes: x \(2,\), y \(3,\)"):
        gantk.ntk_mmd(gauss, x, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="x_fake must be a non-empty"):
        gantk.discriminator(gauss, x[0], y)
    with pytest.raises(ValueError, match=r"K has shape \(12, 12\); expected .* = \(11, 11\)"):
        gantk.dual_coefficients("lsgan", K, N - 1, M, 1.0)
    with pytest.raises(ValueError, match="valid: auto, closed_form, eigen, lanczos, ode"):
        gantk.dual_coefficients("lsgan", K, N, M, 1.0, method="magic")
    with pytest.raises(ValueError, match="t must be >= 0"):
        gantk.dual_coefficients("ipm", None, N, M, -1.0)
    with pytest.raises(ValueError, match="method 'ode' needs the kernel matrix"):
        gantk.dual_coefficients("vanilla", None, N, M, 1.0)
    with pytest.raises(ValueError, match="multiple of save_every"):
        gantk.particle_flow(gauss, x, y, steps=5, save_every=2)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        gantk.particle_flow(gauss, x, y, steps=0)
    with pytest.raises(ValueError, match="valid: relu, relu_nobias"):
        gantk.stax_kernel("relu_mlp")
    with pytest.raises(ValueError, match="valid: mlp, resmlp, conv"):
        gantk.stax_kernel("relu", network="transformer")
    with pytest.raises(ValueError, match="depth must be a positive integer"):
        gantk.stax_kernel("relu", depth=0)
    with pytest.raises(ValueError, match="different point shapes"):
        gantk.relu_mlp_kernel(jnp.zeros((3, 2)), jnp.zeros((3, 4)), depth=2, W_std=1, b_std=1)


def test_public_names():
    assert sorted(gantk.__all__) == sorted(set(gantk.__all__))
    for name in gantk.__all__:
        assert hasattr(gantk, name), name
    exported = {
        n for n, v in vars(gantk).items() if not n.startswith("_") and not inspect.ismodule(v)
    }
    assert exported == set(gantk.__all__)
