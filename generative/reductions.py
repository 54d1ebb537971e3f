"""Sums written as matrix-vector products where XLA's CPU backend reduces slowly.

XLA's CPU backend lowers a large reduction over several leading axes (the bias gradient of a
convolution, a batch mean) to a many-axis `reduce-window` tree, and a reduction of a whole
array to one scalar to a loop that runs far below the machine's bandwidth, while a
matrix-vector product with a vector of ones runs at full speed on every core. Measured on the
2-core development host (float32):

- column sums of a [131 072, 64] matrix: 28 ms as a reduction, 1.7 ms as a product;
- the sum of squares of a [20 480, 1200] array (a WaveEq encoder kernel): 19 ms against 3.3 ms;
  the three global norms of `generative.core.train.loss_step` on the 60.8 M WaveEq parameters
  took 156 of a 1.33 s training step with `optax.global_norm`.

Over few rows (or below 8 columns) the plain reduction is the faster one, and these helpers
keep it there. The products use full float32 precision (`Precision.HIGHEST`): the GPU/TPU
defaults would round their operands to TF32/bfloat16. Every function is exact up to float
summation order (tests against `numpy` in float64, `tests/core/test_reductions.py`).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

__all__ = [
    "reduces_plainly",
    "col_sum",
    "col_mean",
    "sample_col_sums",
    "total",
    "mean",
    "sum_of_squares",
    "global_norm",
    "all_finite",
]

# Up to this many rows a plain reduction is faster; beyond, a matrix-vector product. Measured
# (`benchmarks/layers.py`, BatchNorm value-and-gradient): at 3840 rows (512 channels at 4×4,
# batch 240) the reduction takes 4.7 ms against 26 ms, at 15 360 rows 11.5 against 7.7 ms.
_SMALL_ROWS = 4096
_FEW_CHANNELS = 8  # below, a reduction is faster at any row count
# `total` views an array as rows of this many elements (a divisor of its size): 256-element
# rows ran fastest (sum of squares of 24.6 M floats: 3.3 ms, against 3.7 ms with 1024 and
# 15 ms with 4096-element rows).
_ROW = 256
_MIN_ROW = 32
_HIGHEST = lax.Precision.HIGHEST


def reduces_plainly(rows: int, channels: int) -> bool:
    """Whether `col_sum` of a [rows, channels] matrix is a plain reduction."""
    return rows <= _SMALL_ROWS or channels < _FEW_CHANNELS


def col_sum(a):
    """Sum over the rows of a [M, C] matrix: a reduction over few rows or channels, else a
    vector-matrix product (at 131 072 rows × 64 channels 1.7 against 28 ms; at 524 288 rows
    the product is the slower one below 8 channels, 0.7 against 0.2 ms for one)."""
    if reduces_plainly(*a.shape):
        return a.sum(0)
    return jnp.dot(jnp.ones((a.shape[0],), a.dtype), a, precision=_HIGHEST)


def col_mean(a):
    """Mean over the rows of a [M, C] matrix."""
    return col_sum(a) / a.shape[0]


def sample_col_sums(a):
    """Per-sample column sums of a [B, M, C] array, as B vector-matrix products -> [B, C]."""
    ones = jnp.ones(a.shape[:2], a.dtype)
    return lax.dot_general(ones, a, (((1,), (1,)), ((0,), (0,))), precision=_HIGHEST)


def total(x):
    """Sum of all elements of x (any shape) -> scalar of x's dtype. Arrays of more than
    `_SMALL_ROWS · _ROW` elements whose size has a divisor of at least 32 among the powers of
    two up to 256 are summed as rows of that length by a matrix-vector product, the rest by a
    plain reduction."""
    x = jnp.asarray(x)
    n = x.size
    row = math.gcd(n, _ROW)
    if n <= _SMALL_ROWS * _ROW or row < _MIN_ROW:
        return jnp.sum(x)
    rows = jnp.dot(x.reshape(n // row, row), jnp.ones((row,), x.dtype), precision=_HIGHEST)
    return jnp.sum(rows)


def mean(x):
    """Mean of all elements of x, with `total`'s sum (a loss's mean squared error over a
    [128, 25, 64, 64, 1] batch: 8.5 ms as XLA's reduction, 2.8 ms here)."""
    x = jnp.asarray(x)
    return total(x) / x.size


def sum_of_squares(tree: Any):
    """Σ x² over every leaf of a pytree (a scalar; 0.0 for an empty tree)."""
    return sum((total(jnp.square(x)) for x in jax.tree_util.tree_leaves(tree)), jnp.zeros(()))


def global_norm(tree: Any):
    """‖tree‖₂ over all leaves: `optax.global_norm` with `total`'s fast sums."""
    return jnp.sqrt(sum_of_squares(tree))


def all_finite(tree: Any):
    """Whether every inexact element of a pytree is finite ([] bool; True without any).

    x · 0 is 0 for a finite x and NaN for ±inf or NaN, so one fast sum per leaf decides it
    (no overflow: the sum of zeros stays zero)."""
    sums = [
        total(x * jnp.zeros((), x.dtype))
        for x in map(jnp.asarray, jax.tree_util.tree_leaves(tree))
        if jnp.issubdtype(x.dtype, jnp.inexact)
    ]
    if not sums:
        return jnp.array(True)
    return jnp.all(jnp.stack([jnp.isfinite(s) for s in sums]))
