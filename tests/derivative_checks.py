"""Derivative checks shared by the forward-mode tests (importable: `pythonpath` in
pyproject.toml). Run them inside `jax.enable_x64(True)`: the tolerances are float64's."""

import jax
import jax.numpy as jnp
import numpy as np


def jvp_matches_central_differences(f, x, directions, h: float = 1e-5, rtol: float = 1e-6):
    """`jax.jvp` of a scalar function f at x along each direction equals the central difference
    (f(x + h d) − f(x − h d)) / 2h, and the direction moves f."""
    for d in directions:
        jvp = jax.jvp(f, (x,), (d,))[1]
        fd = (f(x + h * d) - f(x - h * d)) / (2 * h)
        assert abs(float(fd)) > 1e-8  # the direction moves the value
        np.testing.assert_allclose(float(jvp), float(fd), rtol=rtol)


def hessian_matches_differences_of_gradients(f, x, d1, d2, h: float = 1e-5, rtol: float = 1e-5):
    """`jax.hessian` of a ↦ f(x + a₀ d1 + a₁ d2) at 0 equals central differences of its
    gradient."""
    g = lambda a: f(x + a[0] * d1 + a[1] * d2)  # noqa: E731
    hess = jax.jit(jax.hessian(g))(jnp.zeros(2))
    grad = jax.jit(jax.grad(g))
    fd = jnp.stack([(grad(h * e) - grad(-h * e)) / (2 * h) for e in jnp.eye(2)], 1)
    np.testing.assert_allclose(np.asarray(hess), np.asarray(fd), rtol=rtol, atol=1e-10)
