"""generative.blas: the MKL products (XLA FFI calls on CPU: kernel-gradient products and
dense layers' matmul) equal a float64 reference, batch under vmap, differentiate, refuse bad
input, and fall back to XLA's products (same answers) when the backend is switched off or
cannot be built."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from generative import blas

pytestmark = pytest.mark.skipif(
    blas._mkl_dir() is None, reason="MKL is not installed (pip install mkl): XLA's products"
)


def _reference(src, g, starts):
    src, g = np.asarray(src, np.float64), np.asarray(g, np.float64)
    q = g.shape[1:-1]
    out = []
    for s in starts:
        window = src[(slice(None), *(slice(a, a + n) for a, n in zip(s, q)))]
        out.append(window.reshape(-1, src.shape[-1]).T @ g.reshape(-1, g.shape[-1]))
    return np.stack(out)


def test_backend_is_built_and_used():
    """With MKL and a compiler here the backend is ready; a float32 call lowers to the FFI
    target on CPU, a float64 one (or one in a `backend("xla")` block) to XLA's products."""
    assert blas.ready(), blas.status()
    assert blas.status().startswith("mkl (")
    src, g = jnp.ones((2, 5, 4)), jnp.ones((2, 3, 6))
    f = lambda s, g: blas.shifted_products(s, g, [(0,), (2,)])  # noqa: E731
    assert "generative_blas_shifted_products" in jax.jit(f).lower(src, g).as_text()
    with blas.backend("xla"):
        text = jax.jit(lambda s, g: f(s, g)).lower(src, g).as_text()
    assert "generative_blas" not in text and "dot_general" in text
    with pytest.raises(ValueError, match=r"unknown CPU GEMM backend 'eigen'.*\['mkl', 'xla'\]"):
        with blas.backend("eigen"):
            pass


@pytest.mark.parametrize(
    "src_shape, g_shape, starts",
    [
        ((3, 40, 8), (3, 37, 5), [(0,), (1,), (3,)]),  # 1-D, the taps of a width-4 kernel
        ((4, 9, 11, 7), (4, 8, 9, 6), [(0, 0), (0, 2), (1, 1), (1, 0)]),
        ((2, 5, 6, 7, 3), (2, 4, 4, 6, 5), [(0, 0, 0), (1, 2, 1)]),  # 3-D
        ((700, 3, 3, 4), (700, 2, 2, 3), [(1, 1), (0, 0)]),  # several chunks of 512 rows
    ],
)
def test_shifted_products_equal_reference(src_shape, g_shape, starts):
    """Values against float64 einsums, under jit; vmap over the cotangent g and over both
    operands equals a loop; the gradient (XLA's form) equals the XLA products' gradient."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    src = jax.random.normal(k1, src_shape)
    g = jax.random.normal(k2, g_shape)
    f = jax.jit(lambda s, g: blas.shifted_products(s, g, starts))
    np.testing.assert_allclose(f(src, g), _reference(src, g, starts), rtol=1e-5, atol=1e-4)

    gs = jax.random.normal(k3, (3, *g_shape))
    loop = jnp.stack([f(src, gi) for gi in gs])
    np.testing.assert_allclose(jax.vmap(f, (None, 0))(src, gs), loop, rtol=1e-6, atol=1e-5)
    srcs = jnp.stack([src, 2 * src, -src])
    both = jnp.stack([f(si, gi) for si, gi in zip(srcs, gs)])
    np.testing.assert_allclose(jax.vmap(f)(srcs, gs), both, rtol=1e-6, atol=1e-5)

    w = jax.random.normal(k3, (len(starts), src_shape[-1], g_shape[-1]))
    loss = lambda s, g: jnp.sum(jnp.sin(blas.shifted_products(s, g, starts)) * w)  # noqa: E731
    ours = jax.grad(loss, (0, 1))(src, g)
    with blas.backend("xla"):
        ref = jax.grad(lambda s, g: loss(s, g), (0, 1))(src, g)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def test_frames_sharded_over_devices_are_multiplied_where_they_are():
    """On a mesh of CPU devices with the frames sharded, each device multiplies its own
    frames and the results are summed (an all-reduce, no all-gather of the operands): a
    strided convolution's kernel gradient equals XLA's, unsharded."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from generative.layers import conv

    mesh = Mesh(np.array(jax.devices()[:4]), ("data",))
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 16, 16, 8))
    k = jax.random.normal(jax.random.PRNGKey(1), (4, 4, 8, 16))
    pads = ((1, 1), (1, 1))
    grad = jax.jit(jax.grad(lambda k, x: jnp.sum(conv(x, k, (2, 2), pads) ** 2)))
    xs = jax.device_put(x, NamedSharding(mesh, PartitionSpec("data")))
    ks = jax.device_put(k, NamedSharding(mesh, PartitionSpec()))
    text = grad.lower(ks, xs).compile().as_text()
    assert "generative_blas_shifted_products" in text
    assert "all-gather" not in text and "all-reduce" in text
    dn = ("NHWC", "HWIO", "NHWC")
    ref = jax.grad(
        lambda k: jnp.sum(
            jax.lax.conv_general_dilated(x, k, (2, 2), pads, dimension_numbers=dn) ** 2
        )
    )(k)
    np.testing.assert_allclose(grad(ks, xs), ref, rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(grad(k, x), ref, rtol=1e-5, atol=1e-2)


def test_shifted_products_refuse_bad_windows():
    src, g = jnp.ones((2, 5, 4)), jnp.ones((2, 3, 6))
    with pytest.raises(ValueError, match=r"window at \(3,\) of \(2, 3, 6\) leaves \(2, 5, 4\)"):
        blas.shifted_products(src, g, [(0,), (3,)])
    with pytest.raises(ValueError, match="same rank and frames"):
        blas.shifted_products(src, jnp.ones((3, 3, 6)), [(0,)])
    with pytest.raises(ValueError, match="one offset per spatial axis"):
        blas.shifted_products(src, g, [(0, 0)])


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "JAX_PLATFORMS": "cpu", **env},
        timeout=300,
    )


