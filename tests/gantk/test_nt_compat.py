"""gantk.nt_compat: neural-tangents 0.6.5 imports on the installed JAX without TensorFlow, and
its kernels equal independent closed forms in float64."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gantk.nt_compat import neural_tangents


def test_imports_without_tensorflow():
    code = (
        "import sys; from gantk.nt_compat import neural_tangents; nt = neural_tangents(); "
        "print(sorted(m for m in ('tensorflow', 'tf2jax') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tensorflow_model_ntk_is_a_clear_error():
    nt = neural_tangents()
    with pytest.raises(ImportError, match="empirical_ntk_fn_tf .* not available"):
        nt.experimental.empirical_ntk_fn_tf(None)


def test_erf_network_nngp_equals_the_arcsine_kernel_float64():
    """Dense(W₁, b₁) → Erf → Dense(W₂, b₂), NTK parameterisation: the NNGP kernel is
    W₂² (2/π) arcsin(2Σ₁(x, y) / √((1 + 2Σ₁(x, x))(1 + 2Σ₁(y, y)))) + b₂² with
    Σ₁(x, y) = W₁² x·y / d + b₁² (Williams 1997)."""
    stax = neural_tangents().stax
    w1, b1, w2, b2 = 1.3, 0.4, 0.9, 0.2
    _, _, kernel_fn = stax.serial(
        stax.Dense(16, W_std=w1, b_std=b1), stax.Erf(), stax.Dense(1, W_std=w2, b_std=b2)
    )
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    with jax.enable_x64(True):
        ours = np.asarray(kernel_fn(jnp.asarray(x), jnp.asarray(y), "nngp"))
    sxy = w1**2 * x @ y.T / 3 + b1**2
    sxx = w1**2 * (x * x).sum(1) / 3 + b1**2
    syy = w1**2 * (y * y).sum(1) / 3 + b1**2
    arc = np.arcsin(2 * sxy / np.sqrt(np.outer(1 + 2 * sxx, 1 + 2 * syy)))
    np.testing.assert_allclose(ours, w2**2 * 2 / np.pi * arc + b2**2, rtol=1e-13)


@pytest.mark.parametrize("implementation", [1, 2])
def test_empirical_ntk_of_a_linear_model_is_the_gram_matrix(implementation):
    """f(x) = x·w + c: the empirical NTK is x₁·x₂ + 1 (Jacobian [x, 1])."""
    nt = neural_tangents()
    rng = np.random.default_rng(1)
    with jax.enable_x64(True):
        params = (jnp.asarray(rng.normal(size=(3,))), jnp.asarray(0.5))
        x1, x2 = jnp.asarray(rng.normal(size=(4, 3))), jnp.asarray(rng.normal(size=(6, 3)))
        apply = lambda p, x: (x @ p[0] + p[1])[:, None]  # noqa: E731
        ntk = nt.empirical_ntk_fn(apply, trace_axes=(-1,), implementation=implementation)
        np.testing.assert_allclose(ntk(x1, x2, params), x1 @ x2.T + 1.0, rtol=1e-13)
