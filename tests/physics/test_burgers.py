"""Cole–Hopf quadrature: published values, the initial limit, the PDE by finite differences."""

import math

import jax
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from physics import burgers


def test_published_values_and_steepest_slope():
    # Values of the Raissi et al. (2019) data on its 256 × 100 grid.
    x, t, u = burgers.raissi_reference()
    assert u.shape == (100, 256) and u.dtype == np.float64
    for xv, tv, ref in [
        (-0.6078, 0.25, 0.65456),
        (-0.2157, 0.5, 0.87692),
        (0.4118, 0.75, -0.54001),
    ]:
        i, j = np.argmin(np.abs(x - xv)), np.argmin(np.abs(t - tv))
        assert abs(u[j, i] - ref) < 5e-6
    np.testing.assert_allclose(u[:, [0, -1]], 0.0, atol=1e-12)  # odd solution, u(±1, t) = 0

    res = minimize_scalar(
        lambda s: float(burgers.cole_hopf_ux(0.0, s, burgers.RAISSI_NU)),
        bounds=(0.45, 0.55),
        method="bounded",
        options={"xatol": 1e-7},
    )
    assert abs(-res.fun - 152.00516) < 5e-6
    assert abs(res.x - 0.51045) < 5e-5


def test_more_nodes_change_nothing():
    x = np.linspace(-8.0, 8.0, 33)[None, :]
    t = np.array([0.01, 1.0, 10.0])[:, None]
    a = burgers.cole_hopf(x, t, 0.1, burgers.gaussian_potential)
    b = burgers.cole_hopf(x, t, 0.1, burgers.gaussian_potential, num_nodes=2049)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)
    x, t = np.linspace(-1, 1, 17)[None, :], np.array([0.3, 0.99])[:, None]
    a = burgers.cole_hopf(x, t, burgers.RAISSI_NU, burgers.sine_potential)
    b = burgers.cole_hopf(x, t, burgers.RAISSI_NU, burgers.sine_potential, num_nodes=2049)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-14)


@pytest.mark.parametrize(
    "u0,potential,nu",
    [
        (burgers.sine_u0, burgers.sine_potential, burgers.RAISSI_NU),
        (burgers.gaussian_u0, burgers.gaussian_potential, 0.1),
    ],
)
def test_initial_limit(u0, potential, nu):
    x = np.linspace(-3.0, 3.0, 25)
    with jax.enable_x64(True):
        exact = np.asarray(u0(x))
    t = np.array([0.0, 1e-7])[:, None]
    u = burgers.cole_hopf(x[None, :], t, nu, potential)
    np.testing.assert_allclose(u[0], exact, atol=1e-15)
    # u(x, t) = u0 − t u0 u0' + O(t²) for a smooth start.
    np.testing.assert_allclose(u[1], exact, atol=1e-6)
    u_x = burgers.cole_hopf_ux(x[None, :], t, nu, potential)
    np.testing.assert_allclose(u_x[1], u_x[0], atol=1e-5)
    assert np.abs(u_x[0]).max() > 0.5  # u0' itself, not zero


@pytest.mark.parametrize(
    "potential,nu,points",
    [
        (burgers.sine_potential, burgers.RAISSI_NU, [(0.3, 0.2), (-0.5, 0.6), (0.5, 0.9)]),
        (burgers.gaussian_potential, 0.1, [(-2.0, 0.5), (1.5, 4.0), (5.0, 9.0)]),
    ],
)
def test_pde_by_finite_differences(potential, nu, points):
    h = 1e-3
    x, t = np.array(points).T[:, :, None]  # [P, 1]
    steps = h * np.arange(-2, 3)[None, :]  # [1, 5]
    # one evaluation: the x stencils then the t stencils, [2P, 5]
    xs = np.concatenate([x + steps, np.broadcast_to(x, (len(points), 5))])
    ts = np.concatenate([np.broadcast_to(t, (len(points), 5)), t + steps])
    u5 = burgers.cole_hopf(xs, ts, nu, potential)
    ux5, ut5 = u5[: len(points)], u5[len(points) :]
    c1 = np.array([1, -8, 0, 8, -1]) / (12 * h)  # 4th-order stencils
    c2 = np.array([-1, 16, -30, 16, -1]) / (12 * h * h)
    u, u_x, u_xx, u_t = ux5[:, 2], ux5 @ c1, ux5 @ c2, ut5 @ c1
    scale = np.maximum(np.abs(u_t) + np.abs(u * u_x) + np.abs(nu * u_xx), 1.0)
    assert np.all(np.abs(u_t + u * u_x - nu * u_xx) < 1e-7 * scale)
    exact_ux = burgers.cole_hopf_ux(x[:, 0], t[:, 0], nu, potential)
    assert np.all(np.abs(exact_ux - u_x) < 1e-7 * np.maximum(np.abs(u_x), 1.0))


def test_bad_inputs():
    with pytest.raises(ValueError, match="nu must be > 0"):
        burgers.cole_hopf(0.0, 0.5, 0.0)
    with pytest.raises(ValueError, match="t must be >= 0"):
        burgers.cole_hopf(0.0, -0.5, 0.1)
    with pytest.raises(ValueError, match="span"):
        burgers.cole_hopf(0.0, 0.5, 0.1, lambda e: e * 0.0)
    with pytest.raises(ValueError, match="num_nodes"):
        burgers.cole_hopf(0.0, 0.5, 0.1, num_nodes=2)
    assert math.isfinite(float(burgers.cole_hopf(0.0, 0.5, 0.1, lambda e: e * 0.0, span=0.0)))