_PROBE = """
import jax, jax.numpy as jnp, numpy as np
from generative import blas, layers
print(blas.status())
x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
k = jax.random.normal(jax.random.PRNGKey(1), (4, 4, 3, 5))
f = lambda k: jnp.sum(layers.conv(x, k, (2, 2), ((1, 1), (1, 1))) ** 2)
ref = jax.grad(lambda k: jnp.sum(jax.lax.conv_general_dilated(
    x, k, (2, 2), [(1, 1), (1, 1)], dimension_numbers=("NHWC", "HWIO", "NHWC")) ** 2))(k)
np.testing.assert_allclose(jax.grad(f)(k), ref, rtol=1e-5, atol=1e-4)
print("gradients equal")
"""


def test_fallbacks_when_switched_off_or_not_buildable(tmp_path):
    """GENERATIVE_CPU_GEMM=xla, a compiler that fails, or a cache directory that cannot be
    made: status says why, gradients are the same (XLA's products); an unknown choice stops
    with the valid ones."""
    off = _run(_PROBE, GENERATIVE_CPU_GEMM="xla")
    assert off.returncode == 0, off.stderr[-2000:]
    assert "xla (GENERATIVE_CPU_GEMM=xla)" in off.stdout and "gradients equal" in off.stdout
    broken = _run(_PROBE, CXX="false", GENERATIVE_CACHE_DIR=str(tmp_path))
    assert broken.returncode == 0, broken.stderr[-2000:]
    assert "xla (compiling blas_ffi.cc failed" in broken.stdout, broken.stdout
    assert "gradients equal" in broken.stdout and not list(tmp_path.glob("*.so"))
    nowhere = _run(_PROBE, GENERATIVE_CACHE_DIR="/proc/no-such-cache")  # cannot be created
    assert nowhere.returncode == 0, nowhere.stderr[-2000:]
    assert "xla (cannot build blas_ffi.cc" in nowhere.stdout and "gradients equal" in nowhere.stdout
    bad = _run(_PROBE, GENERATIVE_CPU_GEMM="eigen")
    assert bad.returncode != 0
    assert "unknown GENERATIVE_CPU_GEMM='eigen'; valid choices: ['mkl', 'xla']" in bad.stderr


