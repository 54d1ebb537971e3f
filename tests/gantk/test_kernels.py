"""Kernel registry: every architecture, network and kind builds a valid kernel."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gantk.kernels import (
    ARCHITECTURES,
    default_kernel_config,
    kernel_matvec,
    make_kernel,
    stax_kernel,
)


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
    assert make_kernel(_cfg(network="resmlp"))(x, x).shape == (5, 5)  # auto: neural-tangents


def _arccos_kernels(x1, x2, *, network, depth, W_std, b_std, layer_norm=False):
    """NNGP and NTK [n1, n2] of `stax_network`'s ReLU mlp / resmlp by the arc-cosine recursion
    in numpy (infinite width, NTK parameterisation), with the variances of both inputs.

    Dense: Σ → W²Σ + b², Θ → Σ_new + W²Θ. ReLU: Σ → √(c₁c₂)(sin θ + (π − θ) cos θ)/2π,
    c → c/2, Θ → Θ(π − θ)/2π, cos θ = Σ/√(c₁c₂). Residual h + g(h): the last Dense of g has
    fresh zero-mean weights, so the branches are uncorrelated and Σ, c, Θ add. LayerNorm (in
    the limit): Σ, Θ → ·/√(c₁c₂), c → 1.
    """
    a = np.asarray(x1, np.float64).reshape(len(x1), -1)
    b = np.asarray(x2, np.float64).reshape(len(x2), -1)
    d = a.shape[1]
    state = (a @ b.T / d, (a * a).sum(1)[:, None] / d, (b * b).sum(1)[None, :] / d, 0.0)

    def dense(s, b_):
        S, c1, c2, T = s
        S = W_std**2 * S + b_**2
        return S, W_std**2 * c1 + b_**2, W_std**2 * c2 + b_**2, S + W_std**2 * T

    def relu(s):
        S, c1, c2, T = s
        prod = np.sqrt(c1 * c2)
        theta = np.arccos(np.clip(S / prod, -1.0, 1.0))
        S = prod * (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
        return S, c1 / 2, c2 / 2, T * (np.pi - theta) / (2 * np.pi)

    def norm(s):
        S, c1, c2, T = s
        prod = np.sqrt(c1 * c2)
        return S / prod, np.ones_like(c1), np.ones_like(c2), T / prod

    state = dense(state, b_std)
    if network == "mlp":
        for i in range(depth):
            if layer_norm and i > 0:
                state = norm(state)
            state = dense(relu(state), 0.0 if i == depth - 1 else b_std)
    else:
        for i in range(depth - 1):
            h = norm(state) if layer_norm and i > 0 else state
            g = dense(relu(dense(relu(h), b_std)), b_std)
            state = tuple(p + q for p, q in zip(state, g))
        state = dense(relu(state), 0.0)
    return state[0], state[3]


@pytest.mark.parametrize(
    "network, architecture, depth, layer_norm",
    [("resmlp", "relu", 3, False), ("resmlp", "relu_nobias", 2, False),
     ("resmlp", "relu", 3, True), ("mlp", "relu_highbias", 3, False)],
)  # fmt: skip
def test_relu_kernels_equal_numpy_arccos_recursion(network, architecture, depth, layer_norm):
    """The residual (and plain) ReLU MLP kernels against the recursion written in numpy."""
    with jax.enable_x64(True):
        x = jax.random.normal(jax.random.PRNGKey(0), (6, 3), jnp.float64)
        y = 1.5 * jax.random.normal(jax.random.PRNGKey(1), (5, 3), jnp.float64)
        b_std = ARCHITECTURES[architecture].b_std
        nngp, ntk = _arccos_kernels(
            x, y, network=network, depth=depth, W_std=1.3, b_std=b_std, layer_norm=layer_norm
        )
        for kind, ref in (("nngp", nngp), ("ntk", ntk)):
            k = stax_kernel(  # mlp: neural-tangents, not the closed form `auto` would pick
                architecture, network=network, depth=depth, W_std=1.3, kind=kind,
                layer_norm=layer_norm, implementation="neural_tangents" if network == "mlp" else "auto",
            )  # fmt: skip
            np.testing.assert_allclose(k(x, y), ref, rtol=1e-10, err_msg=kind)
