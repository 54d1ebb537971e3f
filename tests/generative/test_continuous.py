"""The ODE with its divergence integral: closed forms, Jacobian traces, Hutchinson's mean."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative.continuous import divergence, solve_with_logdet

A = np.array([[0.3, -1.0, 0.2], [0.5, -0.2, 0.1], [0.0, 0.4, -0.7]])


def _field(t, x, args):
    return jnp.tanh(x @ jnp.asarray(A).T) * (1 + t)


def _jacobian_trace(t, x):
    jac = jax.vmap(jax.jacfwd(lambda u: _field(t, u[None], None)[0]))(x)
    return jnp.trace(jac, axis1=1, axis2=2)


def test_linear_flow_closed_form_both_directions():
    """dx/dt = a x: x(t1) = x e^{a (t1 − t0)}, δ = a d (t1 − t0), forward and backward."""
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
        for t0, t1 in ((0.0, 2.0), (2.0, 0.5)):
            r = solve_with_logdet(lambda t, z, a: a * z, x, t0, t1, 0.5, rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(r.y, x * np.exp(0.5 * (t1 - t0)), rtol=1e-8)
            np.testing.assert_allclose(r.delta, np.full(4, 1.5 * (t1 - t0)), rtol=1e-9)


def test_evaluation_count_matches_a_host_side_counter():
    import diffrax

    calls = [0]

    def bump(v):
        calls[0] += 1

    def field(t, z, args):
        jax.debug.callback(bump, z[0, 0], ordered=True)
        return -z * (1 + jnp.sin(5 * t))

    x = jnp.ones((2, 2))
    for solver in (diffrax.Tsit5(), diffrax.Dopri8()):
        calls[0] = 0
        r = solve_with_logdet(field, x, 0.0, 3.0, solver=solver, rtol=1e-6, atol=1e-6, dt0=0.1)
        assert int(r.num_evaluations) == calls[0] > int(r.num_steps), type(solver).__name__


def test_exact_divergence_is_the_jacobian_trace_and_hutchinson_is_unbiased():
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(0), (5, 3))
        fx, div = divergence(lambda u: _field(0.3, u, None), x)
        np.testing.assert_allclose(fx, _field(0.3, x, None), rtol=1e-12)
        np.testing.assert_allclose(div, _jacobian_trace(0.3, x), rtol=1e-12, atol=1e-14)
        # an image-shaped batch (d = 16 goes through the loop, not the unrolled sum)
        xi = jax.random.normal(jax.random.PRNGKey(1), (2, 1, 4, 4))
        _, div_i = divergence(lambda u: 2 * jnp.sin(u), xi)
        np.testing.assert_allclose(div_i, (2 * jnp.cos(xi)).reshape(2, -1).sum(1), rtol=1e-12)

        n = 20000
        keys = jax.random.split(jax.random.PRNGKey(2), n)

        def probe(k):
            eps = jax.random.normal(k, x.shape, dtype=x.dtype)
            return divergence(lambda u: _field(0.3, u, None), x, method="hutchinson", eps=eps)[1]

        est = jax.vmap(probe)(keys)
        se = est.std(0) / np.sqrt(n)
        assert np.all(np.abs(est.mean(0) - div) < 4 * se), (est.mean(0) - div, se)


def test_divergence_integral_matches_the_jacobian_trace_along_the_path():
    """δ = ∫ tr J dt: compare with a dense-output quadrature of the trace on the same path."""
    import diffrax

    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(3), (3, 3))
        r = solve_with_logdet(_field, x, 0.0, 1.0, rtol=1e-11, atol=1e-11)
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(_field), diffrax.Tsit5(), 0.0, 1.0, None, x,
            stepsize_controller=diffrax.PIDController(rtol=1e-11, atol=1e-11),
            saveat=diffrax.SaveAt(dense=True),
        )  # fmt: skip
        nodes, weights = np.polynomial.legendre.leggauss(40)
        ts = 0.5 * (nodes + 1)
        trace = jnp.stack([_jacobian_trace(t, sol.evaluate(t)) for t in ts])
        np.testing.assert_allclose(r.delta, 0.5 * weights @ trace, rtol=1e-7)
        np.testing.assert_allclose(r.y, sol.evaluate(1.0), rtol=1e-8)


def test_bad_arguments_are_one_line_errors():
    x = jnp.ones((2, 2))
    with pytest.raises(
        ValueError, match="unknown divergence method 'trace'; valid: exact, hutchinson"
    ):
        solve_with_logdet(lambda t, z, a: z, x, 0.0, 1.0, method="trace")
    with pytest.raises(ValueError, match="needs a PRNG key"):
        solve_with_logdet(lambda t, z, a: z, x, 0.0, 1.0, method="hutchinson")
    with pytest.raises(ValueError, match="batch"):
        solve_with_logdet(lambda t, z, a: z, jnp.ones(3), 0.0, 1.0)