@pytest.mark.parametrize(
    "trans_a, trans_b", [(False, False), (True, False), (False, True), (True, True)]
)
def test_matmul_equals_reference(trans_a, trans_b):
    """op(a) @ op(b) against float64, under jit and vmap; first and second reverse-mode
    derivatives equal XLA's product's; the call is in the lowered program."""
    m, k, n = 70, 300, 45
    ka, kb, kw = jax.random.split(jax.random.PRNGKey(0), 3)
    a = jax.random.normal(ka, (k, m) if trans_a else (m, k))
    b = jax.random.normal(kb, (n, k) if trans_b else (k, n))
    f = jax.jit(lambda a, b: blas.matmul(a, b, trans_a, trans_b))
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ref = (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)
    np.testing.assert_allclose(f(a, b), ref, rtol=1e-5, atol=1e-4)
    assert "generative_blas_sgemm" in f.lower(a, b).as_text()
    bs = jnp.stack([b, -b, 2 * b])
    np.testing.assert_allclose(
        jax.vmap(f, (None, 0))(a, bs), jnp.stack([f(a, bi) for bi in bs]), rtol=1e-6, atol=1e-5
    )
    w = jax.random.normal(kw, (m, n))

    def loss(a, b):
        return jnp.sum(jnp.sin(blas.matmul(a, b, trans_a, trans_b)) * w)

    def second(a, b):
        return jnp.sum(jax.grad(loss, (0, 1))(a, b)[0] ** 2)

    ours = jax.grad(loss, (0, 1))(a, b), jax.grad(second, (0, 1))(a, b)
    with blas.backend("xla"):
        ref = (
            jax.grad(lambda a, b: loss(a, b), (0, 1))(a, b),
            jax.grad(lambda a, b: second(a, b), (0, 1))(a, b),
        )
    for x, y in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="contraction lengths differ"):
        blas.matmul(a, b, not trans_a, trans_b)


def test_dense_equals_flax():
    """`layers.Dense` has flax's parameters and, in float32 on MKL and in float64 on XLA,
    its values and gradients."""
    import flax.linen as nn
    from jax.experimental import enable_x64

    from generative.layers import Dense

    x = jax.random.normal(jax.random.PRNGKey(0), (4, 7, 33))
    for dtype, tol in ((jnp.float32, 1e-4), (jnp.float64, 1e-10)):
        with enable_x64(dtype == jnp.float64):
            xd = x.astype(dtype)
            ours, ref = Dense(19, param_dtype=dtype), nn.Dense(19, param_dtype=dtype)
            v = ref.init(jax.random.PRNGKey(1), xd)
            assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(1), xd)) == jax.tree.map(
                jnp.shape, v
            )
            v = jax.tree.map(lambda p: p + 0.3, v)  # a non-zero bias
            np.testing.assert_allclose(ours.apply(v, xd), ref.apply(v, xd), rtol=tol, atol=tol)
            loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))  # noqa: E731
            for a, b in zip(
                jax.tree.leaves(jax.grad(loss(ours), (0, 1))(v, xd)),
                jax.tree.leaves(jax.grad(loss(ref), (0, 1))(v, xd)),
            ):
                np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("m, r", [(2, 2), (4, 2), (2, 3), (4, 3)])
def test_winograd_matrices_compute_correlations(m, r):
    """Aᵀ[(G g) ⊙ (Bᵀ d)] is the correlation y_i = Σ_a g_a d_{i+a} (float64, exact to 1e-12)."""
    bt, at, g = blas.winograd_matrices(m, r)
    n = m + r - 1
    assert bt.shape == (n, n) and at.shape == (m, n) and g.shape == (n, r)
    rng = np.random.default_rng(m * 10 + r)
    for _ in range(5):
        d, w = rng.standard_normal(n), rng.standard_normal(r)
        ref = [sum(w[a] * d[i + a] for a in range(r)) for i in range(m)]
        np.testing.assert_allclose(at @ ((g @ w) * (bt @ d)), ref, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"F\(9, 2\) is not supported"):
        blas.winograd_matrices(9, 2)


