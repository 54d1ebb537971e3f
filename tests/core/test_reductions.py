"""generative.reductions: the fast sums equal numpy's (float64), take the product path only
where intended, and the finiteness test catches NaN/±inf without overflowing on large values."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.experimental import enable_x64

from generative.core.train import clip_by_global_norm, tree_is_finite
from generative.reductions import (
    all_finite,
    col_sum,
    global_norm,
    mean,
    sample_col_sums,
    sum_of_squares,
    total,
)


def _dots(fn, *args):
    """dot_general equations in fn's jaxpr (with their precision)."""
    jaxpr = jax.make_jaxpr(fn)(*args)
    return [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]


# (shape, whether `total` is a product): > 4096·256 elements with a power-of-two divisor >= 32
SHAPES = [
    ((7,), False),
    ((300, 50), False),
    ((4096, 256), False),  # exactly the threshold: plain
    ((2049, 512), True),
    ((64, 17, 33, 32), True),
    ((3, 1_000_001), False),  # size 3_000_003 is odd: no row length divides it
    ((128, 26, 64, 64, 1), True),  # frames with a trailing 1-channel axis
]


@pytest.mark.parametrize("shape,product", SHAPES)
def test_total_equals_numpy_sum(shape, product):
    with enable_x64():
        x = np.random.default_rng(0).normal(size=shape)
        got = total(jnp.asarray(x))
        assert got.shape == () and got.dtype == jnp.float64
        assert abs(float(got) - x.sum()) <= 1e-12 * np.abs(x).sum()
        assert bool(_dots(total, jnp.asarray(x))) == product


def test_products_are_full_precision():
    # GPU/TPU round DEFAULT-precision float32 operands to TF32/bfloat16
    big = jnp.ones((4097, 8))
    for fn, arg in [
        (col_sum, big),
        (total, jnp.ones((4097, 256))),
        (sample_col_sums, jnp.ones((2, 4097, 8))),
    ]:
        (eqn,) = _dots(fn, arg)
        assert eqn.params["precision"] == (jax.lax.Precision.HIGHEST,) * 2


def test_column_sums_equal_numpy():
    with enable_x64():
        rng = np.random.default_rng(1)
        for shape in [(100, 3), (5000, 4), (5000, 16)]:  # plain, plain (few channels), product
            a = rng.normal(size=shape)
            np.testing.assert_allclose(col_sum(jnp.asarray(a)), a.sum(0), rtol=1e-12)
        b = rng.normal(size=(3, 5000, 16))
        np.testing.assert_allclose(sample_col_sums(jnp.asarray(b)), b.sum(1), rtol=1e-12)


def test_global_norm_equals_optax():
    rng = np.random.default_rng(2)
    tree = {
        "w": jnp.asarray(rng.normal(size=(2048, 1200)), jnp.float32),
        "b": jnp.asarray(rng.normal(size=(1200,)), jnp.float32),
        "nested": [jnp.asarray(rng.normal(size=(4, 4, 256, 512)), jnp.float32)],
    }
    ours, ref = global_norm(tree), optax.global_norm(tree)
    np.testing.assert_allclose(float(ours), float(ref), rtol=1e-5)
    exact = np.sqrt(sum((np.asarray(x, np.float64) ** 2).sum() for x in jax.tree.leaves(tree)))
    np.testing.assert_allclose(float(ours), exact, rtol=1e-6)
    assert float(sum_of_squares({})) == 0.0
    assert len(_dots(global_norm, tree)) == 2  # "w" and "nested" as products, "b" plain


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("size", [10, 2_000_000])  # plain and product paths
def test_all_finite_finds_one_bad_element(bad, size):
    x = np.zeros(size, np.float32)
    x[size // 3] = bad
    tree = {"ok": jnp.ones((3, 3)), "bad": jnp.asarray(x), "ints": jnp.arange(4)}
    assert not bool(all_finite(tree))
    assert not bool(jax.jit(tree_is_finite)(tree))


def test_all_finite_accepts_large_finite_values():
    # a sum of squares would overflow to inf here; x·0 does not
    tree = {"big": jnp.full((2_000_000,), 3e38, jnp.float32), "small": jnp.float32(-3e38)}
    assert bool(all_finite(tree))
    assert bool(jax.jit(all_finite)(tree))
    assert bool(all_finite({})) and bool(all_finite({"i": jnp.arange(3)}))


@pytest.mark.parametrize("max_norm", [0.5, 1e6])  # clipped, untouched
def test_clip_by_global_norm_equals_optax(max_norm):
    rng = np.random.default_rng(3)
    g = {"a": jnp.asarray(rng.normal(size=(3000, 400)), jnp.float32), "b": jnp.ones((5,))}
    ours, _ = clip_by_global_norm(max_norm).update(g, optax.EmptyState())
    ref, _ = optax.clip_by_global_norm(max_norm).update(g, optax.EmptyState())
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(ref)):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-9)


def test_mean_equals_numpy():
    with enable_x64():
        x = np.random.default_rng(4).normal(size=(16, 25, 64, 64, 1))
        got = mean(jnp.asarray(x))
        assert abs(float(got) - x.mean()) <= 1e-13 * np.abs(x).mean()
        assert _dots(mean, jnp.asarray(x))  # the product path
