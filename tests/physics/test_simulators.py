"""Simulators against exact answers: RK4 order, independent NumPy integration, closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm

from physics import simulators as sim


@pytest.mark.parametrize("solver,order", [("euler", 1), ("heun", 2), ("rk4", 4)])
def test_order_of_convergence_linear_system(solver, order):
    with jax.enable_x64(True):
        a = np.array([[0.0, 1.0], [-4.0, -0.3]])
        y0 = np.array([1.0, 0.5])
        exact = expm(a * 2.0) @ y0
        errs = []
        for dt in (0.1, 0.05, 0.025):
            ys = sim.integrate(
                lambda t, y, args: jnp.asarray(a) @ y,
                jnp.asarray(y0),
                jnp.array([0.0, 2.0]),
                dt=dt,
                solver=solver,
            )
            errs.append(np.abs(np.asarray(ys[-1]) - exact).max())
        rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(rates - order) < 0.15), rates


def test_adaptive_solver_matches_expm():
    with jax.enable_x64(True):
        a = np.array([[0.0, 1.0], [-4.0, -0.3]])
        ts = np.linspace(0, 3, 7)
        ys = sim.integrate(
            lambda t, y, args: jnp.asarray(a) @ y,
            jnp.array([1.0, 0.0]),
            ts,
            dt=0.1,
            solver="tsit5",
            rtol=1e-10,
            atol=1e-12,
        )
        exact = np.stack([expm(a * t) @ np.array([1.0, 0.0]) for t in ts])
    np.testing.assert_allclose(np.asarray(ys), exact, atol=1e-8)


def test_fixed_step_rollout_is_the_rk4_polynomial_in_both_modes():
    """On y' = Ay each RK4 step of size h multiplies y by P(hA) = Σ_{j<=4} (hA)^j / j!, so
    `fixed_step_rollout` with n steps per interval gives y(t_k) = P(hA)^{kn} y0 exactly; its JVP in y0
    is the same matrix applied to the tangent, and its gradient the transpose."""
    with jax.enable_x64(True):
        a = np.array([[0.0, 1.0], [-4.0, -0.3]])
        ts = np.linspace(0.0, 2.0, 5)
        n, h = 3, 0.5 / 3
        p = sum(np.linalg.matrix_power(h * a, j) / np.prod(np.arange(1, j + 1)) for j in range(5))
        y0, v, c = np.array([1.0, 0.5]), np.array([-0.3, 2.0]), np.array([0.7, -1.1])

        def roll(y):
            return sim.fixed_step_rollout(lambda t, y, args: args @ y, y, ts, n, jnp.asarray(a))

        ys = roll(jnp.asarray(y0))
        exact = np.stack([np.linalg.matrix_power(p, k * n) @ y0 for k in range(len(ts))])
        np.testing.assert_allclose(np.asarray(ys), exact, rtol=0, atol=1e-13)
        m = np.linalg.matrix_power(p, (len(ts) - 1) * n)
        jvp = jax.jvp(lambda y: roll(y)[-1], (jnp.asarray(y0),), (jnp.asarray(v),))[1]
        np.testing.assert_allclose(np.asarray(jvp), m @ v, rtol=0, atol=1e-13)
        grad = jax.grad(lambda y: roll(y)[-1] @ jnp.asarray(c))(jnp.asarray(y0))
        np.testing.assert_allclose(np.asarray(grad), m.T @ c, rtol=0, atol=1e-13)
        # the classical RK4 rate against the exact flow
        np.testing.assert_allclose(np.asarray(ys[-1]), expm(a * 2.0) @ y0, atol=1e-3)


def test_unknown_solver_names_choices():
    with pytest.raises(ValueError, match="unknown ODE solver 'rk5'.*rk4"):
        sim.get_solver("rk5")


def _numpy_wave(c, f0, size, num_frames, dt, substeps, radius2=25.0):
    """Independent NumPy RK4 of the WaveEq system with an explicit-loop stencil."""
    coefs = [-1 / 12, 4 / 3, -5 / 2, 4 / 3, -1 / 12]
    ii, jj = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    disk = (((ii - size // 2) ** 2 + (jj - size // 2) ** 2) < radius2).astype(float)

    def lap(w):
        out = np.zeros_like(w)
        for i in range(2, size - 2):
            for j in range(2, size - 2):
                out[i, j] = sum(
                    cf * (w[i + k - 2, j] + w[i, j + k - 2]) for k, cf in enumerate(coefs)
                )
        return out

    def f(t, w, v):
        return v, c**2 * lap(w) + f0 * np.exp(-20 * t) * disk

    h = dt / substeps
    w, v, t = np.zeros((size, size)), np.zeros((size, size)), 0.0
    frames = [w.copy()]
    for _ in range(num_frames - 1):
        for _ in range(substeps):
            k1 = f(t, w, v)
            k2 = f(t + h / 2, w + h / 2 * k1[0], v + h / 2 * k1[1])
            k3 = f(t + h / 2, w + h / 2 * k2[0], v + h / 2 * k2[1])
            k4 = f(t + h, w + h * k3[0], v + h * k3[1])
            w = w + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            v = v + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            t += h
        frames.append(w.copy())
    return np.stack(frames)


def test_wave_matches_fine_step_numpy_integration():
    size, frames = 12, 31
    same_step = _numpy_wave(380.0, 20.0, size, frames, 1e-3, substeps=1)
    fine = _numpy_wave(380.0, 20.0, size, frames, 1e-3, substeps=8)
    with jax.enable_x64(True):
        got = np.asarray(sim.simulate_wave(380.0, 20.0, size=size, num_frames=frames))
    assert got.shape == (frames, size, size)
    scale = np.abs(fine).max()
    assert scale > 0
    # same scheme, same step: identical up to rounding
    np.testing.assert_allclose(got, same_step, atol=1e-11 * scale)
    # against the fine-step solution: RK4 truncation error at dt = 1e-3 (c·dt/dx = 0.38)
    err = np.abs(got - fine).max() / scale
    assert 1e-6 < err < 5e-4, err
    # the two-cell border stays exactly zero
    assert np.all(got[:, :2] == 0) and np.all(got[:, :, :2] == 0)  # border without source


def test_wave_float32_vmapped_matches_single():
    cs, fs = jnp.array([310.0, 390.0]), jnp.array([3.0, 25.0])
    batch = jax.vmap(lambda c, f: sim.simulate_wave(c, f, size=16, num_frames=20))(cs, fs)
    one = sim.simulate_wave(cs[1], fs[1], size=16, num_frames=20)
    np.testing.assert_allclose(np.asarray(batch[1]), np.asarray(one), rtol=1e-5, atol=1e-9)


def test_pendulum_energy_decays_as_friction_work():
    with jax.enable_x64(True):
        omega0, alpha = 2 * np.pi / 12, 0.2
        ts = np.linspace(0, 20, 2001)
        ys = np.asarray(
            sim.simulate_pendulum(jnp.array([1.0, 0.0]), ts, omega0=omega0, alpha=alpha, dt=0.01)
        )
        energy = np.asarray(sim.pendulum_energy(jnp.asarray(ys), omega0))
    assert np.all(np.diff(energy) <= 1e-12)
    # dE/dt = -α θ'² ⇒ E(t) = E(0) − α ∫ θ'² dt (trapezoid rule, O(h²) ≈ 1e-6 here)
    work = alpha * np.concatenate(
        [[0], np.cumsum(0.5 * (ys[1:, 1] ** 2 + ys[:-1, 1] ** 2) * np.diff(ts))]
    )
    np.testing.assert_allclose(energy, energy[0] - work, atol=1e-5)
    # frictionless: energy conserved
    with jax.enable_x64(True):
        ys0 = sim.simulate_pendulum(jnp.array([1.0, 0.0]), ts, omega0=omega0, alpha=0.0, dt=0.01)
        e0 = np.asarray(sim.pendulum_energy(ys0, omega0))
    np.testing.assert_allclose(e0, e0[0], rtol=1e-9)


def test_heat_matches_separable_closed_form():
    size, length, d = 15, 1.0, 0.1
    mode, rate, rate_discrete = sim.heat_mode(2, 3, size, length)
    u0 = mode + 0.5 * sim.heat_mode(1, 1, size, length)[0]
    r11 = sim.heat_mode(1, 1, size, length)
    ts = np.linspace(0, 0.2, 5)
    with jax.enable_x64(True):
        us = np.asarray(
            sim.simulate_heat(
                u0.astype(np.float64), ts, diffusivity=d, dx=length / (size + 1), dt=1e-3
            )
        )
    discrete = (
        mode[None] * np.exp(-d * rate_discrete * ts)[:, None, None]
        + 0.5 * r11[0][None] * np.exp(-d * r11[2] * ts)[:, None, None]
    )
    continuous = (
        mode[None] * np.exp(-d * rate * ts)[:, None, None]
        + 0.5 * r11[0][None] * np.exp(-d * r11[1] * ts)[:, None, None]
    )
    np.testing.assert_allclose(us, discrete, atol=1e-9)  # exact for the semi-discrete system
    np.testing.assert_allclose(us, continuous, atol=2e-2)  # O(dx²) from the PDE's solution


def test_periodic_laplacian_fourier_eigenvalue_and_fhn_shapes():
    n, dx = 16, 2.0 / 16
    x = np.arange(n) * dx
    mode = np.outer(np.cos(2 * np.pi * 2 * x / 2.0), np.ones(n))
    lam = -4 / dx**2 * np.sin(np.pi * 2 * dx / 2.0) ** 2
    np.testing.assert_allclose(
        np.asarray(sim.periodic_laplacian(jnp.asarray(mode), dx)), lam * mode, atol=1e-3
    )
    y0 = np.random.default_rng(0).uniform(0, 1, (2, n, n)).astype(np.float32)
    ys = sim.simulate_fitzhugh_nagumo(y0, np.linspace(0, 1.0, 5), dt=0.05)
    assert ys.shape == (5, 2, n, n)
    np.testing.assert_allclose(ys[0], y0)

    def field(y, a=1e-3, b=5e-3, k=5e-3):  # the equations, written again in numpy
        lap = lambda f: (sum(np.roll(f, s, ax) for s in (1, -1) for ax in (-1, -2)) - 4 * f) / dx**2
        u, v = y[0], y[1]
        return np.stack([a * lap(u) + u - u**3 - k - v, b * lap(v) + u - v])

    y = y0.astype(np.float64)
    for _ in range(50):  # classical RK4 at a tenth of the solver's step, to t = 0.25
        k1 = field(y)
        k2 = field(y + 0.0025 * k1)
        k3 = field(y + 0.0025 * k2)
        k4 = field(y + 0.005 * k3)
        y = y + 0.005 / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    np.testing.assert_allclose(ys[1], y, atol=1e-5)


def test_damped_wave_energy_decreases_and_burgers_conserves_mass():
    rng = np.random.default_rng(0)
    w0 = np.zeros((2, 16, 16), np.float32)
    w0[0] = np.exp(-((np.arange(16)[:, None] - 8) ** 2 + (np.arange(16)[None] - 8) ** 2) / 8)
    ys = np.asarray(sim.simulate_damped_wave(w0, np.linspace(0, 5, 11), c=1.0, k=0.5, dt=0.05))
    grad = lambda w: (np.roll(w, -1, -1) - w) ** 2 + (np.roll(w, -1, -2) - w) ** 2  # noqa: E731
    energy = [0.5 * (y[1] ** 2).sum() + 0.5 * grad(y[0]).sum() for y in ys]
    assert np.all(np.diff(energy) < 0)
    u0 = np.sin(np.linspace(0, 2 * np.pi, 64, endpoint=False)) + 0.1 * rng.normal(size=64)
    with jax.enable_x64(True):
        us = np.asarray(sim.simulate_burgers(u0, np.linspace(0, 0.5, 6), nu=0.05, dt=1e-3))
    np.testing.assert_allclose(us.mean(-1), u0.mean(), atol=1e-12)
    assert np.all(np.diff((us**2).sum(-1)) < 0)