def _phase_reference(x, kernels, offsets_y, offsets_x, out_hw):
    """Direct float64 sums, x zero outside."""
    x, kernels = np.asarray(x, np.float64), np.asarray(kernels, np.float64)
    ho, wo = out_hw
    sy, sx, r, _, _, c_out = kernels.shape
    pad = r + max(map(abs, offsets_y + offsets_x)) + max(ho, wo)
    xp = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    out = np.zeros((x.shape[0], ho, sy, wo, sx, c_out))
    for ry, oy in enumerate(offsets_y):
        for rx, ox in enumerate(offsets_x):
            for a in range(r):
                for b in range(r):
                    win = xp[:, pad + oy + a : pad + oy + a + ho, pad + ox + b : pad + ox + b + wo]
                    out[:, :, ry, :, rx] += win @ kernels[ry, rx, a, b]
    return out


@pytest.mark.parametrize(
    "shape, r, tile, offsets, c_out",
    [
        ((3, 4, 4, 32), 2, 2, ((-1, 0), (-1, 0)), 16),  # a 4×4 stride-2 layer's phases
        ((2, 8, 8, 16), 2, 4, ((-1, 0), (0, -1)), 32),  # F(4×4, 2×2)
        ((2, 6, 4, 5), 2, 2, ((-1, 0), (-1, 0)), 3),  # channels not multiples of 16
        ((2, 6, 6, 16), 3, 2, ((-1,), (-1,)), 16),  # F(2×2, 3×3): a stride-1 3×3 layer
        ((2, 8, 8, 16), 3, 4, ((-1, 1), (2, -3)), 16),  # windows far over the borders
    ],
)
def test_phase_correlations_equal_reference(shape, r, tile, offsets, c_out):
    """The Winograd call against direct float64 sums (x zero outside, offsets below zero and
    beyond the border), its target in the lowered program; XLA's form (`backend("xla")`)
    agrees; vmap over x alone (the kernels' call takes the batch as frames) and over both
    (one call per batch entry) equals a loop."""
    ho, wo = shape[1], shape[2]
    kx, kk = jax.random.split(jax.random.PRNGKey(r * 10 + tile))
    x = jax.random.normal(kx, shape)
    kernels = jax.random.normal(kk, (len(offsets[0]), len(offsets[1]), r, r, shape[-1], c_out))
    kernels = kernels / np.sqrt(r * r * shape[-1])
    ref = _phase_reference(x, kernels, *offsets, (ho, wo))
    f = lambda x, k: blas.phase_correlations(x, k, *offsets, (ho, wo), tile)  # noqa: E731
    assert "generative_blas_winograd" in jax.jit(f).lower(x, kernels).as_text()
    scale = np.abs(ref).max()
    np.testing.assert_allclose(jax.jit(f)(x, kernels), ref, rtol=0, atol=2e-5 * scale)
    with blas.backend("xla"):
        g = jax.jit(lambda x, k: f(x, k))
        assert "generative_blas" not in g.lower(x, kernels).as_text()
        np.testing.assert_allclose(g(x, kernels), ref, rtol=0, atol=2e-6 * scale)
    xs = jnp.stack([x, -2 * x[::-1]])
    got = jax.jit(jax.vmap(f, in_axes=(0, None)))(xs, kernels)
    np.testing.assert_allclose(got[1], -2 * jax.jit(f)(x[::-1], kernels), rtol=0, atol=5e-5 * scale)
    ks = jnp.stack([kernels, 3 * kernels])
    got = jax.jit(jax.vmap(f))(xs, ks)
    np.testing.assert_allclose(got[1], -6 * jax.jit(f)(x[::-1], kernels), rtol=0, atol=1e-4 * scale)


def test_phase_correlations_refuse_bad_shapes():
    x, k = jnp.ones((2, 4, 4, 3)), jnp.ones((2, 2, 2, 2, 3, 5))
    with pytest.raises(
        ValueError, match=r"phase_correlations: x \(2, 4, 4\).*one offset per phase"
    ):
        blas.phase_correlations(x[..., 0], k, (0, 1), (0, 1), (4, 4), 2)
    with pytest.raises(ValueError, match="one offset per phase"):
        blas.phase_correlations(x, k, (0,), (0, 1), (4, 4), 2)
