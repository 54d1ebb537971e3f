"""Layers shared by the model families, written for speed on every XLA backend.

`BatchNorm` is a drop-in replacement for `flax.linen.BatchNorm` over the last axis (same
parameters 'scale'/'bias', statistics 'mean'/'var', momentum semantics, no update while
initialising) with a custom VJP whose batch reductions over more than 4096 rows are
matrix-vector products: XLA's CPU backend turns the large reductions of `jnp.mean` and of the
broadcasts' transposes into slow `reduce-window` trees (0.12 s for one [240, 32, 32, 64] mean
against 0.02 s as a product), while over few rows the product is the slower one.
Its variance is the centred two-pass one (flax's default is the faster E[x²] − E[x]²).

`ConvTranspose` is a drop-in replacement for `flax.linen.ConvTranspose` (same parameters,
names, shapes and outputs) that never asks XLA for an input-dilated convolution. A strided
transposed convolution is `s^d` ordinary stride-1 convolutions, one per output phase, whose
results interleave into the output ("sub-pixel" decomposition). It matters on CPU: XLA's CPU
backend has no fast kernel for the *weight gradient* of an input-dilated convolution and falls
back to a naive loop, 15 s for one SRVP decoder layer at batch 240 against 0.1 s here
(`benchmarks/layers.py`). On GPU/TPU both forms are fast; the phase form does the same
number of multiply-adds (no multiplications by inserted zeros).

Layers with few channels on one side (an encoder's first convolution on 1-channel frames, a
decoder's last transposed convolution to 1 channel: taps · C_small <= C_large) are computed
as one full-width matrix product on the space-to-depth input (im2col) or output (tap
scatter); convolution kernels reading 1-wide vectors are several times slower there on CPU.
Layers whose windows do not overlap (a decoder's first 1×1 -> 4×4 transposed convolution, an
encoder's last 4×4 -> 1×1 convolution, patch embeddings with kernel <= stride) are one matrix
product plus a reshape; as convolutions they would mostly multiply padding.
Matrix products are always given 2-D operands: XLA's CPU backend has a slow path for products
contracting several axes, which is what a kernel gradient otherwise becomes.
On CPU in float32, 2-D transposed convolutions whose phases are r×r windows of one length
(4×4 stride-2 decoders; a strided `Conv`'s input gradient) compute their forward by
Winograd F(2×2, r×r) in one call (`blas.phase_correlations`, `_winograd_tile`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from generative import blas
from generative.reductions import col_mean, col_sum, reduces_plainly, sample_col_sums

__all__ = [
    "Dense",
    "BatchNorm",
    "GroupNorm",
    "group_norm",
    "Conv",
    "conv",
    "ConvTranspose",
    "batch_norm",
    "bias_add",
    "conv_transpose",
    "transpose_padding",
    "valid_conv_kernel_grad",
]


def transpose_padding(kernel: int, stride: int, padding) -> tuple[int, int]:
    """The (low, high) padding of the dilated input that `lax.conv_transpose` uses."""
    if isinstance(padding, str):
        if padding == "SAME":
            pad_len = kernel + stride - 2
            low = kernel - 1 if stride > kernel - 1 else math.ceil(pad_len / 2)
        elif padding == "VALID":
            pad_len = kernel + stride - 2 + max(kernel - stride, 0)
            low = kernel - 1
        else:
            raise ValueError(f"unknown padding '{padding}'; valid choices: SAME, VALID, pairs")
        return low, pad_len - low
    low, high = padding
    return int(low), int(high)


def _phases(size: int, kernel: int, stride: int, pads: tuple[int, int]):
    """Per output phase r: (first tap, number of taps, input offset of the first tap, length).

    Output o = s·q + r sees x[q + d] through tap j whenever r + j - pad_low = s·d.
    """
    low, high = pads
    out_len = max(0, (size - 1) * stride + 1 + low + high - kernel + 1)
    phases = []
    for r in range(stride):
        taps = [j for j in range(kernel) if (r + j - low) % stride == 0]
        length = max(0, -(-(out_len - r) // stride))
        if taps:
            phases.append((taps[0], len(taps), (r + taps[0] - low) // stride, length))
        else:
            phases.append((0, 0, 0, length))
    return out_len, phases


def conv_transpose(x, kernel, strides: Sequence[int], padding="SAME", precision=None):
    """`lax.conv_transpose(x, kernel, strides, padding, dimension_numbers=NHWC/HWIO)`.

    x: [N, *spatial, C_in]; kernel: [*window, C_in, C_out] (not flipped, as flax's default
    `transpose_kernel=False`); padding: 'SAME', 'VALID' or one (low, high) pair per spatial axis.
    Forward: one stride-1 convolution per output phase, interleaved. Backward (custom VJP): the
    input gradient is one strided convolution of the padded output gradient, the kernel
    gradient the kernel gradient of that same strided convolution, so no phase is revisited.
    """
    nd = x.ndim - 2
    if not 1 <= nd <= 3:
        raise ValueError(f"conv_transpose supports 1 to 3 spatial axes, got {nd}")
    window = kernel.shape[:nd]
    strides = tuple(int(s) for s in strides)
    if len(strides) != nd:
        raise ValueError(f"strides {strides} must have one entry per spatial axis ({nd})")
    if isinstance(padding, str):
        pads = tuple(transpose_padding(k, s, padding) for k, s in zip(window, strides))
    else:
        pads = tuple(transpose_padding(k, s, p) for k, s, p in zip(window, strides, padding))
    if all(n == 1 or k <= s for n, k, s in zip(x.shape[1:-1], window, strides)):
        return _conv_transpose_blocks(x, kernel, strides, pads, precision)
    if math.prod(window) * kernel.shape[-1] <= kernel.shape[-2]:
        return _conv_transpose_taps(x, kernel, strides, pads, precision)
    return _conv_transpose(x, kernel, strides, pads, precision)


def _conv_transpose_blocks(x, kernel, strides, pads, precision):
    """Windows that do not overlap in the output (per axis one input, or kernel <= stride,
    e.g. a decoder's first layer 1×1 -> 4×4): every output takes at most one tap, so the
    layer is one matrix product z = x @ K[C_in, taps · C_out] whose tap blocks, laid side by
    side (depth to space), are the output up to a shift. Input o = s·i + low − j receives
    x[i] K[j]; with j' = k − 1 − j the block of input i holds taps j' at s·i + j'. A phase
    convolution would multiply mostly padding (16× the work for 1×1 -> 4×4). Differentiated
    by JAX (pads, a transpose and two products)."""
    nd = x.ndim - 2
    window = kernel.shape[:nd]
    c_out = kernel.shape[-1]
    flip = (slice(None, None, -1),) * nd
    kr = jnp.moveaxis(kernel[flip], -2, 0).reshape(kernel.shape[-2], -1)  # [C_in, taps·C_out]
    z = jnp.dot(x.reshape(-1, x.shape[-1]), kr, precision=precision)
    z = z.reshape(*x.shape[:-1], *window, c_out)  # [N, *in, *window, C_out]
    widths = [max(s, k) if n == 1 else s for n, k, s in zip(x.shape[1:-1], window, strides)]
    zero = jnp.zeros((), z.dtype)
    config = [(0, 0, 0)] * (nd + 1) + [(0, w - k, 0) for w, k in zip(widths, window)] + [(0, 0, 0)]
    z = lax.pad(z, zero, config)
    z = _from_phases(z, nd)  # [N, *(in · width), C_out]
    config = [(0, 0, 0)]
    for i, (n, k, s, (lo, hi)) in enumerate(zip(x.shape[1:-1], window, strides, pads)):
        out_len = _phases(n, k, s, (lo, hi))[0]
        shift = lo - k + 1  # output o reads block position o − shift
        config.append((shift, out_len - shift - z.shape[1 + i], 0))
    config.append((0, 0, 0))
    return lax.pad(z, zero, config)


def _s2d_kernel(kernel, strides, flip_phase: bool):
    """Kernel [*window, C_in, C_out] padded to A·s taps per axis (A = ceil(k/s)) and split as
    tap j = s·a + b -> (a, b) -> [*A, *s, C_in, C_out]; with flip_phase the phase is
    ρ = s − 1 − b (the transposed convolution's)."""
    nd = len(strides)
    window = kernel.shape[:nd]
    big = [-(-k // s) for k, s in zip(window, strides)]
    kp = jnp.pad(kernel, [(0, a * s - k) for a, s, k in zip(big, strides, window)] + [(0, 0)] * 2)
    kp = kp.reshape(*(d for a, s in zip(big, strides) for d in (a, s)), *kernel.shape[-2:])
    kp = kp.transpose(*range(0, 2 * nd, 2), *range(1, 2 * nd, 2), 2 * nd, 2 * nd + 1)
    if flip_phase:
        kp = kp[(slice(None),) * nd + (slice(None, None, -1),) * nd]
    return kp, big


def _to_phases(x, strides):
    """[N, *(U·s), C] -> [N, *U, *s, C] (space to depth)."""
    nd = len(strides)
    u = [n // s for n, s in zip(x.shape[1:-1], strides)]
    x = x.reshape(x.shape[0], *(d for a, s in zip(u, strides) for d in (a, s)), x.shape[-1])
    return x.transpose(0, *range(1, 2 * nd, 2), *range(2, 2 * nd + 1, 2), 2 * nd + 1)


def _from_phases(x, nd):
    """[N, *U, *s, C] -> [N, *(U·s), C] (depth to space)."""
    perm = [0] + [a for i in range(nd) for a in (1 + i, 1 + nd + i)] + [1 + 2 * nd]
    return x.transpose(perm).reshape(
        x.shape[0], *(x.shape[1 + i] * x.shape[1 + nd + i] for i in range(nd)), x.shape[-1]
    )


def _conv_transpose_taps(x, kernel, strides, pads, precision):
    """Few output channels (taps · C_out <= C_in, e.g. a decoder's last layer): one matrix
    product z = x @ K[C_in, taps · C_out] at full width, then the taps are summed into the
    output in space-to-depth form (tap j = s·a + s − 1 − ρ of input i lands in output phase ρ
    of block i − a, up to an offset), so every move is of contiguous s·C_out vectors. The
    convolution forms, one per phase, each run a C_out-wide product. Differentiated by JAX
    (slices and two products)."""
    nd = x.ndim - 2
    kp, big = _s2d_kernel(kernel, strides, flip_phase=True)  # [*A, *s, C_in, C_out]
    kr = jnp.moveaxis(kp, -2, 0).reshape(kernel.shape[-2], -1)
    # 2-D operands: a product contracting several axes (its transpose, the kernel gradient,
    # would contract N and the spatial axes) takes a slow path on XLA's CPU backend.
    z = jnp.dot(x.reshape(-1, x.shape[-1]), kr, precision=precision)
    z = z.reshape(*x.shape[:-1], *kp.shape[: 2 * nd], kernel.shape[-1])
    zero = jnp.zeros((), z.dtype)
    out = None
    for a in np.ndindex(*big):
        plane = z[(slice(None),) * (nd + 1) + a]  # [N, *L, *s, C_out]
        config = [(0, 0, 0)]
        config += [(m - 1 - ai, ai, 0) for m, ai in zip(big, a)]
        config += [(0, 0, 0)] * (nd + 1)
        plane = lax.pad(plane, zero, config)
        out = plane if out is None else out + plane
    out = _from_phases(out, nd)  # output o sits at o + P, P = s·A − 1 − pad_low
    config = [(0, 0, 0)]
    for i, (n, k, s, (lo, hi), a) in enumerate(
        zip(x.shape[1:-1], kernel.shape, strides, pads, big)
    ):
        p = s * a - 1 - lo
        out_len = _phases(n, k, s, (lo, hi))[0]
        config.append((-p, out_len - (out.shape[1 + i] - p), 0))
    config.append((0, 0, 0))
    return lax.pad(out, zero, config)


def _dimension_numbers(x, kernel):
    spatial = "HWD"[: x.ndim - 2]
    return lax.conv_dimension_numbers(
        x.shape, kernel.shape, ("N" + spatial + "C", spatial + "IO", "N" + spatial + "C")
    )


WINOGRAD_TILE = 2


def _winograd_tile(x, axes) -> int | None:
    """The Winograd tile m for the phases of a 2-D transposed convolution (`_conv_transpose`)
    when they fit `blas.phase_correlations`: every phase r×r taps and all phases of an axis
    the same length, a multiple of `WINOGRAD_TILE`; None otherwise.

    F(2×2, 2×2) (9 products per 4 outputs instead of 16, 1.78× fewer) keeps the error at
    1.5–2× the direct product's (max error / max |out| 7e-7 – 1e-6 against 4–6e-7 on SRVP's
    decoder layers, float64 reference); F(4×4, 2×2) (25 per 16, 2.56× fewer) was 7% faster
    on SRVP's best-of-100 evaluation (2.30 against 2.46 s) at 10× the direct error
    (5e-6 – 1e-5). `blas.phase_correlations` takes either."""
    if x.ndim != 4:
        return None
    taps = {n for _, phases in axes for _, n, _, _ in phases}
    lengths = [{length for _, _, _, length in phases} for _, phases in axes]
    if len(taps) != 1 or taps == {0} or any(len(ln) != 1 for ln in lengths):
        return None
    if any(ln.pop() % WINOGRAD_TILE for ln in lengths):
        return None
    return WINOGRAD_TILE


def _conv_transpose_winograd(x, kernel, strides, axes, tile):
    """The phases as `blas.phase_correlations` of the input, which writes them interleaved:
    Winograd F(m×m, r×r) on CPU float32 (`_winograd_tile`)."""
    r = axes[0][1][0][1]
    offsets = [[d0 for _, _, d0, _ in phases] for _, phases in axes]
    kernels = jnp.stack(
        [
            jnp.stack(
                [
                    kernel[
                        j0y : j0y + (r - 1) * strides[0] + 1 : strides[0],
                        j0x : j0x + (r - 1) * strides[1] + 1 : strides[1],
                    ]
                    for j0x, _, _, _ in axes[1][1]
                ]
            )
            for j0y, _, _, _ in axes[0][1]
        ]
    )  # [S_y, S_x, r, r, C_in, C_out]
    (ho,), (wo,) = ({ln for *_, ln in phases} for _, phases in axes)
    out = blas.phase_correlations(x, kernels, *offsets, (ho, wo), tile)
    n, _, sy, _, sx, c = out.shape
    return out.reshape(n, ho * sy, wo * sx, c)[:, : axes[0][0], : axes[1][0]]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_transpose(x, kernel, strides, pads, precision):
    nd = x.ndim - 2
    window = kernel.shape[:nd]
    axes = [_phases(x.shape[1 + i], window[i], strides[i], pads[i]) for i in range(nd)]
    tile = _winograd_tile(x, axes)
    xla = functools.partial(_conv_transpose_phases, strides=strides, axes=axes, precision=precision)
    if tile and blas.enabled(x, kernel):
        return blas.cpu_or(
            functools.partial(_conv_transpose_winograd, strides=strides, axes=axes, tile=tile),
            xla,
            x,
            kernel,
        )
    return xla(x, kernel)


def _conv_transpose_phases(x, kernel, strides, axes, precision):
    """One XLA stride-1 convolution per output phase, interleaved."""
    nd = x.ndim - 2
    dn = _dimension_numbers(x, kernel)
    out_lens = [a[0] for a in axes]
    full = [-(-n // s) for n, s in zip(out_lens, strides)]  # phase length before cropping
    c_out = kernel.shape[-1]
    blocks = []
    for phase in np.ndindex(*strides):
        per_axis = [axes[i][1][r] for i, r in enumerate(phase)]
        if any(n == 0 for _, n, _, _ in per_axis):
            out = jnp.zeros((x.shape[0], *full, c_out), jnp.result_type(x, kernel))
        else:
            index = tuple(
                slice(j0, j0 + (n - 1) * s + 1, s) for (j0, n, _, _), s in zip(per_axis, strides)
            )
            k = kernel[index]
            config = [(0, 0, 0)]
            for i, (_, n, d0, length) in enumerate(per_axis):
                # x'[i] = x[i + d0] over the length+n-1 inputs the VALID window needs.
                config.append((-d0, length + n - 1 + d0 - x.shape[1 + i], 0))
            config.append((0, 0, 0))
            xp = lax.pad(x, jnp.zeros((), x.dtype), config)
            out = lax.conv_general_dilated(
                xp, k, (1,) * nd, "VALID", dimension_numbers=dn, precision=precision
            )
            grow = [(0, f - ln) for f, (_, _, _, ln) in zip(full, per_axis)]
            if any(g for _, g in grow):
                out = jnp.pad(out, [(0, 0), *grow, (0, 0)])
        blocks.append(out)
    # blocks in phase order (r_1, ..., r_d) -> [N, full_1, s_1, ..., full_d, s_d, C]
    stacked = jnp.stack(blocks, axis=-2).reshape(x.shape[0], *full, *strides, c_out)
    perm = [0] + [a for i in range(nd) for a in (1 + i, 1 + nd + i)] + [1 + 2 * nd]
    out = stacked.transpose(perm).reshape(
        x.shape[0], *(f * s for f, s in zip(full, strides)), c_out
    )
    return out[(slice(None), *(slice(0, n) for n in out_lens))]


def _conv_transpose_fwd(x, kernel, strides, pads, precision):
    return _conv_transpose(x, kernel, strides, pads, precision), (x, kernel)


def _conv_transpose_bwd(strides, pads, precision, res, g):
    # Input q and tap j feed output s·q + pad_low − j. With P = k − 1 − pad_low and g padded
    # by P on the left, g_pad[s·q + j'] (j' = k − 1 − j) is the output it fed: both gradients
    # are those of the strided VALID convolution z = conv_s(g_pad, W), W[j'] = K[k−1−j']ᵀ.
    x, kernel = res
    nd = x.ndim - 2
    window = kernel.shape[:nd]
    config = [(0, 0, 0)]
    for i, (k, s, (low, _)) in enumerate(zip(window, strides, pads)):
        left = k - 1 - low
        length = s * (x.shape[1 + i] - 1) + k  # what the VALID strided windows read
        config.append((left, length - left - g.shape[1 + i], 0))
    config.append((0, 0, 0))
    g_pad = lax.pad(g, jnp.zeros((), g.dtype), config)
    flip = (slice(None, None, -1),) * nd
    w = jnp.swapaxes(kernel[flip], -1, -2)  # [*window, C_out, C_in]
    gx = lax.conv_general_dilated(
        g_pad,
        w,
        strides,
        "VALID",
        dimension_numbers=_dimension_numbers(g_pad, w),
        precision=precision,
    )
    gw = valid_conv_kernel_grad(g_pad, x.astype(g_pad.dtype), window, strides, precision)
    return gx.astype(x.dtype), jnp.swapaxes(gw, -1, -2)[flip].astype(kernel.dtype)


@jax.custom_batching.custom_vmap
def _zero_after(r):
    """An int32 zero that depends on r (its first element, which it never changes: NaN or
    not, the result is 0) and that the compiler cannot prove is zero."""
    return jnp.minimum(jnp.isnan(r.reshape(-1)[0]).astype(jnp.int32), 0)


@_zero_after.def_vmap
def _zero_after_vmap(axis_size, in_batched, r):
    del axis_size, in_batched
    return _zero_after(r), False  # one zero for the whole batch: offsets stay unbatched


def _in_turn(product, src, starts, sizes, rearrange=None):
    """[product(rearrange(src[:, start : start + sizes])) for start in starts], each window
    cut only after the previous product: its offset is taken from that product
    (`_zero_after`). XLA's scheduler would otherwise cut every window (a copy as large as the
    layer's input) before the first product and keep them all live, and optimization
    barriers do not survive its CPU pipeline. Under `vmap` the offsets stay unbatched (one
    slice, no gather)."""
    out, zero = [], jnp.zeros((), jnp.int32)
    for start in starts:
        if out:
            zero = _zero_after(lax.stop_gradient(out[-1]))
        index = (zero, *(zero + a for a in start), zero)
        window = lax.dynamic_slice(src, index, (src.shape[0], *sizes, src.shape[-1]))
        out.append(product(window if rearrange is None else rearrange(window)))
    return out


def valid_conv_kernel_grad(inp, g, window, strides, precision=None):
    """Kernel gradient of the VALID strided convolution z = conv_s(inp, W) for cotangent g.

    dW[j] = Σ_{n,q} inp[n, s·q + j]ᵀ g[n, q], products over the N·Q positions. XLA's CPU
    backend computes this as a convolution with batch and features swapped, and its
    transposes into that layout (fused with the producers of g) cost more than the products
    themselves. Stride 1: one product per tap, on a shifted slice of inp. Stride s > 1:
    inp in space-to-depth form (tap j = s·a + b reads block q + a, phase b), one product
    per block shift a, [N·Q, s^d·C_in]ᵀ [N·Q, C_out], which holds the s^d taps of that shift:
    wider products and A^d slices instead of k^d strided ones (a 4×4 stride-2 kernel
    gradient at batch 1024, `benchmarks/layers.py --tables kgrad`: 128->64 @16 0.718 ->
    0.587 s, 512->256 @4 0.352 -> 0.321 s).

    On CPU in float32 (and MKL ready) the products are one `blas.shifted_products` call on
    the space-to-depth input: MKL, no window copied whole (SRVP's 4×4 stride-2 layers at 960
    frames: 0.39–0.53 -> 0.20–0.22 s). Elsewhere each window is cut and multiplied in turn
    (`_in_turn`). The platform is chosen when lowering; one branch is compiled."""
    nd = len(window)
    out = g.shape[1 : 1 + nd]
    c_in, c_out = inp.shape[-1], g.shape[-1]
    if all(s == 1 for s in strides):
        shifts = list(np.ndindex(*window))  # the taps
        src, starts, sizes, rearrange = inp, shifts, out, None
    else:
        big = [-(-k // s) for k, s in zip(window, strides)]  # block shifts A per axis
        # crop or zero-pad inp to s·(Q − 1 + A) per axis: positions past the last window are
        # read only by the padding taps j >= k, which are dropped below
        config = [(0, 0, 0)]
        for n, q, s, a in zip(inp.shape[1:-1], out, strides, big):
            config.append((0, s * (q - 1 + a) - n, 0))
        config.append((0, 0, 0))
        src = lax.pad(inp, jnp.zeros((), inp.dtype), config)
        # block shift a: the s·Q positions from s·a, in space-to-depth form [N, *Q, *s, C]
        shifts = list(np.ndindex(*big))
        starts = [tuple(s * a for s, a in zip(strides, shift)) for shift in shifts]
        sizes = [s * q for s, q in zip(strides, out)]
        rearrange = functools.partial(_to_phases, strides=strides)

    def in_turn(src, g):  # [S, s^d·C_in, C_out]: each window cut and multiplied in turn
        g2 = g.reshape(-1, c_out)
        product = lambda a: lax.dot_general(  # noqa: E731
            a.reshape(g2.shape[0], -1), g2, (((0,), (0,)), ((), ())), precision=precision
        )
        return jnp.stack(_in_turn(product, src, starts, sizes, rearrange))

    def mkl(src, g):  # CPU, float32: one call, no window copied whole (`generative.blas`)
        if rearrange is not None:
            src = rearrange(src)
            src = src.reshape(*src.shape[: 1 + nd], -1)  # [N, *(Q − 1 + A), s^d·C_in]
        return blas.shifted_products(src, g, shifts)

    gw = blas.cpu_or(mkl, in_turn, src, g)
    if all(s == 1 for s in strides):
        return gw.reshape(*window, c_in, c_out)
    w = gw.reshape(*big, *strides, c_in, c_out)
    perm = [d for i in range(nd) for d in (i, nd + i)] + [2 * nd, 2 * nd + 1]
    w = w.transpose(perm).reshape(*(a * s for a, s in zip(big, strides)), c_in, c_out)
    return w[tuple(slice(0, k) for k in window)]


_conv_transpose.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


KERNEL_GRADS = ("auto", "xla", "taps")


def conv(x, kernel, strides: Sequence[int], padding="SAME", precision=None, kernel_grad="auto"):
    """`lax.conv_general_dilated(x, kernel, strides, padding)` in NHWC/HWIO whose input
    gradient, for strides > 1, is `conv_transpose` (phases) rather than XLA's input-dilated
    convolution.

    kernel_grad:
    - "xla": XLA's own kernel gradient, a convolution with batch and features swapped;
    - "taps": matrix products, one per tap at stride 1 and one per block shift at larger
      strides (`valid_conv_kernel_grad`);
    - "auto" (default): per platform, chosen when the computation is lowered: on CPU "taps"
      for strides > 1 and "xla" at stride 1, elsewhere "xla" (cuDNN's and the TPU's kernel
      gradients). On CPU the strided products beat XLA's form, whose transposes into the
      batch-as-feature layout cost more than its products, once the layer has many windows
      (SRVP's 4×4 stride-2 64->128 encoder layer, value-and-gradient: equal at 240 frames,
      543 -> 476 ms at 480, 1197 -> 1026 ms at 960; the whole SRVP batch-64 training step
      6.15 -> 5.74 s), and are equal below; at stride 1 and top level XLA's is the faster.
    Use "taps" for a convolution evaluated inside a loop (`lax.scan`, `lax.while_loop`, an
    ODE solver), stride 1 included: there XLA's CPU backend runs its kernel gradient ~70×
    slower (147 ms against 2 ms per call for a 3×3 64->64 convolution on 16 × 16×16 maps,
    `benchmarks/layers.py --tables loops`), while the products are not slowed."""
    if kernel_grad not in KERNEL_GRADS:
        raise ValueError(
            f"unknown kernel_grad {kernel_grad!r}; valid choices: {list(KERNEL_GRADS)}"
        )
    nd = x.ndim - 2
    window = kernel.shape[:nd]
    strides = tuple(int(s) for s in strides)
    if isinstance(padding, str):
        pads = lax.padtype_to_pads(x.shape[1 : 1 + nd], window, strides, padding)
    else:
        pads = padding
    pads = tuple((int(a), int(b)) for a, b in pads)
    q = [
        (n + lo + hi - k) // s + 1
        for n, k, s, (lo, hi) in zip(x.shape[1:-1], window, strides, pads)
    ]
    if min(q) > 0 and all(qi == 1 or k <= s for qi, k, s in zip(q, window, strides)):
        return _conv_patches(x, kernel, strides, pads, q, precision)
    if math.prod(window) * kernel.shape[-2] <= kernel.shape[-1]:
        return _conv_im2col(x, kernel, strides, pads, q, precision)
    return _conv(x, kernel, strides, pads, precision, kernel_grad)


def _conv_patches(x, kernel, strides, pads, q, precision):
    """Windows that do not overlap (per axis one output, or kernel <= stride: an encoder's
    last 4×4 -> 1×1 layer, a patch embedding): the patches are the padded input cut into
    blocks (a reshape, a slice and a transpose, no copy per tap), times K[taps · C_in, C_out].
    XLA would compute the input gradient as a convolution over mostly padding. Differentiated
    by JAX."""
    nd = x.ndim - 2
    window = kernel.shape[:nd]
    widths = [k if qi == 1 else s for qi, k, s in zip(q, window, strides)]
    config = [(0, 0, 0)]
    for n, (lo, _), qi, w in zip(x.shape[1:-1], pads, q, widths):
        config.append((lo, qi * w - n - lo, 0))
    config.append((0, 0, 0))
    xp = _to_phases(lax.pad(x, jnp.zeros((), x.dtype), config), widths)  # [N, *Q, *w, C]
    xp = xp[(slice(None),) * (nd + 1) + tuple(slice(0, k) for k in window)]
    patches = xp.reshape(-1, math.prod(window) * x.shape[-1])
    out = jnp.dot(patches, kernel.reshape(-1, kernel.shape[-1]), precision=precision)
    return out.reshape(x.shape[0], *q, kernel.shape[-1])


def _conv_im2col(x, kernel, strides, pads, q, precision):
    """q: the output length per spatial axis. Few input channels (taps · C_in <= C_out, e.g. an encoder's first layer on frames):
    patches [N, *Q, taps · C_in] (no larger than the output) times K[taps · C_in, C_out], one
    full-width product instead of a convolution reading C_in-wide vectors. The patches are
    shifted slices of the space-to-depth input (tap j = s·a + ρ reads block q + a, phase ρ),
    so every move is of contiguous s·C_in vectors. Differentiated by JAX: the kernel gradient
    is patchesᵀ · g, one product."""
    kp, big = _s2d_kernel(kernel, strides, flip_phase=False)  # [*A, *s, C_in, C_out]
    config = [(0, 0, 0)]
    for n, s, (lo, _), qi, a in zip(x.shape[1:-1], strides, pads, q, big):
        config.append((lo, s * (qi + a - 1) - n - lo, 0))
    config.append((0, 0, 0))
    xs = _to_phases(lax.pad(x, jnp.zeros((), x.dtype), config), strides)  # [N, *U, *s, C]
    patches = jnp.concatenate(
        [
            xs[(slice(None), *(slice(ai, ai + qi) for ai, qi in zip(a, q)))].reshape(
                x.shape[0], *q, -1
            )
            for a in np.ndindex(*big)
        ],
        axis=-1,
    )
    out = jnp.dot(
        patches.reshape(-1, patches.shape[-1]),
        kp.reshape(-1, kernel.shape[-1]),
        precision=precision,
    )  # 2-D, as in `_conv_transpose_taps`
    return out.reshape(*patches.shape[:-1], kernel.shape[-1])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv(x, kernel, strides, pads, precision, kernel_grad):
    del kernel_grad  # backward only
    return lax.conv_general_dilated(
        x,
        kernel,
        strides,
        pads,
        dimension_numbers=_dimension_numbers(x, kernel),
        precision=precision,
    )


def _conv_fwd(x, kernel, strides, pads, precision, kernel_grad):
    return _conv(x, kernel, strides, pads, precision, kernel_grad), (x, kernel)


def _conv_bwd(strides, pads, precision, kernel_grad, res, g):
    x, kernel = res
    nd = x.ndim - 2
    window = kernel.shape[:nd]
    fun = lambda x, k: _conv.fun(x, k, strides, pads, precision, kernel_grad)  # noqa: E731
    stride_1 = all(s == 1 for s in strides)

    def taps():  # matrix products (see `conv`)
        config = [(0, 0, 0)] + [(lo, hi, 0) for lo, hi in pads] + [(0, 0, 0)]
        x_pad = lax.pad(x, jnp.zeros((), x.dtype), config)
        gw = valid_conv_kernel_grad(x_pad, g.astype(x.dtype), window, strides, precision)
        return gw.astype(kernel.dtype)

    def xla():
        return jax.vjp(lambda k: fun(x, k), kernel)[1](g)[0]

    if kernel_grad == "taps":
        gw = taps()
    elif stride_1:  # "xla" and "auto": XLA's own gradients, both
        return jax.vjp(fun, x, kernel)[1](g)
    elif kernel_grad == "auto":  # lowered for one platform, one branch is compiled
        gw = lax.platform_dependent(cpu=taps, default=xla)
    else:
        gw = xla()
    if stride_1:
        return jax.vjp(lambda x: fun(x, kernel), x)[1](g)[0], gw
    # x[p] fed output q through tap j when s·q + j − pad_low = p: a transposed convolution
    # of g with the flipped, channel-swapped kernel. XLA's own form, an input-dilated
    # convolution, is slow on CPU.
    t_pads = []
    for i, (k, s, (low, _)) in enumerate(zip(window, strides, pads)):
        t_low = k - 1 - low
        t_pads.append((t_low, x.shape[1 + i] - 1 - (g.shape[1 + i] - 1) * s + k - 1 - t_low))
    flip = (slice(None, None, -1),) * nd
    w = jnp.swapaxes(kernel[flip], -1, -2).astype(g.dtype)
    gx = _conv_transpose(g, w, strides, tuple(t_pads), precision).astype(x.dtype)
    return gx, gw


_conv.defvjp(_conv_fwd, _conv_bwd)


def _window_strides(kernel_size, strides):
    window = (kernel_size,) if isinstance(kernel_size, int) else tuple(kernel_size)
    if strides is None:
        strides = 1
    strides = (strides,) * len(window) if isinstance(strides, int) else tuple(strides)
    return window, strides


def _pairs(padding, nd):
    """flax's padding forms: a string, an int, or one int / (low, high) per spatial axis."""
    if isinstance(padding, str):
        return padding
    if isinstance(padding, int):
        return [(padding, padding)] * nd
    return [(p, p) if isinstance(p, int) else tuple(p) for p in padding]


class _ConvLayer(nn.Module):
    """Parameters and batching shared by `Conv` and `ConvTranspose` (flax's fields and names:
    kernel `[*window, C_in, C_out]`, 'kernel' and 'bias'); `_apply` is the operation."""

    features: int
    kernel_size: Sequence[int]
    strides: Sequence[int] | None = None
    padding: Any = "SAME"
    use_bias: bool = True
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros_init()
    param_dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x, shared=None):
        """x [*batch, *spatial, C]. `shared` [*groups, *spatial, C_s] (optional): more input
        channels, the same for each run of N/G consecutive rows of x (N, G: the flattened
        batch and group counts; e.g. skip features repeated over a video's frames). The
        result is the layer on `concat([x, repeat(shared, N/G)], -1)` (same kernel
        [*window, C + C_s, features]), and by linearity the shared channels' part is
        computed G times rather than N."""
        window, strides = _window_strides(self.kernel_size, self.strides)
        nd = len(window)
        batch = x.shape[: x.ndim - nd - 1]
        x = x.reshape((-1,) + x.shape[x.ndim - nd - 1 :])
        c_in = x.shape[-1]
        if shared is not None:
            shared = shared.reshape((-1,) + shared.shape[shared.ndim - nd - 1 :])
            if shared.shape[1:-1] != x.shape[1:-1] or x.shape[0] % shared.shape[0]:
                raise ValueError(
                    f"shared input {shared.shape} must match x {x.shape} in its spatial axes "
                    "and divide its batch"
                )
            c_in += shared.shape[-1]
        kernel = self.param(
            "kernel", self.kernel_init, window + (c_in, self.features), self.param_dtype
        )
        kernel = kernel.astype(x.dtype)
        pads = _pairs(self.padding, nd)
        y = self._apply(x, kernel[..., : x.shape[-1], :], strides, pads, self.precision)
        if shared is not None:
            ys = self._apply(
                shared.astype(x.dtype), kernel[..., x.shape[-1] :, :], strides, pads, self.precision
            )
            g = ys.shape[0]
            y = (y.reshape(g, -1, *y.shape[1:]) + ys[:, None]).reshape(y.shape)
        if self.use_bias:
            bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            y = bias_add(y, bias)
        return y.reshape(batch + y.shape[1:])


class Conv(_ConvLayer):
    """`flax.linen.Conv` (no dilation or groups) computed by `conv`. Inputs may have several
    leading batch axes. `kernel_grad`: "auto" (default; per platform, see `conv`), "xla" or
    "taps"; "taps" for layers evaluated inside loops (ODE vector fields, scanned blocks)."""

    kernel_grad: str = "auto"

    def _apply(self, x, kernel, strides, pads, precision):
        return conv(x, kernel, strides, pads, precision, self.kernel_grad)


class ConvTranspose(_ConvLayer):
    """`flax.linen.ConvTranspose` (`transpose_kernel=False`, no dilation) computed by
    `conv_transpose`. Inputs may have several leading batch axes. Its kernel gradient is
    always matrix products (`valid_conv_kernel_grad`), fast inside loops too."""

    _apply = staticmethod(conv_transpose)


# ----------------------------------------------------------------------------- bias, batch norm


class Dense(nn.Module):
    """Drop-in for `flax.linen.Dense` (features, use_bias, kernel_init, bias_init,
    param_dtype, precision; parameters 'kernel' [in, features] and 'bias') whose products
    are `blas.matmul`: MKL on CPU in float32, XLA's elsewhere. Reverse-mode only."""

    features: int
    use_bias: bool = True
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros_init()
    param_dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x):
        kernel = self.param(
            "kernel", self.kernel_init, (x.shape[-1], self.features), self.param_dtype
        )
        dtype = jnp.result_type(x, kernel)
        y = blas.matmul(
            x.reshape(-1, x.shape[-1]).astype(dtype), kernel.astype(dtype), precision=self.precision
        )
        y = y.reshape(*x.shape[:-1], self.features)
        if self.use_bias:
            bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            y = bias_add(y, bias.astype(dtype))
        return y


def _plain_bias_add(y, bias):
    return y + bias.astype(y.dtype).reshape((1,) * (y.ndim - 1) + (-1,))


def bias_add(y, bias):
    """y [..., C] + bias [C]. Where `col_sum` of the [rows, C] cotangent is a product, the
    bias gradient is that product: JAX's own transpose is a reduction over all the leading
    axes, which XLA's CPU backend runs as a slow many-axis tree (for a [128, 32, 32, 64]
    convolution output the value-and-gradient takes 39.4 against 13.7 ms,
    `benchmarks/layers.py --tables bias`).
    Elsewhere the plain sum, which XLA fuses with its producer."""
    if reduces_plainly(math.prod(y.shape[:-1]), y.shape[-1]):
        return _plain_bias_add(y, bias)
    return _bias_add(y, bias)


@jax.custom_vjp
def _bias_add(y, bias):
    return _plain_bias_add(y, bias)


def _bias_add_fwd(y, bias):
    return _plain_bias_add(y, bias), bias


def _bias_add_bwd(bias, g):
    return g, col_sum(g.reshape(-1, g.shape[-1])).astype(bias.dtype)


_bias_add.defvjp(_bias_add_fwd, _bias_add_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def batch_norm(x, scale, bias, epsilon):
    """Normalise the rows of x [M, C] with their own statistics.

    Returns (y, mean, var) with var the biased (1/M) variance; differentiable in x, scale and
    bias (cotangents of mean and var included)."""
    return _bn_fwd(x, scale, bias, epsilon)[0]


def _bn_fwd(x, scale, bias, epsilon):
    mean = col_mean(x)
    xc = x - mean[None]
    var = col_mean(xc * xc)
    r = lax.rsqrt(var + epsilon)
    xhat = xc * r[None]
    return (xhat * scale[None] + bias[None], mean, var), (xhat, r, scale)


def _bn_bwd(epsilon, res, g):
    xhat, r, scale = res
    gy, gmean, gvar = g
    m = xhat.shape[0]
    gbias = col_sum(gy)
    gscale = col_sum(gy * xhat)
    # gx = a·gy + b·xhat + c with per-channel a, b, c: one pass over the rows.
    a = r * scale
    b = (2.0 * gvar / r - a * gscale) / m
    c = (gmean - a * gbias) / m
    gx = gy * a[None] + xhat * b[None] + c[None]
    return gx, gscale, gbias


batch_norm.defvjp(_bn_fwd, _bn_bwd)


def _scale_bias(module: nn.Module, c: int):
    """The normalisation layers' 'scale' and 'bias' parameters (ones / zeros when unused);
    called from the module's compact `__call__`."""
    scale = (
        module.param("scale", module.scale_init, (c,), module.param_dtype)
        if module.use_scale
        else jnp.ones((c,), module.param_dtype)
    )
    bias = (
        module.param("bias", module.bias_init, (c,), module.param_dtype)
        if module.use_bias
        else jnp.zeros((c,), module.param_dtype)
    )
    return scale, bias


class BatchNorm(nn.Module):
    """`flax.linen.BatchNorm` over the last axis, with `batch_norm`'s fast reductions."""

    use_running_average: bool | None = None
    momentum: float = 0.99
    epsilon: float = 1e-5
    use_scale: bool = True
    use_bias: bool = True
    scale_init: Any = nn.initializers.ones_init()
    bias_init: Any = nn.initializers.zeros_init()
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, use_running_average: bool | None = None):
        use_running_average = nn.merge_param(
            "use_running_average", self.use_running_average, use_running_average
        )
        c = x.shape[-1]
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        scale, bias = _scale_bias(self, c)
        dtype = jnp.promote_types(x.dtype, jnp.float32)
        scale, bias = scale.astype(dtype), bias.astype(dtype)
        if use_running_average:
            mul = scale * lax.rsqrt(ra_var.value.astype(dtype) + self.epsilon)
            feat = lambda v: v.reshape((1,) * (x.ndim - 1) + (c,))
            return ((x - feat(ra_mean.value)) * feat(mul) + feat(bias)).astype(x.dtype)
        y, mean, var = batch_norm(x.reshape(-1, c).astype(dtype), scale, bias, self.epsilon)
        if not self.is_initializing():
            mean, var = lax.stop_gradient(mean), lax.stop_gradient(var)
            ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
            ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
        return y.reshape(x.shape).astype(x.dtype)


# ----------------------------------------------------------------------------- group norm
def _group_mean(per_channel, groups: int, count: int):
    """[B, C] channel sums -> [B, C] mean of each channel's group (count elements per group)."""
    b, c = per_channel.shape
    g = per_channel.reshape(b, groups, c // groups).sum(-1) / count
    return jnp.repeat(g, c // groups, axis=1)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def group_norm(x, scale, bias, groups: int, epsilon: float):
    """Group normalisation of x [B, M, C] (statistics per sample over M and each group's
    C / groups channels); the reductions are vector-matrix products, the VJP one pass."""
    return _gn_fwd(x, scale, bias, groups, epsilon)[0]


def _gn_fwd(x, scale, bias, groups, epsilon):
    count = x.shape[1] * (x.shape[2] // groups)
    mean = _group_mean(sample_col_sums(x), groups, count)  # [B, C]
    xc = x - mean[:, None]
    var = _group_mean(sample_col_sums(xc * xc), groups, count)
    r = lax.rsqrt(var + epsilon)  # [B, C]
    xhat = xc * r[:, None]
    return xhat * scale[None, None] + bias[None, None], (xhat, r, scale)


def _gn_bwd(groups, epsilon, res, gy):
    xhat, r, scale = res
    count = xhat.shape[1] * (xhat.shape[2] // groups)
    s_gy = sample_col_sums(gy)  # [B, C]
    s_gyx = sample_col_sums(gy * xhat)
    gbias, gscale = s_gy.sum(0), s_gyx.sum(0)
    # gx = r (γ gy − mean_group(γ gy) − xhat · mean_group(γ gy · xhat)) = a gy + b xhat + c
    a = r * scale[None]
    b = -r * _group_mean(s_gyx * scale[None], groups, count)
    c = -r * _group_mean(s_gy * scale[None], groups, count)
    gx = gy * a[:, None] + xhat * b[:, None] + c[:, None]
    return gx, gscale, gbias


group_norm.defvjp(_gn_fwd, _gn_bwd)


class GroupNorm(nn.Module):
    """`flax.linen.GroupNorm` (statistics over every non-batch axis, feature axis last; same
    'scale' / 'bias' parameters) with `group_norm`'s fast reductions. The variance is the
    centred two-pass one (flax's default is E[x²] − E[x]²)."""

    num_groups: int | None = 32
    group_size: int | None = None
    epsilon: float = 1e-6
    use_scale: bool = True
    use_bias: bool = True
    scale_init: Any = nn.initializers.ones_init()
    bias_init: Any = nn.initializers.zeros_init()
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        if (self.num_groups is None) == (self.group_size is None):
            raise ValueError("GroupNorm: give exactly one of num_groups and group_size")
        groups = self.num_groups if self.group_size is None else c // self.group_size
        if groups <= 0 or c % groups or (self.group_size and c % self.group_size):
            raise ValueError(
                f"GroupNorm: {c} channels do not split into "
                + (f"groups of {self.group_size}" if self.group_size else f"{groups} groups")
            )
        scale, bias = _scale_bias(self, c)
        dtype = jnp.promote_types(x.dtype, jnp.float32)
        y = group_norm(
            x.reshape(x.shape[0], -1, c).astype(dtype),
            scale.astype(dtype),
            bias.astype(dtype),
            groups,
            self.epsilon,
        )
        return y.reshape(x.shape).astype(x.dtype)
