"""Kernel registry: every architecture, network and kind builds a valid kernel."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gantk.kernels import ARCHITECTURES, default_kernel_config, kernel_matvec, make_kernel


def _cfg(**kw):
    c = default_kernel_config()
    c.update(kw)
    return c


def _check_psd(K):
    K = np.asarray(K, np.float64)
    assert np.allclose(K, K.T, rtol=1e-4, atol=1e-5)
    eig = np.linalg.eigvalsh(K)
    assert eig.min() > -1e-4 * eig.max()


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_gives_a_psd_kernel(architecture):
    x = jax.random.normal(jax.random.PRNGKey(0), (12, 2))
    _check_psd(make_kernel(_cfg(architecture=architecture))(x, x))


@pytest.mark.parametrize(
    "network, shape, layer_norm",
    [("mlp", (10, 3), True), ("resmlp", (10, 3), False), ("resmlp", (10, 3), True),
     ("conv", (6, 8, 8, 1), False)],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_networks_and_kinds(network, shape, layer_norm, kind):
    x = jax.random.normal(jax.random.PRNGKey(1), shape)
    k = make_kernel(_cfg(network=network, layer_norm=layer_norm, kind=kind, depth=2))
    K = k(x, x)
    assert K.shape == (shape[0], shape[0])
    _check_psd(K)


def test_rbf_nngp_is_a_gaussian_kernel():
    """The reference's rbf discriminator (one stax.Rbf layer): NNGP = exp(−γ‖x − x'‖²/d)."""
    x = jax.random.normal(jax.random.PRNGKey(2), (8, 2))
    K = np.asarray(make_kernel(_cfg(architecture="rbf"))(x, x))
    d2 = np.sum((np.asarray(x)[:, None] - np.asarray(x)[None]) ** 2, -1)
    np.testing.assert_allclose(K / K[0, 0], np.exp(-0.5 * d2 / 2), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "kw, match",
    [({"architecture": "tanh"}, "valid: relu, relu_nobias"),
     ({"network": "transformer"}, "valid: mlp, resmlp, conv"),
     ({"kind": "ntkk"}, "valid: ntk, nngp")],
)  # fmt: skip
def test_unknown_names_list_the_valid_ones(kw, match):
    with pytest.raises(ValueError, match=match):
        make_kernel(_cfg(**kw))


def test_kernel_matvec_blocks_equal_dense():
    k = make_kernel(_cfg())
    x = jax.random.normal(jax.random.PRNGKey(3), (7, 2))
    X = jax.random.normal(jax.random.PRNGKey(4), (23, 2))
    u = jax.random.normal(jax.random.PRNGKey(5), (23,))
    dense = k(x, X) @ u
    for block in (4, 5, 23, 64):
        np.testing.assert_allclose(kernel_matvec(k, x, X, u, block), dense, rtol=2e-5, atol=1e-5)
    assert jnp.isfinite(jax.grad(lambda z: kernel_matvec(k, z, X, u, 5).sum())(x)).all()


@pytest.mark.parametrize("architecture", ["relu", "relu_nobias", "relu_highbias"])
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_closed_form_relu_kernel_equals_neural_tangents(architecture, kind):

    with jax.enable_x64(True):
        nt = make_kernel(
            _cfg(architecture=architecture, kind=kind, implementation="neural_tangents")
        )
        ours = make_kernel(_cfg(architecture=architecture, kind=kind, implementation="closed_form"))
        # 70 rows: the row-blocked pass with padding; columns include copies of rows (cusp)
        x = jax.random.normal(jax.random.PRNGKey(0), (70, 2), jnp.float64)
        y = jnp.concatenate([2 * jax.random.normal(jax.random.PRNGKey(1), (9, 2)), x[:3]])
        a, b = nt(x, y), ours(x, y)
        scale = 1e-12 * float(jnp.abs(a).max())
        np.testing.assert_allclose(b[:, :9], a[:, :9], rtol=1e-12, atol=scale)
        # at coincident points (θ = 0) neural-tangents' angle carries √ε round-off
        np.testing.assert_allclose(b, a, rtol=1e-7)
        w = jax.random.normal(jax.random.PRNGKey(2), a.shape, jnp.float64)
        for argnum in (0, 1):
            g = [jax.grad(lambda p, q, k=k: (k(p, q) * w).sum(), argnum)(x, y) for k in (nt, ours)]
            assert bool(jnp.isfinite(g[1]).all())
            np.testing.assert_allclose(g[1], g[0], rtol=1e-8, atol=1e-8)
        # x2=None is x2=x1; the diagonal k(x, x) is exact here, round-off in neural-tangents
        np.testing.assert_allclose(ours(x, None), nt(x, None), rtol=1e-7)
        diag = lambda z: ours(z[None], None)[0, 0]
        g = jax.vmap(jax.grad(diag))(x[:5])
        eps = 1e-6
        for i in range(2):
            e = jnp.zeros(2).at[i].set(eps)
            fd = jax.vmap(lambda z, e=e: (diag(z + e) - diag(z - e)) / (2 * eps))(x[:5])
            np.testing.assert_allclose(g[:, i], fd, rtol=1e-6, atol=1e-8)


def test_closed_form_float32_is_accurate():

    x = jax.random.normal(jax.random.PRNGKey(0), (40, 2))
    y = jax.random.normal(jax.random.PRNGKey(1), (30, 2))
    ours = make_kernel(_cfg(implementation="closed_form"))(x, y)  # polynomial arccos
    assert ours.dtype == jnp.float32
    with jax.enable_x64(True):
        exact = make_kernel(_cfg(implementation="neural_tangents"))(
            x.astype(jnp.float64), y.astype(jnp.float64)
        )
    np.testing.assert_allclose(ours, exact, rtol=1e-5)


def test_kernel_implementation_choices():
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 2))
    with pytest.raises(ValueError, match="valid: auto, neural_tangents, closed_form"):
        make_kernel(_cfg(implementation="fast"))
    with pytest.raises(ValueError, match="needs a ReLU MLP"):
        make_kernel(_cfg(architecture="erf", implementation="closed_form"))
    # auto falls back to neural-tangents where there is no closed form, and agrees with it
    auto = make_kernel(_cfg(network="resmlp"))(x, x)
    nt = make_kernel(_cfg(network="resmlp", implementation="neural_tangents"))(x, x)
    np.testing.assert_array_equal(auto, nt)
