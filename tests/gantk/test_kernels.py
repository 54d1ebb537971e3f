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
